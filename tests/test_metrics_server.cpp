#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "support/child_process.hpp"
#include "support/curl.hpp"
#include "support/run.hpp"

using namespace std::chrono_literals;
using coronet::metrics_server;
using coronet::tcp_server;
using coronet::tcp_stream;
namespace test = coronet::test;

namespace {

constexpr const char* python = "/usr/bin/python3";

// Parses a /metrics body with the Prometheus project's own parser (python3-prometheus-client):
// its text format 0.0.4 parser, or the OpenMetrics one, which also insists on `# EOF`. Prints
// one line per sample, "NAME{LABELS} VALUE", sorted; exits 1 with the parser's complaint.
constexpr const char* parse_script = R"(
import sys
from prometheus_client.parser import text_string_to_metric_families as text_parser
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parser
parse = om_parser if sys.argv[1] == 'openmetrics' else text_parser
lines = []
for family in parse(open(sys.argv[2]).read()):
    for s in family.samples:
        labels = ','.join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        lines.append(f'{s.name}{{{labels}}} {s.value:g}')
print('\n'.join(sorted(lines)))
)";

// The samples of a /metrics body as Prometheus' parser for `format` reads them.
std::vector<std::string> parsed_samples(const std::string& body, const std::string& format) {
  test::temp_dir dir;
  const auto file = (dir.path() / "metrics").string();
  std::ofstream(file) << body;
  const auto outcome = test::run_to_exit(python, {"-c", parse_script, format, file}, 15s);
  REQUIRE_MESSAGE(outcome.exit_code == 0, "the parser refused it: " << outcome.err);
  return test::lines_of(outcome.out);
}

// The line of the co_await in wait_in_recv(), which /debug/connections must name.
std::atomic<std::uint32_t> recv_line{0};

// Waits in one recv() until the client sends or leaves, then echoes it.
asio::awaitable<void> wait_in_recv(tcp_stream stream) {
  std::array<char, 64> buffer;
  recv_line = __LINE__ + 1;
  auto got = co_await stream.recv(asio::buffer(buffer));
  if (got) (void)co_await stream.send_all(asio::buffer(buffer.data(), got.bytes()));
}

// One HTTP response as a raw client reads it.
struct response {
  int status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
};

// Reads one response; `head_only` for the answer to HEAD, which has no body.
asio::awaitable<response> read_response(coronet::stream_reader<tcp_stream>& reader,
                                        bool head_only = false) {
  response out;
  auto status = co_await reader.read_line(5s);
  REQUIRE_MESSAGE(status, status.error().message());
  REQUIRE(status->starts_with("HTTP/1.1 "));
  const auto code = status->substr(9, 3);
  std::from_chars(code.data(), code.data() + code.size(), out.status);
  for (;;) {
    auto line = co_await reader.read_line(5s);
    REQUIRE(line);
    if (line->empty()) break;
    const auto colon = line->find(':');
    REQUIRE(colon != std::string_view::npos);
    std::string name(line->substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    out.headers[name] = std::string(line->substr(colon + 2));
  }
  std::size_t length = 0;
  const auto& text = out.headers.at("content-length");
  std::from_chars(text.data(), text.data() + text.size(), length);
  if (!head_only) {
    out.body.resize(length);
    if (length > 0) REQUIRE(co_await reader.read_exact(asio::buffer(out.body), 5s));
  }
  co_return out;
}

// Sends `request` on a new connection and reads one response; then the server must close it.
asio::awaitable<response> refused(const coronet::endpoint& server, const std::string& request) {
  auto client = co_await tcp_stream::connect(server);
  REQUIRE(client);
  REQUIRE(co_await client->send_all(asio::buffer(request)));
  coronet::stream_reader reader(*client);
  auto answer = co_await read_response(reader);
  CHECK(answer.headers.at("connection") == "close");
  std::array<char, 16> more;
  auto after = co_await client->recv(asio::buffer(more), 5s);
  CHECK(after.error() == coronet::errc::eof);
  co_return answer;
}

}  // namespace

TEST_CASE("metrics_server: curl reads /metrics in both formats, as Prometheus' parsers read it") {
  coronet::runtime threads({.threads = 2, .observe = true});
  auto echo = tcp_server::bind(threads, test::any_v4(), [](tcp_stream stream) {
    return test::echo_until_eof(std::move(stream));
  });
  auto metrics =
      metrics_server::bind(threads, test::any_v4(), {.extra_metrics = [](coronet::metrics_format) {
                             return std::string(
                                 "# HELP app_answers Answers.\n# TYPE app_answers gauge\n"
                                 "app_answers 42\n");
                           }});
  test::running run(threads);
  test::run(
      [&]() -> asio::awaitable<void> {
        auto clients = co_await test::ping_clients(echo.local_endpoint(), 3);
        // The replies are counted once the server's coroutines resume: wait for them.
        while (threads.metrics().total.messages_sent < 3) co_await test::sleep_for(2ms);

        const auto text = test::curl_get(metrics.local_endpoint(), "/metrics");
        CHECK(text.head.starts_with("HTTP/1.1 200 OK"));
        CHECK(text.head.find("Content-Type: text/plain; version=0.0.4; charset=utf-8") !=
              std::string::npos);
        const auto samples = parsed_samples(text.body, "text");
        // Three echo clients and curl's own connection.
        CHECK(test::has_line(samples, "coronet_connections_accepted_total{} 4"));
        CHECK(test::has_line(samples, "coronet_connections_open{} 4"));
        // Each server takes the threads in its own turn: the echo server's three go to 0, 1,
        // 0, and curl's, the metrics server's first, to 0.
        CHECK(test::has_line(samples, "coronet_thread_connections_open{thread=\"0\"} 3"));
        CHECK(test::has_line(samples, "coronet_thread_connections_open{thread=\"1\"} 1"));
        CHECK(test::has_line(samples, "coronet_suspended_operations{kind=\"accept\"} 2"));
        CHECK(test::has_line(samples, "coronet_suspended_operations{kind=\"recv\"} 3"));
        CHECK(test::has_line(samples, "coronet_observing{} 1"));
        CHECK(test::has_line(samples, "app_answers{} 42"));

        const auto om =
            test::curl_get(metrics.local_endpoint(), "/metrics",
                           {"-H", "Accept: application/openmetrics-text; version=1.0.0"});
        CHECK(om.head.find("Content-Type: application/openmetrics-text; version=1.0.0") !=
              std::string::npos);
        CHECK(om.body.ends_with("# EOF\n"));
        const auto om_samples = parsed_samples(om.body, "openmetrics");
        CHECK(test::has_line(om_samples, "coronet_connections_accepted_total{} 5"));
        CHECK(test::has_line(om_samples, "coronet_sent_messages_total{} 4"));  // 3 echoes, 1 page
        CHECK(test::has_line(om_samples, "app_answers{} 42"));
        co_return;
      },
      30s);
}

