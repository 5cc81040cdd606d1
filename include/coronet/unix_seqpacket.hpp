#pragma once
// unix_seqpacket: a connected Unix-domain sequenced-packet socket (AF_UNIX, SOCK_SEQPACKET):
// a connection, like a stream, that keeps message boundaries, like datagrams.

#include <utility>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>
#include <asio/generic/seq_packet_protocol.hpp>

#include "coronet/basic_socket.hpp"
#include "coronet/datagram_result.hpp"
#include "coronet/endpoint.hpp"
#include "coronet/result.hpp"
#include "coronet/shutdown_type.hpp"
#include "coronet/source_location.hpp"
#include "coronet/timeout.hpp"

namespace coronet {

/// A connected Unix-domain seqpacket socket: each send() is one message, and each recv()
/// returns exactly one message, never part of one nor two run together.
///
/// Obtained from unix_seqpacket::connect(), unix_seqpacket_listener::accept() or
/// unix_seqpacket::socket_pair(). Close, options and the descriptor come from basic_socket.
///
/// Errors: as for streams (coronet::errc::eof once the peer has closed, ...), plus
/// coronet::errc::datagram_truncated when a message is larger than the receive buffer (the
/// rest of that message is gone; datagram_result::size() tells its real size).
///
/// Timeouts: send() and recv() take an optional limit, else the socket's (set_timeout());
/// running out gives std::errc::timed_out and loses no message.
///
/// Thread safety: connect() is safe from any coroutine and socket_pair() from any thread;
/// every other method only from the socket's own executor, with one send() and one recv() in
/// flight at most.
///
/// Not offered: SOCK_RDM. Linux supports reliably-delivered messages only for TIPC (AF_TIPC),
/// not for Unix-domain or IP sockets; SOCK_SEQPACKET is the Unix-domain socket that keeps
/// message boundaries on a reliable connection.
class unix_seqpacket : public basic_socket<asio::generic::seq_packet_protocol::socket> {
 public:
  /// Adopts a connected Asio socket.
  explicit unix_seqpacket(asio::generic::seq_packet_protocol::socket socket) noexcept;

  /// Connects to the seqpacket listener at `remote`, on the calling coroutine's executor.
  /// Errors: as unix_stream::connect().
  /// Thread safety: safe from any coroutine; the socket belongs to that coroutine's executor.
  static asio::awaitable<result<unix_seqpacket>> connect(
      endpoint remote, timeout limit = no_timeout,
      source_location where = source_location::current());

  /// Two seqpacket sockets connected to each other (socketpair). Throws std::system_error
  /// when the descriptors cannot be had.
  /// Thread safety: safe from any thread; both belong to `executor`.
  static std::pair<unix_seqpacket, unix_seqpacket> socket_pair(
      const asio::any_io_executor& executor);

  /// Sends `message` as one message, all of it or none.
  /// Errors: std::errc::message_size when it exceeds the socket's send buffer;
  /// std::errc::invalid_argument for an empty message, which the receiver could not tell from
  /// the end of the connection.
  /// Cancellation: the message was sent whole or not at all.
  asio::awaitable<io_result> send(asio::const_buffer message, call_timeout limit = {},
                                  source_location where = source_location::current());

  /// Receives exactly one message into `buffer`.
  /// Errors: coronet::errc::eof after the peer closed; coronet::errc::datagram_truncated.
  /// Cancellation: safe; the next message waits for the next recv().
  asio::awaitable<datagram_result> recv(asio::mutable_buffer buffer, call_timeout limit = {},
                                        source_location where = source_location::current());

  /// Shuts down one or both directions; after shutdown_type::send the peer's recv() reads eof.
  result<void> shutdown(shutdown_type what = shutdown_type::send);

  const endpoint& local_endpoint() const noexcept { return local_; }
  const endpoint& remote_endpoint() const noexcept { return remote_; }

  /// The Asio socket underneath, for what coronet does not wrap.
  asio::generic::seq_packet_protocol::socket& asio_socket() noexcept { return socket_; }

 private:
  endpoint local_;
  endpoint remote_;
};

}  // namespace coronet
