#pragma once
// Conversions between coronet::endpoint and the Asio endpoint of each protocol coronet uses,
// overloaded on the protocol so that the socket templates share one body.

#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <cstring>
#include <string>

#include <asio/generic/seq_packet_protocol.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>
#include <asio/local/datagram_protocol.hpp>
#include <asio/local/stream_protocol.hpp>

#include "coronet/endpoint.hpp"

namespace coronet::detail {

// Selects the overload for a protocol (Asio's protocol classes cannot be default-constructed).
template <class Protocol>
struct protocol_tag {};

// Asio spells an abstract name with a leading NUL where coronet writes '@'.
inline std::string to_asio_path(const endpoint& e) {
  std::string path(e.path());
  if (e.is_abstract()) path.front() = '\0';
  return path;
}

inline endpoint from_asio_path(std::string path) {
  if (path.empty()) return endpoint::unix_unnamed();
  if (path.front() == '\0') path.front() = '@';
  auto named = endpoint::unix_domain(path);
  return named ? *named : endpoint::unix_unnamed();
}

// Whether `e` is of the family the protocol's sockets take.
inline bool fits(const endpoint& e, protocol_tag<asio::ip::tcp>) noexcept { return e.is_ip(); }
inline bool fits(const endpoint& e, protocol_tag<asio::ip::udp>) noexcept { return e.is_ip(); }
inline bool fits(const endpoint& e, protocol_tag<asio::local::stream_protocol>) noexcept {
  return e.is_unix_domain();
}
inline bool fits(const endpoint& e, protocol_tag<asio::local::datagram_protocol>) noexcept {
  return e.is_unix_domain();
}
inline bool fits(const endpoint& e, protocol_tag<asio::generic::seq_packet_protocol>) noexcept {
  return e.is_unix_domain();
}

inline asio::ip::tcp::endpoint to_native(const endpoint& e, protocol_tag<asio::ip::tcp>) {
  return e.tcp();
}
inline asio::ip::udp::endpoint to_native(const endpoint& e, protocol_tag<asio::ip::udp>) {
  return e.udp();
}
inline asio::local::stream_protocol::endpoint to_native(
    const endpoint& e, protocol_tag<asio::local::stream_protocol>) {
  return {to_asio_path(e)};
}
inline asio::local::datagram_protocol::endpoint to_native(
    const endpoint& e, protocol_tag<asio::local::datagram_protocol>) {
  return {to_asio_path(e)};
}
// Asio has no local seqpacket protocol: the generic one carries a sockaddr_un.
inline asio::generic::seq_packet_protocol::endpoint to_native(
    const endpoint& e, protocol_tag<asio::generic::seq_packet_protocol>) {
  const asio::local::stream_protocol::endpoint local(to_asio_path(e));
  return {local.data(), local.size()};
}

inline endpoint from_native(const asio::ip::tcp::endpoint& n) { return n; }
inline endpoint from_native(const asio::ip::udp::endpoint& n) { return n; }
inline endpoint from_native(const asio::local::stream_protocol::endpoint& n) {
  return from_asio_path(n.path());
}
inline endpoint from_native(const asio::local::datagram_protocol::endpoint& n) {
  return from_asio_path(n.path());
}
inline endpoint from_native(const asio::generic::seq_packet_protocol::endpoint& n) {
  const auto* address = reinterpret_cast<const sockaddr_un*>(n.data());
  const std::size_t header = offsetof(sockaddr_un, sun_path);
  if (n.size() <= header || address->sun_family != AF_UNIX) return endpoint::unix_unnamed();
  std::string path(address->sun_path, n.size() - header);
  if (path.front() != '\0') path.resize(std::strlen(path.c_str()));  // drop the terminating NUL
  return from_asio_path(path);
}

}  // namespace coronet::detail
