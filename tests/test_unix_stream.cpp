#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "support/run.hpp"

using coronet::endpoint;
using coronet::errc;
using coronet::unix_listener;
using coronet::unix_stream;
namespace test = coronet::test;

namespace {

// A round trip and a half-close over a listener bound to `where`.
asio::awaitable<void> round_trip_and_half_close(endpoint where) {
  auto listener = unix_listener::bind(co_await asio::this_coro::executor, where);
  CHECK(listener.local_endpoint() == where);
  auto client = co_await unix_stream::connect(where);
  REQUIRE(client);
  auto server = co_await listener.accept();
  REQUIRE(server);
  CHECK(client->remote_endpoint() == where);
  CHECK(server->local_endpoint() == where);
  CHECK(server->remote_endpoint() == endpoint::unix_unnamed());  // the client never bound

  std::string big(200000, 'u');
  auto sent = co_await client->send_all(asio::buffer(big));
  REQUIRE(client->shutdown(coronet::shutdown_type::send));
  std::string got(big.size(), '\0');
  CHECK(co_await server->recv_exact(asio::buffer(got)));
  CHECK(got == big);
  char extra = 0;
  CHECK((co_await server->recv(asio::buffer(&extra, 1))).error() == errc::eof);
  // The half-closed client still receives, then sees the server's FIN.
  CHECK(co_await server->send_all(asio::buffer(std::string_view("bye"))));
  REQUIRE(server->shutdown(coronet::shutdown_type::send));
  std::array<char, 3> reply{};
  CHECK(co_await client->recv_exact(asio::buffer(reply)));
  CHECK(std::string_view(reply.data(), 3) == "bye");
  CHECK((co_await client->recv(asio::buffer(&extra, 1))).error() == errc::eof);
  CHECK(sent.bytes() == big.size());
}

}  // namespace

TEST_CASE("unix_stream: round trip and half-close over a socket file") {
  const test::temp_dir dir;
  const auto where = dir.socket("stream.sock");
  test::run([&]() -> asio::awaitable<void> { co_await round_trip_and_half_close(where); });
}

TEST_CASE("unix_stream: round trip and half-close over an abstract name") {
  const auto where = test::unique_abstract_name();
  test::run([&]() -> asio::awaitable<void> { co_await round_trip_and_half_close(where); });
}

TEST_CASE("unix_stream: socket_pair gives two connected streams") {
  test::run([]() -> asio::awaitable<void> {
    auto [a, b] = unix_stream::socket_pair(co_await asio::this_coro::executor);
    CHECK(co_await a.send_all(asio::buffer(std::string_view("ping"))));
    std::array<char, 4> got{};
    CHECK(co_await b.recv_exact(asio::buffer(got)));
    CHECK(std::string_view(got.data(), 4) == "ping");
    a.close();
    CHECK((co_await b.recv(asio::buffer(got))).error() == errc::eof);
  });
}

TEST_CASE("unix_stream: connecting where nobody listens is an error value") {
  const test::temp_dir dir;
  test::run([&]() -> asio::awaitable<void> {
    auto missing = co_await unix_stream::connect(dir.socket("absent.sock"));
    CHECK(missing.error() == std::errc::no_such_file_or_directory);
    auto no_name = co_await unix_stream::connect(test::unique_abstract_name());
    CHECK(no_name.error() == std::errc::connection_refused);
    auto ip = co_await unix_stream::connect(test::any_v4());
    CHECK(ip.error() == errc::wrong_address_family);
  });
}

TEST_CASE("unix_stream: wait_readable then try_recv and try_send over a socket pair") {
  test::run([]() -> asio::awaitable<void> {
    auto [a, b] = unix_stream::socket_pair(co_await asio::this_coro::executor);
    std::array<char, 8> got{};
    CHECK(b.try_recv(asio::buffer(got)).error() == std::errc::operation_would_block);
    auto sent = a.try_send(asio::buffer(std::string_view("ping")));
    CHECK(sent.bytes() == 4);
    CHECK(co_await b.wait_readable(std::chrono::seconds(5)));
    auto some = b.try_recv(asio::buffer(got));
    REQUIRE(some);
    CHECK(std::string_view(got.data(), some.bytes()) == "ping");
    a.close();
    CHECK(co_await b.wait_readable(std::chrono::seconds(5)));
    CHECK(b.try_recv(asio::buffer(got)).error() == errc::eof);
  });
}
