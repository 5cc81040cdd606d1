#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

#include "support/run.hpp"

using namespace std::chrono_literals;
using coronet::endpoint;
using coronet::errc;
using coronet::udp_socket;
namespace test = coronet::test;

namespace {

std::vector<char> payload_of(std::size_t size, unsigned seed) {
  std::vector<char> out(size);
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<char>((i * 31 + seed * 7) & 0xFF);
  return out;
}

// Sends back every datagram to its sender until the socket is closed.
asio::awaitable<void> udp_echo(udp_socket& socket) {
  std::vector<char> buffer(65536);
  for (;;) {
    auto got = co_await socket.recv_from(asio::buffer(buffer));
    if (!got) break;
    (void)co_await socket.send_to(asio::buffer(buffer.data(), got.bytes()), got.sender());
  }
}

asio::awaitable<void> echo_own_datagrams(endpoint server, endpoint any, unsigned id,
                                         test::wait_group& group, std::set<endpoint>& locals,
                                         std::size_t& good) {
  auto socket = udp_socket::bind(co_await asio::this_coro::executor, any);
  locals.insert(socket.local_endpoint());
  bool all_good = true;
  std::vector<char> reply(2048);
  for (unsigned round = 0; round < 5; ++round) {
    const auto mine = payload_of(100 + id, id * 10 + round);
    auto sent = co_await socket.send_to(asio::buffer(mine), server);
    auto got = co_await socket.recv_from(asio::buffer(reply));
    all_good =
        all_good && sent && got && got.sender() == server &&
        std::vector<char>(reply.begin(), reply.begin() + static_cast<long>(got.bytes())) == mine;
  }
  if (all_good) ++good;
  group.done();
}

// try_recv_from() until a datagram is there (loopback delivery may lag the send a little),
// for up to 5 s; then whatever try_recv_from() says.
asio::awaitable<coronet::datagram_result> try_until_queued(udp_socket& socket,
                                                           asio::mutable_buffer buffer) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  for (;;) {
    auto got = socket.try_recv_from(buffer);
    if (got.error() != std::errc::operation_would_block ||
        std::chrono::steady_clock::now() > deadline) {
      co_return got;
    }
    co_await test::sleep_for(1ms);
  }
}

asio::awaitable<void> close_later(udp_socket& socket) {
  co_await test::sleep_for(50ms);
  socket.close();
}

}  // namespace

TEST_CASE("udp_socket: datagrams of 0 1 1472 8192 and 65507 bytes arrive whole with their sender") {
  for (const auto& any : test::loopbacks()) {
    CAPTURE(any);
    test::run([&]() -> asio::awaitable<void> {
      const auto executor = co_await asio::this_coro::executor;
      auto server = udp_socket::bind(executor, any);
      auto client = udp_socket::bind(executor, any);
      CHECK(server.local_endpoint().port() != 0);
      std::vector<char> buffer(65536);
      for (std::size_t size : {0U, 1U, 1472U, 8192U, 65507U}) {
        CAPTURE(size);
        const auto data = payload_of(size, static_cast<unsigned>(size));
        auto sent = co_await client.send_to(asio::buffer(data), server.local_endpoint());
        REQUIRE(sent);
        CHECK(sent.bytes() == size);
        auto got = co_await server.recv_from(asio::buffer(buffer));
        REQUIRE(got);
        CHECK(got.bytes() == size);
        CHECK(got.size() == size);
        CHECK_FALSE(got.truncated());
        CHECK(got.sender() == client.local_endpoint());
        CHECK(std::vector<char>(buffer.begin(), buffer.begin() + static_cast<long>(size)) == data);
      }
    });
  }
}

