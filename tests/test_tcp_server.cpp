#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/log_capture.hpp"
#include "support/run.hpp"

using namespace std::chrono_literals;
using coronet::tcp_server;
using coronet::tcp_stream;
namespace test = coronet::test;

namespace {

// What the handlers saw: for each peer port, the runtime thread its handler ran on.
struct probe {
  explicit probe(coronet::runtime& r) : threads(r) {}
  coronet::runtime& threads;
  std::mutex mutex;
  std::map<std::uint16_t, std::size_t> thread_of_peer;
};

asio::awaitable<void> echo_noting_thread(std::shared_ptr<probe> seen, tcp_stream stream) {
  {
    std::lock_guard lock(seen->mutex);
    seen->thread_of_peer[stream.remote_endpoint().port()] = test::thread_index(seen->threads);
  }
  co_await test::echo_until_eof(std::move(stream));
}

tcp_server::handler_type noting_echo(const std::shared_ptr<probe>& seen) {
  return [seen](tcp_stream stream) { return echo_noting_thread(seen, std::move(stream)); };
}

// Polls until `server` has `count` open connections (a close takes a moment to reach it).
asio::awaitable<void> wait_for_count(const tcp_server& server, std::size_t count) {
  while (server.connection_count() != count) co_await test::sleep_for(5ms);
}

// connections() once every connection has counted its 4 bytes each way: a count is added
// when the server's coroutine resumes from the operation, which may be just after the client
// has the reply.
asio::awaitable<std::vector<coronet::connection_info>> settled_records(const tcp_server& server) {
  for (;;) {
    auto records = server.connections();
    if (std::all_of(records.begin(), records.end(),
                    [](const auto& r) { return r.bytes_received == 4 && r.bytes_sent == 4; })) {
      co_return records;
    }
    co_await test::sleep_for(2ms);
  }
}

// Closes the 8 clients that ping_clients() made, then checks the server's totals, which the
// ended connections' bytes now make, and that a stop has nobody left to cut off.
asio::awaitable<void> close_and_check_totals(tcp_server& server, std::vector<tcp_stream>& clients) {
  REQUIRE(clients.size() == 8);
  clients.clear();
  co_await wait_for_count(server, 0);
  const auto totals = server.stats();
  CHECK(totals.accepted == 8);
  CHECK(totals.open == 0);
  CHECK(totals.bytes_received == 32);
  CHECK(totals.bytes_sent == 32);
  CHECK(co_await server.stop(1s) == 0);
}

// What connections() says must match what the handlers saw and what the clients hold.
void check_records(const std::vector<coronet::connection_info>& records,
                   const std::vector<tcp_stream>& clients, probe& seen) {
  REQUIRE(records.size() == clients.size());
  std::set<int> fds;
  std::map<std::uint16_t, const tcp_stream*> client_of_port;
  for (const auto& client : clients) client_of_port[client.local_endpoint().port()] = &client;
  std::lock_guard lock(seen.mutex);
  for (const auto& record : records) {
    fds.insert(record.fd);
    CHECK(record.fd >= 0);
    const auto client = client_of_port.find(record.peer.port());
    REQUIRE(client != client_of_port.end());
    // Both ends whole, address and port: the client's two ends the other way round.
    CHECK(record.peer == client->second->local_endpoint());
    CHECK(record.local == client->second->remote_endpoint());
    CHECK(seen.thread_of_peer.at(record.peer.port()) == record.thread);
    CHECK(record.bytes_received == 4);
    CHECK(record.bytes_sent == 4);
    CHECK(record.started.time_since_epoch().count() > 0);
  }
  CHECK(fds.size() == records.size());  // every connection its own socket
}

}  // namespace

TEST_CASE("tcp_server: round_robin hands connections to every thread in turn") {
  coronet::runtime threads(4);
  auto seen = std::make_shared<probe>(threads);
  auto server = tcp_server::bind(threads, test::any_v4(), noting_echo(seen));
  test::running run(threads);
  test::run([&]() -> asio::awaitable<void> {
    auto clients = co_await test::ping_clients(server.local_endpoint(), 8);
    const auto records = co_await settled_records(server);
    check_records(records, clients, *seen);
    std::map<std::size_t, int> per_thread;
    for (const auto& record : records) ++per_thread[record.thread];
    CHECK(per_thread == std::map<std::size_t, int>{{0, 2}, {1, 2}, {2, 2}, {3, 2}});

    co_await close_and_check_totals(server, clients);
  });
}

