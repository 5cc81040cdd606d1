#include <doctest/doctest.h>

#include <array>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "support/run.hpp"

using coronet::endpoint;
using coronet::errc;
using coronet::unix_datagram;
namespace test = coronet::test;

namespace {

// Three datagrams of different sizes in a row, received one by one: boundaries are kept.
asio::awaitable<void> check_boundaries(unix_datagram& from, unix_datagram& to,
                                       const endpoint* dest) {
  const std::vector<std::string> sent = {"a", std::string(100, 'b'), std::string(5000, 'c')};
  for (const auto& d : sent) {
    auto r =
        dest ? co_await from.send_to(asio::buffer(d), *dest) : co_await from.send(asio::buffer(d));
    REQUIRE(r);
  }
  std::vector<char> buffer(65536);
  for (const auto& d : sent) {
    auto got =
        dest ? co_await to.recv_from(asio::buffer(buffer)) : co_await to.recv(asio::buffer(buffer));
    REQUIRE(got);
    CHECK(std::string(buffer.data(), got.bytes()) == d);
  }
}

}  // namespace

TEST_CASE("unix_datagram: bound sockets exchange datagrams with boundaries and sender kept") {
  const test::temp_dir dir;
  test::run([&]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    auto server = unix_datagram::bind(executor, dir.socket("server.sock"));
    auto client = unix_datagram::bind(executor, dir.socket("client.sock"));
    CHECK(server.local_endpoint() == dir.socket("server.sock"));
    const auto server_address = server.local_endpoint();
    co_await check_boundaries(client, server, &server_address);

    REQUIRE(co_await client.send_to(asio::buffer(std::string_view("who")), server_address));
    std::array<char, 16> buffer{};
    auto got = co_await server.recv_from(asio::buffer(buffer));
    REQUIRE(got);
    CHECK(got.sender() == dir.socket("client.sock"));
    // A bound client can be answered.
    REQUIRE(co_await server.send_to(asio::buffer(std::string_view("you")), got.sender()));
    auto answer = co_await client.recv_from(asio::buffer(buffer));
    REQUIRE(answer);
    CHECK(std::string_view(buffer.data(), answer.bytes()) == "you");
  });
}

TEST_CASE("unix_datagram: an unbound sender arrives as unnamed") {
  const auto name = test::unique_abstract_name();
  test::run([&]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    auto server = unix_datagram::bind(executor, name);
    auto client = unix_datagram::open(executor);
    REQUIRE(co_await client.send_to(asio::buffer(std::string_view("anon")), name));
    std::array<char, 16> buffer{};
    auto got = co_await server.recv_from(asio::buffer(buffer));
    REQUIRE(got);
    CHECK(got.sender() == endpoint::unix_unnamed());
    CHECK(got.sender().to_string() == "unix:");
  });
}

TEST_CASE("unix_datagram: connected mode and socket_pair keep boundaries") {
  const auto name = test::unique_abstract_name();
  test::run([&]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    auto server = unix_datagram::bind(executor, name);
    auto client = unix_datagram::open(executor);
    REQUIRE(client.connect(name));
    co_await check_boundaries(client, server, nullptr);

    auto [a, b] = unix_datagram::socket_pair(executor);
    CHECK(a.remote_endpoint() == endpoint::unix_unnamed());  // connected from the start
    CHECK(a.local_endpoint() == endpoint::unix_unnamed());
    co_await check_boundaries(a, b, nullptr);
    REQUIRE(co_await a.send(asio::buffer(std::string_view("from a"))));
    std::array<char, 16> buffer{};
    auto got = co_await b.recv(asio::buffer(buffer));
    REQUIRE(got);
    CHECK(got.sender() == endpoint::unix_unnamed());  // not an IP address
    co_await check_boundaries(b, a, nullptr);
  });
}

TEST_CASE("unix_datagram: truncation is reported with the real size") {
  test::run([]() -> asio::awaitable<void> {
    auto [a, b] = unix_datagram::socket_pair(co_await asio::this_coro::executor);
    REQUIRE(co_await a.send(asio::buffer(std::string(1000, 'x'))));
    std::array<char, 10> small{};
    auto got = co_await b.recv(asio::buffer(small));
    CHECK(got.error() == errc::datagram_truncated);
    CHECK(got.bytes() == 10);
    CHECK(got.size() == 1000);
  });
}

TEST_CASE("unix_datagram: bind follows the socket-file rules and close removes the file") {
  const test::temp_dir dir;
  asio::io_context context;
  const auto where = dir.socket("d.sock");
  auto first = unix_datagram::bind(context, where);
  CHECK(std::filesystem::is_socket(where.path()));
  CHECK_THROWS_AS(unix_datagram::bind(context, where), std::system_error);  // in use
  first.close();
  CHECK_FALSE(std::filesystem::exists(where.path()));
}

TEST_CASE("unix_datagram: try_recv_from and try_send_to never wait and keep the sender's path") {
  const test::temp_dir dir;
  test::run([&]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    auto server = unix_datagram::bind(executor, dir.socket("server.sock"));
    auto client = unix_datagram::bind(executor, dir.socket("client.sock"));
    std::array<char, 16> buffer{};
    CHECK(server.try_recv_from(asio::buffer(buffer)).error() == std::errc::operation_would_block);

    // A Unix datagram is in the peer's queue once the send returns: no wait needed.
    auto sent =
        client.try_send_to(asio::buffer(std::string_view("hello")), server.local_endpoint());
    REQUIRE(sent);
    CHECK(sent.bytes() == 5);
    auto got = server.try_recv_from(asio::buffer(buffer));
    REQUIRE(got);
    CHECK(std::string_view(buffer.data(), got.bytes()) == "hello");
    CHECK(got.sender() == dir.socket("client.sock"));
    CHECK(server.try_recv_from(asio::buffer(buffer)).error() == std::errc::operation_would_block);

    // To a path nobody is bound at: the kernel's error, at once.
    auto nobody = client.try_send_to(asio::buffer(std::string_view("x")), dir.socket("none.sock"));
    CHECK_FALSE(nobody);
    CHECK(nobody.error() != std::errc::operation_would_block);
    co_return;
  });
}
