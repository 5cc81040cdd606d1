#include <doctest/doctest.h>

#include <memory>
#include <sstream>
#include <stdexcept>

#include "support/log_capture.hpp"
#include "support/run.hpp"

using namespace std::chrono_literals;
using coronet::task_group;
namespace test = coronet::test;

namespace {

asio::awaitable<void> finish_after(std::chrono::milliseconds delay, int& finished) {
  co_await test::sleep_for(delay);
  ++finished;
}

// A session that waits for its peer forever, counting how it ended.
asio::awaitable<void> wait_for_peer(coronet::tcp_stream stream, int& cancelled) {
  std::array<char, 16> buffer{};
  auto got = co_await stream.recv(asio::buffer(buffer));
  if (got.error() == std::errc::operation_canceled) ++cancelled;
}

// Ignores the first cancellation and awaits again: Asio then throws operation_aborted.
asio::awaitable<void> stubborn(int& reached) {
  std::array<char, 1> one{};
  auto [a, b] = coronet::unix_stream::socket_pair(co_await asio::this_coro::executor);
  (void)co_await a.recv(asio::buffer(one));
  ++reached;
  co_await test::sleep_for(10s);
}

asio::awaitable<void> stop_group(task_group& group, coronet::timeout grace, std::size_t& cut,
                                 bool& stopped) {
  cut = co_await group.stop(grace);
  stopped = true;
}

asio::awaitable<void> throws() {
  co_await test::sleep_for(1ms);
  throw std::runtime_error("broken session");
}

}  // namespace

TEST_CASE("task_group: tasks that finish within the grace period are not cancelled") {
  test::run([]() -> asio::awaitable<void> {
    task_group group(co_await asio::this_coro::executor);
    int finished = 0;
    for (int i = 0; i < 5; ++i) group.spawn(finish_after(20ms * i, finished), "quick");
    CHECK(group.size() == 5);
    const auto cancelled = co_await group.stop(5s);
    CHECK(cancelled == 0);
    CHECK(finished == 5);
    CHECK(group.size() == 0);
  });
}

TEST_CASE("task_group: after the grace period the rest are cancelled and every one ends") {
  test::run([]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    auto listener = coronet::tcp_listener::bind(executor, test::any_v4());
    task_group group(executor);
    int cancelled_sessions = 0;
    int finished = 0;
    std::vector<coronet::tcp_stream> clients;
    for (int i = 0; i < 10; ++i) {
      clients.push_back((co_await coronet::tcp_stream::connect(listener.local_endpoint())).value());
      group.spawn(wait_for_peer((co_await listener.accept()).value(), cancelled_sessions),
                  "session");
    }
    group.spawn(finish_after(10ms, finished), "quick");
    const auto cut = co_await group.stop(100ms);
    CHECK(cut == 10);
    CHECK(cancelled_sessions == 10);
    CHECK(finished == 1);
    CHECK(group.size() == 0);
    // Their sockets were closed with their frames: every client reads the end.
    std::array<char, 4> buffer{};
    for (auto& c : clients)
      CHECK((co_await c.recv(asio::buffer(buffer), 2s)).error() == coronet::errc::eof);
  });
}

TEST_CASE("task_group: a task that awaits again after cancellation still ends and logs no error") {
  const coronet::test::log_capture captured;
  test::run([]() -> asio::awaitable<void> {
    task_group group(co_await asio::this_coro::executor);
    int reached = 0;
    group.spawn(stubborn(reached), "stubborn");
    CHECK(co_await group.stop(50ms) == 1);
    CHECK(reached == 1);
    CHECK(group.size() == 0);
  });
  CHECK(captured.text().find("[error]") == std::string::npos);
}

TEST_CASE("task_group: an exception escaping a task is logged with its name") {
  const coronet::test::log_capture captured;
  test::run([]() -> asio::awaitable<void> {
    task_group group(co_await asio::this_coro::executor);
    group.spawn(throws(), "session 9");
    CHECK(co_await group.stop(5s) == 0);
  });
  CHECK(captured.text().find("session 9: broken session") != std::string::npos);
}

TEST_CASE("task_group: a task spawned once stop has begun is cancelled at once") {
  test::run([]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    task_group group(executor);
    int finished = 0;
    group.spawn(finish_after(100ms, finished), "slow");
    std::size_t cut = 99;
    bool stopped = false;
    coronet::spawn(executor, stop_group(group, 5s, cut, stopped), "stopper");
    co_await test::sleep_for(10ms);

    auto [client, server] = co_await test::connected_pair();
    int cancelled = 0;
    group.spawn(wait_for_peer(std::move(server), cancelled), "late");
    co_await test::sleep_for(50ms);
    CHECK(cancelled == 1);  // ended although its peer never spoke
    for (int i = 0; i < 200 && !stopped; ++i) co_await test::sleep_for(10ms);
    CHECK(stopped);
    CHECK(cut == 0);  // the slow one finished within the grace period
    CHECK(finished == 1);
  });
}
