// echo_server: writes every byte it receives back to its sender, in order, until the peer
// closes; over UDP, sends every datagram back to its sender unchanged. Runs on a
// coronet::runtime: --threads threads, one io_context each, every connection on one of them.
// TCP and Unix connections are served by coronet::task sessions over lean streams (README, "The
// lean path"); TLS sessions and the UDP loop are asio::awaitable coroutines.
//
// Run:    build/bin/echo_server --tcp 127.0.0.1:7000 --udp 127.0.0.1:7000 --unix /tmp/echo.sock
//         (add --threads 4 --stats 5 to choose the threads and watch the counts)
//         build/bin/echo_server --tls 127.0.0.1:7443 --cert cert.pem --key key.pem
// Pair:   build/bin/echo_client --target 127.0.0.1:7000 --connections 1000   (or: nc 127.0.0.1
//         7000, nc -u 127.0.0.1 7000, nc -U /tmp/echo.sock, openssl s_client -connect
//         127.0.0.1:7443 -CAfile ca.pem)
// Stop:   Ctrl-C or SIGTERM: closes the UDP sockets, stops accepting, gives live connections
//         --grace seconds (1) to finish, closes the rest, removes the socket files it created,
//         exits 0. A second signal stops at once.
// Look:   kill -USR1 <pid> prints the connection table on stderr; the server goes on serving.
//         With --metrics 127.0.0.1:9100: curl http://127.0.0.1:9100/metrics (counters) and
//         curl http://127.0.0.1:9100/debug/connections (what each coroutine waits on).
//
// Options:
//   --tcp ADDR, --udp ADDR, --unix PATH   what to serve (repeatable, at least one). Each --tcp is
//                        a tcp_server and each --unix a unix_server over every runtime thread;
//                        each --udp is one SO_REUSEPORT socket per thread on the same port, the
//                        kernel spreading datagrams over them by the peers' addresses (so a
//                        UDP port another SO_REUSEPORT socket of this user holds, a repeated
//                        --udp ADDR included, is shared rather than refused).
//   --tls ADDR           a TLS server (tls_server) on ADDR; repeatable. Each connection shakes
//                        hands in its own session, within 10 s (or --idle-timeout if shorter);
//                        a failed handshake is logged with OpenSSL's reason and that connection
//                        closed. Its ready line is `listening tls HOST:PORT`.
//   --cert FILE, --key FILE   the TLS servers' certificate (PEM, the chain after it) and key;
//                        required with --tls.
//   --threads N          runtime threads (default: one per hardware thread).
//   --placement round-robin|reuse-port   for the TCP servers (default round-robin): one accept
//                        loop handing connections to each thread in turn, or one SO_REUSEPORT
//                        listener per thread. Unix servers are always round-robin.
//   --max-connections N  per TCP or Unix server; further clients wait in the kernel's backlog
//                        until a connection ends (default: no limit but the descriptors).
//   --idle-timeout SECS  close a connection silent for that long (default: never).
//   --grace SECS         on SIGINT/SIGTERM, how long live connections get to finish (default 1).
//   --stats SECS         every SECS, one info line on the log (stderr) covering every TCP and
//                        Unix server, in command-line order, separated by "; " (UDP keeps no
//                        counts, so with UDP only there is none); wrapped here:
//                          stats: tcp 127.0.0.1:7000 open 3 accepted 10 bytes_in 640
//                          bytes_out 640 per_thread 2/1; unix /tmp/echo.sock open 0 ...
//                        open: connections open now; accepted: since start; bytes_in/out: over
//                        every connection, open or ended; per_thread: the open connections on
//                        thread 0/1/..., from the connection table.
//   --metrics ADDR       observe the runtime (runtime_options::observe) and serve its metrics
//                        over HTTP on ADDR (coronet::metrics_server): GET /metrics in Prometheus'
//                        or OpenMetrics text, GET /debug/connections for the suspended
//                        operations. Its ready line is `listening metrics HOST:PORT`, after the
//                        others. Not with --workers: it shows one process.
//   --log-level LEVEL    trace, debug, info (default), warn, error or off.
//
// Workers: --workers N runs N processes, each serving every --tcp and --tls listener with
//                        --threads threads of its own (default 1) through SO_REUSEPORT listeners on
//                        the same port; the parent reserves the ports (port 0 resolves once for
//                        all), prints the ready lines once every worker serves, restarts a
//                        worker that dies (logged, with a growing delay if it keeps dying at
//                        once), and passes SIGINT, SIGTERM and SIGUSR1 on to the workers; it
//                        exits 0 once every worker has stopped. A worker's log lines name it:
//                        "[worker 1 pid 4242]". --workers serves --tcp and --tls only (a UDP
//                        socket or a Unix listener belongs to one process) and implies
//                        reuse-port.
//
// Connection table (SIGUSR1), written to stderr whatever the log level: a header line, then
// one line per open connection of every TCP and Unix server, in columns:
//       id     fd thread  local            peer              bytes_in  bytes_out     age_s
//        1      9      0  127.0.0.1:7000   127.0.0.1:51234         64         64       2.5
// id: the server's number for the connection (the local column tells the servers apart); fd:
// its descriptor; thread: the runtime thread serving it; age_s: seconds since it was accepted.
// With --metrics, the table is followed by the suspended operations, as /debug/connections
// shows them (coronet::format_suspended): what each connection waits on, since when, and the
// source line of the co_await.
//
// Exit codes: 0 after a signal; 1 when an address is malformed or cannot be bound, or the
// certificate or key cannot be loaded (one line on stderr), or with --workers when a worker fails
// before all serve or has to be killed at the stop; 2 for a command-line mistake (usage on stderr).

