#include <doctest/doctest.h>

#include <algorithm>
#include <exception>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

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

TEST_CASE(
    "task_group: on_end gets each task's outcome - before stop returns - and nothing is logged") {
  const coronet::test::log_capture captured;
  test::run([]() -> asio::awaitable<void> {
    task_group group(co_await asio::this_coro::executor);
    int finished = 0;
    std::vector<std::string> outcomes;
    const auto record = [&outcomes](std::exception_ptr error) {
      if (!error) {
        outcomes.emplace_back("ok");
        return;
      }
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        outcomes.emplace_back(e.what());
      }
    };
    group.spawn(finish_after(5ms, finished), record);
    group.spawn(throws(), record);
    CHECK(co_await group.stop(5s) == 0);
    std::sort(outcomes.begin(), outcomes.end());
    CHECK(outcomes == std::vector<std::string>{"broken session", "ok"});
    CHECK(finished == 1);
  });
  CHECK(captured.text().find("broken session") == std::string::npos);
}

TEST_CASE("task_group: on_end that throws is logged - the group goes on") {
  const coronet::test::log_capture captured;
  test::run([]() -> asio::awaitable<void> {
    task_group group(co_await asio::this_coro::executor);
    int finished = 0;
    group.spawn(finish_after(1ms, finished),
                [](std::exception_ptr) { throw std::runtime_error("end handler broke"); });
    group.spawn(finish_after(5ms, finished), [](std::exception_ptr) {});
    CHECK(co_await group.stop(5s) == 0);
    CHECK(finished == 2);
    CHECK(group.size() == 0);
  });
  CHECK(captured.text().find("a task's end handler threw: end handler broke") != std::string::npos);
}

TEST_CASE("task_group: a task whose context is destroyed releases what on_end holds - uncalled") {
  auto held = std::make_shared<int>(7);
  const std::weak_ptr<int> watch = held;
  bool called = false;
  {
    asio::io_context context(1);
    task_group group(context.get_executor());
    group.spawn(test::sleep_for(10s),
                [held = std::move(held), &called](std::exception_ptr) { called = true; });
    context.run_for(20ms);  // the task starts and waits
    CHECK_FALSE(watch.expired());
  }  // the group, then the context and with it the task's frame
  CHECK(watch.expired());
  CHECK_FALSE(called);
}
