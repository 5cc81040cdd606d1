#pragma once
// tcp_stream: a connected TCP socket with coroutine send and receive.

#include <optional>
#include <string>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>

#include "coronet/basic_stream.hpp"
#include "coronet/endpoint.hpp"
#include "coronet/result.hpp"
#include "coronet/source_location.hpp"
#include "coronet/timeout.hpp"

namespace coronet {

/// How tcp_stream::connect() sets up the socket before connecting.
struct connect_options {
  /// Bind to this local endpoint first (a source address). With port 0 the port is picked at
  /// connect time (IP_BIND_ADDRESS_NO_PORT), so that one source address can serve as many
  /// connections as there are distinct destinations times ephemeral ports.
  std::optional<endpoint> local{};
  /// How long the whole connect may take: for a host name, the lookup and every address tried.
  timeout limit = no_timeout;
};

/// A connected TCP stream.
///
/// Obtained from tcp_stream::connect() or tcp_listener::accept(); move-only; closes its socket
/// when destroyed. send(), send_all(), recv(), recv_exact() and shutdown() come from
/// basic_stream, which states their errors, cancellation and thread safety; close(), options
/// and the descriptor come from basic_socket.
///
/// Errors: connect() returns std::errc::connection_refused and the like as values.
///
/// Thread safety: connect() is safe from any coroutine; every other method, close() and the
/// destructor included, only from the stream's own executor (the one its socket was made on).
///
/// Example, an echo session:
///
///     asio::awaitable<void> echo(coronet::tcp_stream stream) {
///       std::array<char, 4096> buf;
///       while (auto got = co_await stream.recv(asio::buffer(buf))) {
///         if (!co_await stream.send_all(asio::buffer(buf, got.bytes()))) break;
///       }
///     }
class tcp_stream : public basic_stream<asio::ip::tcp::socket> {
 public:
  /// Adopts a connected Asio socket.
  explicit tcp_stream(asio::ip::tcp::socket socket) noexcept;

  tcp_stream(tcp_stream&&) noexcept = default;
  tcp_stream& operator=(tcp_stream&&) noexcept = default;
  ~tcp_stream() = default;

  /// Connects to `remote` on the calling coroutine's executor.
  /// Errors: std::errc::connection_refused, std::errc::network_unreachable,
  /// std::errc::timed_out when `options.limit` passes first (a peer that never answers); a bad
  /// `options.local` gives the bind error (std::errc::address_in_use, ...).
  /// Cancellation: the connection attempt is abandoned and its socket closed.
  /// Thread safety: safe from any coroutine; the stream belongs to that coroutine's executor.
  static asio::awaitable<result<tcp_stream>> connect(
      endpoint remote, connect_options options = {},
      source_location where = source_location::current());

  /// Resolves `host_port` (`localhost:80`, `[::1]:80`) and connects to each address in turn
  /// until one accepts, all within `options.limit`. Errors: resolve()'s errors, the last
  /// address's connect error, or std::errc::timed_out when the limit ran out first.
  /// Thread safety: as the connect() above.
  static asio::awaitable<result<tcp_stream>> connect(
      std::string host_port, connect_options options = {},
      source_location where = source_location::current());

  /// The local endpoint (getsockname), read when the stream was connected or accepted, so it
  /// stays available after the peer is gone.
  endpoint local_endpoint() const noexcept { return local_; }

  /// The peer's endpoint (getpeername), read when the stream was connected or accepted.
  endpoint remote_endpoint() const noexcept { return remote_; }

  /// The Asio socket underneath, for what coronet does not wrap.
  asio::ip::tcp::socket& asio_socket() noexcept { return socket_; }

 private:
  // Kept as Asio's endpoints, 28 bytes each, rather than as coronet::endpoint, which has room
  // for a Unix-domain path (140): a server holds one stream per connection.
  asio::ip::tcp::endpoint local_;
  asio::ip::tcp::endpoint remote_;
};

}  // namespace coronet
