// reserved_port: a bound TCP port that SO_REUSEPORT listeners share and that never takes a
// connection itself.
#include <doctest/doctest.h>

#include <string>

#include "support/run.hpp"

using namespace std::chrono_literals;
using coronet::reserved_port;
using coronet::tcp_listener;
using coronet::tcp_stream;
namespace test = coronet::test;

TEST_CASE("reserved_port: port 0 resolves once - and SO_REUSEPORT listeners join that port") {
  for (const auto& any : test::loopbacks()) {
    CAPTURE(any);
    auto port = reserved_port::bind(any);
    const auto where = port.local_endpoint();
    CHECK(where.port() != 0);
    CHECK(where.address() == any.address());
    CHECK(port.native_handle() >= 0);
    asio::io_context context;
    auto a = tcp_listener::bind(context, where, {.reuse_port = true});
    auto b = tcp_listener::bind(context, where, {.reuse_port = true});
    CHECK(a.local_endpoint() == where);
    CHECK(b.local_endpoint() == where);
  }
}

TEST_CASE("reserved_port: every connection goes to a listener - none to the reservation") {
  auto port = reserved_port::bind(test::any_v4());
  const auto where = port.local_endpoint();
  test::run([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto listener = tcp_listener::bind(executor, where, {.reuse_port = true});
    // Each connect waits for its accept: a connection the kernel gave the reservation would
    // never be accepted, and the run would miss its deadline.
    for (int i = 0; i < 50; ++i) {
      auto client = co_await tcp_stream::connect(where);
      REQUIRE(client);
      auto served = co_await listener.accept();
      REQUIRE(served);
      CHECK(served->remote_endpoint() == client->local_endpoint());
    }
    // With no listener left, the port refuses: the reservation does not listen.
    listener.close();
    auto refused = co_await tcp_stream::connect(where);
    REQUIRE_FALSE(refused);
    CHECK(refused.error() == std::errc::connection_refused);
  });
}

TEST_CASE("reserved_port: a port a plain listener holds throws naming the step and address") {
  asio::io_context context;
  auto plain = tcp_listener::bind(context, test::any_v4());
  const auto taken = plain.local_endpoint();
  try {
    auto port = reserved_port::bind(taken);
    FAIL("reserving a port in use did not throw");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::errc::address_in_use);
    CHECK(std::string(e.what()).find("cannot bind " + taken.to_string()) != std::string::npos);
  }
}

TEST_CASE("reserved_port: a Unix-domain endpoint throws wrong_address_family") {
  const auto path = coronet::endpoint::unix_domain("/tmp/coronet-not-tcp.sock").value();
  try {
    auto port = reserved_port::bind(path);
    FAIL("a Unix-domain reservation did not throw");
  } catch (const std::system_error& e) {
    CHECK(e.code() == coronet::errc::wrong_address_family);
  }
}

TEST_CASE("reserved_port: close() releases the port - and moving hands it over") {
  auto first = reserved_port::bind(test::any_v4());
  const auto where = first.local_endpoint();
  reserved_port moved = std::move(first);
  CHECK(first.native_handle() == -1);  // NOLINT(bugprone-use-after-move): moved-from is empty
  CHECK(moved.local_endpoint() == where);
  moved.close();
  CHECK(moved.native_handle() == -1);
  moved.close();  // idempotent
  // Nothing holds the port now: a listener without SO_REUSEPORT gets it.
  asio::io_context context;
  auto plain = tcp_listener::bind(context, where, {.reuse_address = false});
  CHECK(plain.local_endpoint() == where);
}
