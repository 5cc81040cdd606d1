#include <doctest/doctest.h>

#include <string>
#include <thread>

#include "support/run.hpp"

using namespace std::chrono_literals;
using coronet::tcp_listener;
using coronet::tcp_stream;
namespace test = coronet::test;

namespace {

asio::awaitable<void> close_listener_after(tcp_listener& listener,
                                           std::chrono::milliseconds delay) {
  co_await test::sleep_for(delay);
  listener.close();
}

}  // namespace

TEST_CASE("tcp_listener: port 0 binds a free port and reads it back") {
  for (const auto& any : test::loopbacks()) {
    CAPTURE(any);
    asio::io_context context;
    auto a = tcp_listener::bind(context, any);
    auto b = tcp_listener::bind(context, any);
    CHECK(a.local_endpoint().port() != 0);
    CHECK(a.local_endpoint().address() == any.address());
    CHECK(a.local_endpoint() != b.local_endpoint());
    CHECK(a.is_open());
    CHECK(a.native_handle() >= 0);
  }
}

TEST_CASE("tcp_listener: a port in use throws system_error naming the step and the endpoint") {
  for (const auto& any : test::loopbacks()) {
    CAPTURE(any);
    asio::io_context context;
    auto first = tcp_listener::bind(context, any);
    const auto taken = first.local_endpoint();
    try {
      auto second = tcp_listener::bind(context, taken, {.reuse_address = false});
      FAIL("bind to a port in use did not throw");
    } catch (const std::system_error& e) {
      CHECK(e.code() == std::errc::address_in_use);
      CHECK(std::string(e.what()).find("cannot bind " + taken.to_string()) != std::string::npos);
    }
  }
}

TEST_CASE("tcp_listener: an address this machine does not have throws") {
  asio::io_context context;
  CHECK_THROWS_WITH_AS(tcp_listener::bind(context, coronet::endpoint::parse("192.0.2.1:0").value()),
                       doctest::Contains("cannot bind 192.0.2.1:0"), std::system_error);
}

TEST_CASE("tcp_listener: close() cancels a pending accept - as a value") {
  for (const auto& any : test::loopbacks()) {
    CAPTURE(any);
    test::run([&]() -> asio::awaitable<void> {
      auto listener = tcp_listener::bind(co_await asio::this_coro::executor, any);
      coronet::spawn(co_await asio::this_coro::executor, close_listener_after(listener, 50ms),
                     "closer");
      auto accepted = co_await listener.accept();
      REQUIRE_FALSE(accepted);
      CHECK(accepted.error() == std::errc::operation_canceled);
      CHECK_FALSE(listener.is_open());
      listener.close();  // idempotent
    });
  }
}

TEST_CASE("tcp_listener: accept(executor) places the stream on another context") {
  for (const auto& any : test::loopbacks()) {
    CAPTURE(any);
    asio::io_context other;
    test::run([&]() -> asio::awaitable<void> {
      auto listener = tcp_listener::bind(co_await asio::this_coro::executor, any);
      auto client = co_await tcp_stream::connect(listener.local_endpoint());
      REQUIRE(client);
      auto accepted = co_await listener.accept(other.get_executor());
      REQUIRE(accepted);
      CHECK(accepted->get_executor() == asio::any_io_executor(other.get_executor()));
      CHECK(accepted->remote_endpoint() == client->local_endpoint());
    });
  }
}

TEST_CASE("tcp_listener: connections wait in the backlog until accepted") {
  for (const auto& any : test::loopbacks()) {
    CAPTURE(any);
    test::run([&]() -> asio::awaitable<void> {
      auto listener = tcp_listener::bind(co_await asio::this_coro::executor, any, {.backlog = 16});
      std::vector<tcp_stream> clients;
      for (int i = 0; i < 8; ++i)
        clients.push_back((co_await tcp_stream::connect(listener.local_endpoint())).value());
      for (int i = 0; i < 8; ++i) {
        auto accepted = co_await listener.accept();
        REQUIRE(accepted);
        CHECK(accepted->remote_endpoint() == clients[static_cast<std::size_t>(i)].local_endpoint());
      }
    });
  }
}

TEST_CASE("tcp_listener: v6_only decides whether [::] also accepts IPv4 peers") {
  if (!test::has_ipv6_loopback()) {
    MESSAGE("skipped: this machine has no IPv6 loopback");
    return;
  }
  test::run([]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    const auto any_v6 = coronet::endpoint::parse("[::]:0").value();
    auto dual = tcp_listener::bind(executor, any_v6, {.v6_only = false});
    CHECK_FALSE(dual.get_option<coronet::option::v6_only>().value().value);
    const coronet::endpoint dual_v4(asio::ip::address_v4::loopback(), dual.local_endpoint().port());
    auto v4_client = co_await tcp_stream::connect(dual_v4);
    REQUIRE(v4_client);
    auto accepted = co_await dual.accept();
    REQUIRE(accepted);
    CHECK(accepted->remote_endpoint().address() ==
          asio::ip::make_address("::ffff:127.0.0.1"));  // an IPv4 peer, mapped

    auto only = tcp_listener::bind(executor, any_v6, {.v6_only = true});
    CHECK(only.get_option<coronet::option::v6_only>().value().value);
    const coronet::endpoint only_v4(asio::ip::address_v4::loopback(), only.local_endpoint().port());
    auto refused = co_await tcp_stream::connect(only_v4);
    CHECK(refused.error() == std::errc::connection_refused);
    auto v6_client = co_await tcp_stream::connect(
        coronet::endpoint(asio::ip::address_v6::loopback(), only.local_endpoint().port()));
    CHECK(v6_client);
  });
}

TEST_CASE("tcp_listener: reuse_port lets two listeners share a port") {
  asio::io_context context;
  auto first = tcp_listener::bind(context, test::any_v4(), {.reuse_port = true});
  auto second = tcp_listener::bind(context, first.local_endpoint(), {.reuse_port = true});
  CHECK(second.local_endpoint() == first.local_endpoint());
  CHECK(second.get_option<coronet::option::reuse_port>().value().value);
}

TEST_CASE("tcp_listener: a Unix-domain endpoint is the wrong family") {
  asio::io_context context;
  CHECK_THROWS_WITH_AS(tcp_listener::bind(context, coronet::endpoint::parse("unix:/tmp/x").value()),
                       doctest::Contains("cannot listen for TCP on unix:/tmp/x"),
                       std::system_error);
}