TEST_CASE("tcp_server: two servers on one runtime each spread their own connections evenly") {
  coronet::runtime threads(2);
  auto seen_a = std::make_shared<probe>(threads);
  auto seen_b = std::make_shared<probe>(threads);
  auto a = tcp_server::bind(threads, test::any_v4(), noting_echo(seen_a));
  auto b = tcp_server::bind(threads, test::any_v4(), noting_echo(seen_b));
  test::running run(threads);
  test::run([&]() -> asio::awaitable<void> {
    // Alternately: a runtime-wide turn would give each server the same thread every time.
    std::vector<tcp_stream> clients;
    for (int i = 0; i < 4; ++i) {
      auto more = co_await test::ping_clients((i % 2 == 0 ? a : b).local_endpoint(), 1);
      clients.push_back(std::move(more.front()));
    }
    for (auto* seen : {seen_a.get(), seen_b.get()}) {
      std::lock_guard lock(seen->mutex);
      std::set<std::size_t> used;
      for (const auto& [port, thread] : seen->thread_of_peer) used.insert(thread);
      CHECK(seen->thread_of_peer.size() == 2);
      CHECK(used == std::set<std::size_t>{0, 1});
    }
  });
}

TEST_CASE("tcp_server: reuse_port gives every thread a listener of its own") {
  coronet::runtime threads(4);
  auto seen = std::make_shared<probe>(threads);
  auto server = tcp_server::bind(threads, test::any_v4(), noting_echo(seen),
                                 {.placement = coronet::placement::reuse_port});
  test::running run(threads);
  test::run([&]() -> asio::awaitable<void> {
    // The kernel spreads by a hash of the addresses: with 64 connections the chance that a
    // thread gets none is about 4 * (3/4)^64, 1e-7.
    auto clients = co_await test::ping_clients(server.local_endpoint(), 64);
    const auto records = co_await settled_records(server);
    check_records(records, clients, *seen);
    std::set<std::size_t> used;
    for (const auto& record : records) used.insert(record.thread);
    CHECK(used == std::set<std::size_t>{0, 1, 2, 3});
    clients.clear();  // each session ends on its own at eof: nothing left to cut off
    CHECK(co_await server.stop(5s) == 0);
  });
}

namespace {

asio::awaitable<void> plain_echo(tcp_stream stream) {
  co_await test::echo_until_eof(std::move(stream));
}

// Answers one message after a pause, then ends: a session in the middle of its work.
asio::awaitable<void> slow_reply(tcp_stream stream) {
  std::array<char, 4> message{};
  if (!co_await stream.recv_exact(asio::buffer(message))) co_return;
  co_await test::sleep_for(200ms);
  (void)co_await stream.send_all(asio::buffer(message));
}

// Throws when told "boom", echoes otherwise.
asio::awaitable<void> echo_or_throw(tcp_stream stream) {
  std::array<char, 4> message{};
  for (;;) {
    if (!co_await stream.recv_exact(asio::buffer(message))) co_return;
    if (std::string(message.data(), 4) == "boom") throw std::runtime_error("handler exploded");
    if (!co_await stream.send_all(asio::buffer(message))) co_return;
  }
}

asio::awaitable<void> stop_server(tcp_server& server, coronet::timeout grace, std::size_t& cut,
                                  bool& done) {
  cut = co_await server.stop(grace);
  done = true;
}

// Many clients at once, each checking every reply: the load that TSan watches.
asio::awaitable<void> chatty_client(coronet::endpoint server, int messages, test::wait_group& done,
                                    int& failures) {
  auto client = co_await tcp_stream::connect(server);
  if (!client) {
    ++failures;
    done.done();
    co_return;
  }
  std::array<char, 64> out{};
  std::array<char, 64> in{};
  for (int i = 0; i < messages; ++i) {
    out.fill(static_cast<char>('a' + i % 26));
    if (!co_await client->send_all(asio::buffer(out)) ||
        !co_await client->recv_exact(asio::buffer(in)) || in != out) {
      ++failures;
      break;
    }
  }
  done.done();
}

}  // namespace

