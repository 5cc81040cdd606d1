// icmp_socket: echo round trips in raw and datagram mode, reply matching, truncation, address
// families, cancellation; and the ping example driven as a child process.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <asio/experimental/awaitable_operators.hpp>

#include "support/child_process.hpp"
#include "support/run.hpp"

using namespace std::chrono_literals;
using coronet::errc;
using coronet::icmp_mode;
using coronet::icmp_socket;
using coronet::ip_family;
using coronet::test::child_process;
namespace test = coronet::test;

namespace {

const std::string ping_program = CORONET_PING_PATH;
const coronet::endpoint loopback_v4(asio::ip::address_v4::loopback(), 0);
const coronet::endpoint loopback_v6(asio::ip::address_v6::loopback(), 0);

// What the kernel checks before it creates a ping socket: the effective group or a
// supplementary one within net.ipv4.ping_group_range.
bool ping_sockets_permitted() {
  std::ifstream range("/proc/sys/net/ipv4/ping_group_range");
  long long low = 1;
  long long high = 0;
  if (!(range >> low >> high)) return false;
  std::vector<gid_t> groups(static_cast<std::size_t>(std::max(::getgroups(0, nullptr), 0)));
  const int n = ::getgroups(static_cast<int>(groups.size()), groups.data());
  groups.resize(static_cast<std::size_t>(std::max(n, 0)));
  groups.push_back(::getegid());
  return std::any_of(groups.begin(), groups.end(), [&](gid_t g) { return low <= g && g <= high; });
}

// The socket, or nullopt with a MESSAGE when this process may not open one of that mode.
std::optional<icmp_socket> open_or_skip(const asio::any_io_executor& executor, ip_family family,
                                        icmp_mode mode = icmp_mode::automatic) {
  auto socket = icmp_socket::open(executor, family, mode);
  if (!socket && socket.error() == errc::icmp_not_permitted) {
    MESSAGE("skipped: this process may not open that ICMP socket (" << socket.error().message()
                                                                    << ")");
    return std::nullopt;
  }
  REQUIRE_MESSAGE(socket, socket.error().message());
  return std::move(*socket);
}

// Whether this process may open some IPv4 ICMP socket, for the tests that run ping.
bool may_ping() {
  asio::io_context context;
  return bool(open_or_skip(context.get_executor(), ip_family::v4));
}

asio::awaitable<void> expect_round_trip(icmp_socket& socket, const coronet::endpoint& to) {
  const std::string payload = "coronet echo payload";
  auto sent = co_await socket.send_echo(to, 7, asio::buffer(payload));
  REQUIRE_MESSAGE(sent, sent.error().message());
  CHECK(sent.bytes() == payload.size());
  std::array<char, 64> buffer{};
  auto reply = co_await socket.recv_echo(asio::buffer(buffer));
  REQUIRE_MESSAGE(reply, reply.error().message());
  CHECK(reply->from == to);
  CHECK(reply->sequence == 7);
  REQUIRE(reply->payload_size == payload.size());
  CHECK(std::string_view(buffer.data(), reply->payload_size) == payload);
}

void round_trip(ip_family family, icmp_mode mode, const coronet::endpoint& to) {
  test::run([&]() -> asio::awaitable<void> {
    auto socket = open_or_skip(co_await asio::this_coro::executor, family, mode);
    if (!socket) co_return;
    CHECK(socket->mode() == mode);
    CHECK(socket->family() == family);
    co_await expect_round_trip(*socket, to);
  });
}

// Awaitable operators need a result they can default-construct.
asio::awaitable<std::optional<coronet::result<icmp_socket::echo_reply>>> next_reply(
    icmp_socket& socket, asio::mutable_buffer payload) {
  co_return co_await socket.recv_echo(payload);
}

asio::awaitable<void> close_after(icmp_socket& socket, std::chrono::milliseconds delay) {
  co_await test::sleep_for(delay);
  socket.close();
}

std::uint16_t internet_checksum(const unsigned char* data, std::size_t size) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < size; ++i) {
    sum += i % 2 == 0 ? std::uint32_t{data[i]} << 8U : std::uint32_t{data[i]};
  }
  while (sum > 0xFFFF) sum = (sum & 0xFFFF) + (sum >> 16U);
  return static_cast<std::uint16_t>(~sum);
}

