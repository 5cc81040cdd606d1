// Per-socket and per-call time limits, with_timeout(), and cancellation from another coroutine.
#include <doctest/doctest.h>

#include <asio/experimental/awaitable_operators.hpp>

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "support/run.hpp"

using namespace std::chrono_literals;
using coronet::errc;
using coronet::no_timeout;
using coronet::tcp_listener;
using coronet::tcp_stream;
namespace test = coronet::test;

namespace {

asio::awaitable<void> sleep_then_finish(std::chrono::milliseconds delay) {
  co_await test::sleep_for(delay);
}

asio::awaitable<int> answer_after(std::chrono::milliseconds delay) {
  co_await test::sleep_for(delay);
  co_return 42;
}

}  // namespace

TEST_CASE("timeout: a recv on a silent peer times out with timed_out and not operation_aborted") {
  for (const auto& any : test::loopbacks()) {
    CAPTURE(any);
    test::run([&]() -> asio::awaitable<void> {
      auto [client, server] = co_await test::connected_pair(any);
      std::array<char, 16> buffer{};
      auto got = co_await server.recv(asio::buffer(buffer), 100ms);
      CHECK(got.error() == std::errc::timed_out);
      CHECK(got.error() != std::errc::operation_canceled);
      CHECK(got.bytes() == 0);
      // The stream is still usable, and nothing was lost.
      CHECK(co_await client.send_all(asio::buffer(std::string_view("late"))));
      auto later = co_await server.recv(asio::buffer(buffer), 5s);
      REQUIRE(later);
      CHECK(std::string_view(buffer.data(), later.bytes()) == "late");
    });
  }
}

TEST_CASE("timeout: a prompt peer beats the limit") {
  test::run([]() -> asio::awaitable<void> {
    auto [client, server] = co_await test::connected_pair();
    coronet::spawn(co_await asio::this_coro::executor, test::send_after(client, 20ms, "quick"),
                   "sender");
    std::array<char, 16> buffer{};
    auto got = co_await server.recv(asio::buffer(buffer), 5s);
    REQUIRE(got);
    CHECK(std::string_view(buffer.data(), got.bytes()) == "quick");
  });
}

TEST_CASE("timeout: the socket default applies to every operation and a call overrides it") {
  test::run([]() -> asio::awaitable<void> {
    auto [client, server] = co_await test::connected_pair();
    CHECK(server.get_timeout() == no_timeout);
    server.set_timeout(100ms);
    CHECK(server.get_timeout() == coronet::timeout(100ms));
    std::array<char, 16> buffer{};
    CHECK((co_await server.recv(asio::buffer(buffer))).error() == std::errc::timed_out);
    CHECK((co_await server.recv_exact(asio::buffer(buffer))).error() == std::errc::timed_out);

    // This call waits as long as it takes, past the socket's 100 ms.
    coronet::spawn(co_await asio::this_coro::executor, test::send_after(client, 300ms, "patience"),
                   "sender");
    auto got = co_await server.recv(asio::buffer(buffer), no_timeout);
    REQUIRE(got);
    CHECK(std::string_view(buffer.data(), got.bytes()) == "patience");
    // And a call's own longer limit also beats the default.
    coronet::spawn(co_await asio::this_coro::executor, test::send_after(client, 300ms, "longer"),
                   "sender");
    CHECK(co_await server.recv(asio::buffer(buffer), 5s));
  });
}

TEST_CASE("timeout: send_all cut off by its limit reports the bytes that went first") {
  test::run([]() -> asio::awaitable<void> {
    auto [client, server] = co_await test::connected_pair();
    // The server never reads: the kernel buffers fill and the send stalls.
    REQUIRE(client.set_option(coronet::option::send_buffer_size{64 * 1024}));
    std::vector<char> big(64 * 1024 * 1024, 'x');
    auto sent = co_await client.send_all(asio::buffer(big), 300ms);
    CHECK(sent.error() == std::errc::timed_out);
    CHECK(sent.bytes() > 0);
    CHECK(sent.bytes() < big.size());
    // recv_exact likewise says what it had.
    std::vector<char> want(sent.bytes() + 1);
    auto got = co_await server.recv_exact(asio::buffer(want), 2s);
    CHECK(got.error() == std::errc::timed_out);
    CHECK(got.bytes() == sent.bytes());
  });
}

TEST_CASE("timeout: accept and datagram receives honour limits") {
  test::run([]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    auto listener = tcp_listener::bind(executor, test::any_v4());
    CHECK((co_await listener.accept(50ms)).error() == std::errc::timed_out);
    listener.set_timeout(50ms);
    CHECK((co_await listener.accept()).error() == std::errc::timed_out);

    auto udp = coronet::udp_socket::bind(executor, test::any_v4());
    std::array<char, 8> buffer{};
    CHECK((co_await udp.recv_from(asio::buffer(buffer), 50ms)).error() == std::errc::timed_out);
    auto [a, b] = coronet::unix_seqpacket::socket_pair(executor);
    b.set_timeout(50ms);
    CHECK((co_await b.recv(asio::buffer(buffer))).error() == std::errc::timed_out);
  });
}