TEST_CASE(
    "udp_socket: a datagram larger than the buffer is reported truncated with its real size") {
  for (const auto& any : test::loopbacks()) {
    CAPTURE(any);
    test::run([&]() -> asio::awaitable<void> {
      const auto executor = co_await asio::this_coro::executor;
      auto server = udp_socket::bind(executor, any);
      auto client = udp_socket::bind(executor, any);
      const auto big = payload_of(3000, 1);
      REQUIRE(co_await client.send_to(asio::buffer(big), server.local_endpoint()));
      REQUIRE(
          co_await client.send_to(asio::buffer(std::string_view("next")), server.local_endpoint()));

      std::array<char, 100> small{};
      auto cut = co_await server.recv_from(asio::buffer(small));
      CHECK_FALSE(cut);
      CHECK(cut.error() == errc::datagram_truncated);
      CHECK(cut.truncated());
      CHECK(cut.bytes() == small.size());
      CHECK(cut.size() == big.size());
      CHECK(cut.sender() == client.local_endpoint());
      CHECK(std::equal(small.begin(), small.end(), big.begin()));
      // The next datagram is whole: the rest of the cut one is gone, not run into it.
      auto next = co_await server.recv_from(asio::buffer(small));
      REQUIRE(next);
      CHECK(std::string_view(small.data(), next.bytes()) == "next");
    });
  }
}

TEST_CASE("udp_socket: 50 sockets at once each get back only their own datagrams") {
  for (const auto& any : test::loopbacks()) {
    CAPTURE(any);
    test::run(
        [&]() -> asio::awaitable<void> {
          const auto executor = co_await asio::this_coro::executor;
          auto server = udp_socket::bind(executor, any);
          coronet::spawn(executor, udp_echo(server), "udp echo");
          test::wait_group group(executor);
          std::set<endpoint> locals;
          std::size_t good = 0;
          group.add(50);
          for (unsigned id = 0; id < 50; ++id) {
            coronet::spawn(
                executor, echo_own_datagrams(server.local_endpoint(), any, id, group, locals, good),
                "udp client");
          }
          co_await group.wait();
          CHECK(good == 50);
          CHECK(locals.size() == 50);
          server.close();
        },
        20s);
  }
}

TEST_CASE("udp_socket: connected mode exchanges with one peer and drops the others") {
  for (const auto& any : test::loopbacks()) {
    CAPTURE(any);
    test::run([&]() -> asio::awaitable<void> {
      const auto executor = co_await asio::this_coro::executor;
      auto a = udp_socket::bind(executor, any);
      auto b = udp_socket::bind(executor, any);
      auto stranger = udp_socket::bind(executor, any);
      CHECK_FALSE(a.remote_endpoint().has_value());
      REQUIRE(a.connect(b.local_endpoint()));
      REQUIRE(b.connect(a.local_endpoint()));
      CHECK(a.remote_endpoint() == b.local_endpoint());

      REQUIRE(co_await stranger.send_to(asio::buffer(std::string_view("intruder")),
                                        a.local_endpoint()));
      REQUIRE(co_await b.send(asio::buffer(std::string_view("from b"))));
      std::array<char, 64> buffer{};
      auto got = co_await a.recv(asio::buffer(buffer));
      REQUIRE(got);
      CHECK(std::string_view(buffer.data(), got.bytes()) == "from b");
      CHECK(got.sender() == b.local_endpoint());

      REQUIRE(co_await a.send(asio::buffer(std::string_view("from a"))));
      auto back = co_await b.recv(asio::buffer(buffer));
      REQUIRE(back);
      CHECK(std::string_view(buffer.data(), back.bytes()) == "from a");
    });
  }
}

TEST_CASE("udp_socket: a connected socket sees the peer's port unreachable as connection_refused") {
  for (const auto& any : test::loopbacks()) {
    CAPTURE(any);
    test::run([&]() -> asio::awaitable<void> {
      const auto executor = co_await asio::this_coro::executor;
      endpoint closed;
      {
        auto gone = udp_socket::bind(executor, any);
        closed = gone.local_endpoint();
      }
      auto socket = udp_socket::bind(executor, any);
      REQUIRE(socket.connect(closed));
      REQUIRE(co_await socket.send(asio::buffer(std::string_view("anyone?"))));
      std::array<char, 16> buffer{};
      auto got = co_await socket.recv(asio::buffer(buffer));
      CHECK(got.error() == std::errc::connection_refused);
    });
  }
}

