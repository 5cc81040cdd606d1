// coronet::task: values and exceptions through nested tasks, spawning, and what becomes of a
// task whose context shuts down.
#include <doctest/doctest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <memory>
#include <stdexcept>
#include <string>

#include <asio/execution/context.hpp>
#include <asio/query.hpp>

#include "support/log_capture.hpp"
#include "support/run.hpp"

using namespace std::chrono_literals;
namespace test = coronet::test;

namespace {

coronet::task<int> forty_two() { co_return 42; }

coronet::task<std::string> doubled(int n) {
  const int value = co_await forty_two();
  co_return std::to_string(value * n);
}

coronet::task<int> throws_after(int depth) {
  if (depth == 0) throw std::runtime_error("deep failure");
  co_return co_await throws_after(depth - 1);
}

// Counts how many of its kind are alive: a frame destroyed with its task takes it along.
struct alive_counter {
  explicit alive_counter(int& n) : count(n) { ++count; }
  alive_counter(const alive_counter&) = delete;
  alive_counter& operator=(const alive_counter&) = delete;
  ~alive_counter() { --count; }
  int& count;
};

coronet::task<void> explode() { (void)co_await throws_after(1); }

// Waits for a byte that never comes, holding a counter in its frame.
coronet::task<void> wait_forever(coronet::lean_stream stream, int& alive) {
  alive_counter held(alive);
  std::array<char, 1> byte{};
  (void)co_await stream.recv(asio::buffer(byte));
  FAIL("the receive ended");
}

}  // namespace

TEST_CASE("task: values come back through nested tasks") {
  test::run_task([](asio::io_context&) -> coronet::task<void> {
    CHECK(co_await forty_two() == 42);
    CHECK(co_await doubled(3) == "126");
  });
}

TEST_CASE("task: an exception reaches the awaiting task through every level") {
  test::run_task([](asio::io_context&) -> coronet::task<void> {
    std::string what;
    try {
      (void)co_await throws_after(5);
    } catch (const std::runtime_error& e) {
      what = e.what();
    }
    CHECK(what == "deep failure");
  });
}

TEST_CASE("task: an exception escaping a spawned task is logged with its name") {
  test::log_capture log;
  asio::io_context context;
  coronet::spawn(context, explode(), "exploder");
  context.run_for(5s);
  CHECK(log.text().find("exploder: deep failure") != std::string::npos);
}

TEST_CASE("task: a task waiting as its context is destroyed goes with its frame and socket") {
  int alive = 0;
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
  {
    asio::io_context context;
    coronet::spawn(context, wait_forever(coronet::lean_stream(context, fds[1]), alive), "waiter");
    context.run_for(50ms);  // it starts, and waits
    CHECK(alive == 1);
  }
  CHECK(alive == 0);
  char byte = 0;
  CHECK(::recv(fds[0], &byte, 1, MSG_DONTWAIT) == 0);  // the peer reads the end: closed
  ::close(fds[0]);
}

TEST_CASE("task: a spawned task that never started is destroyed with its context") {
  int alive = 0;
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
  {
    asio::io_context context;
    coronet::spawn(context, wait_forever(coronet::lean_stream(context, fds[1]), alive), "waiter");
  }
  CHECK(alive == 0);
  char byte = 0;
  CHECK(::recv(fds[0], &byte, 1, MSG_DONTWAIT) == 0);
  ::close(fds[0]);
}

TEST_CASE("task: task_group stop cancels a waiting task, which ends with operation_canceled") {
  test::run([]() -> asio::awaitable<void> {
    auto& context = static_cast<asio::io_context&>(
        asio::query(co_await asio::this_coro::executor, asio::execution::context));
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    coronet::task_group group(co_await asio::this_coro::executor);
    auto first = std::make_shared<std::error_code>();
    auto second = std::make_shared<std::error_code>();
    group.spawn(
        [](coronet::lean_stream stream, std::shared_ptr<std::error_code> a,
           std::shared_ptr<std::error_code> b) -> coronet::task<void> {
          std::array<char, 1> byte{};
          *a = (co_await stream.recv(asio::buffer(byte))).error();
          // Once cancelled, every later operation ends at once the same way.
          *b = (co_await stream.recv(asio::buffer(byte))).error();
        }(coronet::lean_stream(context, fds[1]), first, second),
        "reader");
    CHECK(group.size() == 1);
    CHECK(co_await group.stop(20ms) == 1);
    CHECK(group.size() == 0);
    CHECK(*first == std::errc::operation_canceled);
    CHECK(*second == std::errc::operation_canceled);
    ::close(fds[0]);
  });
}
