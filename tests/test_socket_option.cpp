#include <doctest/doctest.h>

#include "support/run.hpp"

using namespace std::chrono_literals;
namespace option = coronet::option;
namespace test = coronet::test;

TEST_CASE("socket options: each typed option round-trips through the kernel") {
  for (const auto& any : test::loopbacks()) {
    CAPTURE(any);
    test::run([&]() -> asio::awaitable<void> {
      auto [client, server] = co_await test::connected_pair(any);

      for (bool on : {true, false}) {
        CAPTURE(on);
        REQUIRE(client.set_option(option::no_delay{on}));
        CHECK(client.get_option<option::no_delay>().value() == option::no_delay{on});
        REQUIRE(client.set_option(option::keep_alive{on}));
        CHECK(client.get_option<option::keep_alive>().value() == option::keep_alive{on});
        REQUIRE(client.set_option(option::reuse_address{on}));
        CHECK(client.get_option<option::reuse_address>().value() == option::reuse_address{on});
      }

      // Linux doubles the buffer sizes it is given; it never gives less than asked (within limits).
      REQUIRE(client.set_option(option::send_buffer_size{64 * 1024}));
      const auto sndbuf = client.get_option<option::send_buffer_size>().value().value;
      CHECK(sndbuf >= 64 * 1024);
      REQUIRE(client.set_option(option::receive_buffer_size{32 * 1024}));
      const auto rcvbuf = client.get_option<option::receive_buffer_size>().value().value;
      CHECK(rcvbuf >= 32 * 1024);
      CHECK(rcvbuf != sndbuf);

      REQUIRE(server.set_option(option::linger{true, 5s}));
      CHECK(server.get_option<option::linger>().value() == option::linger{true, 5s});
      REQUIRE(server.set_option(option::linger{false, 0s}));
      CHECK_FALSE(server.get_option<option::linger>().value().enabled);
    });
  }
}

TEST_CASE("socket options: invalid values and closed sockets give error values") {
  for (const auto& any : test::loopbacks()) {
    CAPTURE(any);
    test::run([&]() -> asio::awaitable<void> {
      auto [client, server] = co_await test::connected_pair(any);
      auto negative = client.set_option(option::linger{true, -1s});
      CHECK(negative.error() == std::errc::invalid_argument);

      client.close();
      auto on_closed = client.set_option(option::no_delay{true});
      CHECK(on_closed.error() == std::errc::bad_file_descriptor);
      auto read_closed = client.get_option<option::keep_alive>();
      CHECK_FALSE(read_closed);
      CHECK(read_closed.error() == std::errc::bad_file_descriptor);
    });
  }
}

TEST_CASE("socket options: listeners take the socket-level ones") {
  for (const auto& any : test::loopbacks()) {
    CAPTURE(any);
    test::run([&]() -> asio::awaitable<void> {
      auto listener = coronet::tcp_listener::bind(co_await asio::this_coro::executor, any);
      CHECK(listener.get_option<option::reuse_address>().value().value);  // on by default
      REQUIRE(listener.set_option(option::receive_buffer_size{128 * 1024}));
      CHECK(listener.get_option<option::receive_buffer_size>().value().value >= 128 * 1024);

      auto plain = coronet::tcp_listener::bind(co_await asio::this_coro::executor, any,
                                               {.reuse_address = false});
      CHECK_FALSE(plain.get_option<option::reuse_address>().value().value);
    });
  }
}