#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <exception>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <spdlog/fmt/fmt.h>
#include <CLI/CLI.hpp>
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "coronet/coronet.hpp"
#include "echo_session.hpp"
#include "return_free_memory.hpp"

namespace {

constexpr auto nothrow_awaitable = asio::experimental::as_tuple(asio::use_awaitable);

// What the command line asked to listen on, in its order.
struct listen_request {
  enum class kind { tcp, tls, udp, unix_stream } what;
  std::string text;
};

// The endpoint a request names. Throws std::runtime_error naming the option and the reason.
coronet::endpoint address_of(const listen_request& request) {
  using kind = listen_request::kind;
  const char* option = request.what == kind::tcp   ? "--tcp"
                       : request.what == kind::tls ? "--tls"
                       : request.what == kind::udp ? "--udp"
                                                   : "--unix";
  auto ep = request.what == kind::unix_stream ? coronet::endpoint::unix_domain(request.text)
                                              : coronet::endpoint::parse(request.text);
  if (!ep || (request.what != kind::unix_stream && !ep->is_ip())) {
    const auto reason = ep ? "not an IP address" : ep.error().message();
    throw std::runtime_error(std::string("invalid ") + option + " '" + request.text +
                             "': " + reason);
  }
  return *ep;
}

// A TCP, TLS or Unix server, with the name the stats line gives it.
struct stream_server {
  std::string label;  // "tcp 127.0.0.1:7000" or "unix /tmp/echo.sock": the ready line's words
  std::variant<coronet::tcp_server, coronet::tls_server, coronet::unix_server> server;

  coronet::server_stats stats() const {
    return std::visit([](const auto& s) { return s.stats(); }, server);
  }
  std::vector<coronet::connection_info> connections() const {
    return std::visit([](const auto& s) { return s.connections(); }, server);
  }
  asio::awaitable<std::size_t> stop(coronet::timeout grace) {
    return std::visit([grace](auto& s) { return s.stop(grace); }, server);
  }
};

// Everything the server serves with. Built on the main thread before the runtime starts; from
// then on only context 0 touches it (stats, SIGUSR1, the graceful stop), except the UDP
// sockets, each touched only on its own thread.
struct echo_service {
  echo_service(coronet::runtime& on, coronet::server_options o, coronet::timeout idle_limit,
               std::optional<coronet::tls_context> tls_context)
      : runtime(on),
        options(o),
        idle(idle_limit),
        tls(std::move(tls_context)),
        dump_signal(on.context(0), SIGUSR1),
        stats_timer(on.context(0)) {}