TEST_CASE("tcp_server: at max_connections the next client waits in the backlog until one leaves") {
  for (const auto where : {coronet::placement::round_robin, coronet::placement::reuse_port}) {
    CAPTURE(static_cast<int>(where));
    coronet::runtime threads(2);
    auto server = tcp_server::bind(threads, test::any_v4(), plain_echo,
                                   {.placement = where, .max_connections = 2});
    test::running run(threads);
    test::run([&]() -> asio::awaitable<void> {
      auto first_two = co_await test::ping_clients(server.local_endpoint(), 2);
      auto third =
          co_await tcp_stream::connect(server.local_endpoint());  // completed by the kernel
      REQUIRE(third);
      REQUIRE(co_await third->send_all(asio::buffer("ping", 4)));
      std::array<char, 4> reply{};
      auto early = co_await third->recv_exact(asio::buffer(reply), 300ms);
      CHECK(early.error() == std::errc::timed_out);
      CHECK(server.connection_count() == 2);
      CHECK(server.stats().accepted == 2);

      first_two.pop_back();  // one leaves: the third is accepted and served
      auto late = co_await third->recv_exact(asio::buffer(reply), 5s);
      REQUIRE_MESSAGE(late, late.error().message());
      CHECK(std::string(reply.data(), 4) == "ping");
      CHECK(server.stats().accepted == 3);
      CHECK(server.connection_count() == 2);
      first_two.clear();
      third->close();
      CHECK(co_await server.stop(5s) == 0);
    });
  }
}

TEST_CASE("tcp_server: stop lets a session at work finish within the grace period") {
  coronet::runtime threads(2);
  auto server = tcp_server::bind(threads, test::any_v4(), slow_reply);
  test::running run(threads);
  test::run([&]() -> asio::awaitable<void> {
    auto client = co_await tcp_stream::connect(server.local_endpoint());
    REQUIRE(client);
    REQUIRE(co_await client->send_all(asio::buffer("ping", 4)));
    while (server.connection_count() == 0) co_await test::sleep_for(1ms);
    std::size_t cut = 99;
    bool stopped = false;
    coronet::spawn(co_await asio::this_coro::executor, stop_server(server, 5s, cut, stopped),
                   "stop");
    std::array<char, 4> reply{};
    auto got = co_await client->recv_exact(asio::buffer(reply));
    REQUIRE_MESSAGE(got, got.error().message());  // the reply came, after stop() began
    while (!stopped) co_await test::sleep_for(1ms);
    CHECK(cut == 0);
    CHECK(server.connection_count() == 0);
    // The listener is closed: nobody new gets in.
    auto late = co_await tcp_stream::connect(server.local_endpoint());
    CHECK(late.error() == std::errc::connection_refused);
  });
}

TEST_CASE("tcp_server: stop cuts off sessions still running after the grace period") {
  coronet::runtime threads(2);
  auto server = tcp_server::bind(threads, test::any_v4(), plain_echo);
  test::running run(threads);
  test::run([&]() -> asio::awaitable<void> {
    auto clients = co_await test::ping_clients(server.local_endpoint(), 3);  // and then stay silent
    CHECK(co_await server.stop(50ms) == 3);
    CHECK(server.connection_count() == 0);
    std::array<char, 1> byte{};
    for (auto& client : clients) {
      auto got = co_await client.recv(asio::buffer(byte), 5s);
      CHECK(!got);  // closed by the server: eof or reset, not a timeout
      CHECK(got.error() != std::errc::timed_out);
    }
    CHECK(co_await server.stop(1s) == 0);  // a second stop has nothing to do
  });
}

