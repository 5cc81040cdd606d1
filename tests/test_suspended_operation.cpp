#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <asio/post.hpp>

#include "support/run.hpp"

using namespace std::chrono_literals;
using coronet::suspended_operation;
using coronet::suspended_report;
using coronet::tcp_server;
using coronet::tcp_stream;
namespace test = coronet::test;

namespace {

// The lines of the co_awaits below, which the reports must name; each function notes its own
// (a relaxed atomic: the reports that read it come through the runtime's queues).
std::atomic<std::uint32_t> recv_line{0};
std::atomic<std::uint32_t> sleep_line{0};
std::atomic<std::uint32_t> read_line_line{0};

// A handler that waits in one recv() until its client sends or leaves.
asio::awaitable<void> wait_in_recv(tcp_stream stream) {
  std::array<char, 16> buffer;
  recv_line = __LINE__ + 1;
  auto got = co_await stream.recv(asio::buffer(buffer));
  if (got) (void)co_await stream.send_all(asio::buffer(buffer.data(), got.bytes()));
}

// Sleeps for longer than any test runs, until cancelled.
asio::awaitable<void> sleep_long() {
  sleep_line = __LINE__ + 1;
  (void)co_await coronet::sleep(std::chrono::hours(1));
}

// Reads a line through a stream_reader: the wait is its caller's, here.
asio::awaitable<void> read_a_line(tcp_stream stream) {
  coronet::stream_reader reader(stream);
  read_line_line = __LINE__ + 1;
  auto line = co_await reader.read_line();
  if (line) (void)co_await stream.send_all(asio::buffer(std::string(*line) + "\n"));
}

// The operations of `kind` in `report`.
std::vector<suspended_operation> of_kind(const suspended_report& report, const std::string& kind) {
  std::vector<suspended_operation> out;
  std::copy_if(report.operations.begin(), report.operations.end(), std::back_inserter(out),
               [&kind](const auto& op) { return op.kind == kind; });
  return out;
}

// Gathers reports until one has `count` operations of `kind` (a wait is recorded when the
// operation starts, which may be just after the client has its connection).
asio::awaitable<suspended_report> report_with(const coronet::runtime& threads,
                                              const std::string& kind, std::size_t count) {
  for (;;) {
    auto report = co_await threads.suspended_operations();
    if (of_kind(report, kind).size() == count) co_return report;
    co_await test::sleep_for(5ms);
  }
}

bool ends_with(const std::string& text, const std::string& end) {
  return text.size() >= end.size() && text.compare(text.size() - end.size(), end.size(), end) == 0;
}

}  // namespace

TEST_CASE("suspended_operations: each connection's recv, with the line of its co_await") {
  coronet::runtime threads({.threads = 2, .observe = true});
  auto server = tcp_server::bind(threads, test::any_v4(), wait_in_recv);
  test::running run(threads);
  test::run([&]() -> asio::awaitable<void> {
    std::vector<tcp_stream> clients;
    for (int i = 0; i < 2; ++i) {
      auto client = co_await tcp_stream::connect(server.local_endpoint());
      REQUIRE(client);
      clients.push_back(std::move(*client));
    }
    (void)co_await report_with(threads, "recv", 2);
    co_await test::sleep_for(60ms);
    const auto before = std::chrono::system_clock::now();
    const auto report = co_await threads.suspended_operations();
    CHECK(report.observing);
    CHECK(report.unanswered.empty());
    CHECK(report.at >= before);

    const auto recvs = of_kind(report, "recv");
    REQUIRE(recvs.size() == 2);
    std::vector<std::size_t> threads_of;
    for (const auto& op : recvs) {
      CHECK(ends_with(op.file, "test_suspended_operation.cpp"));
      CHECK(op.line == recv_line);
      CHECK(op.function.find("wait_in_recv") != std::string::npos);
      CHECK(op.fd >= 0);
      CHECK(op.local == server.local_endpoint().to_string());
      CHECK(op.waited >= 40ms);
      CHECK(op.since <= report.at - 40ms);
      threads_of.push_back(op.thread);
    }
    // Each connection's peer is one of the clients, each on its own thread.
    std::vector<std::string> peers{recvs[0].peer, recvs[1].peer};
    std::vector<std::string> clients_ends{clients[0].local_endpoint().to_string(),
                                          clients[1].local_endpoint().to_string()};
    std::sort(peers.begin(), peers.end());
    std::sort(clients_ends.begin(), clients_ends.end());
    CHECK(peers == clients_ends);
    std::sort(threads_of.begin(), threads_of.end());
    CHECK(threads_of == std::vector<std::size_t>{0, 1});

    // The accept loop waits too, in coronet's own code, on the listener.
    const auto accepts = of_kind(report, "accept");
    REQUIRE(accepts.size() == 1);
    CHECK(accepts[0].thread == 0);
    CHECK(accepts[0].peer == "-");
    CHECK(ends_with(accepts[0].file, "basic_server.cpp"));

    // A recv that completes is no longer listed.
    REQUIRE(co_await clients[0].send_all(asio::buffer(std::string_view("x"))));
    std::array<char, 1> echoed{};
    REQUIRE(co_await clients[0].recv_exact(asio::buffer(echoed), 5s));
    const auto after = co_await report_with(threads, "recv", 1);
    CHECK(of_kind(after, "recv")[0].peer == clients[1].local_endpoint().to_string());

    const auto text = coronet::format_suspended(after);
    CHECK(text.starts_with("suspended operations: 2 at "));
    CHECK(text.find("thread     fd kind") != std::string::npos);
    CHECK(text.find("test_suspended_operation.cpp:" + std::to_string(recv_line) + " (") !=
          std::string::npos);
    CHECK(text.find("wait_in_recv)") != std::string::npos);
  });
}

