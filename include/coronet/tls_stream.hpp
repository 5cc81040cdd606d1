#pragma once
// tls_stream: a TLS connection over TCP (OpenSSL, through Asio's ssl::stream), with the
// operations and error convention of tcp_stream.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/steady_timer.hpp>

#include "coronet/byte_counters.hpp"
#include "coronet/detail/io.hpp"
#include "coronet/detail/observer.hpp"
#include "coronet/endpoint.hpp"
#include "coronet/result.hpp"
#include "coronet/socket_option.hpp"
#include "coronet/source_location.hpp"
#include "coronet/tcp_stream.hpp"
#include "coronet/timeout.hpp"
#include "coronet/tls_context.hpp"

namespace coronet {

/// How tls_stream::connect() connects.
struct tls_connect_options {
  /// The name sent to the server (SNI) and checked against its certificate. Empty: the host
  /// given to connect(), or the address's text for an endpoint (an IP address is checked
  /// against the certificate's IP entries and not sent as SNI). A view, so that these options
  /// stay trivially destructible (see the GCC 12 note in README.md): the text must live until
  /// the co_await of connect() is done, as a literal or a string in the caller does.
  std::string_view server_name{};
  /// Bind to this local endpoint first, as connect_options::local.
  std::optional<endpoint> local{};
  /// How long the whole connect may take: lookup, TCP connect and handshake.
  timeout limit = no_timeout;
};

/// A TLS stream: TCP underneath, with the operations of tcp_stream.
///
/// Obtained from tls_stream::connect() (the handshake done), from tls_listener::accept(), or
/// by wrapping an accepted or connected tcp_stream. A stream that has not shaken hands yet
/// does so in handshake() or, failing that, in its first operation, so that a server's accept
/// loop never waits on a slow client: the handshake runs in the connection's own coroutine,
/// within that operation's time limit. Move-only; closes its socket when destroyed (without a
/// close_notify: call shutdown() first for a graceful end).
///
/// Errors: as tcp_stream's (values of std::errc and coronet::errc), plus:
/// - coronet::errc::tls_certificate_untrusted, tls_certificate_expired or
///   tls_host_name_mismatch when this side rejected the peer's certificate;
/// - coronet::errc::tls_handshake_failed for every other failed handshake: the peer does not
///   speak TLS, shares no version or cipher, rejected this side's certificate, or closed;
/// - coronet::errc::tls_truncated when the peer closed the TCP connection without a TLS
///   close_notify, where coronet::errc::eof means it ended cleanly: a truncation attack, or a
///   peer that crashed;
/// - coronet::errc::tls_protocol_error for a corrupt or unexpected record after the handshake;
/// - coronet::errc::tls_send_interrupted for a send after one that was cut off.
/// failure_detail() then gives OpenSSL's own words ("wrong version number", "unable to get
/// local issuer certificate").
///
/// Timeouts: as tcp_stream's: each operation has its own limit, or the stream's
/// (set_timeout()); a handshake run by an operation counts against that operation's limit.
///
/// Cancellation: a recv() is safe to cut off, as on TCP. A send cut off (a timeout, close(), a
/// cancelled coroutine) may leave part of a TLS record unsent: the stream can no longer send
/// (tls_send_interrupted) and should be closed. A handshake cut off fails the stream.
///
/// Thread safety: connect() is safe from any coroutine; every other method only from the
/// stream's own executor. One send-side and one receive-side operation may be in flight at
/// once (a reader and a writer coroutine), as on TCP.
///
/// Not offered: tcp_stream's wait_readable(), try_recv() and try_send(). A readable socket
/// does not mean a whole TLS record has arrived, nor a receive that something can be sent.
///
/// Example, a client:
///
///     auto tls = coronet::tls_context::client({.ca_file = "ca.pem"});
///     auto stream = co_await coronet::tls_stream::connect("example.com:443", tls);
///     if (!stream) co_return;  // stream.error(): refused, tls_certificate_untrusted, ...
///     if (!co_await stream->send_all(asio::buffer(request))) co_return;
class tls_stream {
 public:
  using native_handle_type = asio::ip::tcp::socket::native_handle_type;

  /// Wraps a connected TCP stream; the handshake runs on the first operation (or
  /// handshake()). A server context takes the server's side; a client context the client's,
  /// sending and checking `server_name`, or checking the peer's address when it is empty.
  tls_stream(tcp_stream stream, tls_context context, std::string server_name = {});

  tls_stream(tls_stream&&) noexcept;
  tls_stream& operator=(tls_stream&&) noexcept;
  ~tls_stream();

  /// Connects to `remote` and shakes hands, as the client of `context` (a client context), on
  /// the calling coroutine's executor.
  /// Errors: tcp_stream::connect()'s, the handshake's (see the class), std::errc::timed_out.
  /// Thread safety: safe from any coroutine; the stream belongs to that coroutine's executor.
  static asio::awaitable<result<tls_stream>> connect(
      endpoint remote, tls_context context, tls_connect_options options = {},
      source_location where = source_location::current());

  /// Resolves `host_port` (`example.com:443`), connects to each address in turn until one
  /// accepts, and shakes hands, sending and checking the host's name.
  static asio::awaitable<result<tls_stream>> connect(
      std::string host_port, tls_context context, tls_connect_options options = {},
      source_location where = source_location::current());

  /// Runs the handshake now if it has not run, so that its failure shows before any data.
  /// Returns at once once done; after a failed one, its error again.
  asio::awaitable<result<void>> handshake(call_timeout limit = {},
                                          source_location where = source_location::current());

