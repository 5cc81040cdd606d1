#include "coronet/metrics_server.hpp"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>

#include "coronet/error.hpp"
#include "coronet/log.hpp"
#include "coronet/stream_reader.hpp"
#include "coronet/suspended_operation.hpp"

namespace coronet {
namespace {

constexpr std::size_t max_header_line = 8 * 1024;
constexpr std::size_t max_headers = 100;
constexpr std::size_t max_body = 1024 * 1024;

// What every session shares: the runtime and the options.
struct service {
  runtime& on;
  metrics_server_options options;
};

// One request, as far as this server cares.
struct request {
  std::string method;
  std::string path;  // without the query string
  bool keep_alive = true;
  bool wants_openmetrics = false;
  std::size_t body = 0;  // Content-Length
};

// A request that cannot be served: its status line's code and reason, and a line of text.
struct refusal {
  int status;
  const char* reason;
  std::string text;
};

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool contains_ignoring_case(std::string_view text, std::string_view word) {
  if (word.size() > text.size()) return false;
  for (std::size_t i = 0; i + word.size() <= text.size(); ++i) {
    if (equal_ignoring_case(text.substr(i, word.size()), word)) return true;
  }
  return false;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The request line: "GET /metrics HTTP/1.1".
std::optional<refusal> parse_request_line(std::string_view line, request& out) {
  const auto first = line.find(' ');
  const auto second = line.find(' ', first == std::string_view::npos ? first : first + 1);
  if (first == std::string_view::npos || second == std::string_view::npos || first == 0) {
    return refusal{400, "Bad Request", "malformed request line"};
  }
  out.method = line.substr(0, first);
  std::string_view target = line.substr(first + 1, second - first - 1);
  const std::string_view version = line.substr(second + 1);
  if (target.empty() || target.front() != '/') {
    return refusal{400, "Bad Request", "the request target must be a path"};
  }
  if (!version.starts_with("HTTP/1.")) {
    return refusal{505, "HTTP Version Not Supported", "this server speaks HTTP/1.0 and 1.1"};
  }
  out.keep_alive = version != "HTTP/1.0";
  out.path = target.substr(0, target.find('?'));
  return std::nullopt;
}

// One header line into `out`.
std::optional<refusal> parse_header(std::string_view line, request& out) {
  const auto colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return refusal{400, "Bad Request", "malformed header line"};
  }
  const auto name = line.substr(0, colon);
  const auto value = trim(line.substr(colon + 1));
  if (equal_ignoring_case(name, "Connection")) {
    if (contains_ignoring_case(value, "close")) out.keep_alive = false;
    if (contains_ignoring_case(value, "keep-alive")) out.keep_alive = true;
  } else if (equal_ignoring_case(name, "Accept")) {
    out.wants_openmetrics = contains_ignoring_case(value, "application/openmetrics-text");
  } else if (equal_ignoring_case(name, "Content-Length")) {
    std::size_t n = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc() || end != value.data() + value.size()) {
      return refusal{400, "Bad Request", "malformed Content-Length"};
    }
    if (n > max_body) return refusal{413, "Content Too Large", "request bodies are not served"};
    out.body = n;
  } else if (equal_ignoring_case(name, "Transfer-Encoding")) {
    return refusal{400, "Bad Request", "chunked request bodies are not accepted"};
  }
  return std::nullopt;
}

std::string response(int status, std::string_view reason, std::string_view type,
                     std::string_view body, bool keep_alive, bool head) {
  auto text =
      fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n",
                  status, reason, type, body.size(), keep_alive ? "keep-alive" : "close");
  if (status == 405) text += "Allow: GET, HEAD\r\n";
  text += "\r\n";
  if (!head) text += body;
  return text;
}

constexpr std::string_view index_page =
    "coronet metrics server\n"
    "  /metrics             counters and gauges (Prometheus text 0.0.4, or OpenMetrics 1.0 when "
    "Accept asks for it)\n"
    "  /debug/connections   what each coroutine waits on, since when, and where\n";

// The answer to a well-formed request.
asio::awaitable<std::string> answer(const request& r, const service& s) {
  const bool head = r.method == "HEAD";
  if (r.method != "GET" && !head) {
    co_return response(405, "Method Not Allowed", "text/plain; charset=utf-8",
                       "only GET and HEAD are served\n", r.keep_alive, false);
  }
  if (r.path == "/metrics") {
    const auto format =
        r.wants_openmetrics ? metrics_format::openmetrics : metrics_format::prometheus;
    const auto waits = co_await s.on.suspended_operations();
    const auto extra = s.options.extra_metrics ? s.options.extra_metrics(format) : std::string();
    co_return response(200, "OK", content_type(format),
                       format_metrics(s.on.metrics(), format, &waits, extra), r.keep_alive, head);
  }
  if (r.path == "/debug/connections") {
    const auto waits = co_await s.on.suspended_operations();
    co_return response(200, "OK", "text/plain; charset=utf-8", format_suspended(waits),
                       r.keep_alive, head);
  }
  if (r.path == "/") {
    co_return response(200, "OK", "text/plain; charset=utf-8", index_page, r.keep_alive, head);
  }
  co_return response(404, "Not Found", "text/plain; charset=utf-8",
                     fmt::format("no such page: {}\n", r.path), r.keep_alive, head);
}