TEST_CASE("tcp_server: an exception from a handler is logged and the server goes on") {
  test::log_capture log;
  coronet::runtime threads(2);
  auto server = tcp_server::bind(threads, test::any_v4(), echo_or_throw);
  test::running run(threads);
  test::run([&]() -> asio::awaitable<void> {
    auto doomed = co_await tcp_stream::connect(server.local_endpoint());
    REQUIRE(doomed);
    REQUIRE(co_await doomed->send_all(asio::buffer("boom", 4)));
    std::array<char, 4> reply{};
    CHECK(!co_await doomed->recv_exact(asio::buffer(reply), 5s));  // its connection closed
    const auto expected =
        "connection 1 from " + doomed->local_endpoint().to_string() + ": handler exploded";
    // Logged as the task ends, just after its frame (and so the socket) has gone.
    while (log.text().find(expected) == std::string::npos) co_await test::sleep_for(5ms);
    auto fine = co_await test::ping_clients(server.local_endpoint(), 1);
    CHECK(server.stats().accepted == 2);
    fine.clear();
    CHECK(co_await server.stop(5s) == 0);
  });
}

// A handler that is a plain function may throw before any coroutine of its exists.
TEST_CASE(
    "tcp_server: a handler that throws before its coroutine starts is logged - the next is "
    "served") {
  test::log_capture log;
  coronet::runtime threads(1);
  auto calls = std::make_shared<std::atomic<int>>(0);
  auto server = tcp_server::bind(threads, test::any_v4(), [calls](tcp_stream stream) {
    if (calls->fetch_add(1) == 0) throw std::runtime_error("no session for you");
    return test::echo_until_eof(std::move(stream));
  });
  test::running run(threads);
  test::run([&]() -> asio::awaitable<void> {
    auto doomed = co_await tcp_stream::connect(server.local_endpoint());
    REQUIRE(doomed);
    std::array<char, 4> reply{};
    // Its connection is closed, and the server lists it no longer.
    CHECK(!co_await doomed->recv_exact(asio::buffer(reply), 5s));
    const auto expected = "connection 1 from " + doomed->local_endpoint().to_string() +
                          ": the handler threw: no session for you";
    while (log.text().find(expected) == std::string::npos) co_await test::sleep_for(5ms);
    co_await wait_for_count(server, 0);
    auto fine = co_await test::ping_clients(server.local_endpoint(), 1);
    CHECK(server.stats().accepted == 2);
    fine.clear();
    CHECK(co_await server.stop(5s) == 0);
  });
}

TEST_CASE("tcp_server: bind errors are thrown") {
  coronet::runtime threads(2);
  auto first = tcp_server::bind(threads, test::any_v4(), plain_echo);
  CHECK_THROWS_WITH_AS(tcp_server::bind(threads, first.local_endpoint(), plain_echo),
                       doctest::Contains("Address already in use"), std::system_error);
  CHECK_THROWS_AS(tcp_server::bind(threads, test::any_v4(), tcp_server::handler_type{}),
                  std::invalid_argument);
  CHECK_THROWS_AS(tcp_server::bind(threads, test::any_v4(), tcp_server::task_handler_type{}),
                  std::invalid_argument);
}

TEST_CASE("tcp_server: a server destroyed without stop() stops accepting and closes its sessions") {
  coronet::runtime threads(2);
  test::running run(threads);
  test::run([&]() -> asio::awaitable<void> {
    std::optional<tcp_server> server(tcp_server::bind(threads, test::any_v4(), plain_echo));
    const auto where = server->local_endpoint();
    auto clients = co_await test::ping_clients(where, 2);
    server.reset();
    std::array<char, 1> byte{};
    for (auto& client : clients) CHECK(!co_await client.recv(asio::buffer(byte), 5s));
    auto late = co_await tcp_stream::connect(where);
    CHECK(late.error() == std::errc::connection_refused);
  });
}

