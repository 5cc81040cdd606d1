#pragma once
// coronet's own error codes. Everything else coronet reports is an errno value in
// std::system_category(), comparable with std::errc (std::errc::connection_reset, ...).

#include <system_error>

namespace coronet {

/// Error codes that have no errno equivalent. Compare with `ec == coronet::errc::eof`.
enum class errc {
  eof = 1,              ///< the peer closed its sending side: no more bytes will arrive
  empty_address,        ///< an endpoint text was empty
  missing_host,         ///< an endpoint text had no host before ':PORT'
  missing_port,         ///< an endpoint text had no ':PORT'
  invalid_port,         ///< the port was not a decimal number
  port_out_of_range,    ///< the port was above 65535
  unbalanced_brackets,  ///< '[' without ']' or ']' without '['
  trailing_garbage,     ///< characters after a complete 'HOST:PORT'
  invalid_host,         ///< the host was not a numeric IPv4 or bracketed IPv6 address
  ipv6_needs_brackets,  ///< an IPv6 address with a port must be written `[addr]:port`
  invalid_unix_path,    ///< a Unix-domain path was empty or held a NUL byte
  unix_path_too_long,   ///< a Unix-domain path or abstract name did not fit sockaddr_un (107 bytes)
  datagram_truncated,   ///< a datagram or message was larger than the buffer given for it
  icmp_not_permitted,   ///< neither a raw nor an unprivileged (ping) ICMP socket is allowed
  wrong_address_family,       ///< an endpoint of another family (a Unix path given to TCP, ...)
  not_a_socket_file,          ///< a Unix socket path names an existing file that is not a socket
  line_too_long,              ///< a line (or a read_until() piece) longer than the reader's limit
  unexpected_eof,             ///< the stream ended in the middle of a line or message
  tls_certificate_untrusted,  ///< the peer's certificate does not chain to a trusted authority
  tls_certificate_expired,    ///< the peer's certificate is expired or not yet valid
  tls_host_name_mismatch,     ///< the peer's certificate is for another host name or address
  tls_handshake_failed,       ///< no TLS session: not TLS, nothing in common, rejected, closed
  tls_truncated,              ///< the peer closed the connection without a TLS close_notify
  tls_protocol_error,         ///< a corrupt or unexpected TLS record after the handshake
  tls_send_interrupted,       ///< an earlier send was cut off mid-record: the stream cannot send
};

/// The category of coronet::errc; its name is "coronet".
/// Thread safety: safe from any thread; the category holds no state.
const std::error_category& error_category() noexcept;

/// Makes an error_code in coronet's category (found by ADL, so `std::error_code ec = errc::eof;`
/// works). Thread safety: safe from any thread.
std::error_code make_error_code(errc e) noexcept;

}  // namespace coronet

template <>
struct std::is_error_code_enum<coronet::errc> : std::true_type {};