TEST_CASE("metrics_server: /debug/connections shows what each connection waits on, and where") {
  coronet::runtime threads({.threads = 1, .observe = true});
  auto server = tcp_server::bind(threads, test::any_v4(), wait_in_recv);
  auto metrics = metrics_server::bind(threads, test::any_v4());
  test::running run(threads);
  test::run(
      [&]() -> asio::awaitable<void> {
        auto client = co_await tcp_stream::connect(server.local_endpoint());
        REQUIRE(client);
        for (;;) {
          const auto report = co_await threads.suspended_operations();
          if (std::any_of(report.operations.begin(), report.operations.end(),
                          [](const auto& op) { return op.kind == "recv"; })) {
            break;
          }
          co_await test::sleep_for(5ms);
        }
        const auto page = test::curl_get(metrics.local_endpoint(), "/debug/connections");
        CHECK(page.head.find("Content-Type: text/plain") != std::string::npos);
        CHECK(page.body.starts_with("suspended operations: 3 at "));  // 2 accepts, 1 recv
        const auto lines = test::lines_of(page.body);
        const auto row = std::find_if(lines.begin(), lines.end(), [](const std::string& line) {
          return line.find(" recv ") != std::string::npos;
        });
        REQUIRE(row != lines.end());
        CHECK(row->find(client->local_endpoint().to_string()) != std::string::npos);
        CHECK(row->find(server.local_endpoint().to_string()) != std::string::npos);
        CHECK(row->find("test_metrics_server.cpp:" + std::to_string(recv_line) + " (") !=
              std::string::npos);
        CHECK(row->find("wait_in_recv)") != std::string::npos);

        const auto index = test::curl_get(metrics.local_endpoint(), "/");
        CHECK(index.body.find("/debug/connections") != std::string::npos);
      },
      30s);
}

TEST_CASE("metrics_server: keep-alive, HEAD, and every bad request answered while it serves on") {
  coronet::runtime threads({.threads = 1, .observe = true});
  auto metrics =
      metrics_server::bind(threads, test::any_v4(), {.extra_metrics = {}, .idle = 300ms});
  const auto where = metrics.local_endpoint();
  test::running run(threads);
  test::run(
      [&]() -> asio::awaitable<void> {
        {
          // Three requests on one connection, the first two sent together; a body is skipped.
          auto client = co_await tcp_stream::connect(where);
          REQUIRE(client);
          REQUIRE(co_await client->send_all(asio::buffer(std::string_view(
              "GET / HTTP/1.1\r\nHost: x\r\n\r\nHEAD /metrics?x=1 HTTP/1.1\r\n\r\n"))));
          coronet::stream_reader reader(*client);
          const auto index = co_await read_response(reader);
          CHECK(index.status == 200);
          CHECK(index.headers.at("connection") == "keep-alive");
          CHECK(index.body.find("/metrics") != std::string::npos);
          const auto head = co_await read_response(reader, true);
          CHECK(head.status == 200);
          CHECK(head.headers.at("content-length") != "0");
          REQUIRE(co_await client->send_all(
              asio::buffer(std::string_view("POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                                            "GET /nowhere HTTP/1.1\r\n\r\n"))));
          const auto post = co_await read_response(reader);
          CHECK(post.status == 405);
          CHECK(post.headers.at("allow") == "GET, HEAD");
          const auto missing = co_await read_response(reader);
          CHECK(missing.status == 404);
          CHECK(missing.body == "no such page: /nowhere\n");
          // Silent past the idle limit: closed.
          std::array<char, 16> more;
          auto after = co_await client->recv(asio::buffer(more), 5s);
          CHECK(after.error() == coronet::errc::eof);
        }
        CHECK((co_await refused(where, "garbage\r\n\r\n")).status == 400);
        CHECK((co_await refused(where, "GET / HTTP/2.0\r\n\r\n")).status == 505);
        CHECK((co_await refused(
                   where, "GET /metrics HTTP/1.1\r\nX: " + std::string(9000, 'y') + "\r\n\r\n"))
                  .status == 431);
        CHECK((co_await refused(where, "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"))
                  .status == 400);
        CHECK((co_await refused(where, "GET / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n"))
                  .status == 413);
        CHECK((co_await refused(where, "GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n"))
                  .status == 200);
        CHECK((co_await refused(where, "GET / HTTP/1.0\r\n\r\n")).status == 200);
        // And it still serves.
        const auto page = test::curl_get(where, "/metrics");
        CHECK(page.head.starts_with("HTTP/1.1 200 OK"));
        CHECK(co_await metrics.stop(1s) == 0);
      },
      30s);
}