  /// Sends some of `data` (at most one TLS record's worth, 16 KiB); returns how many bytes.
  asio::awaitable<io_result> send(asio::const_buffer data, call_timeout limit = {},
                                  source_location where = source_location::current());

  /// Sends all of `data`; on failure, bytes() says how many were encrypted and sent first.
  asio::awaitable<io_result> send_all(asio::const_buffer data, call_timeout limit = {},
                                      source_location where = source_location::current());

  /// Receives some decrypted bytes into `buffer`.
  /// Errors: coronet::errc::eof after the peer's close_notify; errc::tls_truncated when the
  /// connection ended without one.
  asio::awaitable<io_result> recv(asio::mutable_buffer buffer, call_timeout limit = {},
                                  source_location where = source_location::current());

  /// Fills all of `buffer`; on failure, bytes() says how many arrived first.
  asio::awaitable<io_result> recv_exact(asio::mutable_buffer buffer, call_timeout limit = {},
                                        source_location where = source_location::current());

  /// The graceful end of sending: sends a TLS close_notify, after which the peer's recv()
  /// reads coronet::errc::eof. This side can still recv() until the peer's own close_notify
  /// (errc::eof). The TLS form of shutdown(shutdown_type::send); close() afterwards.
  asio::awaitable<result<void>> shutdown(call_timeout limit = {},
                                         source_location where = source_location::current());

  /// Closes the socket; pending operations complete with std::errc::operation_canceled.
  void close() noexcept;
  bool is_open() const noexcept { return stream_.lowest_layer().is_open(); }

  /// Whether the handshake has completed successfully.
  bool handshake_done() const noexcept { return stage_ == stage::established; }

  /// The negotiated protocol ("TLSv1.3") and cipher suite; empty before the handshake.
  std::string_view protocol() const noexcept;
  std::string_view cipher() const noexcept;

  /// OpenSSL's account of the last TLS failure of this stream ("certificate verify failed:
  /// unable to get local issuer certificate", "wrong version number"); empty when none.
  std::string failure_detail() const;

  /// Typed socket options of the TCP socket underneath (setsockopt, getsockopt).
  template <socket_option Option>
  result<void> set_option(const Option& option) {
    return detail::set_socket_option(native_handle(), option);
  }
  template <socket_option Option>
  result<Option> get_option() const {
    Option option{};
    if (auto ec = detail::get_socket_option(native_handle(), option)) return ec;
    return option;
  }

  /// The TCP descriptor (fileno); -1 once closed. Reading or writing it directly corrupts the
  /// TLS stream.
  native_handle_type native_handle() const noexcept {
    return const_cast<tls_stream*>(this)->stream_.lowest_layer().native_handle();
  }

  /// The time limit each operation gets unless it passes its own (settimeout).
  void set_timeout(timeout limit) noexcept { timeout_ = limit; }
  timeout get_timeout() const noexcept { return timeout_; }

  asio::any_io_executor get_executor() noexcept { return stream_.get_executor(); }

  /// The two ends of the TCP connection, read when it was connected or accepted.
  endpoint local_endpoint() const noexcept { return local_; }
  endpoint remote_endpoint() const noexcept { return remote_; }

  /// From now on, adds the decrypted bytes each operation moves to `counters` (nullptr: stop).
  void count_bytes(std::shared_ptr<byte_counters> counters) noexcept {
    counters_ = std::move(counters);
  }
  const std::shared_ptr<byte_counters>& counters() const noexcept { return counters_; }

  /// The context the stream was made with.
  const tls_context& context() const noexcept { return context_; }

  /// Asio's TLS stream underneath, for what coronet does not wrap.
  asio::ssl::stream<asio::ip::tcp::socket>& asio_stream() noexcept { return stream_; }

 private:
  enum class stage : std::uint8_t { waiting, running, established, failed };

  timeout limit_for(call_timeout limit) const noexcept { return limit.value_or(timeout_); }
  template <class Start>
  asio::awaitable<std::tuple<std::error_code, std::size_t>> after_handshake(Start start,
                                                                            call_timeout limit,
                                                                            detail::wait_side side,
                                                                            source_location where);
  // Runs or waits out the handshake, unless it is done.
  asio::awaitable<result<void>> finish_handshake(timeout limit, detail::wait_side side,
                                                 source_location where);
  asio::awaitable<result<void>> run_handshake(timeout limit, detail::wait_side side,
                                              source_location where);
  // A failed handshake's error in coronet's terms, reading why OpenSSL failed.
  std::error_code handshake_error(const std::error_code& ec);
  // An operation's error in coronet's terms; a send's also marks the stream unable to send.
  std::error_code io_error(const std::error_code& ec);
  std::error_code send_error(const std::error_code& ec);
  io_result counted_received(const std::error_code& ec, std::size_t n);
  io_result counted_sent(const std::error_code& ec, std::size_t n);

  tls_context context_;
  asio::ssl::stream<asio::ip::tcp::socket> stream_;
  asio::ip::tcp::endpoint local_;
  asio::ip::tcp::endpoint remote_;
  timeout timeout_ = no_timeout;
  std::shared_ptr<byte_counters> counters_;
  detail::wait_slot waits_;  // what its operations wait on (runtime::suspended_operations)
  // Operations that meet a handshake another operation runs wait on this timer, which the
  // handshake cancels when done; made only then.
  std::unique_ptr<asio::steady_timer> handshake_waiters_;
  std::error_code handshake_error_;  // the failed handshake's, returned again
  unsigned long ssl_error_ = 0;      // the last OpenSSL error, for failure_detail()
  long verify_result_ = 0;           // X509_V_OK, or why the peer's certificate was rejected
  stage stage_ = stage::waiting;
  bool send_interrupted_ = false;
};

}  // namespace coronet
