#pragma once
// Helpers that every coroutine test uses: a deadline, loopback endpoints, connected pairs.

#include <chrono>
#include <exception>
#include <functional>
#include <future>
#include <thread>
#include <utility>

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <doctest/doctest.h>
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "coronet/coronet.hpp"

namespace coronet::test {

using namespace std::chrono_literals;

/// Runs `body()` as a coroutine on a fresh io_context and fails the test if it has not finished
/// within `deadline`, so that a bug fails fast instead of hanging CI. An exception thrown by
/// the body (a failed REQUIRE included) is rethrown here.
inline void run(const std::function<asio::awaitable<void>()>& body,
                std::chrono::milliseconds deadline = 10s) {
  asio::io_context context;
  bool finished = false;
  std::exception_ptr failure;
  asio::co_spawn(context, body(), [&](std::exception_ptr e) {
    finished = true;
    failure = std::move(e);
  });
  context.run_for(deadline);
  if (failure) std::rethrow_exception(failure);
  REQUIRE_MESSAGE(finished, "test coroutine did not finish within its deadline");
}

/// Runs `body()` as a coronet::task on a fresh io_context, as run() does an awaitable: it
/// fails the test if the task has not ended within `deadline`, and rethrows what escaped it.
inline void run_task(const std::function<task<void>(asio::io_context&)>& body,
                     std::chrono::milliseconds deadline = 10s) {
  asio::io_context context;
  bool finished = false;
  std::exception_ptr failure;
  {
    task_group group(context.get_executor());
    group.spawn(body(context), [&](std::exception_ptr e) {
      finished = true;
      failure = std::move(e);
    });
    context.run_for(deadline);
  }
  if (failure) std::rethrow_exception(failure);
  REQUIRE_MESSAGE(finished, "test task did not finish within its deadline");
}

/// 127.0.0.1 with port 0: the kernel picks a free port.
inline endpoint any_v4() { return endpoint(asio::ip::address_v4::loopback(), 0); }

/// A connected pair of streams over loopback: {client side, server side}.
inline asio::awaitable<std::pair<tcp_stream, tcp_stream>> connected_pair(
    const endpoint& where = any_v4()) {
  auto listener = tcp_listener::bind(co_await asio::this_coro::executor, where);
  auto client = co_await tcp_stream::connect(listener.local_endpoint());
  REQUIRE(client);
  auto server = co_await listener.accept();
  REQUIRE(server);
  co_return std::pair<tcp_stream, tcp_stream>{std::move(*client), std::move(*server)};
}

}  // namespace coronet::test

namespace coronet::test {

/// Lets a coroutine wait until a number of spawned tasks have called done().
class wait_group {
 public:
  explicit wait_group(const asio::any_io_executor& executor)
      : timer_(executor, asio::steady_timer::time_point::max()) {}

  void add(std::size_t n = 1) noexcept { count_ += n; }
  void done() {
    if (--count_ == 0) timer_.cancel();
  }
  asio::awaitable<void> wait() {
    while (count_ > 0)
      co_await timer_.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
  }