  coronet::runtime& runtime;
  const coronet::server_options options;  // placement applies to the TCP servers only
  const coronet::timeout idle;
  const std::optional<coronet::tls_context> tls;  // with --tls: --cert and --key
  std::vector<stream_server> servers;
  std::optional<coronet::metrics_server> metrics;  // with --metrics
  // One socket per runtime thread for every --udp; socket k belongs to context k.
  std::vector<std::shared_ptr<coronet::udp_socket>> udp;
  asio::signal_set dump_signal;  // SIGUSR1; registered at once, so it never kills the process
  asio::steady_timer stats_timer;
  bool stopping = false;  // context 0 only

  // Binds one request; returns its ready line. Throws std::runtime_error with the reason.
  std::string bind(const listen_request& request) {
    using kind = listen_request::kind;
    const auto ep = address_of(request);
    // The handlers run on every thread at once: each only reads the `idle` it captured.
    const coronet::timeout limit = idle;
    try {
      switch (request.what) {
        case kind::tcp: {
          auto server = coronet::tcp_server::bind(
              runtime, ep,
              [limit](coronet::lean_stream stream) {
                stream.set_timeout(limit);  // the idle limit: each receive's
                return coronet_examples::echo_session(std::move(stream));
              },
              options);
          std::string label = "tcp " + server.local_endpoint().to_string();
          servers.push_back({label, std::move(server)});
          return "listening " + label;
        }
        case kind::tls: {
          auto server = coronet::tls_server::bind(
              runtime, ep, tls.value(),
              [limit](coronet::tls_stream stream) {
                return coronet_examples::tls_echo_session(std::move(stream), limit);
              },
              options);
          std::string label = "tls " + server.local_endpoint().to_string();
          servers.push_back({label, std::move(server)});
          return "listening " + label;
        }
        case kind::unix_stream: {
          auto unix_options = options;
          unix_options.placement = coronet::placement::round_robin;
          auto server = coronet::unix_server::bind(
              runtime, ep,
              [limit](coronet::lean_stream stream) {
                stream.set_timeout(limit);  // the idle limit: each receive's
                return coronet_examples::echo_session(std::move(stream));
              },
              unix_options);
          std::string label = "unix " + request.text;
          servers.push_back({label, std::move(server)});
          return "listening " + label;
        }
        case kind::udp: {
          auto sockets = coronet_examples::bind_udp_echo(runtime, ep);
          const auto bound = sockets.front()->local_endpoint();
          udp.insert(udp.end(), sockets.begin(), sockets.end());
          return "listening udp " + bound.to_string();
        }
      }
    } catch (const std::system_error& e) {
      throw std::runtime_error(e.what());
    }
    return {};
  }
};

// The thread socket `i` of echo_service::udp belongs to: each --udp added one per thread, in
// thread order.
std::size_t udp_thread(const echo_service& service, std::size_t i) {
  return i % service.runtime.size();
}

// The --stats line (the format is in the header comment).
std::string stats_line(const echo_service& service) {
  std::string line = "stats:";
  const char* separator = " ";
  for (const auto& s : service.servers) {
    const auto totals = s.stats();
    std::vector<std::size_t> per_thread(service.runtime.size());
    for (const auto& c : s.connections()) ++per_thread.at(c.thread);
    line += fmt::format("{}{} open {} accepted {} bytes_in {} bytes_out {} per_thread {}",
                        separator, s.label, totals.open, totals.accepted, totals.bytes_received,
                        totals.bytes_sent, fmt::join(per_thread, "/"));
    separator = "; ";
  }
  return line;
}

// The SIGUSR1 table (the format is in the header comment).
std::string connection_table(const echo_service& service) {
  constexpr auto row = "{:>8} {:>6} {:>6}  {:<22} {:<22} {:>12} {:>12} {:>9}\n";
  std::string table =
      fmt::format(row, "id", "fd", "thread", "local", "peer", "bytes_in", "bytes_out", "age_s");
  const auto now = std::chrono::system_clock::now();
  for (const auto& s : service.servers) {
    for (const auto& c : s.connections()) {
      const std::chrono::duration<double> age = now - c.started;
      table += fmt::format(row, c.id, c.fd, c.thread, c.local.to_string(), c.peer.to_string(),
                           c.bytes_received, c.bytes_sent, fmt::format("{:.1f}", age.count()));
    }
  }
  return table;
}

// On context 0: the connection table on stderr at every SIGUSR1 (with the suspended
// operations when the runtime observes), until the graceful stop.
asio::awaitable<void> dump_on_signal(echo_service& service) {
  for (;;) {
    auto [ec, signal] = co_await service.dump_signal.async_wait(nothrow_awaitable);
    if (ec || service.stopping) co_return;
    auto table = connection_table(service);
    if (service.runtime.observing()) {
      table += coronet::format_suspended(co_await service.runtime.suspended_operations());
    }
    // One write, so that log lines from other threads do not cut into it.
    std::fwrite(table.data(), 1, table.size(), stderr);
    std::fflush(stderr);
  }
}

// On context 0: the stats line every `every`, until the graceful stop.
asio::awaitable<void> log_stats(echo_service& service, coronet::timeout::duration every) {
  for (;;) {
    service.stats_timer.expires_after(every);
    auto [ec] = co_await service.stats_timer.async_wait(nothrow_awaitable);
    if (ec || service.stopping) co_return;
    coronet::log().info("{}", stats_line(service));
  }
}

// Stops every stream server at once and returns how many sessions were cut off in all. At
// once rather than one after another: every listener closes together, and the whole stop
// takes one grace period instead of one per server. Runs on context 0, where every callback
// below runs too.
asio::awaitable<std::size_t> stop_servers(echo_service& service, coronet::timeout grace) {
  const auto executor = co_await asio::this_coro::executor;
  asio::steady_timer all_stopped(executor, asio::steady_timer::time_point::max());
  std::size_t remaining = service.servers.size();
  std::size_t cut = 0;
  for (auto& s : service.servers) {
    asio::co_spawn(executor, s.stop(grace), [&](std::exception_ptr e, std::size_t n) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& error) {
          coronet::log().error("stopping {}: {}", s.label, error.what());
        }
      }
      cut += n;
      if (--remaining == 0) all_stopped.cancel();
    });
  }
  while (remaining > 0) (void)co_await all_stopped.async_wait(nothrow_awaitable);
  co_return cut;
}