coronet::test::run_outcome run_ping(const std::vector<std::string>& args) {
  return coronet::test::run_to_exit(ping_program, args, 10s);
}

}  // namespace

TEST_CASE("icmp_socket: echo round trip over 127.0.0.1 in raw mode") {
  round_trip(ip_family::v4, icmp_mode::raw, loopback_v4);
}

TEST_CASE("icmp_socket: echo round trip over [::1] in raw mode") {
  if (!test::has_ipv6_loopback()) {
    MESSAGE("skipped: this machine has no IPv6 loopback");
    return;
  }
  round_trip(ip_family::v6, icmp_mode::raw, loopback_v6);
}

TEST_CASE(
    "icmp_socket: datagram mode round trip when ping_group_range allows - else not permitted") {
  if (ping_sockets_permitted()) {
    round_trip(ip_family::v4, icmp_mode::datagram, loopback_v4);
    return;
  }
  MESSAGE("ping_group_range excludes this process's groups: open() must say so");
  asio::io_context context;
  auto socket = icmp_socket::open(context.get_executor(), ip_family::v4, icmp_mode::datagram);
  REQUIRE_FALSE(socket);
  CHECK(socket.error() == errc::icmp_not_permitted);
}

TEST_CASE("icmp_socket: several requests in flight - each reply matched to its sequence") {
  test::run([]() -> asio::awaitable<void> {
    auto socket = open_or_skip(co_await asio::this_coro::executor, ip_family::v4);
    if (!socket) co_return;
    // Both bytes of each sequence differ, so a byte-order slip could not match.
    const std::array<std::uint16_t, 5> sequences{0, 1, 0x0102, 0xBEEF, 0xFFFF};
    for (const auto sequence : sequences) {
      const std::string payload = "request " + std::to_string(sequence);
      CHECK(co_await socket->send_echo(loopback_v4, sequence, asio::buffer(payload)));
    }
    std::map<std::uint16_t, std::string> replies;
    for (std::size_t i = 0; i < sequences.size(); ++i) {
      std::array<char, 64> buffer{};
      auto reply = co_await socket->recv_echo(asio::buffer(buffer));
      REQUIRE_MESSAGE(reply, reply.error().message());
      replies[reply->sequence] = std::string(buffer.data(), reply->payload_size);
    }
    REQUIRE(replies.size() == sequences.size());
    for (const auto sequence : sequences) {
      CHECK(replies[sequence] == "request " + std::to_string(sequence));
    }
  });
}

TEST_CASE("icmp_socket: a raw socket skips the replies to another socket's requests") {
  test::run([]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    auto first = open_or_skip(executor, ip_family::v4, icmp_mode::raw);
    if (!first) co_return;
    auto second = open_or_skip(executor, ip_family::v4, icmp_mode::raw);
    REQUIRE(second);
    std::array<char, 16> buffer{};
    // The reply to `first` reaches both raw sockets, so it is queued at `second` before the
    // reply to its own request.
    CHECK(co_await first->send_echo(loopback_v4, 1, asio::buffer(std::string_view("first"))));
    auto to_first = co_await first->recv_echo(asio::buffer(buffer));
    REQUIRE(to_first);
    CHECK(to_first->sequence == 1);
    CHECK(co_await second->send_echo(loopback_v4, 2, asio::buffer(std::string_view("second"))));
    auto to_second = co_await second->recv_echo(asio::buffer(buffer));
    REQUIRE(to_second);
    CHECK(to_second->sequence == 2);
    CHECK(std::string_view(buffer.data(), to_second->payload_size) == "second");
  });
}