TEST_CASE("udp_socket: an unbound socket gets a port on its first send") {
  test::run([]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    for (const auto& any : test::loopbacks()) {
      CAPTURE(any);
      auto server = udp_socket::bind(executor, any);
      auto client =
          udp_socket::open(executor, any.is_v6() ? coronet::ip_family::v6 : coronet::ip_family::v4);
      CHECK(client.local_endpoint().port() == 0);
      REQUIRE(
          co_await client.send_to(asio::buffer(std::string_view("hi")), server.local_endpoint()));
      CHECK(client.local_endpoint().port() != 0);
      std::array<char, 8> buffer{};
      auto got = co_await server.recv_from(asio::buffer(buffer));
      REQUIRE(got);
      CHECK(got.sender().port() == client.local_endpoint().port());
    }
  });
}

TEST_CASE("udp_socket: close() cancels a pending recv_from") {
  test::run([]() -> asio::awaitable<void> {
    auto socket = udp_socket::bind(co_await asio::this_coro::executor, test::any_v4());
    coronet::spawn(co_await asio::this_coro::executor, close_later(socket), "closer");
    std::array<char, 8> buffer{};
    auto got = co_await socket.recv_from(asio::buffer(buffer));
    CHECK(got.error() == std::errc::operation_canceled);
  });
}

TEST_CASE("udp_socket: options broadcast reuse_port and buffer sizes") {
  asio::io_context context;
  auto plain = udp_socket::bind(context, test::any_v4());
  CHECK_FALSE(plain.get_option<coronet::option::broadcast>().value().value);
  auto caster = udp_socket::bind(context, test::any_v4(), {.broadcast = true});
  CHECK(caster.get_option<coronet::option::broadcast>().value().value);
  REQUIRE(caster.set_option(coronet::option::receive_buffer_size{256 * 1024}));
  CHECK(caster.get_option<coronet::option::receive_buffer_size>().value().value >= 256 * 1024);

  // Two sockets on one port only with SO_REUSEPORT on both.
  auto first = udp_socket::bind(context, test::any_v4(), {.reuse_port = true});
  CHECK(first.get_option<coronet::option::reuse_port>().value().value);
  auto second = udp_socket::bind(context, first.local_endpoint(), {.reuse_port = true});
  CHECK(second.local_endpoint() == first.local_endpoint());
  CHECK_THROWS_AS(udp_socket::bind(context, plain.local_endpoint()), std::system_error);
}

TEST_CASE("udp_socket: v6_only decides whether [::] also serves IPv4 peers") {
  if (!test::has_ipv6_loopback()) {
    MESSAGE("skipped: this machine has no IPv6 loopback");
    return;
  }
  test::run([]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    const endpoint any_v6 = endpoint::parse("[::]:0").value();
    auto dual = udp_socket::bind(executor, any_v6, {.v6_only = false});
    CHECK_FALSE(dual.get_option<coronet::option::v6_only>().value().value);
    auto v4_client = udp_socket::bind(executor, test::any_v4());
    const endpoint dual_v4(asio::ip::address_v4::loopback(), dual.local_endpoint().port());
    REQUIRE(co_await v4_client.send_to(asio::buffer(std::string_view("v4")), dual_v4));
    std::array<char, 8> buffer{};
    auto got = co_await dual.recv_from(asio::buffer(buffer));
    REQUIRE(got);
    CHECK(got.sender().address() ==
          asio::ip::make_address("::ffff:127.0.0.1"));  // an IPv4 peer, mapped

    auto only = udp_socket::bind(executor, any_v6, {.v6_only = true});
    CHECK(only.get_option<coronet::option::v6_only>().value().value);
    // The same IPv4 port is free while the IPv6-only socket holds [::]:port.
    const endpoint same_port_v4(asio::ip::address_v4::any(), only.local_endpoint().port());
    auto v4_beside = udp_socket::bind(executor, same_port_v4);
    CHECK(v4_beside.local_endpoint().port() == only.local_endpoint().port());
    CHECK_THROWS_AS(udp_socket::bind(executor, endpoint(asio::ip::address_v4::any(),
                                                        dual.local_endpoint().port())),
                    std::system_error);
  });
}