 private:
  asio::steady_timer timer_;
  std::size_t count_ = 0;
};

/// Echoes everything `stream` receives until eof, then half-closes: a minimal peer for tests.
inline asio::awaitable<void> echo_until_eof(tcp_stream stream) {
  std::array<char, 8192> buffer;
  for (;;) {
    auto got = co_await stream.recv(asio::buffer(buffer));
    if (!got) break;
    if (!co_await stream.send_all(asio::buffer(buffer.data(), got.bytes()))) break;
  }
  (void)stream.shutdown(shutdown_type::send);
}

/// Connects `count` clients to `server` and has each one's "ping" echoed back, so that every
/// one of them is in the server's connection table when this returns.
inline asio::awaitable<std::vector<tcp_stream>> ping_clients(endpoint server, std::size_t count) {
  std::vector<tcp_stream> clients;
  for (std::size_t i = 0; i < count; ++i) {
    auto client = co_await tcp_stream::connect(server);
    REQUIRE(client);
    clients.push_back(std::move(*client));
  }
  for (auto& client : clients) {
    REQUIRE(co_await client.send_all(asio::buffer(std::string_view("ping"))));
    std::array<char, 4> reply{};
    auto got = co_await client.recv_exact(asio::buffer(reply), std::chrono::seconds(5));
    REQUIRE_MESSAGE(got, got.error().message());
    CHECK(std::string_view(reply.data(), reply.size()) == "ping");
  }
  co_return clients;
}

/// The endpoint in a program's ready line, `listening <kind> <endpoint>` (a real port, not 0).
inline endpoint ready_endpoint(const std::optional<std::string>& line,
                               const std::string& kind = "tcp") {
  REQUIRE_MESSAGE(line.has_value(), "the program printed no ready line");
  const std::string prefix = "listening " + kind + " ";
  REQUIRE_MESSAGE(line->rfind(prefix, 0) == 0, *line);
  auto ep = endpoint::parse(line->substr(prefix.size()));
  REQUIRE_MESSAGE(ep, *line);
  CHECK(ep->port() != 0);
  return *ep;
}

/// What is left of the time until `deadline`, never negative.
inline std::chrono::milliseconds left_until(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return std::max(left, std::chrono::milliseconds(0));
}

/// Pauses the calling coroutine.
inline asio::awaitable<void> sleep_for(std::chrono::milliseconds duration) {
  asio::steady_timer timer(co_await asio::this_coro::executor, duration);
  co_await timer.async_wait(asio::use_awaitable);
}

/// `size` bytes that differ from one position and one `seed` to the next, so that data lost,
/// repeated, reordered or from another stream is caught.
inline std::vector<char> pattern(std::size_t size, unsigned seed) {
  std::vector<char> out(size);
  for (std::size_t i = 0; i < size; ++i)
    out[i] = static_cast<char>((i * 7 + seed * 13 + i / 251) & 0xFF);
  return out;
}

/// pattern() as text.
inline std::string pattern_text(std::size_t size, unsigned seed) {
  const auto bytes = pattern(size, seed);
  return {bytes.begin(), bytes.end()};
}

/// Sends `data` whole on `stream` after `delay`; for a spawned sender.
inline asio::awaitable<void> send_after(tcp_stream& stream, std::chrono::milliseconds delay,
                                        std::string data) {
  co_await sleep_for(delay);
  CHECK(co_await stream.send_all(asio::buffer(data)));
}

/// `payload` over a new TCP connection to `where`, echoed back whole, each step within `limit`.
inline asio::awaitable<void> expect_echo(endpoint where, std::string payload,
                                         std::chrono::milliseconds limit = 5s) {
  auto stream = co_await tcp_stream::connect(where, {.limit = limit});
  REQUIRE_MESSAGE(stream, stream.error().message());
  REQUIRE(co_await stream->send_all(asio::buffer(payload), limit));
  std::string back(payload.size(), '\0');
  auto got = co_await stream->recv_exact(asio::buffer(back), limit);
  REQUIRE_MESSAGE(got, got.error().message());
  CHECK(back == payload);
}

/// Whether this machine has an IPv6 loopback (::1) to bind to.
inline bool has_ipv6_loopback() {
  asio::io_context context;
  asio::ip::tcp::acceptor probe(context);
  std::error_code ec;
  probe.open(asio::ip::tcp::v6(), ec);
  if (!ec) probe.bind({asio::ip::address_v6::loopback(), 0}, ec);
  return !ec;
}

}  // namespace coronet::test

namespace coronet::test {

/// The loopback endpoints (port 0) every TCP and UDP test runs on: 127.0.0.1, and [::1] where
/// the machine has an IPv6 loopback (otherwise a message says that half is skipped).
inline std::vector<endpoint> loopbacks() {
  std::vector<endpoint> out{any_v4()};
  if (has_ipv6_loopback()) {
    out.emplace_back(asio::ip::address_v6::loopback(), 0);
  } else {
    MESSAGE("skipped on [::1]: this machine has no IPv6 loopback");
  }
  return out;
}

/// A fresh directory under the system's temp directory, removed with everything in it when
/// this goes away: where Unix-domain socket files of a test live.
class temp_dir {
 public:
  temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "coronet-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr)
      throw std::system_error(errno, std::system_category(), "mkdtemp");
    path_ = pattern;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }

  const std::filesystem::path& path() const noexcept { return path_; }

  /// `unix:<dir>/<name>`.
  endpoint socket(const std::string& name) const {
    return endpoint::unix_domain((path_ / name).string()).value();
  }

 private:
  std::filesystem::path path_;
};

/// A Linux abstract name unique to this process and call: `unix:@coronet-test-<pid>-<n>`.
inline endpoint unique_abstract_name() {
  static int counter = 0;
  return endpoint::unix_domain("@coronet-test-" + std::to_string(::getpid()) + "-" +
                               std::to_string(++counter))
      .value();
}

}  // namespace coronet::test

namespace coronet::test {

/// Runs a runtime's threads for the life of a scope: start() now, stop() and join() at the end,
/// so that a test body (on the main thread) talks to servers running on them.
class running {
 public:
  explicit running(runtime& threads) : threads_(threads) { threads_.start(); }
  running(const running&) = delete;
  running& operator=(const running&) = delete;
  ~running() {
    threads_.stop();
    threads_.join();
  }

 private:
  runtime& threads_;
};

/// run()s `threads` on another thread and waits at most `deadline` for it to return; if it has
/// not, stops it and returns false, so that a runtime that never stops fails a test.
inline bool run_within(runtime& threads, std::chrono::milliseconds deadline) {
  std::promise<void> ended;
  auto done = ended.get_future();
  std::thread runner([&] {
    threads.run();
    ended.set_value();
  });
  const bool in_time = done.wait_for(deadline) == std::future_status::ready;
  if (!in_time) threads.stop();
  runner.join();
  return in_time;
}

/// Which of `threads`' contexts the calling thread runs; threads.size() when none.
inline std::size_t thread_index(runtime& threads) {
  for (std::size_t k = 0; k < threads.size(); ++k) {
    if (threads.context(k).get_executor().running_in_this_thread()) return k;
  }
  return threads.size();
}

}  // namespace coronet::test