TEST_CASE("tcp_server: 1000 concurrent connections over 4 threads each get every reply") {
  const auto limit = coronet::raise_open_file_limit();
  REQUIRE(limit);
  if (*limit < 2200) {
    MESSAGE("skipped: the descriptor limit (" << *limit << ") is below 2200");
    return;
  }
  constexpr int connections = 1000;
  constexpr int messages = 8;
  coronet::runtime threads(4);
  auto server = tcp_server::bind(threads, test::any_v4(), plain_echo);
  test::running run(threads);
  test::run(
      [&]() -> asio::awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        test::wait_group done(executor);
        int failures = 0;
        done.add(connections);
        for (int i = 0; i < connections; ++i) {
          coronet::spawn(executor, chatty_client(server.local_endpoint(), messages, done, failures),
                         "client");
        }
        co_await done.wait();
        CHECK(failures == 0);
        co_await wait_for_count(server, 0);
        const auto totals = server.stats();
        CHECK(totals.accepted == connections);
        CHECK(totals.bytes_received == std::uint64_t{connections} * messages * 64);
        CHECK(totals.bytes_sent == std::uint64_t{connections} * messages * 64);
        CHECK(co_await server.stop(5s) == 0);
      },
      50s);
}

// With unlocked_io the reactor has no per-socket locks: a connection registered by any thread
// but its own would race with that thread's reactor, which recycles the descriptor states of
// the connections that closed before it (ThreadSanitizer reports it: this test's purpose in
// the tsan preset). Waves of short connections make those states recycle.
TEST_CASE("tcp_server: on a runtime with unlocked_io each thread registers its own connections") {
  constexpr int waves = 20;
  constexpr int per_wave = 40;
  coronet::runtime_options options;
  options.threads = 2;
  options.unlocked_io = true;
  coronet::runtime threads(options);
  auto seen = std::make_shared<probe>(threads);
  auto server = tcp_server::bind(threads, test::any_v4(), noting_echo(seen));
  test::running run(threads);
  test::run(
      [&]() -> asio::awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        int failures = 0;
        for (int wave = 0; wave < waves; ++wave) {
          test::wait_group done(executor);
          done.add(per_wave);
          for (int i = 0; i < per_wave; ++i) {
            coronet::spawn(executor, chatty_client(server.local_endpoint(), 4, done, failures),
                           "client");
          }
          co_await done.wait();
        }
        CHECK(failures == 0);
        co_await wait_for_count(server, 0);
        CHECK(server.stats().accepted == waves * per_wave);
        std::set<std::size_t> used;
        {
          std::lock_guard lock(seen->mutex);
          for (const auto& [port, thread] : seen->thread_of_peer) used.insert(thread);
        }
        CHECK(used == std::set<std::size_t>{0, 1});
        CHECK(co_await server.stop(5s) == 0);
      },
      30s);
}

// A connection accepted on thread 0 travels to its thread as a bare descriptor. If that
// thread never runs it (its context stopped, then the runtime destroyed), the descriptor is
// closed with the queued hand-over: the client reads the end, rather than waiting on a
// descriptor nobody owns.
TEST_CASE("tcp_server: a connection handed to a thread that no longer runs is closed, not leaked") {
  auto threads = std::make_unique<coronet::runtime>(2);
  auto server =
      std::make_unique<tcp_server>(tcp_server::bind(*threads, test::any_v4(), plain_echo));
  const auto where = server->local_endpoint();
  threads->start();
  threads->context(1).stop();  // no handler runs on context 1 from here on
  test::run([&]() -> asio::awaitable<void> {
    // The first connection goes to thread 0 and is served; the second waits for thread 1.
    auto served = co_await test::ping_clients(where, 1);
    REQUIRE(served.size() == 1);
    auto stranded = co_await tcp_stream::connect(where);
    REQUIRE(stranded);
    while (server->stats().accepted < 2) co_await test::sleep_for(2ms);

    server.reset();
    threads->stop();
    threads->join();
    threads.reset();  // destroys the queued hand-over, and with it the descriptor

    std::array<char, 4> reply{};
    auto got = co_await stranded->recv(asio::buffer(reply), 5s);
    CHECK(got.bytes() == 0);
    CHECK((got.error() == coronet::errc::eof || got.error() == std::errc::connection_reset));
  });
}

