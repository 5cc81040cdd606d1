#include "coronet/icmp_socket.hpp"

#include <linux/icmp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>
#include <span>
#include <utility>

#include "coronet/detail/io.hpp"
#include "coronet/detail/timed.hpp"

namespace coronet {
namespace {

using icmp_protocol = asio::generic::datagram_protocol;

constexpr std::size_t icmp_header_size = 8;  // type, code, checksum, identifier, sequence
constexpr std::size_t max_ip_packet = 65535;

struct family_constants {
  int domain;
  int protocol;
  std::uint8_t echo_request;
  std::uint8_t echo_reply;
};

family_constants constants_of(ip_family family) noexcept {
  if (family == ip_family::v6) return {AF_INET6, IPPROTO_ICMPV6, 128, 129};
  return {AF_INET, IPPROTO_ICMP, 8, 0};
}

// The Internet checksum (RFC 1071) of `data`.
std::uint16_t internet_checksum(std::span<const std::byte> data) noexcept {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i + 1 < data.size(); i += 2) {
    sum += static_cast<std::uint32_t>(std::to_integer<unsigned>(data[i]) << 8U |
                                      std::to_integer<unsigned>(data[i + 1]));
  }
  if (data.size() % 2 != 0) sum += std::to_integer<std::uint32_t>(data.back()) << 8U;
  while (sum > 0xFFFF) sum = (sum & 0xFFFF) + (sum >> 16U);
  return static_cast<std::uint16_t>(~sum);
}

std::uint16_t read_u16(const std::byte* p) noexcept {
  return static_cast<std::uint16_t>(std::to_integer<unsigned>(p[0]) << 8U |
                                    std::to_integer<unsigned>(p[1]));
}

void write_u16(std::byte* p, std::uint16_t value) noexcept {
  p[0] = static_cast<std::byte>(value >> 8U);
  p[1] = static_cast<std::byte>(value & 0xFFU);
}

// Raw mode: each socket of the process gets its own identifier, so that two of them never take
// each other's replies; the random start makes a clash with another process unlikely.
std::uint16_t next_identifier() {
  static std::atomic<std::uint16_t> next{static_cast<std::uint16_t>(std::random_device{}())};
  return next.fetch_add(1, std::memory_order_relaxed);
}

// Raw mode: asks the kernel to queue only echo replies. Without the filter a raw ICMPv6 socket
// also wakes for every neighbour discovery message; recv_echo() filters anyway, so a kernel
// that refuses the filter costs only wake-ups.
void filter_echo_replies(int fd, ip_family family) noexcept {
  if (family == ip_family::v6) {
    icmp6_filter filter{};
    ICMP6_FILTER_SETBLOCKALL(&filter);
    ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &filter);
    (void)::setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof filter);
  } else {
    icmp_filter filter{~(1U << ICMP_ECHOREPLY)};  // a set bit blocks that type
    (void)::setsockopt(fd, SOL_RAW, ICMP_FILTER, &filter, sizeof filter);
  }
}

result<int> open_descriptor(ip_family family, icmp_mode mode) {
  const auto c = constants_of(family);
  const int type = (mode == icmp_mode::raw ? SOCK_RAW : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC;
  const int fd = ::socket(c.domain, type, c.protocol);
  if (fd >= 0) return fd;
  if (errno == EPERM || errno == EACCES) return make_error_code(errc::icmp_not_permitted);
  return std::error_code(errno, std::system_category());
}

endpoint from_sockaddr(const icmp_protocol::endpoint& native) {
  if (native.data()->sa_family == AF_INET6) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, native.data(), std::min(native.size(), sizeof in6));
    asio::ip::address_v6::bytes_type bytes;
    std::memcpy(bytes.data(), &in6.sin6_addr, bytes.size());
    return {asio::ip::address_v6(bytes, in6.sin6_scope_id), 0};
  }
  sockaddr_in in4{};
  std::memcpy(&in4, native.data(), std::min(native.size(), sizeof in4));
  return {asio::ip::address_v4(ntohl(in4.sin_addr.s_addr)), 0};
}

}  // namespace

icmp_socket::icmp_socket(icmp_protocol::socket socket, ip_family family, icmp_mode mode) noexcept
    : basic_socket(std::move(socket)),
      family_(family),
      mode_(mode),
      identifier_(mode == icmp_mode::raw ? next_identifier() : 0) {}

