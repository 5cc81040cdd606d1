#pragma once
// unix_seqpacket_listener: a listening Unix-domain seqpacket socket that accepts unix_seqpackets.

#include <asio/any_io_executor.hpp>
#include <asio/generic/seq_packet_protocol.hpp>
#include <asio/io_context.hpp>

#include "coronet/basic_listener.hpp"
#include "coronet/detail/socket_file.hpp"
#include "coronet/endpoint.hpp"
#include "coronet/unix_listener.hpp"
#include "coronet/unix_seqpacket.hpp"

namespace coronet {

/// A listening Unix-domain seqpacket socket. The socket-file rules and removal are those of
/// unix_listener; accept() comes from basic_listener.
///
/// Thread safety: bind() is safe from any thread; every other method, close() included, only
/// from the listener's own executor.
class unix_seqpacket_listener
    : public basic_listener<asio::generic::seq_packet_protocol, unix_seqpacket> {
 public:
  /// Binds to `local` (`unix:/path` or `unix:@name`) and listens; throws std::system_error
  /// naming the step and the path on failure.
  /// Thread safety: safe from any thread; the listener belongs to `executor` (or `context`).
  static unix_seqpacket_listener bind(const asio::any_io_executor& executor, const endpoint& local,
                                      unix_listen_options options = {});
  static unix_seqpacket_listener bind(asio::io_context& context, const endpoint& local,
                                      unix_listen_options options = {});

  /// Stops listening and removes the socket file this listener created. Idempotent.
  void close() noexcept;

 private:
  unix_seqpacket_listener(asio::basic_socket_acceptor<asio::generic::seq_packet_protocol> acceptor,
                          const endpoint& local, detail::socket_file file);

  detail::socket_file file_;
};

extern template class basic_listener<asio::generic::seq_packet_protocol, unix_seqpacket>;

}  // namespace coronet