TEST_CASE("icmp_socket: an echo request leaves in network byte order with a valid checksum") {
  // A raw socket without coronet's filter sees the request itself on loopback.
  const int observer = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
  if (observer < 0) {
    MESSAGE("skipped: observing requests needs a raw socket (CAP_NET_RAW)");
    return;
  }
  const timeval patience{2, 0};
  REQUIRE(::setsockopt(observer, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof patience) == 0);
  constexpr std::string_view payload = "coronet wire check";
  test::run([&]() -> asio::awaitable<void> {
    auto socket = open_or_skip(co_await asio::this_coro::executor, ip_family::v4);
    REQUIRE(socket);
    CHECK(co_await socket->send_echo(loopback_v4, 0x0102, asio::buffer(payload)));
  });

  std::optional<std::vector<unsigned char>> request;
  std::array<unsigned char, 1500> packet{};
  while (!request) {
    const auto n = ::recv(observer, packet.data(), packet.size(), 0);
    if (n <= 0) break;
    const std::size_t ip_header = (packet[0] & 0x0FU) * 4U;
    const std::vector<unsigned char> icmp(packet.begin() + static_cast<std::ptrdiff_t>(ip_header),
                                          packet.begin() + n);
    // Other tests may ping at the same time: only this payload is ours.
    if (icmp.size() == 8 + payload.size() && icmp[0] == 8 &&
        std::equal(payload.begin(), payload.end(), icmp.begin() + 8)) {
      request = icmp;
    }
  }
  ::close(observer);
  REQUIRE_MESSAGE(request, "the echo request was not seen on loopback");
  CHECK((*request)[1] == 0);  // code
  CHECK((*request)[6] == 0x01);
  CHECK((*request)[7] == 0x02);
  CHECK(internet_checksum(request->data(), request->size()) == 0);
}

TEST_CASE(
    "icmp_socket: a reply larger than the buffer is datagram_truncated - the next is intact") {
  test::run([]() -> asio::awaitable<void> {
    auto socket = open_or_skip(co_await asio::this_coro::executor, ip_family::v4);
    if (!socket) co_return;
    std::string big(100, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
    CHECK(co_await socket->send_echo(loopback_v4, 1, asio::buffer(big)));
    std::array<char, 10> small{};
    auto truncated = co_await socket->recv_echo(asio::buffer(small));
    REQUIRE_FALSE(truncated);
    CHECK(truncated.error() == errc::datagram_truncated);
    CHECK(std::string_view(small.data(), small.size()) == std::string_view(big).substr(0, 10));

    CHECK(co_await socket->send_echo(loopback_v4, 2, asio::buffer(std::string_view("after"))));
    auto next = co_await socket->recv_echo(asio::buffer(small));
    REQUIRE_MESSAGE(next, next.error().message());
    CHECK(next->sequence == 2);
    CHECK(std::string_view(small.data(), next->payload_size) == "after");
  });
}

TEST_CASE("icmp_socket: an endpoint of another family is wrong_address_family") {
  test::run([]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    auto v4 = open_or_skip(executor, ip_family::v4);
    if (!v4) co_return;
    const auto unix_path = coronet::endpoint::unix_domain("/tmp/coronet-icmp").value();
    for (const auto& wrong : {loopback_v6, unix_path}) {
      auto sent = co_await v4->send_echo(wrong, 1, asio::const_buffer());
      CHECK(sent.error() == errc::wrong_address_family);
      CHECK(sent.bytes() == 0);
    }
    if (!test::has_ipv6_loopback()) co_return;
    auto v6 = open_or_skip(executor, ip_family::v6);
    REQUIRE(v6);
    auto sent = co_await v6->send_echo(loopback_v4, 1, asio::const_buffer());
    CHECK(sent.error() == errc::wrong_address_family);
  });
}

TEST_CASE("icmp_socket: recv_echo cancelled by a timer loses nothing - close cancels it too") {
  test::run([]() -> asio::awaitable<void> {
    using namespace asio::experimental::awaitable_operators;
    const auto executor = co_await asio::this_coro::executor;
    auto socket = open_or_skip(executor, ip_family::v4);
    if (!socket) co_return;
    std::array<char, 16> buffer{};
    asio::steady_timer timer(executor, 50ms);
    auto first = co_await (next_reply(*socket, asio::buffer(buffer)) ||
                           timer.async_wait(asio::use_awaitable));
    CHECK(first.index() == 1);  // nothing was sent: the timer wins

    CHECK(co_await socket->send_echo(loopback_v4, 9, asio::buffer(std::string_view("later"))));
    auto reply = co_await socket->recv_echo(asio::buffer(buffer));
    REQUIRE_MESSAGE(reply, reply.error().message());
    CHECK(reply->sequence == 9);

    coronet::spawn(executor, close_after(*socket, 50ms), "closer");
    auto closed = co_await socket->recv_echo(asio::buffer(buffer));
    CHECK(closed.error() == std::errc::operation_canceled);
  });
}