TEST_CASE("udp_socket: a Unix-domain endpoint is the wrong family") {
  test::run([]() -> asio::awaitable<void> {
    auto socket = udp_socket::bind(co_await asio::this_coro::executor, test::any_v4());
    const auto path = endpoint::parse("unix:/tmp/x").value();
    auto sent = co_await socket.send_to(asio::buffer(std::string_view("x")), path);
    CHECK(sent.error() == errc::wrong_address_family);
    CHECK(socket.connect(path).error() == errc::wrong_address_family);
    CHECK_THROWS_WITH_AS(udp_socket::bind(co_await asio::this_coro::executor, path),
                         doctest::Contains("cannot bind UDP to unix:/tmp/x"), std::system_error);
  });
}

TEST_CASE(
    "udp_socket: try_recv_from and try_send_to never wait - would_block, data, sender, "
    "truncation") {
  for (const auto& any : test::loopbacks()) {
    CAPTURE(any);
    test::run([&]() -> asio::awaitable<void> {
      const auto executor = co_await asio::this_coro::executor;
      auto server = udp_socket::bind(executor, any);
      auto client = udp_socket::bind(executor, any);
      std::array<char, 100> buffer{};

      // Nothing queued: at once, nothing taken.
      auto none = server.try_recv_from(asio::buffer(buffer));
      CHECK_FALSE(none);
      CHECK(none.error() == std::errc::operation_would_block);
      CHECK(none.bytes() == 0);

      const auto first = payload_of(60, 1);
      const auto big = payload_of(3000, 2);
      auto sent = client.try_send_to(asio::buffer(first), server.local_endpoint());
      REQUIRE(sent);
      CHECK(sent.bytes() == first.size());
      REQUIRE(client.try_send_to(asio::buffer(big), server.local_endpoint()));
      REQUIRE(client.try_send_to(asio::const_buffer(), server.local_endpoint()));

      auto got = co_await try_until_queued(server, asio::buffer(buffer));
      REQUIRE(got);
      CHECK(got.sender() == client.local_endpoint());
      CHECK(std::vector<char>(buffer.begin(), buffer.begin() + static_cast<long>(got.bytes())) ==
            first);
      // Larger than the buffer: reported, as recv_from() reports it.
      auto cut = co_await try_until_queued(server, asio::buffer(buffer));
      CHECK(cut.error() == errc::datagram_truncated);
      CHECK(cut.bytes() == buffer.size());
      CHECK(cut.size() == big.size());
      CHECK(cut.sender() == client.local_endpoint());
      // An empty datagram is one too, distinct from none at all.
      auto empty = co_await try_until_queued(server, asio::buffer(buffer));
      CHECK(empty);
      CHECK(empty.bytes() == 0);
      auto after = server.try_recv_from(asio::buffer(buffer));
      CHECK(after.error() == std::errc::operation_would_block);

      // An awaited receive still gets what a try_send_to() sent.
      REQUIRE(server.try_send_to(asio::buffer(first), client.local_endpoint()));
      auto back = co_await client.recv_from(asio::buffer(buffer), 5s);
      REQUIRE(back);
      CHECK(back.bytes() == first.size());

      auto wrong = client.try_send_to(asio::buffer(first), endpoint::unix_domain("/tmp/x").value());
      CHECK(wrong.error() == errc::wrong_address_family);
    });
  }
}

TEST_CASE("udp_socket: try_recv_from on a closed socket fails at once") {
  test::run([]() -> asio::awaitable<void> {
    auto socket = udp_socket::bind(co_await asio::this_coro::executor, test::loopbacks().front());
    socket.close();
    std::array<char, 16> buffer{};
    auto got = socket.try_recv_from(asio::buffer(buffer));
    CHECK_FALSE(got);
    CHECK(got.error() != std::errc::operation_would_block);
  });
}
