#pragma once
// tcp_listener: a bound, listening TCP socket that accepts tcp_streams.

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include "coronet/basic_listener.hpp"
#include "coronet/endpoint.hpp"
#include "coronet/tcp_stream.hpp"

namespace coronet {

/// How tcp_listener::bind() sets up the socket.
struct listen_options {
  /// Length of the queue of connections the kernel completes before accept() takes them;
  /// the kernel clamps it to net.core.somaxconn.
  int backlog = asio::socket_base::max_listen_connections;
  /// SO_REUSEADDR, so that a restarted server can bind while old connections sit in TIME_WAIT.
  bool reuse_address = true;
  /// SO_REUSEPORT: several listeners on one port, the kernel spreading connections over them.
  bool reuse_port = false;
  /// IPV6_V6ONLY for an IPv6 endpoint: off, a listener on `[::]` also accepts IPv4 peers.
  bool v6_only = false;
};

/// A listening TCP socket (socket + bind + listen), accepting connected tcp_streams.
///
/// accept() and local_endpoint() come from basic_listener, which states their errors,
/// cancellation and thread safety; close(), options and the descriptor from basic_socket.
///
/// Errors: bind() throws std::system_error naming the step and the endpoint ("cannot bind
/// 127.0.0.1:80: Address already in use"; coronet::errc::wrong_address_family for a
/// Unix-domain endpoint).
///
/// Thread safety: bind() is safe from any thread; every other method only from the listener's
/// own executor.
///
/// Example:
///
///     auto where = coronet::endpoint::parse("127.0.0.1:0").value();
///     auto listener = coronet::tcp_listener::bind(ex, where);
///     std::cout << "listening on " << listener.local_endpoint() << "\n";
///     while (auto stream = co_await listener.accept())
///       coronet::spawn(ex, echo(std::move(*stream)), "echo");
class tcp_listener : public basic_listener<asio::ip::tcp, tcp_stream> {
 public:
  /// Opens, binds and listens. Port 0 picks a free port: read it back with local_endpoint().
  /// Throws std::system_error when any step fails, naming the step and the endpoint.
  /// Thread safety: safe from any thread; the listener belongs to `executor` (or `context`).
  static tcp_listener bind(const asio::any_io_executor& executor, const endpoint& local,
                           listen_options options = {});
  static tcp_listener bind(asio::io_context& context, const endpoint& local,
                           listen_options options = {});

  /// The Asio acceptor underneath, for what coronet does not wrap.
  asio::ip::tcp::acceptor& asio_acceptor() noexcept { return socket_; }

 private:
  using basic_listener::basic_listener;
};

extern template class basic_listener<asio::ip::tcp, tcp_stream>;

}  // namespace coronet
