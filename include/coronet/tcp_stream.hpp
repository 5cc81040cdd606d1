#pragma once
// tcp_stream: a connected TCP socket with coroutine send and receive.

#include <optional>
#include <string>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>
#include <asio/ip/tcp.hpp>

#include "coronet/basic_socket.hpp"
#include "coronet/endpoint.hpp"
#include "coronet/result.hpp"
#include "coronet/shutdown_type.hpp"

namespace coronet {

/// How tcp_stream::connect() sets up the socket before connecting.
struct connect_options {
  /// Bind to this local endpoint first (a source address; port 0 picks a free port).
  std::optional<endpoint> local;
};

/// A connected TCP stream.
///
/// Obtained from tcp_stream::connect() or tcp_listener::accept(); move-only; closes its socket
/// when destroyed.
///
/// Errors: each operation returns its outcome as a value (coronet::result or coronet::io_result)
/// whose expected failures are error_codes: coronet::errc::eof when the peer has closed,
/// std::errc::connection_reset, std::errc::broken_pipe (sending after a reset),
/// std::errc::connection_refused, std::errc::operation_canceled after close().
/// Call `.value()` on the outcome for the throwing form.
///
/// Thread safety: a tcp_stream must be used only from its own executor (the one it was created
/// on). One send-side operation and one receive-side operation may be in flight at once (a
/// reader and a writer coroutine); two sends or two receives at once are not allowed.
///
/// Example, an echo session:
///
///     asio::awaitable<void> echo(coronet::tcp_stream stream) {
///       std::array<char, 4096> buf;
///       while (auto got = co_await stream.recv(asio::buffer(buf))) {
///         if (!co_await stream.send_all(asio::buffer(buf, got.bytes()))) break;
///       }
///     }
///
/// close(), is_open(), set_option(), get_option(), native_handle(), non_blocking() and
/// set_non_blocking() come from basic_socket.
class tcp_stream : public basic_socket<asio::ip::tcp::socket> {
 public:
  /// Adopts a connected Asio socket.
  explicit tcp_stream(asio::ip::tcp::socket socket) noexcept;

  tcp_stream(tcp_stream&&) noexcept = default;
  tcp_stream& operator=(tcp_stream&&) noexcept = default;
  ~tcp_stream() = default;

  /// Connects to `remote` on the calling coroutine's executor.
  /// Errors: std::errc::connection_refused, std::errc::network_unreachable, ...; a bad
  /// `options.local` gives the bind error (std::errc::address_in_use, ...).
  /// Cancellation: the connection attempt is abandoned and its socket closed.
  static asio::awaitable<result<tcp_stream>> connect(endpoint remote, connect_options options = {});

  /// Resolves `host_port` (`localhost:80`, `[::1]:80`) and connects to each address in turn
  /// until one accepts. Errors: resolve()'s errors, or the last address's connect error.
  static asio::awaitable<result<tcp_stream>> connect(std::string host_port,
                                                     connect_options options = {});

  /// Sends some of `data` (at least one byte unless `data` is empty); returns how many.
  /// Cancellation: bytes reported are sent; on cancellation none were.
  asio::awaitable<io_result> send(asio::const_buffer data);

  /// Sends all of `data`. On failure, bytes() says how many were handed to the kernel first.
  /// Cancellation: part of `data` may have been sent; bytes() says how much.
  asio::awaitable<io_result> send_all(asio::const_buffer data);

  /// Receives some bytes into `buffer` (at least one unless `buffer` is empty).
  /// Errors: coronet::errc::eof once the peer has closed and everything was read.
  /// Cancellation: safe, no data is lost; the next recv() gets it.
  asio::awaitable<io_result> recv(asio::mutable_buffer buffer);

  /// Fills all of `buffer`. On failure, bytes() says how many arrived first (eof mid-way gives
  /// coronet::errc::eof with bytes() < buffer.size()).
  /// Cancellation: bytes received before it are in `buffer`, and bytes() says how many.
  asio::awaitable<io_result> recv_exact(asio::mutable_buffer buffer);

  /// Shuts down one or both directions. `shutdown_type::send` is the half-close: the peer reads
  /// eof after everything sent so far, and this side can still receive.
  result<void> shutdown(shutdown_type what = shutdown_type::send);

  /// The local endpoint (getsockname), read when the stream was connected or accepted, so it
  /// stays available after the peer is gone.
  const endpoint& local_endpoint() const noexcept { return local_; }

  /// The peer's endpoint (getpeername), read when the stream was connected or accepted.
  const endpoint& remote_endpoint() const noexcept { return remote_; }

  /// The Asio socket underneath, for what coronet does not wrap.
  asio::ip::tcp::socket& asio_socket() noexcept { return socket_; }

 private:
  endpoint local_;
  endpoint remote_;
};

}  // namespace coronet
