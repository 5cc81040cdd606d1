#include <doctest/doctest.h>

#include <filesystem>
#include <set>
#include <stdexcept>

#include "support/run.hpp"

using namespace std::chrono_literals;
using coronet::unix_server;
using coronet::unix_stream;
namespace test = coronet::test;

namespace {

asio::awaitable<void> echo(unix_stream stream) {
  std::array<char, 256> buffer{};
  for (;;) {
    auto got = co_await stream.recv(asio::buffer(buffer));
    if (!got) break;
    if (!co_await stream.send_all(asio::buffer(buffer.data(), got.bytes()))) break;
  }
}

// The same over the lean path: a task handler.
coronet::task<void> lean_echo(coronet::lean_stream stream) {
  std::array<char, 256> buffer{};
  for (;;) {
    auto got = co_await stream.recv(asio::buffer(buffer));
    if (!got) break;
    if (!co_await stream.send_all(asio::buffer(buffer.data(), got.bytes()))) break;
  }
}

unix_server bind_echo(coronet::runtime& threads, const coronet::endpoint& where, bool lean) {
  if (lean) return unix_server::bind(threads, where, lean_echo);
  return unix_server::bind(threads, where, echo);
}

}  // namespace

TEST_CASE("unix_server: connections spread over the threads and stop() removes the file") {
  for (const bool lean : {false, true}) {
    CAPTURE(lean);
    test::temp_dir dir;
    const auto path = dir.path() / "echo.sock";
    coronet::runtime threads(2);
    auto server = bind_echo(threads, coronet::endpoint::unix_domain(path.string()).value(), lean);
    test::running run(threads);
    CHECK(std::filesystem::is_socket(path));
    test::run([&]() -> asio::awaitable<void> {
      std::vector<unix_stream> clients;
      for (int i = 0; i < 4; ++i) {
        auto client = co_await unix_stream::connect(server.local_endpoint());
        REQUIRE(client);
        REQUIRE(co_await client->send_all(asio::buffer("ping", 4)));
        std::array<char, 4> reply{};
        REQUIRE(co_await client->recv_exact(asio::buffer(reply)));
        clients.push_back(std::move(*client));
      }
      const auto records = server.connections();
      REQUIRE(records.size() == 4);
      std::set<std::size_t> used;
      std::set<int> fds;
      for (const auto& record : records) {
        used.insert(record.thread);
        fds.insert(record.fd);
        CHECK(record.local == server.local_endpoint());           // the server's path
        CHECK(record.peer == coronet::endpoint::unix_unnamed());  // clients that never bound
        CHECK(record.bytes_received == 4);
      }
      CHECK(used == std::set<std::size_t>{0, 1});
      CHECK(fds.size() == 4);
      clients.clear();
      CHECK(co_await server.stop(5s) == 0);
      CHECK_FALSE(std::filesystem::exists(path));
    });
  }
}

TEST_CASE("unix_server: placement reuse_port is refused") {
  test::temp_dir dir;
  coronet::runtime threads(2);
  const auto where = coronet::endpoint::unix_domain((dir.path() / "x.sock").string()).value();
  CHECK_THROWS_WITH_AS(
      unix_server::bind(threads, where, echo, {.placement = coronet::placement::reuse_port}),
      doctest::Contains("needs TCP"), std::invalid_argument);
}