TEST_CASE("icmp_socket: the ping example pings 127.0.0.1 three times and exits 0") {
  if (!may_ping()) return;
  const auto r = run_ping({"-c", "3", "-i", "0.2", "127.0.0.1"});
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  const auto lines = coronet::test::lines_of(r.out);
  REQUIRE_FALSE(lines.empty());
  CHECK(lines[0].rfind("PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data", 0) == 0);
  std::vector<std::string> replies;
  std::copy_if(lines.begin(), lines.end(), std::back_inserter(replies),
               [](const std::string& line) { return line.find("icmp_seq=") != std::string::npos; });
  REQUIRE_MESSAGE(replies.size() == 3, r.out);
  for (std::size_t i = 0; i < replies.size(); ++i) {
    const auto expected = "64 bytes from 127.0.0.1: icmp_seq=" + std::to_string(i + 1) + " time=";
    CHECK_MESSAGE(replies[i].rfind(expected, 0) == 0, replies[i]);
  }
  CHECK(r.out.find("--- 127.0.0.1 ping statistics ---") != std::string::npos);
  CHECK_MESSAGE(
      r.out.find("3 packets transmitted, 3 received, 0% packet loss") != std::string::npos, r.out);
  CHECK(r.out.find("rtt min/avg/max/mdev = ") != std::string::npos);
}

TEST_CASE("icmp_socket: the ping example exits 1 when a request gets no reply") {
  if (!may_ping()) return;
  // Sending to the loopback broadcast address without SO_BROADCAST fails every time (EACCES).
  const auto r = run_ping({"-c", "2", "-i", "0.1", "-W", "0.2", "127.255.255.255"});
  CHECK(r.exit_code == 1);
  CHECK_MESSAGE(
      r.out.find("2 packets transmitted, 0 received, 100% packet loss") != std::string::npos,
      r.out);
  CHECK(r.out.find("rtt min/avg/max/mdev") == std::string::npos);
  CHECK_MESSAGE(r.err.rfind("ping: send: ", 0) == 0, r.err);
}

TEST_CASE("icmp_socket: the ping example exits 2 for a host that does not resolve") {
  const auto r = run_ping({"-c", "1", "no-such-host.invalid"});
  CHECK(r.exit_code == 2);
  CHECK(r.out.empty());
  const auto err_lines = coronet::test::lines_of(r.err);
  REQUIRE_MESSAGE(err_lines.size() == 1, r.err);
  CHECK(err_lines[0].rfind("ping: no-such-host.invalid: ", 0) == 0);
}

TEST_CASE("icmp_socket: the ping example exits 2 when ping sockets are not permitted") {
  if (ping_sockets_permitted()) {
    MESSAGE("skipped: ping_group_range admits this process, so datagram mode works");
    return;
  }
  const auto r = run_ping({"-c", "1", "--mode", "datagram", "127.0.0.1"});
  CHECK(r.exit_code == 2);
  CHECK(r.out.empty());
  const auto err_lines = coronet::test::lines_of(r.err);
  REQUIRE_MESSAGE(err_lines.size() == 1, r.err);
  CHECK(err_lines[0].rfind("ping: ", 0) == 0);
  CHECK(err_lines[0].find("ping_group_range") != std::string::npos);
}

TEST_CASE("icmp_socket: the ping example exits 2 with usage for a command-line mistake") {
  const std::vector<std::vector<std::string>> mistakes{
      {}, {"-c", "0", "127.0.0.1"}, {"-4", "-6", "127.0.0.1"}, {"--mode", "rdm", "127.0.0.1"}};
  for (const auto& args : mistakes) {
    const auto r = run_ping(args);
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK_MESSAGE(r.err.rfind("ping: ", 0) == 0, r.err);
    CHECK(r.err.find("Usage: ping") != std::string::npos);
  }
}
