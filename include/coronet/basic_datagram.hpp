#pragma once
// basic_datagram: the datagram operations shared by udp_socket and unix_datagram.

#include <optional>

#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>
#include <asio/ip/udp.hpp>
#include <asio/local/datagram_protocol.hpp>

#include "coronet/basic_socket.hpp"
#include "coronet/datagram_result.hpp"
#include "coronet/endpoint.hpp"
#include "coronet/result.hpp"
#include "coronet/source_location.hpp"
#include "coronet/timeout.hpp"

namespace coronet {

/// A datagram socket, in either of its two modes:
/// - unconnected: send_to() any peer, recv_from() whoever sends;
/// - connected: connect() fixes one peer; send() and recv() exchange datagrams with it only
///   (the kernel drops datagrams from anyone else), and an ICMP "port unreachable" from it
///   surfaces on a later operation as std::errc::connection_refused.
///
/// Datagrams keep their boundaries: each send is one datagram and each receive returns exactly
/// one. A datagram larger than the receive buffer is reported as coronet::errc::datagram_truncated
/// with its real size (see datagram_result), never cut silently.
///
/// Timeouts: each operation takes an optional limit; without one it gets the socket's
/// (set_timeout()). Running out gives std::errc::timed_out; no datagram is lost by it.
///
/// Thread safety: every method only from the socket's own executor (see basic_socket). One
/// send-side and one receive-side operation may be in flight at once.
template <class Protocol>
class basic_datagram : public basic_socket<typename Protocol::socket> {
 public:
  /// Sets the peer that send() and recv() use (connect(2) on a datagram socket: nothing is
  /// sent). Errors: coronet::errc::wrong_address_family, or the kernel's.
  result<void> connect(const endpoint& remote);

  /// Sends `datagram` as one datagram to `to`. Returns its size.
  /// Errors: std::errc::message_size when it is too large for the protocol,
  /// coronet::errc::wrong_address_family, ...
  /// Cancellation: either the whole datagram was sent or none of it.
  asio::awaitable<io_result> send_to(asio::const_buffer datagram, const endpoint& to,
                                     call_timeout limit = {},
                                     source_location where = source_location::current());

  /// Receives the next datagram into `buffer`, with its sender.
  /// Cancellation: safe; a datagram that arrives later waits for the next receive.
  asio::awaitable<datagram_result> recv_from(asio::mutable_buffer buffer, call_timeout limit = {},
                                             source_location where = source_location::current());

  /// One receive that never waits: the next datagram already queued, with its sender (and
  /// truncation reported as by recv_from()), or std::errc::operation_would_block when none is.
  /// For a loop that takes what has piled up after an awaited receive, without a trip through
  /// the reactor for each datagram.
  datagram_result try_recv_from(asio::mutable_buffer buffer) noexcept;

  /// One send that never waits: `datagram` to `to` whole, or std::errc::operation_would_block
  /// (nothing sent) when the socket's send buffer is full. Errors otherwise as send_to().
  io_result try_send_to(asio::const_buffer datagram, const endpoint& to) noexcept;

  /// Sends one datagram to the connected peer.
  asio::awaitable<io_result> send(asio::const_buffer datagram, call_timeout limit = {},
                                  source_location where = source_location::current());

  /// Receives the next datagram from the connected peer.
  asio::awaitable<datagram_result> recv(asio::mutable_buffer buffer, call_timeout limit = {},
                                        source_location where = source_location::current());

  /// The bound address (getsockname), read from the kernel: an unbound socket gets one on its
  /// first send. `0.0.0.0:0` or `unix:` when it has none.
  endpoint local_endpoint() const;

  /// The connected peer: set by connect(), or read when the socket was made already connected
  /// (socket_pair()); empty for an unconnected socket.
  const std::optional<endpoint>& remote_endpoint() const noexcept { return remote_; }

 protected:
  explicit basic_datagram(typename Protocol::socket socket) noexcept;

 private:
  std::optional<endpoint> remote_;
};

// Compiled once, in src/basic_datagram.cpp, for the two datagram protocols coronet has.
extern template class basic_datagram<asio::ip::udp>;
extern template class basic_datagram<asio::local::datagram_protocol>;

}  // namespace coronet
