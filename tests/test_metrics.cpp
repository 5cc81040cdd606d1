#include <doctest/doctest.h>

#include <array>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/run.hpp"

using namespace std::chrono_literals;
using coronet::metrics_snapshot;
using coronet::tcp_server;
using coronet::tcp_stream;
namespace test = coronet::test;

namespace {

// Polls the runtime's metrics until `settled` holds (a count is added when the server's
// coroutine resumes, which may be just after the client has its reply), and returns them.
asio::awaitable<metrics_snapshot> metrics_once(
    const coronet::runtime& threads, const std::function<bool(const metrics_snapshot&)>& settled) {
  for (;;) {
    auto now = threads.metrics();
    if (settled(now)) co_return now;
    co_await test::sleep_for(2ms);
  }
}

tcp_server::handler_type echo() {
  return [](tcp_stream stream) { return test::echo_until_eof(std::move(stream)); };
}

// Receives once with a limit the silent client lets pass, then once more, which the client's
// reset ends.
asio::awaitable<void> time_out_then_reset(tcp_stream stream) {
  std::array<char, 16> buffer;
  auto first = co_await stream.recv(asio::buffer(buffer), 30ms);
  CHECK(first.error() == std::errc::timed_out);
  auto second = co_await stream.recv(asio::buffer(buffer));
  CHECK(second.error() == std::errc::connection_reset);
}

}  // namespace

TEST_CASE("metrics: an observing runtime counts connections, bytes and messages per thread") {
  coronet::runtime threads({.threads = 2, .observe = true});
  REQUIRE(threads.observing());
  auto server = tcp_server::bind(threads, test::any_v4(), echo());
  test::running run(threads);
  test::run([&]() -> asio::awaitable<void> {
    auto clients = co_await test::ping_clients(server.local_endpoint(), 4);
    auto m =
        co_await metrics_once(threads, [](const auto& s) { return s.total.messages_sent == 4; });
    CHECK(m.observing);
    CHECK(m.total.connections_accepted == 4);
    CHECK(m.total.connections_open == 4);
    CHECK(m.total.connections_closed == 0);
    // The server's side only: the clients run on this test's own io_context.
    CHECK(m.total.bytes_received == 16);
    CHECK(m.total.bytes_sent == 16);
    CHECK(m.total.messages_received == 4);
    REQUIRE(m.threads.size() == 2);
    for (const auto& thread : m.threads) {
      // Round-robin: two connections each, each pinged once.
      CHECK(thread.connections_open == 2);
      CHECK(thread.messages_received == 2);
      CHECK(thread.messages_sent == 2);
      CHECK(thread.bytes_received == 8);
      CHECK(thread.cpu_seconds > 0.0);
    }
    // Accepted on thread 0, the accept loop's; handed to each thread in turn.
    CHECK(m.threads[0].connections_accepted == 4);
    CHECK(m.threads[1].connections_accepted == 0);
    CHECK(m.total.handover_queue_high_water >= 1);
    CHECK(m.total.timeouts == 0);
    CHECK(m.total.resets == 0);

    clients.clear();
    m = co_await metrics_once(threads,
                              [](const auto& s) { return s.total.connections_closed == 4; });
    CHECK(m.total.connections_open == 0);
    CHECK(m.threads[0].connections_open == 0);
    CHECK(m.threads[1].connections_open == 0);
    CHECK(m.total.connections_accepted == 4);
    CHECK(co_await server.stop(1s) == 0);
  });
}

TEST_CASE("metrics: a timeout and a reset are counted where they happen") {
  coronet::runtime threads({.threads = 1, .observe = true});
  auto server = tcp_server::bind(threads, test::any_v4(), time_out_then_reset);
  test::running run(threads);
  test::run([&]() -> asio::awaitable<void> {
    auto client = co_await tcp_stream::connect(server.local_endpoint());
    REQUIRE(client);
    auto m = co_await metrics_once(threads, [](const auto& s) { return s.total.timeouts == 1; });
    CHECK(m.total.resets == 0);
    REQUIRE(client->set_option(coronet::option::linger{true, 0s}));
    client->close();  // a reset, not a FIN
    m = co_await metrics_once(threads,
                              [](const auto& s) { return s.total.connections_closed == 1; });
    CHECK(m.total.timeouts == 1);
    CHECK(m.total.resets == 1);
    CHECK(m.total.messages_received == 0);
  });
}

TEST_CASE("metrics: a handler that throws before its coroutine exists is a refused connection") {
  coronet::runtime threads({.threads = 1, .observe = true});
  auto server = tcp_server::bind(threads, test::any_v4(), [](tcp_stream) -> asio::awaitable<void> {
    throw std::runtime_error("no session for you");
  });
  test::running run(threads);
  test::run([&]() -> asio::awaitable<void> {
    auto client = co_await tcp_stream::connect(server.local_endpoint());
    REQUIRE(client);
    const auto m = co_await metrics_once(
        threads, [](const auto& s) { return s.total.connections_refused == 1; });
    CHECK(m.total.connections_accepted == 1);
    CHECK(m.total.connections_closed == 1);
    CHECK(m.total.connections_open == 0);
  });
}