TEST_CASE("suspended_operations: a sleep is a timer, and a reader's wait names its caller") {
  coronet::runtime threads({.threads = 1, .observe = true});
  auto server = tcp_server::bind(threads, test::any_v4(), read_a_line);
  coronet::task_group sleepers(threads.executor(0));  // used on thread 0 only
  test::running run(threads);
  asio::post(threads.executor(0), [&sleepers] { sleepers.spawn(sleep_long(), "sleeper"); });
  test::run([&]() -> asio::awaitable<void> {
    auto client = co_await tcp_stream::connect(server.local_endpoint());
    REQUIRE(client);
    REQUIRE(co_await client->send_all(asio::buffer(std::string_view("half a line"))));
    const auto report = co_await report_with(threads, "recv", 1);

    const auto timers = of_kind(report, "timer");
    REQUIRE(timers.size() == 1);
    CHECK(timers[0].fd == -1);
    CHECK(timers[0].line == sleep_line);
    CHECK(timers[0].local.empty());

    const auto reads = of_kind(report, "recv");
    CHECK(reads[0].line == read_line_line);
    CHECK(reads[0].function.find("read_a_line") != std::string::npos);

    REQUIRE(co_await client->send_all(asio::buffer(std::string_view(" and the rest\n"))));
    std::array<char, 25> echoed{};
    REQUIRE(co_await client->recv_exact(asio::buffer(echoed), 5s));
    CHECK(std::string_view(echoed.data(), echoed.size()) == "half a line and the rest\n");
    // The sleeper goes with a stop, which cancels it.
    co_await asio::co_spawn(
        threads.executor(0),
        [&sleepers]() -> asio::awaitable<void> { (void)co_await sleepers.stop(0s); },
        asio::use_awaitable);
    const auto later = co_await threads.suspended_operations();
    CHECK(of_kind(later, "timer").empty());
  });
}

TEST_CASE("suspended_operations: a send blocked on a full socket is listed on the send side") {
  coronet::runtime threads({.threads = 1, .observe = true});
  // The handler sends until the client, which never reads, stops taking.
  auto server =
      tcp_server::bind(threads, test::any_v4(), [](tcp_stream stream) -> asio::awaitable<void> {
        std::vector<char> lots(8 << 20, 'x');
        (void)co_await stream.send_all(asio::buffer(lots));
      });
  test::running run(threads);
  test::run([&]() -> asio::awaitable<void> {
    auto client = co_await tcp_stream::connect(server.local_endpoint());
    REQUIRE(client);
    const auto report = co_await report_with(threads, "send", 1);
    const auto sends = of_kind(report, "send");
    CHECK(sends[0].peer == client->local_endpoint().to_string());
    CHECK(sends[0].fd >= 0);
    client->close();
  });
}