// Reads one request's head (and skips its body). Returns nothing when the connection ended
// or went silent before a request began; a refusal when the request cannot be served.
struct read_outcome {
  std::optional<request> served;
  std::optional<refusal> refused;
};

asio::awaitable<read_outcome> read_request(stream_reader<tcp_stream>& reader, timeout idle) {
  request r;
  auto line = co_await reader.read_line(idle);
  // Blank lines before a request are allowed (RFC 9112, 2.2).
  for (int blank = 0; line && line->empty() && blank < 8; ++blank) {
    line = co_await reader.read_line(idle);
  }
  if (!line) {
    if (line.error() == errc::line_too_long) {
      co_return read_outcome{{}, refusal{414, "URI Too Long", "request line too long"}};
    }
    co_return read_outcome{};
  }
  if (auto bad = parse_request_line(*line, r)) co_return read_outcome{{}, std::move(bad)};
  for (std::size_t n = 0;; ++n) {
    auto header = co_await reader.read_line(idle);
    if (!header) {
      if (header.error() == errc::line_too_long) {
        co_return read_outcome{
            {}, refusal{431, "Request Header Fields Too Large", "header line too long"}};
      }
      co_return read_outcome{};
    }
    if (header->empty()) break;
    if (n == max_headers) {
      co_return read_outcome{
          {}, refusal{431, "Request Header Fields Too Large", "too many header lines"}};
    }
    if (auto bad = parse_header(*header, r)) co_return read_outcome{{}, std::move(bad)};
  }
  std::array<char, 4096> skipped;
  for (std::size_t left = r.body; left > 0;) {
    const auto chunk = std::min(left, skipped.size());
    auto got = co_await reader.read_exact(asio::buffer(skipped.data(), chunk), idle);
    if (!got) co_return read_outcome{};
    left -= chunk;
  }
  co_return read_outcome{std::move(r), {}};
}

// Ends a connection whose request was refused part-way, with bytes of it perhaps still coming:
// closing with unread bytes would send a reset, which can destroy the refusal before the
// client reads it. So: FIN first, then read and drop what still arrives, for a while.
asio::awaitable<void> drain_then_close(tcp_stream& stream) {
  constexpr std::size_t most = 256 * 1024;
  (void)stream.shutdown(shutdown_type::send);
  std::array<char, 4096> dropped;
  for (std::size_t total = 0; total < most;) {
    auto got = co_await stream.recv(asio::buffer(dropped), std::chrono::milliseconds(500));
    if (!got) break;
    total += got.bytes();
  }
  stream.close();
}

asio::awaitable<void> http_session(tcp_stream stream, std::shared_ptr<const service> s) {
  stream_reader reader(stream, {.max_line = max_header_line, .buffer_size = 4096});
  for (;;) {
    auto got = co_await read_request(reader, s->options.idle);
    if (got.refused) {
      log().debug("metrics server: {} from {}: {}", got.refused->status,
                  stream.remote_endpoint().to_string(), got.refused->text);
      const auto text =
          response(got.refused->status, got.refused->reason, "text/plain; charset=utf-8",
                   got.refused->text + "\n", false, false);
      if (co_await stream.send_all(asio::buffer(text), s->options.idle)) {
        co_await drain_then_close(stream);
      }
      break;
    }
    if (!got.served) break;
    const auto text = co_await answer(*got.served, *s);
    if (!co_await stream.send_all(asio::buffer(text), s->options.idle)) break;
    if (!got.served->keep_alive) break;
  }
  (void)stream.shutdown(shutdown_type::send);
  stream.close();
}

}  // namespace

metrics_server metrics_server::bind(runtime& on, const endpoint& local,
                                    metrics_server_options options) {
  const auto limit = options.max_connections;
  auto shared = std::make_shared<const service>(service{on, std::move(options)});
  return metrics_server(tcp_server::bind(
      on, local, [shared](tcp_stream stream) { return http_session(std::move(stream), shared); },
      server_options{.max_connections = limit}));
}

}  // namespace coronet