TEST_CASE("metrics: the accept queue's high-water mark sees clients waiting in the backlog") {
  coronet::runtime threads({.threads = 1, .observe = true});
  // One connection at a time: the others wait in the kernel's backlog until it ends.
  auto server = tcp_server::bind(threads, test::any_v4(), echo(), {.max_connections = 1});
  test::running run(threads);
  test::run([&]() -> asio::awaitable<void> {
    std::vector<tcp_stream> clients;
    for (int i = 0; i < 4; ++i) {
      auto client = co_await tcp_stream::connect(server.local_endpoint());
      REQUIRE(client);
      clients.push_back(std::move(*client));
    }
    (void)co_await metrics_once(threads,
                                [](const auto& s) { return s.total.connections_accepted == 1; });
    // The first ends; the next accept leaves two queued behind it.
    clients.erase(clients.begin());
    const auto m = co_await metrics_once(
        threads, [](const auto& s) { return s.total.connections_accepted == 2; });
    CHECK(m.total.accept_queue_high_water >= 2);
    CHECK(m.threads[0].accept_queue_high_water == m.total.accept_queue_high_water);
  });
}

TEST_CASE("metrics: a runtime that does not observe counts nothing") {
  coronet::runtime threads(2);
  CHECK_FALSE(threads.observing());
  auto server = tcp_server::bind(threads, test::any_v4(), echo());
  test::running run(threads);
  test::run([&]() -> asio::awaitable<void> {
    auto clients = co_await test::ping_clients(server.local_endpoint(), 2);
    const auto m = threads.metrics();
    CHECK_FALSE(m.observing);
    CHECK(m.threads.size() == 2);
    CHECK(m.total.connections_accepted == 0);
    CHECK(m.total.bytes_received == 0);
    CHECK(m.total.messages_sent == 0);
    CHECK(m.total.cpu_seconds == 0.0);
    const auto waits = co_await threads.suspended_operations();
    CHECK_FALSE(waits.observing);
    CHECK(waits.operations.empty());
  });
}

TEST_CASE("metrics: format_metrics writes both exposition formats") {
  metrics_snapshot snapshot;
  snapshot.observing = true;
  snapshot.total.connections_accepted = 3;
  snapshot.total.connections_open = 2;
  snapshot.total.bytes_received = 640;
  snapshot.threads.resize(2);
  snapshot.threads[1].connections_open = 2;
  snapshot.threads[1].cpu_seconds = 1.5;
  coronet::suspended_report waits;
  waits.observing = true;
  for (const auto& [thread, kind] :
       {std::pair<std::size_t, const char*>{1, "recv"}, {0, "accept"}, {1, "recv"}}) {
    coronet::suspended_operation op;
    op.thread = thread;
    op.kind = kind;
    waits.operations.push_back(op);
  }
  const std::string extra = "# HELP app_jobs Jobs.\n# TYPE app_jobs gauge\napp_jobs 7\n";

  const auto om =
      coronet::format_metrics(snapshot, coronet::metrics_format::openmetrics, &waits, extra);
  const auto lines = test::lines_of(om);
  auto has = [&lines](const std::string& line) { return test::has_line(lines, line); };
  // OpenMetrics: a counter family is named without _total; its sample has it.
  CHECK(has("# TYPE coronet_connections_accepted counter"));
  CHECK(has("coronet_connections_accepted_total 3"));
  CHECK(has("# TYPE coronet_connections_open gauge"));
  CHECK(has("coronet_connections_open 2"));
  CHECK(has("coronet_received_bytes_total 640"));
  CHECK(has("coronet_thread_connections_open{thread=\"0\"} 0"));
  CHECK(has("coronet_thread_connections_open{thread=\"1\"} 2"));
  CHECK(has("coronet_thread_cpu_seconds_total{thread=\"1\"} 1.5"));
  CHECK(has("coronet_suspended_operations{kind=\"recv\"} 2"));
  CHECK(has("coronet_suspended_operations{kind=\"accept\"} 1"));
  CHECK(has("coronet_suspended_operations{kind=\"timer\"} 0"));
  CHECK(has("app_jobs 7"));
  REQUIRE_FALSE(lines.empty());
  CHECK(lines.back() == "# EOF");

  const auto text = coronet::format_metrics(snapshot, coronet::metrics_format::prometheus);
  const auto text_lines = test::lines_of(text);
  auto text_has = [&text_lines](const std::string& line) {
    return test::has_line(text_lines, line);
  };
  // Prometheus 0.0.4: the family is the sample's name, _total included; no # EOF.
  CHECK(text_has("# TYPE coronet_connections_accepted_total counter"));
  CHECK(text_has("coronet_connections_accepted_total 3"));
  CHECK_FALSE(text_has("# EOF"));
  CHECK(text.find("coronet_suspended_operations") == std::string::npos);  // no report given
  CHECK(std::string(coronet::content_type(coronet::metrics_format::prometheus))
            .starts_with("text/plain; version=0.0.4"));
  CHECK(std::string(coronet::content_type(coronet::metrics_format::openmetrics))
            .starts_with("application/openmetrics-text; version=1.0.0"));
}
