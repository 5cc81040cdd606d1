#pragma once
// unix_datagram: a Unix-domain datagram socket (AF_UNIX, SOCK_DGRAM).

#include <utility>

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/local/datagram_protocol.hpp>

#include "coronet/basic_datagram.hpp"
#include "coronet/detail/socket_file.hpp"
#include "coronet/endpoint.hpp"

namespace coronet {

/// A Unix-domain datagram socket, bound (to a path or an abstract name) or unbound, in either
/// of the two datagram modes (send_to/recv_from, or connect + send/recv; see basic_datagram).
/// Message boundaries are kept and the delivery is reliable: a full receiver makes the sender
/// wait instead of losing datagrams.
///
/// A peer can only reply to a bound socket: datagrams from an unbound one arrive with sender
/// `unix:` (unnamed). The socket-file rules of unix_listener apply to bind(), and close() and
/// the destructor remove the file bind() created.
///
/// Thread safety: open(), bind() and socket_pair() are safe from any thread; every other method,
/// close() included, only from the socket's own executor.
class unix_datagram : public basic_datagram<asio::local::datagram_protocol> {
 public:
  /// An unbound socket: it can send, and receive replies only on a connected pair.
  /// Thread safety: safe from any thread; the socket belongs to `executor`.
  static unix_datagram open(const asio::any_io_executor& executor);

  /// A socket bound to `local` (`unix:/path` or `unix:@name`). Throws std::system_error naming
  /// the step and the path.
  /// Thread safety: safe from any thread; the socket belongs to `executor` (or `context`).
  static unix_datagram bind(const asio::any_io_executor& executor, const endpoint& local);
  static unix_datagram bind(asio::io_context& context, const endpoint& local);

  /// Two datagram sockets connected to each other (socketpair(AF_UNIX, SOCK_DGRAM)).
  /// Thread safety: safe from any thread; both belong to `executor`.
  static std::pair<unix_datagram, unix_datagram> socket_pair(const asio::any_io_executor& executor);

  /// Closes the socket and removes the socket file bind() created. Idempotent.
  void close() noexcept;

  /// The Asio socket underneath, for what coronet does not wrap.
  asio::local::datagram_protocol::socket& asio_socket() noexcept { return socket_; }

 private:
  unix_datagram(asio::local::datagram_protocol::socket socket, detail::socket_file file) noexcept
      : basic_datagram(std::move(socket)), file_(std::move(file)) {}

  detail::socket_file file_;
};

}  // namespace coronet
