#pragma once
// metrics_server: a runtime's metrics and suspended operations over HTTP/1.1, for Prometheus
// and for a person with curl: GET /metrics and GET /debug/connections.

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>

#include <asio/awaitable.hpp>

#include "coronet/endpoint.hpp"
#include "coronet/metrics.hpp"
#include "coronet/runtime.hpp"
#include "coronet/tcp_server.hpp"
#include "coronet/timeout.hpp"

namespace coronet {

/// How a metrics_server serves; fill with designated initialisers.
struct metrics_server_options {
  /// More families for /metrics, in the format asked for (each with its `# HELP` and `# TYPE`
  /// lines, every line ending in "\n"), added after coronet's own: a program's own counters.
  /// Called on a runtime thread for each scrape, so it must be safe to call from any thread.
  std::function<std::string(metrics_format)> extra_metrics;
  /// A client silent this long, between requests or within one, is closed.
  timeout idle = std::chrono::seconds(30);
  /// The most clients at once; more wait in the kernel's backlog.
  std::size_t max_connections = 64;
};

/// An HTTP/1.1 server on a runtime's threads, built on tcp_server, tcp_stream and
/// stream_reader, that answers
/// - `GET /metrics`: format_metrics() of the runtime's metrics() and suspended_operations(),
///   in the OpenMetrics format when the request's Accept header asks for
///   `application/openmetrics-text` (as Prometheus does), else in Prometheus' text format 0.0.4;
/// - `GET /debug/connections`: format_suspended() of the runtime's suspended_operations():
///   what each connection's coroutine waits on, since when, and where it awaits it;
/// - `GET /`: a short index of the two. HEAD works as GET without the body.
///
/// Connections persist (HTTP/1.1 keep-alive) unless the client says `Connection: close` or
/// speaks HTTP/1.0. A malformed request gets 400, a header line over 8 KiB 431, an unknown
/// path 404, another method 405, a chunked body 400, a body over 1 MiB 413, and is then
/// closed; the server goes on serving. Its own connections are counted and listed like any
/// other on the runtime.
///
/// Errors: bind() throws as tcp_server::bind() does.
/// Stopping: stop(grace), as tcp_server's.
/// Thread safety: as tcp_server's. The runtime must observe (runtime_options::observe) for
/// the figures to be other than 0.
///
/// Example:
///
///     coronet::runtime runtime({.observe = true});
///     auto metrics = coronet::metrics_server::bind(
///         runtime, coronet::endpoint::parse("127.0.0.1:9100").value());
///     // curl http://127.0.0.1:9100/metrics
class metrics_server {
 public:
  /// Binds and starts serving, as tcp_server::bind().
  static metrics_server bind(runtime& on, const endpoint& local,
                             metrics_server_options options = {});

  /// The bound endpoint, with the real port. Safe from any thread.
  const endpoint& local_endpoint() const noexcept { return server_.local_endpoint(); }

  /// tcp_server::stop(): stop accepting, give clients `grace`, then close them.
  asio::awaitable<std::size_t> stop(timeout grace) { return server_.stop(grace); }

 private:
  explicit metrics_server(tcp_server server) noexcept : server_(std::move(server)) {}
  tcp_server server_;
};

}  // namespace coronet