TEST_CASE("suspended_operations: a thread busy in one handler is named, not waited for") {
  coronet::runtime threads({.threads = 2, .observe = true});
  test::running run(threads);
  std::atomic<bool> release{false};
  asio::post(threads.executor(1), [&release] {
    while (!release) std::this_thread::sleep_for(1ms);
  });
  test::run([&]() -> asio::awaitable<void> {
    const auto report = co_await threads.suspended_operations(100ms);
    CHECK(report.unanswered == std::vector<std::size_t>{1});
    const auto text = coronet::format_suspended(report);
    CHECK(text.find("thread 1 did not answer in time") != std::string::npos);
    release = true;
    const auto next = co_await threads.suspended_operations(2s);
    CHECK(next.unanswered.empty());
  });
}

TEST_CASE("suspended_operations: a runtime that does not observe says so") {
  coronet::suspended_report report;
  CHECK(coronet::format_suspended(report) ==
        "suspended operations: not recorded (the runtime does not observe)\n");
}

TEST_CASE("suspended_operations: a Unix seqpacket receive is listed, and its message counted") {
  coronet::runtime threads({.threads = 1, .observe = true});
  // Not a structured binding: clang 14 cannot capture one in a lambda.
  auto pair = coronet::unix_seqpacket::socket_pair(threads.executor(0));
  auto& mine = pair.first;
  auto received = std::make_shared<std::atomic<std::size_t>>(0);
  // Moved to thread 0, where its socket lives, and received there.
  threads.spawn(
      0,
      [](coronet::unix_seqpacket socket,
         std::shared_ptr<std::atomic<std::size_t>> got) -> asio::awaitable<void> {
        std::array<char, 64> buffer;
        auto message = co_await socket.recv(asio::buffer(buffer));
        *got = message.bytes();
      }(std::move(pair.second), received),
      "seqpacket receiver");
  test::running run(threads);
  test::run([&]() -> asio::awaitable<void> {
    const auto report = co_await report_with(threads, "recv", 1);
    const auto op = of_kind(report, "recv")[0];
    CHECK(op.local == "unix:");  // a socket pair's ends have no names
    CHECK(op.peer == "unix:");
    CHECK(ends_with(op.file, "test_suspended_operation.cpp"));
    // Sent on thread 0 too, where the socket pair lives.
    co_await asio::co_spawn(
        threads.executor(0),
        [&mine]() -> asio::awaitable<void> {
          REQUIRE(co_await mine.send(asio::buffer(std::string_view("twelve bytes"))));
        },
        asio::use_awaitable);
    while (*received == 0) co_await test::sleep_for(2ms);
    CHECK(*received == 12);
    const auto m = threads.metrics();
    CHECK(m.total.messages_received == 1);
    CHECK(m.total.bytes_received == 12);
    CHECK(m.total.messages_sent == 1);  // the send ran on thread 0, which observes
    CHECK(of_kind(co_await threads.suspended_operations(), "recv").empty());
  });
}

namespace {

// Receives one datagram on a socket it does not own, and touches nothing of it afterwards.
asio::awaitable<void> receive_once(coronet::udp_socket& socket) {
  std::array<char, 16> buffer;
  (void)co_await socket.recv_from(asio::buffer(buffer));
}

}  // namespace

TEST_CASE("suspended_operations: a socket destroyed under a pending receive ends its wait safely") {
  coronet::runtime threads({.threads = 1, .observe = true});
  test::running run(threads);
  test::run([&]() -> asio::awaitable<void> {
    co_await asio::co_spawn(
        threads.executor(0),
        []() -> asio::awaitable<void> {
          const auto executor = co_await asio::this_coro::executor;
          auto socket = std::make_unique<coronet::udp_socket>(
              coronet::udp_socket::bind(executor, test::any_v4()));
          coronet::spawn(executor, receive_once(*socket), "receiver");
          co_await test::sleep_for(20ms);  // it waits now
          // Closed and destroyed in one handler: the receive's completion is still queued, and
          // its wait ends after the socket is gone (AddressSanitizer checks that it stays out
          // of the socket's memory).
          socket.reset();
          co_await test::sleep_for(20ms);
        },
        asio::use_awaitable);
    const auto report = co_await threads.suspended_operations();
    CHECK(report.operations.empty());
  });
}