// The graceful stop, on context 0 (runtime::handle_signals calls runtime::stop() after it).
asio::awaitable<void> graceful_stop(echo_service& service, coronet::timeout grace) {
  // Each UDP socket is closed on its own thread; its echo loop then ends.
  for (std::size_t i = 0; i < service.udp.size(); ++i) {
    co_await asio::co_spawn(service.runtime.executor(udp_thread(service, i)),
                            coronet_examples::close_udp(service.udp[i]), asio::use_awaitable);
  }
  const auto cut = co_await stop_servers(service, grace);
  if (service.metrics)
    (void)co_await service.metrics->stop(coronet::timeout(std::chrono::seconds(0)));
  service.stopping = true;
  service.stats_timer.cancel();
  service.dump_signal.cancel();
  coronet::log().info("stopped: {} session(s) cut off after the grace period", cut);
}

// The runtime --threads asks for (else one thread per hardware thread), observing with
// --metrics. Its I/O is unlocked: every socket is made before run() or, once it runs, by the
// thread it lives on (the servers' accepts, the UDP sockets' closes), as
// runtime_options::unlocked_io asks.
coronet::runtime make_runtime(std::optional<unsigned> threads, bool observe) {
  return coronet::runtime(coronet::runtime_options{
      .threads = threads ? std::optional<std::size_t>(*threads) : std::nullopt,
      .observe = observe,
      .unlocked_io = true});
}

