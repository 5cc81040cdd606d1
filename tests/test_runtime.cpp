#include <doctest/doctest.h>

#include <atomic>
#include <csignal>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "support/log_capture.hpp"
#include "support/run.hpp"

using namespace std::chrono_literals;
using coronet::runtime;
namespace test = coronet::test;

namespace {

// Notes which thread ran it, under a lock: the tasks run on several threads at once.
struct sightings {
  std::mutex mutex;
  std::map<std::size_t, int> per_context;  // context index -> tasks seen there
  std::set<std::thread::id> threads;
  std::atomic<int> pending{0};
};

asio::awaitable<void> note_thread(runtime& threads, sightings& seen) {
  co_await test::sleep_for(1ms);  // resumed by its own context's timer
  {
    std::lock_guard lock(seen.mutex);
    ++seen.per_context[test::thread_index(threads)];
    seen.threads.insert(std::this_thread::get_id());
  }
  if (--seen.pending == 0) threads.stop();
}

asio::awaitable<void> throw_after_a_moment() {
  co_await test::sleep_for(1ms);
  throw std::runtime_error("lost in a coroutine");
}

asio::awaitable<void> stop_after_a_moment(runtime& threads) {
  co_await test::sleep_for(1ms);
  threads.stop();
}

// Sets `destroyed` when the coroutine frame holding it goes away.
struct frame_witness {
  std::atomic<bool>& destroyed;
  ~frame_witness() { destroyed = true; }
};

asio::awaitable<void> wait_forever(std::atomic<bool>& started, std::atomic<bool>& destroyed) {
  const frame_witness witness{destroyed};
  started = true;
  co_await test::sleep_for(1h);
}

asio::awaitable<void> graceful(std::atomic<bool>& ran) {
  co_await test::sleep_for(10ms);
  ran = true;
}

asio::awaitable<void> graceful_that_hangs(std::atomic<bool>& entered) {
  entered = true;
  co_await test::sleep_for(1h);
}

}  // namespace

TEST_CASE("runtime: spawn(index) runs on that context and each context has a thread of its own") {
  runtime threads(4);
  REQUIRE(threads.size() == 4);
  sightings seen;
  seen.pending = 8;
  for (std::size_t k = 0; k < 8; ++k) {
    threads.spawn(k % 4, note_thread(threads, seen), "note");
  }
  REQUIRE(test::run_within(threads, 10s));
  CHECK(seen.per_context == std::map<std::size_t, int>{{0, 2}, {1, 2}, {2, 2}, {3, 2}});
  CHECK(seen.threads.size() == 4);
  CHECK(seen.threads.count(std::this_thread::get_id()) == 0);
}

TEST_CASE("runtime: spawn() without an index goes round-robin") {
  runtime threads(3);
  sightings seen;
  seen.pending = 9;
  for (int i = 0; i < 9; ++i) threads.spawn(note_thread(threads, seen), "note");
  REQUIRE(test::run_within(threads, 10s));
  CHECK(seen.per_context == std::map<std::size_t, int>{{0, 3}, {1, 3}, {2, 3}});
}

TEST_CASE("runtime: the default size is the hardware's thread count") {
  runtime threads;
  CHECK(threads.size() == std::max(1U, std::thread::hardware_concurrency()));
}

TEST_CASE("runtime: bad arguments are refused") {
  CHECK_THROWS_AS(runtime(0), std::invalid_argument);
  runtime threads(2);
  CHECK_THROWS_AS(threads.executor(2), std::out_of_range);
  CHECK_THROWS_AS(threads.spawn(5, throw_after_a_moment(), "nowhere"), std::out_of_range);
  threads.stop();
  threads.run();  // stopped before it started: returns at once
  CHECK_THROWS_AS(threads.start(), std::logic_error);
}

TEST_CASE("runtime: an exception escaping a spawned coroutine is logged") {
  test::log_capture log;
  runtime threads(2);
  threads.spawn(1, throw_after_a_moment(), "doomed task");
  threads.spawn(1, stop_after_a_moment(threads), "stopper");
  REQUIRE(test::run_within(threads, 10s));
  CHECK(log.text().find("doomed task: lost in a coroutine") != std::string::npos);
}

TEST_CASE("runtime: a throwing plain handler is logged and its thread goes on") {
  test::log_capture log;
  runtime threads(2);
  std::atomic<bool> after{false};
  asio::post(threads.executor(1), [] { throw std::runtime_error("handler blew up"); });
  asio::post(threads.executor(1), [&] {
    after = true;
    threads.stop();
  });
  REQUIRE(test::run_within(threads, 10s));
  CHECK(after);
  CHECK(log.text().find("coronet-1: a handler threw: handler blew up") != std::string::npos);
}

TEST_CASE("runtime: stop() from one of its own threads ends run()") {
  runtime threads(2);
  threads.spawn(0, stop_after_a_moment(threads), "stopper");
  REQUIRE(test::run_within(threads, 10s));
  CHECK(threads.stopped());
}

TEST_CASE("runtime: unfinished coroutines are destroyed with the runtime") {
  std::atomic<bool> started{false};
  std::atomic<bool> destroyed{false};
  {
    runtime threads(2);
    threads.spawn(1, wait_forever(started, destroyed), "forever");
    threads.start();
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!started && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(1ms);
    REQUIRE(started);
    threads.stop();
    threads.join();
    CHECK_FALSE(destroyed);  // stopped, not yet destroyed
  }
  CHECK(destroyed);
}

TEST_CASE("runtime: the first SIGTERM runs the graceful stop and then stops") {
  runtime threads(2);
  std::atomic<bool> ran{false};
  threads.handle_signals([&] { return graceful(ran); });
  // Caught by the runtime's handler, whichever thread it lands on: the process lives on.
  std::thread signaller([] { ::raise(SIGTERM); });
  REQUIRE(test::run_within(threads, 10s));
  signaller.join();
  CHECK(ran);
}

TEST_CASE("runtime: a second signal stops at once when the graceful stop hangs") {
  test::log_capture log;
  runtime threads(2);
  std::atomic<bool> entered{false};
  threads.handle_signals([&] { return graceful_that_hangs(entered); });
  std::thread signaller([&] {
    ::raise(SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!entered && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
    }
    ::raise(SIGINT);
  });
  REQUIRE(test::run_within(threads, 10s));
  signaller.join();
  CHECK(entered);
  CHECK(log.text().find("stopping now") != std::string::npos);
}

TEST_CASE("runtime: without a graceful stop the first signal stops") {
  runtime threads(1);
  threads.handle_signals();
  std::thread signaller([] { ::raise(SIGINT); });
  REQUIRE(test::run_within(threads, 10s));
  signaller.join();
  CHECK_THROWS_AS(threads.handle_signals(), std::logic_error);
}

namespace {

asio::awaitable<void> note_and_stop(runtime& threads, std::thread::id& ran_on) {
  ran_on = std::this_thread::get_id();
  threads.stop();
  co_return;
}

}  // namespace

TEST_CASE("runtime: run() runs context 0 on the calling thread") {
  runtime threads(2);
  std::thread::id ran_on;
  threads.spawn(0, note_and_stop(threads, ran_on), "note");
  // The backstop: a run() that never returns fails instead of hanging.
  std::atomic<bool> returned{false};
  std::thread watchdog([&] {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!returned && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
    }
    threads.stop();
  });
  threads.run();
  returned = true;
  watchdog.join();
  CHECK(ran_on == std::this_thread::get_id());
}
