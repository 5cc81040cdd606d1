#include "coronet/error.hpp"

#include <string>

namespace coronet {
namespace {

class coronet_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "coronet"; }

  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::eof: return "end of stream (the peer closed the connection)";
      case errc::empty_address: return "address is empty";
      case errc::missing_host: return "address has no host before ':PORT'";
      case errc::missing_port: return "address has no port (expected HOST:PORT)";
      case errc::invalid_port: return "port is not a decimal number";
      case errc::port_out_of_range: return "port is out of range (0-65535)";
      case errc::unbalanced_brackets: return "address has unbalanced '[' ']'";
      case errc::trailing_garbage: return "address has unexpected characters after the port";
      case errc::invalid_host:
        return "host is not a numeric IPv4 address or bracketed IPv6 address";
      case errc::ipv6_needs_brackets:
        return "an IPv6 address with a port must be written [ADDR]:PORT";
      case errc::invalid_unix_path: return "unix socket path is empty or contains a NUL byte";
      case errc::unix_path_too_long: return "unix socket path is longer than 107 bytes";
      case errc::datagram_truncated: return "datagram larger than the buffer: truncated";
      case errc::icmp_not_permitted:
        return "ICMP sockets need CAP_NET_RAW (raw) or a group in net.ipv4.ping_group_range "
               "(unprivileged ping sockets)";
      case errc::wrong_address_family:
        return "endpoint is of the wrong address family for this socket";
      case errc::not_a_socket_file: return "path exists and is not a socket (it is left untouched)";
      case errc::line_too_long: return "line longer than the reader's limit";
      case errc::unexpected_eof: return "the stream ended in the middle of a line or message";
      case errc::tls_certificate_untrusted:
        return "TLS: the peer's certificate is not signed by a trusted authority";
      case errc::tls_certificate_expired:
        return "TLS: the peer's certificate is expired or not yet valid";
      case errc::tls_host_name_mismatch:
        return "TLS: the peer's certificate is for another host name or address";
      case errc::tls_handshake_failed:
        return "TLS handshake failed (the peer does not speak TLS, shares no protocol version "
               "or cipher, rejected this side's certificate, or closed)";
      case errc::tls_truncated:
        return "TLS: the peer closed the connection without close_notify (data may be "
               "truncated)";
      case errc::tls_protocol_error: return "TLS: corrupt or unexpected record from the peer";
      case errc::tls_send_interrupted:
        return "TLS: an earlier send was cut off part-way, so the stream can no longer send";
    }
    return "unknown coronet error " + std::to_string(value);
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const coronet_category category;
  return category;
}

std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), error_category()}; }

}  // namespace coronet