result<icmp_socket> icmp_socket::open(const asio::any_io_executor& executor, ip_family family,
                                      icmp_mode mode) {
  auto got_mode = mode == icmp_mode::automatic ? icmp_mode::raw : mode;
  auto fd = open_descriptor(family, got_mode);
  if (!fd && mode == icmp_mode::automatic && fd.error() == errc::icmp_not_permitted) {
    got_mode = icmp_mode::datagram;
    fd = open_descriptor(family, got_mode);
  }
  if (!fd) return fd.error();
  if (got_mode == icmp_mode::raw) filter_echo_replies(*fd, family);

  const auto c = constants_of(family);
  icmp_protocol::socket socket(executor);
  std::error_code ec;
  socket.assign(icmp_protocol(c.domain, c.protocol), *fd, ec);
  if (ec) {
    ::close(*fd);
    return detail::to_coronet_error(ec);
  }
  icmp_socket out(std::move(socket), family, got_mode);
  out.receive_buffer_.resize(max_ip_packet);
  return out;
}

asio::awaitable<io_result> icmp_socket::send_echo(const endpoint& to, std::uint16_t sequence,
                                                  asio::const_buffer payload, call_timeout limit,
                                                  source_location where) {
  const bool fits = family_ == ip_family::v6 ? to.is_v6() : to.is_v4();
  if (!fits) co_return io_result(0, make_error_code(errc::wrong_address_family));

  std::vector<std::byte> message(icmp_header_size + payload.size());
  message[0] = static_cast<std::byte>(constants_of(family_).echo_request);
  write_u16(&message[4], identifier_);
  write_u16(&message[6], sequence);
  std::memcpy(message.data() + icmp_header_size, payload.data(), payload.size());
  // The kernel fills the ICMPv6 checksum (it covers a pseudo-header only it knows) and a ping
  // socket's; a raw IPv4 socket sends what it is given.
  write_u16(&message[2], internet_checksum(message));

  // Port 0: a raw IPv6 socket rejects any port other than its protocol number.
  const auto ip = to.udp();
  const icmp_protocol::endpoint native(ip.data(), ip.size(), constants_of(family_).protocol);
  detail::wait_scope waiting(waits_, detail::wait_side::send, detail::wait_kind::send,
                             native_handle(), where);
  auto [ec, n] = co_await detail::with_limit(
      [&](auto token) {
        return socket_.async_send_to(asio::buffer(message), native, std::move(token));
      },
      limit_for(limit));
  const auto error = detail::to_coronet_error(ec);
  detail::observe_sent(error, error ? 0 : n);
  if (error) co_return io_result(0, error);
  co_return io_result(n - icmp_header_size);
}

asio::awaitable<result<icmp_socket::echo_reply>> icmp_socket::recv_echo(
    asio::mutable_buffer payload, call_timeout limit, source_location where) {
  const auto c = constants_of(family_);
  detail::wait_scope waiting(waits_, detail::wait_side::receive, detail::wait_kind::recv,
                             native_handle(), where);
  const detail::deadline until(limit_for(limit));  // over every message skipped on the way
  for (;;) {
    icmp_protocol::endpoint sender;
    auto [ec, n] = co_await detail::with_limit(
        [&](auto token) {
          return socket_.async_receive_from(asio::buffer(receive_buffer_), sender,
                                            std::move(token));
        },
        until.remaining());
    const auto error = detail::to_coronet_error(ec);
    detail::observe_received(error, n);
    if (error) co_return error;

    std::span<const std::byte> message(receive_buffer_.data(), n);
    if (family_ == ip_family::v4 && mode_ == icmp_mode::raw) {
      // Only a raw IPv4 socket receives the IP header; its length is in 32-bit words.
      if (message.empty()) continue;
      const std::size_t ip_header = (std::to_integer<std::size_t>(message[0]) & 0x0FU) * 4;
      if (ip_header < 20 || ip_header > message.size()) continue;
      message = message.subspan(ip_header);
      // Raw sockets get packets before ICMP itself has checked them.
      if (internet_checksum(message) != 0) continue;
    }
    if (message.size() < icmp_header_size) continue;
    if (std::to_integer<std::uint8_t>(message[0]) != c.echo_reply) continue;
    // A ping socket's replies carry the identifier the kernel chose and only they reach it.
    if (mode_ == icmp_mode::raw && read_u16(&message[4]) != identifier_) continue;

    const auto body = message.subspan(icmp_header_size);
    std::memcpy(payload.data(), body.data(), std::min(body.size(), payload.size()));
    if (body.size() > payload.size()) co_return make_error_code(errc::datagram_truncated);
    co_return echo_reply{from_sockaddr(sender), read_u16(&message[6]), body.size()};
  }
}

}  // namespace coronet