coronet::timeout::duration seconds(double s) {
  return std::chrono::duration_cast<coronet::timeout::duration>(std::chrono::duration<double>(s));
}

// What the command line asked for, checked.
struct server_config {
  std::vector<listen_request> requests;  // in command-line order
  std::optional<unsigned> threads;       // empty: one per hardware thread
  coronet::server_options options;
  coronet::timeout idle;
  coronet::timeout grace;
  std::optional<coronet::timeout::duration> stats_every;
  coronet::result<std::size_t> file_limit;  // what raising the descriptor limit came to
  std::optional<coronet::tls_context> tls;  // loaded from --cert and --key
  std::optional<std::string> metrics;       // --metrics ADDR
};

// Binds every listener, then serves until SIGINT/SIGTERM and the graceful stop; returns the
// exit code. `bound` gets the ready lines once every listener is bound, before serving starts.
int serve(const server_config& config,
          const std::function<void(const std::vector<std::string>&)>& bound) {
  auto runtime = make_runtime(config.threads, config.metrics.has_value());
  // Declared after the runtime, so destroyed before it: a server must not outlive its runtime.
  echo_service echo(runtime, config.options, config.idle, config.tls);
  std::vector<std::string> ready_lines;
  try {
    for (const auto& request : config.requests) ready_lines.push_back(echo.bind(request));
    if (config.metrics) {
      const auto where = coronet::endpoint::parse(*config.metrics);
      if (!where || !where->is_ip()) {
        throw std::runtime_error("invalid --metrics '" + *config.metrics +
                                 "': " + (where ? "not an IP address" : where.error().message()));
      }
      echo.metrics.emplace(coronet::metrics_server::bind(runtime, *where));
      ready_lines.push_back("listening metrics " + echo.metrics->local_endpoint().to_string());
    }
  } catch (const std::exception& e) {
    std::cerr << "echo_server: " << e.what() << std::endl;
    return 1;  // the listeners bound so far close (and remove their files) on the way out
  }

  const coronet::timeout grace = config.grace;
  runtime.handle_signals([&echo, grace] { return graceful_stop(echo, grace); });
  for (std::size_t i = 0; i < echo.udp.size(); ++i) {
    runtime.spawn(udp_thread(echo, i), coronet_examples::udp_echo(echo.udp[i]), "udp echo");
  }
  runtime.spawn(0, dump_on_signal(echo), "connection table");
  runtime.spawn(0, coronet_examples::return_free_memory(), "return free memory");
  if (config.stats_every && !echo.servers.empty()) {
    runtime.spawn(0, log_stats(echo, *config.stats_every), "stats");
  }
  bound(ready_lines);
  if (config.file_limit) {
    coronet::log().debug("open file limit: {}", *config.file_limit);
  } else {
    coronet::log().warn("cannot raise the open file limit: {}",
                        config.file_limit.error().message());
  }
  coronet::log().debug("serving on {} thread(s)", runtime.size());
  runtime.run();  // until SIGINT/SIGTERM and the graceful stop
  return 0;
}

void print_ready_lines(const std::vector<std::string>& lines) {
  for (const auto& line : lines) std::cout << line << '\n';
  std::cout.flush();
}