namespace {

// A task handler: echoes until eof over the lean path, noting its thread.
coronet::task<void> lean_echo(std::shared_ptr<probe> seen, coronet::lean_stream stream) {
  {
    std::lock_guard lock(seen->mutex);
    seen->thread_of_peer[stream.remote_endpoint().port()] = test::thread_index(seen->threads);
  }
  std::array<char, 256> buffer{};
  for (;;) {
    auto got = co_await stream.recv(asio::buffer(buffer));
    if (!got) break;
    if (!co_await stream.send_all(asio::buffer(buffer.data(), got.bytes()))) break;
  }
}

tcp_server::task_handler_type lean_noting_echo(const std::shared_ptr<probe>& seen) {
  return [seen](coronet::lean_stream stream) { return lean_echo(seen, std::move(stream)); };
}

coronet::task<void> lean_echo_or_throw(coronet::lean_stream stream) {
  std::array<char, 4> buffer{};
  auto got = co_await stream.recv_exact(asio::buffer(buffer));
  if (got && std::string_view(buffer.data(), 4) == "boom")
    throw std::runtime_error("lean exploded");
  if (got) (void)co_await stream.send_all(asio::buffer(buffer));
}

}  // namespace

TEST_CASE("tcp_server: a task handler serves every connection with a lean_stream on its thread") {
  for (const auto where : {coronet::placement::round_robin, coronet::placement::reuse_port}) {
    CAPTURE(static_cast<int>(where));
    coronet::runtime threads({.threads = 2, .unlocked_io = true});
    auto seen = std::make_shared<probe>(threads);
    auto server =
        tcp_server::bind(threads, test::any_v4(), lean_noting_echo(seen), {.placement = where});
    test::running run(threads);
    test::run([&]() -> asio::awaitable<void> {
      auto clients = co_await test::ping_clients(server.local_endpoint(), 8);
      const auto records = co_await settled_records(server);
      check_records(records, clients, *seen);
      if (where == coronet::placement::round_robin) {
        std::map<std::size_t, int> per_thread;
        for (const auto& record : records) ++per_thread[record.thread];
        CHECK(per_thread == std::map<std::size_t, int>{{0, 4}, {1, 4}});
      }
      co_await close_and_check_totals(server, clients);
    });
  }
}

TEST_CASE("tcp_server: stop cancels the task sessions still waiting after the grace period") {
  coronet::runtime threads(2);
  auto seen = std::make_shared<probe>(threads);
  auto server = tcp_server::bind(threads, test::any_v4(), lean_noting_echo(seen));
  test::running run(threads);
  test::run([&]() -> asio::awaitable<void> {
    auto clients = co_await test::ping_clients(server.local_endpoint(), 3);  // then silent
    CHECK(co_await server.stop(50ms) == 3);
    CHECK(server.connection_count() == 0);
    std::array<char, 1> byte{};
    for (auto& client : clients) {
      auto got = co_await client.recv(asio::buffer(byte), 5s);
      CHECK(!got);  // closed by the server, not a timeout
      CHECK(got.error() != std::errc::timed_out);
    }
  });
}

TEST_CASE("tcp_server: an exception from a task handler is logged with its connection") {
  test::log_capture log;
  coronet::runtime threads(2);
  auto server = tcp_server::bind(threads, test::any_v4(), lean_echo_or_throw);
  test::running run(threads);
  test::run([&]() -> asio::awaitable<void> {
    auto doomed = co_await tcp_stream::connect(server.local_endpoint());
    REQUIRE(doomed);
    REQUIRE(co_await doomed->send_all(asio::buffer("boom", 4)));
    std::array<char, 4> reply{};
    CHECK(!co_await doomed->recv_exact(asio::buffer(reply), 5s));  // its connection closed
    const auto expected =
        "connection 1 from " + doomed->local_endpoint().to_string() + ": lean exploded";
    while (log.text().find(expected) == std::string::npos) co_await test::sleep_for(5ms);
    auto fine = co_await tcp_stream::connect(server.local_endpoint());
    REQUIRE(fine);
    REQUIRE(co_await fine->send_all(asio::buffer("fine", 4)));
    REQUIRE(co_await fine->recv_exact(asio::buffer(reply), 5s));
    CHECK(std::string_view(reply.data(), 4) == "fine");
    CHECK(co_await server.stop(5s) == 0);
  });
}
