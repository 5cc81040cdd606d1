#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "support/run.hpp"

using coronet::endpoint;
using coronet::errc;
using coronet::unix_seqpacket;
using coronet::unix_seqpacket_listener;
namespace test = coronet::test;

namespace {

// Messages of different sizes sent back to back come out one per recv(), each whole.
asio::awaitable<void> check_messages(unix_seqpacket& from, unix_seqpacket& to) {
  const std::vector<std::string> sent = {"1", std::string(300, '2'), std::string(20000, '3'), "4"};
  for (const auto& m : sent) REQUIRE(co_await from.send(asio::buffer(m)));
  std::vector<char> buffer(65536);
  for (const auto& m : sent) {
    auto got = co_await to.recv(asio::buffer(buffer));
    REQUIRE(got);
    CHECK(got.bytes() == m.size());
    CHECK(std::string(buffer.data(), got.bytes()) == m);
  }
}

}  // namespace

TEST_CASE("unix_seqpacket: each recv returns exactly one message over a listener") {
  const test::temp_dir dir;
  const auto where = dir.socket("seq.sock");
  test::run([&]() -> asio::awaitable<void> {
    auto listener = unix_seqpacket_listener::bind(co_await asio::this_coro::executor, where);
    CHECK(std::filesystem::is_socket(where.path()));
    auto client = co_await unix_seqpacket::connect(where);
    REQUIRE(client);
    auto server = co_await listener.accept();
    REQUIRE(server);
    CHECK(client->remote_endpoint() == where);
    co_await check_messages(*client, *server);
    co_await check_messages(*server, *client);

    REQUIRE(client->shutdown(coronet::shutdown_type::send));
    std::array<char, 8> buffer{};
    CHECK((co_await server->recv(asio::buffer(buffer))).error() == errc::eof);
    listener.close();
    CHECK_FALSE(std::filesystem::exists(where.path()));
  });
}

TEST_CASE("unix_seqpacket: abstract names and socket_pair") {
  const auto name = test::unique_abstract_name();
  test::run([&]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    auto listener = unix_seqpacket_listener::bind(executor, name);
    auto client = co_await unix_seqpacket::connect(name);
    REQUIRE(client);
    auto server = co_await listener.accept();
    REQUIRE(server);
    co_await check_messages(*client, *server);

    auto [a, b] = unix_seqpacket::socket_pair(executor);
    co_await check_messages(a, b);
    a.close();
    std::array<char, 8> buffer{};
    CHECK((co_await b.recv(asio::buffer(buffer))).error() == errc::eof);
  });
}

TEST_CASE("unix_seqpacket: a message larger than the buffer is truncated with its real size") {
  test::run([]() -> asio::awaitable<void> {
    auto [a, b] = unix_seqpacket::socket_pair(co_await asio::this_coro::executor);
    REQUIRE(co_await a.send(asio::buffer(std::string(500, 'm'))));
    REQUIRE(co_await a.send(asio::buffer(std::string("after"))));
    std::array<char, 50> small{};
    auto got = co_await b.recv(asio::buffer(small));
    CHECK(got.error() == errc::datagram_truncated);
    CHECK(got.bytes() == 50);
    CHECK(got.size() == 500);
    auto next = co_await b.recv(asio::buffer(small));
    REQUIRE(next);
    CHECK(std::string(small.data(), next.bytes()) == "after");
  });
}

TEST_CASE("unix_seqpacket: an empty message is refused since it would read as end of stream") {
  test::run([]() -> asio::awaitable<void> {
    auto [a, b] = unix_seqpacket::socket_pair(co_await asio::this_coro::executor);
    auto sent = co_await a.send(asio::const_buffer());
    CHECK(sent.error() == std::errc::invalid_argument);
    REQUIRE(co_await a.send(asio::buffer(std::string("x"))));
    std::array<char, 4> buffer{};
    auto got = co_await b.recv(asio::buffer(buffer));
    CHECK(got);
    CHECK(got.bytes() == 1);
  });
}