// --workers N: the parent reserves every TCP port (resolving port 0 once), prints the ready
// lines once every worker serves, and supervises; each worker binds SO_REUSEPORT listeners on
// those ports and serves them with a runtime of its own.
int serve_with_workers(server_config config, std::size_t workers) {
  std::vector<coronet::reserved_port> ports;
  std::vector<std::string> ready_lines;
  try {
    for (auto& request : config.requests) {
      ports.push_back(coronet::reserved_port::bind(address_of(request)));
      request.text = ports.back().local_endpoint().to_string();
      const char* kind = request.what == listen_request::kind::tls ? "tls" : "tcp";
      ready_lines.push_back(std::string("listening ") + kind + " " + request.text);
    }
  } catch (const std::exception& e) {
    std::cerr << "echo_server: " << e.what() << std::endl;
    return 1;
  }
  const coronet::prefork_options pool{.workers = workers,
                                      .stop_limit = std::chrono::ceil<std::chrono::milliseconds>(
                                          config.grace.value() + std::chrono::seconds(5))};
  return coronet::run_prefork(
      pool,
      [&](coronet::prefork_worker& worker) {
        for (auto& port : ports) port.close();  // the parent's; the worker's listeners are its own
        coronet::log().set_pattern(
            fmt::format("[%Y-%m-%d %H:%M:%S.%e] [%n] [worker {} pid %P] [%l] %v", worker.index()));
        return serve(config, [&worker](const std::vector<std::string>&) { worker.ready(); });
      },
      [&ready_lines] { print_ready_lines(ready_lines); });
}

}  // namespace