TEST_CASE("timeout: connect to a peer that never answers times out") {
  // A listener whose backlog is full drops further SYNs without a word, as a blackholed
  // address does; on loopback, so no packet leaves the machine.
  test::run(
      []() -> asio::awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        auto listener = tcp_listener::bind(executor, test::any_v4(), {.backlog = 1});
        std::vector<tcp_stream> held;
        bool timed_out = false;
        // Connections beyond the backlog are not answered (SYNs dropped) until accept().
        for (int i = 0; i < 64 && !timed_out; ++i) {
          auto attempt = co_await tcp_stream::connect(listener.local_endpoint(), {.limit = 200ms});
          if (attempt) {
            held.push_back(std::move(*attempt));
          } else {
            CHECK(attempt.error() == std::errc::timed_out);
            timed_out = true;
          }
        }
        CHECK(timed_out);
      },
      30s);
}

TEST_CASE("timeout: connect by host name shares one limit over the lookup and every address") {
  test::run([]() -> asio::awaitable<void> {
    auto listener = tcp_listener::bind(co_await asio::this_coro::executor, test::any_v4());
    const auto port = std::to_string(listener.local_endpoint().port());
    auto ok = co_await tcp_stream::connect("127.0.0.1:" + port, {.limit = 2s});
    CHECK(ok);
    auto expired = co_await tcp_stream::connect("127.0.0.1:" + port, {.limit = 0ms});
    CHECK(expired.error() == std::errc::timed_out);
  });
}

TEST_CASE("with_timeout: bounds any awaitable") {
  test::run([]() -> asio::awaitable<void> {
    auto fast = co_await coronet::with_timeout(answer_after(10ms), 5s);
    REQUIRE(fast);
    CHECK(*fast == 42);
    auto slow = co_await coronet::with_timeout(answer_after(5s), 50ms);
    CHECK(slow.error() == std::errc::timed_out);

    auto done = co_await coronet::with_timeout(sleep_then_finish(10ms), 5s);
    CHECK(done);
    auto late = co_await coronet::with_timeout(sleep_then_finish(5s), 50ms);
    CHECK(late.error() == std::errc::timed_out);

    // An awaitable that already carries an error keeps its own type.
    auto [client, server] = co_await test::connected_pair();
    std::array<char, 8> buffer{};
    coronet::io_result cut =
        co_await coronet::with_timeout(server.recv(asio::buffer(buffer)), 50ms);
    CHECK(cut.error() == std::errc::timed_out);
    auto unlimited = co_await coronet::with_timeout(answer_after(10ms), no_timeout);
    CHECK(*unlimited == 42);
  });
}

namespace {

asio::awaitable<int> fail_at_once() {
  co_await test::sleep_for(1ms);
  throw std::runtime_error("failed at once");
}

asio::awaitable<void> fail_at_once_void() { (void)co_await fail_at_once(); }

}  // namespace

TEST_CASE("with_timeout: a task that throws passes its exception on at once") {
  // With a limit far beyond the test's deadline: waiting it out would fail the test.
  test::run(
      [&]() -> asio::awaitable<void> {
        bool thrown = false;
        try {
          (void)co_await coronet::with_timeout(fail_at_once(), 1h);
        } catch (const std::runtime_error& e) {
          thrown = std::string_view(e.what()) == "failed at once";
        }
        CHECK(thrown);
        thrown = false;
        try {
          (void)co_await coronet::with_timeout(fail_at_once_void(), 1h);
        } catch (const std::runtime_error& e) {
          thrown = std::string_view(e.what()) == "failed at once";
        }
        CHECK(thrown);
      },
      2s);
}

TEST_CASE("cancellation: a parallel group cancels a pending recv without losing data") {
  using namespace asio::experimental::awaitable_operators;
  test::run([]() -> asio::awaitable<void> {
    auto [client, server] = co_await test::connected_pair();
    std::array<char, 16> buffer{};
    // Another coroutine (the timer branch) wins; the recv is cancelled through its slot.
    auto first = co_await (test::sleep_for(50ms) || server.recv(asio::buffer(buffer)));
    CHECK(first.index() == 0);
    CHECK(co_await client.send_all(asio::buffer(std::string_view("kept"))));
    auto got = co_await server.recv(asio::buffer(buffer), 5s);
    REQUIRE(got);
    CHECK(std::string_view(buffer.data(), got.bytes()) == "kept");

    // The same with a socket default: the parent's cancellation still reaches the operation.
    server.set_timeout(10s);
    auto again = co_await (test::sleep_for(50ms) || server.recv(asio::buffer(buffer)));
    CHECK(again.index() == 0);
  });
}
