#pragma once
// unix_stream: a connected Unix-domain stream socket (AF_UNIX, SOCK_STREAM).

#include <utility>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/local/stream_protocol.hpp>

#include "coronet/basic_stream.hpp"
#include "coronet/endpoint.hpp"
#include "coronet/result.hpp"
#include "coronet/source_location.hpp"
#include "coronet/timeout.hpp"

namespace coronet {

/// A connected Unix-domain byte stream: the same operations as tcp_stream, half-close included,
/// between processes on one machine.
///
/// Obtained from unix_stream::connect(), unix_listener::accept() or unix_stream::socket_pair().
/// send(), send_all(), recv(), recv_exact() and shutdown() come from basic_stream, which states
/// their errors, cancellation and thread safety; close(), options and the descriptor from
/// basic_socket.
///
/// Thread safety: connect() is safe from any coroutine and socket_pair() from any thread;
/// every other method, close() and the destructor included, only from the stream's own
/// executor.
///
/// Example:
///
///     auto stream = (co_await coronet::unix_stream::connect(
///         coronet::endpoint::parse("unix:/run/app.sock").value())).value();
///     (co_await stream.send_all(asio::buffer(std::string_view("hello")))).value();
class unix_stream : public basic_stream<asio::local::stream_protocol::socket> {
 public:
  /// Adopts a connected Asio socket.
  explicit unix_stream(asio::local::stream_protocol::socket socket) noexcept;

  /// Connects to the Unix-domain socket at `remote` (`unix:/path` or `unix:@name`), on the
  /// calling coroutine's executor.
  /// Errors: std::errc::no_such_file_or_directory (no socket file), std::errc::connection_refused
  /// (a file nobody listens on), coronet::errc::wrong_address_family for an IP endpoint,
  /// std::errc::timed_out when `limit` passes first.
  /// Thread safety: safe from any coroutine; the stream belongs to that coroutine's executor.
  static asio::awaitable<result<unix_stream>> connect(
      endpoint remote, timeout limit = no_timeout,
      source_location where = source_location::current());

  /// Two streams connected to each other (socketpair(AF_UNIX, SOCK_STREAM)).
  /// Throws std::system_error when the descriptors cannot be had (EMFILE, ...).
  /// Thread safety: safe from any thread; both belong to `executor`.
  static std::pair<unix_stream, unix_stream> socket_pair(const asio::any_io_executor& executor);

  /// The local path (getsockname), read at connect or accept: `unix:` when unnamed, as the
  /// client side of a connection usually is.
  const endpoint& local_endpoint() const noexcept { return local_; }

  /// The peer's path (getpeername), read at connect or accept.
  const endpoint& remote_endpoint() const noexcept { return remote_; }

  /// The Asio socket underneath, for what coronet does not wrap.
  asio::local::stream_protocol::socket& asio_socket() noexcept { return socket_; }

 private:
  endpoint local_;
  endpoint remote_;
};

}  // namespace coronet
