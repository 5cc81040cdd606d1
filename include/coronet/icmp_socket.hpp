#pragma once
// icmp_socket: sends ICMP echo requests and receives their replies (ping), over IPv4 or IPv6.

#include <cstddef>
#include <cstdint>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>
#include <asio/generic/datagram_protocol.hpp>

#include "coronet/basic_socket.hpp"
#include "coronet/endpoint.hpp"
#include "coronet/result.hpp"
#include "coronet/source_location.hpp"
#include "coronet/timeout.hpp"

namespace coronet {

/// Which kind of kernel socket an icmp_socket is made of.
enum class icmp_mode {
  automatic,  ///< raw if permitted, else datagram
  raw,        ///< SOCK_RAW: needs CAP_NET_RAW
  datagram,   ///< SOCK_DGRAM "ping socket": needs a group in net.ipv4.ping_group_range
};

/// An ICMP echo ("ping") socket for IPv4 (ICMP) or IPv6 (ICMPv6).
///
/// Modes. Linux offers two kinds of ICMP socket, and open() takes either:
/// - raw (SOCK_RAW) needs CAP_NET_RAW. It sees every echo reply reaching the host, other
///   processes' included, so recv_echo() keeps only replies carrying this socket's identifier,
///   which it picks when opened.
/// - datagram (SOCK_DGRAM with IPPROTO_ICMP/IPPROTO_ICMPV6, the unprivileged "ping socket") is
///   allowed when one of the caller's groups is in net.ipv4.ping_group_range (for IPv6 too).
///   The kernel sets the identifier itself and delivers only this socket's replies.
/// The two exchange the same messages; mode() says which one open() got. SOCK_RDM is not
/// offered: Linux implements it only for TIPC (AF_TIPC), not for IP or Unix sockets.
///
/// Errors: open() returns coronet::errc::icmp_not_permitted when the mode(s) it may use are
/// refused (EPERM/EACCES); send_echo() returns coronet::errc::wrong_address_family for an
/// endpoint of the other IP family or a Unix one; the rest are the kernel's
/// (std::errc::network_unreachable, std::errc::message_size, ...).
///
/// Cancellation: recv_echo() is cancel-safe: nothing is lost but the reply being waited for
/// (later replies stay queued for the next call). send_echo() either sent the request or not.
///
/// Thread safety: open() is safe from any thread; every other method only from the socket's
/// own executor (see basic_socket), with one send and one receive in flight at most.
///
/// Example:
///
///     auto icmp = coronet::icmp_socket::open(ex, coronet::ip_family::v4).value();
///     auto to = coronet::endpoint::parse("127.0.0.1:0").value();
///     co_await icmp.send_echo(to, 1, asio::buffer(std::string_view("hello")));
///     std::array<char, 64> payload;
///     auto reply = co_await icmp.recv_echo(asio::buffer(payload));
///     if (reply) std::cout << reply->from.address() << " seq " << reply->sequence << "\n";
class icmp_socket : public basic_socket<asio::generic::datagram_protocol::socket> {
 public:
  /// One echo reply; its payload is in the buffer given to recv_echo().
  struct echo_reply {
    endpoint from;  ///< the replying host, port 0
    std::uint16_t sequence = 0;
    std::size_t payload_size = 0;
  };

  /// Opens an ICMP socket of `family` in `mode` (automatic: raw, else datagram when raw is
  /// refused). Errors: coronet::errc::icmp_not_permitted when no mode tried is allowed;
  /// std::errc::address_family_not_supported when the host has no IPv6; the kernel's.
  /// Thread safety: safe from any thread; the socket belongs to `executor`.
  static result<icmp_socket> open(const asio::any_io_executor& executor, ip_family family,
                                  icmp_mode mode = icmp_mode::automatic);

  icmp_socket(icmp_socket&&) noexcept = default;
  icmp_socket& operator=(icmp_socket&&) noexcept = default;
  ~icmp_socket() = default;

  /// raw or datagram: what open() got.
  icmp_mode mode() const noexcept { return mode_; }
  /// The IP version open() was given.
  ip_family family() const noexcept { return family_; }

  /// Sends an echo request with `sequence` and `payload` to `to` (its port is ignored).
  /// Returns the payload's size.
  /// Errors: coronet::errc::wrong_address_family when `to` is not an address of family();
  /// std::errc::message_size for a payload that does not fit one IP packet; the kernel's.
  asio::awaitable<io_result> send_echo(const endpoint& to, std::uint16_t sequence,
                                       asio::const_buffer payload, call_timeout limit = {},
                                       source_location where = source_location::current());

  /// Waits for the next echo reply to this socket, skipping every other message, and copies
  /// its payload into `payload`.
  /// Errors: coronet::errc::datagram_truncated when the reply's payload is larger than
  /// `payload` (which then holds its beginning; that reply is consumed);
  /// std::errc::operation_canceled after close(); std::errc::timed_out when the limit (the
  /// socket's, unless given) passes first; the kernel's.
  asio::awaitable<result<echo_reply>> recv_echo(asio::mutable_buffer payload,
                                                call_timeout limit = {},
                                                source_location where = source_location::current());

 private:
  icmp_socket(asio::generic::datagram_protocol::socket socket, ip_family family,
              icmp_mode mode) noexcept;

  ip_family family_;
  icmp_mode mode_;
  std::uint16_t identifier_;               // ours in raw mode; the kernel sets it in datagram mode
  std::vector<std::byte> receive_buffer_;  // one whole IP packet
};

}  // namespace coronet
