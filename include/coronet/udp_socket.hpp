#pragma once
// udp_socket: a UDP socket for IPv4 or IPv6.

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>

#include "coronet/basic_datagram.hpp"
#include "coronet/endpoint.hpp"

namespace coronet {

/// How udp_socket::bind() sets up the socket.
struct udp_options {
  /// SO_REUSEADDR.
  bool reuse_address = false;
  /// SO_REUSEPORT: several sockets on one port, the kernel spreading datagrams over them.
  bool reuse_port = false;
  /// SO_BROADCAST: allow sending to broadcast addresses.
  bool broadcast = false;
  /// IPV6_V6ONLY for an IPv6 endpoint: off, a socket on `[::]` also serves IPv4 peers.
  bool v6_only = false;
};

/// A UDP socket, in either of two modes (see basic_datagram):
/// - unconnected: bind() (or open(), which binds on first send) and then send_to() any peer
///   and recv_from() whoever sends;
/// - connected: connect() to one peer, then send() and recv() with it only.
///
/// Datagrams of 0 to 65507 bytes (65527 over IPv6) are sent whole; one larger than the receive
/// buffer comes back as coronet::errc::datagram_truncated with its real size.
/// send_to(), recv_from(), send(), recv(), connect() and the endpoints come from
/// basic_datagram; close(), options and the descriptor from basic_socket.
///
/// Errors: bind() and open() throw std::system_error naming the step and the endpoint; the
/// operations return theirs as values.
///
/// Thread safety: open() and bind() are safe from any thread; every other method only from the
/// socket's own executor.
///
/// Example, an echo loop:
///
///     auto where = coronet::endpoint::parse("127.0.0.1:5000").value();
///     auto socket = coronet::udp_socket::bind(ex, where);
///     std::array<char, 65536> buf;
///     while (auto got = co_await socket.recv_from(asio::buffer(buf))) {
///       (void)co_await socket.send_to(asio::buffer(buf.data(), got.bytes()), got.sender());
///     }
class udp_socket : public basic_datagram<asio::ip::udp> {
 public:
  /// An unbound socket of `family`; the kernel binds it to a free port on its first send.
  /// Thread safety: safe from any thread; the socket belongs to `executor`.
  static udp_socket open(const asio::any_io_executor& executor, ip_family family = ip_family::v4);

  /// A socket bound to `local` (port 0 picks a free port: read it with local_endpoint()).
  /// Throws std::system_error naming the step and the endpoint.
  /// Thread safety: safe from any thread; the socket belongs to `executor` (or `context`).
  static udp_socket bind(const asio::any_io_executor& executor, const endpoint& local,
                         udp_options options = {});
  static udp_socket bind(asio::io_context& context, const endpoint& local,
                         udp_options options = {});

  /// The Asio socket underneath, for what coronet does not wrap.
  asio::ip::udp::socket& asio_socket() noexcept { return socket_; }

 private:
  explicit udp_socket(asio::ip::udp::socket socket) noexcept : basic_datagram(std::move(socket)) {}
};

}  // namespace coronet
