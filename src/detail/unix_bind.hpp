#pragma once
// Opening and binding a Unix-domain socket by coronet's socket-file rules (see
// coronet/detail/socket_file.hpp); shared by unix_listener, unix_seqpacket_listener and
// unix_datagram. Failures throw std::system_error naming the step and the endpoint.

#include <string>

#include "coronet/detail/io.hpp"
#include "coronet/detail/native_endpoint.hpp"
#include "coronet/detail/socket_file.hpp"

namespace coronet::detail {

// Opens `socket` (an acceptor or a socket) for `protocol` and binds it to `local`. Returns the
// socket file the bind created, so that a later failure (listen) removes it again.
template <class Socket, class Protocol>
[[nodiscard]] socket_file open_and_bind_unix(Socket& socket, const Protocol& protocol,
                                             const endpoint& local, int socket_type) {
  const std::string where = local.to_string();
  if (!local.is_unix_domain() || local.path().empty()) {
    throw_setup_error(errc::wrong_address_family, "bind a Unix-domain socket to", where);
  }
  if (auto ec = clear_stale_socket_file(local, socket_type)) throw_setup_error(ec, "bind", where);
  std::error_code ec;
  socket.open(protocol, ec);
  if (ec) throw_setup_error(ec, "open a socket for", where);
  socket.bind(to_native(local, protocol_tag<Protocol>{}), ec);
  if (ec) throw_setup_error(ec, "bind", where);
  return socket_file(local);
}

}  // namespace coronet::detail