int main(int argc, char** argv) {
  // Before anything opens a descriptor: a server holds one per connection.
  const auto file_limit = coronet::raise_open_file_limit();

  CLI::App app("coronet echo server: sends every byte back to its sender", "echo_server");
  std::vector<std::string> tcp_addresses;
  std::vector<std::string> tls_addresses;
  std::string cert_file;
  std::string key_file;
  std::vector<std::string> udp_addresses;
  std::vector<std::string> unix_paths;
  unsigned threads = 1;
  std::size_t workers = 0;
  std::string placement = "round-robin";
  std::size_t max_connections = 0;
  std::string log_level = "info";
  double idle_seconds = 0;
  double grace_seconds = 1;
  double stats_seconds = 0;
  std::string metrics_address;
  // One value per occurrence, so that a stray word is an error rather than another address.
  auto* tcp_option =
      app.add_option("--tcp", tcp_addresses, "TCP on ADDR (127.0.0.1:0, [::1]:7000); repeatable")
          ->type_name("ADDR")
          ->allow_extra_args(false);
  auto* tls_option = app.add_option("--tls", tls_addresses,
                                    "TLS over TCP on ADDR, with --cert and --key; repeatable")
                         ->type_name("ADDR")
                         ->allow_extra_args(false);
  auto* cert_option =
      app.add_option("--cert", cert_file, "the TLS servers' certificate (PEM; the chain after it)")
          ->type_name("FILE");
  auto* key_option =
      app.add_option("--key", key_file, "the private key of --cert (PEM)")->type_name("FILE");
  auto* udp_option = app.add_option("--udp", udp_addresses, "UDP on ADDR; repeatable")
                         ->type_name("ADDR")
                         ->allow_extra_args(false);
  auto* unix_option = app.add_option("--unix", unix_paths,
                                     "Unix stream socket at PATH (@NAME: abstract); repeatable")
                          ->type_name("PATH")
                          ->allow_extra_args(false);
  auto* threads_option =
      app.add_option("--threads", threads, "runtime threads (default: one per hardware thread)")
          ->check(CLI::Range(1U, 1024U));
  auto* placement_option =
      app.add_option("--placement", placement,
                     "round-robin (one accept loop hands connections to each thread in turn) or "
                     "reuse-port (a SO_REUSEPORT listener per thread); TCP only")
          ->check(CLI::IsMember({"round-robin", "reuse-port"}));
  auto* max_connections_option =
      app.add_option("--max-connections", max_connections,
                     "per server, the most connections open at once (default: no limit)")
          ->type_name("N")
          ->check(CLI::PositiveNumber);
  auto* idle_option = app.add_option("--idle-timeout", idle_seconds,
                                     "close a connection silent for SECS (default: never)")
                          ->type_name("SECS")
                          ->check(CLI::PositiveNumber);
  app.add_option("--grace", grace_seconds,
                 "on SIGINT/SIGTERM, give live connections SECS to finish")
      ->type_name("SECS")
      ->check(CLI::Range(0.0, 3600.0));
  auto* stats_option =
      app.add_option("--stats", stats_seconds, "log one line of server statistics every SECS")
          ->type_name("SECS")
          ->check(CLI::PositiveNumber);
  auto* workers_option =
      app.add_option("--workers", workers,
                     "serve the --tcp listeners from N processes (prefork, SO_REUSEPORT), each "
                     "with --threads threads (default 1); the parent supervises them")
          ->type_name("N")
          ->check(CLI::Range(std::size_t{1}, std::size_t{256}));
  auto* metrics_option =
      app.add_option("--metrics", metrics_address,
                     "observe the runtime and serve GET /metrics and GET /debug/connections over "
                     "HTTP on ADDR")
          ->type_name("ADDR");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "echo_server: " << e.what() << "\n\n" << app.help();
    return 2;
  }

  std::vector<listen_request> requests;
  std::size_t next_tcp = 0, next_tls = 0, next_udp = 0, next_unix = 0;
  for (const CLI::Option* option : app.parse_order()) {
    using kind = listen_request::kind;
    if (option == tcp_option) requests.push_back({kind::tcp, tcp_addresses.at(next_tcp++)});
    if (option == tls_option) requests.push_back({kind::tls, tls_addresses.at(next_tls++)});
    if (option == udp_option) requests.push_back({kind::udp, udp_addresses.at(next_udp++)});
    if (option == unix_option) requests.push_back({kind::unix_stream, unix_paths.at(next_unix++)});
  }
  if (requests.empty()) {
    std::cerr << "echo_server: no listener: give at least one --tcp, --tls, --udp or --unix\n"
              << app.help();
    return 2;
  }
  const auto usage = [&app](const std::string& problem) {
    std::cerr << "echo_server: " << problem << "\n\n" << app.help();
    return 2;
  };
  const bool with_tls = tls_option->count() > 0;
  if (with_tls && (cert_option->count() == 0 || key_option->count() == 0)) {
    return usage("--tls needs --cert FILE and --key FILE");
  }
  if (!with_tls && (cert_option->count() > 0 || key_option->count() > 0)) {
    return usage("--cert and --key are for --tls listeners");
  }
  coronet::set_log_level(coronet::parse_log_level(log_level).value());

  server_config config{
      .requests = std::move(requests),
      .threads = threads_option->count() > 0 ? std::optional(threads) : std::nullopt,
      .options = {.placement = placement == "reuse-port" ? coronet::placement::reuse_port
                                                         : coronet::placement::round_robin,
                  .max_connections = max_connections_option->count() > 0
                                         ? std::optional<std::size_t>(max_connections)
                                         : std::nullopt},
      .idle =
          idle_option->count() > 0 ? coronet::timeout(seconds(idle_seconds)) : coronet::no_timeout,
      .grace = seconds(grace_seconds),
      .stats_every =
          stats_option->count() > 0 ? std::optional(seconds(stats_seconds)) : std::nullopt,
      .file_limit = file_limit,
      .tls = std::nullopt,
      .metrics = metrics_option->count() > 0 ? std::optional(metrics_address) : std::nullopt};
  if (with_tls) {
    try {
      config.tls = coronet::tls_context::server({.cert_file = cert_file, .key_file = key_file});
    } catch (const std::system_error& e) {
      std::cerr << "echo_server: " << e.what() << std::endl;
      return 1;
    }
  }
  if (workers_option->count() == 0) return serve(config, print_ready_lines);

  if (config.metrics) {
    return usage("--metrics shows one process's runtime: it does not go with --workers");
  }
  // Worker processes share TCP ports only: a UDP socket or a Unix listener is one process's.
  for (const auto& request : config.requests) {
    if (request.what != listen_request::kind::tcp && request.what != listen_request::kind::tls) {
      return usage("--workers serves --tcp and --tls listeners only, not --udp or --unix");
    }
  }
  if (placement_option->count() > 0 && placement != "reuse-port") {
    return usage("--workers needs --placement reuse-port: every worker has its own listeners");
  }
  config.options.placement = coronet::placement::reuse_port;
  if (!config.threads) config.threads = 1;
  return serve_with_workers(std::move(config), workers);
}
