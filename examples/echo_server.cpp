// echo_server: writes every byte it receives back to its sender, in order, until the peer
// closes; over UDP, sends every datagram back to its sender unchanged.
//
// Run:    build/bin/echo_server --tcp 127.0.0.1:7000 --udp 127.0.0.1:7000 --unix /tmp/echo.sock
// Pair:   build/bin/echo_client --target 127.0.0.1:7000   (or: nc 127.0.0.1 7000,
//         nc -u 127.0.0.1 7000, nc -U /tmp/echo.sock)
// Stop:   Ctrl-C or SIGTERM: stops accepting, gives live connections --grace seconds (1) to
//         finish, closes the rest, removes the socket files it created, exits 0.
//
// Exit codes: 0 after a signal; 1 when an address is malformed or cannot be bound (one line
// on stderr); 2 for a command-line mistake (usage on stderr).

#include <array>
#include <csignal>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "coronet/coronet.hpp"

namespace {

// One stream connection (TCP or Unix): echo until the peer closes, then close with FIN. A
// peer silent for `idle` is closed.
template <class Stream>
asio::awaitable<void> echo_session(Stream stream, coronet::timeout idle) {
  const auto peer = stream.remote_endpoint().to_string();
  coronet::log().debug("{}: connected", peer);

  std::array<char, 16 * 1024> buffer;
  for (;;) {
    auto got = co_await stream.recv(asio::buffer(buffer), idle);
    if (!got) {
      if (got.error() == coronet::errc::eof) {
        // Everything received was echoed: answer the peer's FIN with ours.
        (void)stream.shutdown(coronet::shutdown_type::send);
        coronet::log().debug("{}: closed by peer", peer);
      } else if (got.error() == std::errc::timed_out) {
        coronet::log().debug("{}: idle, closing", peer);
      } else {
        coronet::log().debug("{}: receive failed: {}", peer, got.error().message());
      }
      break;
    }
    auto sent = co_await stream.send_all(asio::buffer(buffer.data(), got.bytes()));
    if (!sent) {
      coronet::log().debug("{}: send failed: {}", peer, sent.error().message());
      break;
    }
  }
  stream.close();
}

// Whether an accept() failure is the process or system running out of something, which
// clears up as connections close: back off instead of spinning.
bool is_resource_shortage(const std::error_code& ec) {
  return ec == std::errc::too_many_files_open || ec == std::errc::too_many_files_open_in_system ||
         ec == std::errc::no_buffer_space || ec == std::errc::not_enough_memory;
}

template <class Listener>
asio::awaitable<void> accept_loop(Listener& listener, coronet::task_group& sessions,
                                  coronet::timeout idle) {
  const auto executor = co_await asio::this_coro::executor;
  const auto where = listener.local_endpoint().to_string();
  while (listener.is_open()) {
    auto stream = co_await listener.accept();
    if (stream) {
      sessions.spawn(echo_session(std::move(*stream), idle), "echo session");
      continue;
    }
    if (stream.error() == std::errc::operation_canceled) break;
    if (is_resource_shortage(stream.error())) {
      coronet::log().warn("accept on {}: {}; retrying in 100 ms", where, stream.error().message());
      asio::steady_timer pause(executor, std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::use_awaitable);
    } else {
      coronet::log().debug("accept on {}: {}", where, stream.error().message());
    }
  }
}

// Every datagram goes back to its sender unchanged, until the socket is closed.
asio::awaitable<void> udp_echo(coronet::udp_socket& socket) {
  std::vector<char> buffer(65536);  // above the largest UDP payload, so nothing is truncated
  while (socket.is_open()) {
    auto got = co_await socket.recv_from(asio::buffer(buffer));
    if (!got) {
      if (got.error() == std::errc::operation_canceled) break;
      coronet::log().debug("udp receive: {}", got.error().message());
      continue;
    }
    auto sent = co_await socket.send_to(asio::buffer(buffer.data(), got.bytes()), got.sender());
    if (!sent) {
      coronet::log().debug("udp send to {}: {}", got.sender().to_string(), sent.error().message());
    }
  }
}

// What the command line asked to listen on, in its order.
struct listen_request {
  enum class kind { tcp, udp, unix_stream } what;
  std::string text;
};

// Everything the server serves with, so that a signal can stop it all.
struct server {
  explicit server(asio::io_context& context) : sessions(context.get_executor()) {}

  std::vector<coronet::tcp_listener> tcp;
  std::vector<coronet::udp_socket> udp;
  std::vector<coronet::unix_listener> unix_listeners;
  coronet::task_group sessions;
  coronet::timeout idle = coronet::no_timeout;

  // Binds one request; returns its ready line. Throws std::runtime_error with the reason.
  std::string bind(asio::io_context& context, const listen_request& request) {
    using kind = listen_request::kind;
    const char* option = request.what == kind::tcp   ? "--tcp"
                         : request.what == kind::udp ? "--udp"
                                                     : "--unix";
    auto ep = request.what == kind::unix_stream ? coronet::endpoint::unix_domain(request.text)
                                                : coronet::endpoint::parse(request.text);
    if (!ep || (request.what != kind::unix_stream && !ep->is_ip())) {
      const auto reason = ep ? "not an IP address" : ep.error().message();
      throw std::runtime_error(std::string("invalid ") + option + " '" + request.text +
                               "': " + reason);
    }
    try {
      switch (request.what) {
        case kind::tcp:
          tcp.push_back(coronet::tcp_listener::bind(context, *ep));
          return "listening tcp " + tcp.back().local_endpoint().to_string();
        case kind::udp:
          udp.push_back(coronet::udp_socket::bind(context, *ep));
          return "listening udp " + udp.back().local_endpoint().to_string();
        case kind::unix_stream:
          unix_listeners.push_back(coronet::unix_listener::bind(context, *ep));
          return "listening unix " + request.text;
      }
    } catch (const std::system_error& e) {
      throw std::runtime_error(e.what());
    }
    return {};
  }

  void start(const asio::any_io_executor& executor) {
    for (auto& l : tcp) coronet::spawn(executor, accept_loop(l, sessions, idle), "tcp accept loop");
    for (auto& l : unix_listeners) {
      coronet::spawn(executor, accept_loop(l, sessions, idle), "unix accept loop");
    }
    for (auto& s : udp) coronet::spawn(executor, udp_echo(s), "udp echo");
  }

  // The graceful stop: no new connections, `grace` for the live ones to finish, then the rest
  // are cancelled; returns once every session has ended.
  asio::awaitable<void> stop(coronet::timeout grace) {
    for (auto& l : tcp) l.close();
    for (auto& l : unix_listeners) l.close();  // removes the socket files
    for (auto& s : udp) s.close();
    const auto cut = co_await sessions.stop(grace);
    coronet::log().info("stopped: {} session(s) cut off after the grace period", cut);
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("coronet echo server: sends every byte back to its sender", "echo_server");
  std::vector<std::string> tcp_addresses;
  std::vector<std::string> udp_addresses;
  std::vector<std::string> unix_paths;
  unsigned threads = 1;
  std::string log_level = "info";
  double idle_seconds = 0;
  double grace_seconds = 1;
  // One value per occurrence, so that a stray word is an error rather than another address.
  auto* tcp_option =
      app.add_option("--tcp", tcp_addresses, "TCP on ADDR (127.0.0.1:0, [::1]:7000); repeatable")
          ->type_name("ADDR")
          ->allow_extra_args(false);
  auto* udp_option = app.add_option("--udp", udp_addresses, "UDP on ADDR; repeatable")
                         ->type_name("ADDR")
                         ->allow_extra_args(false);
  auto* unix_option = app.add_option("--unix", unix_paths,
                                     "Unix stream socket at PATH (@NAME: abstract); repeatable")
                          ->type_name("PATH")
                          ->allow_extra_args(false);
  app.add_option("--threads", threads, "worker threads (this version runs everything on one)")
      ->check(CLI::Range(1U, 1024U));
  auto* idle_option = app.add_option("--idle-timeout", idle_seconds,
                                     "close a connection silent for SECS (default: never)")
                          ->type_name("SECS")
                          ->check(CLI::PositiveNumber);
  app.add_option("--grace", grace_seconds,
                 "on SIGINT/SIGTERM, give live connections SECS to finish")
      ->type_name("SECS")
      ->check(CLI::Range(0.0, 3600.0));
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
  std::size_t next_tcp = 0, next_udp = 0, next_unix = 0;
  for (const CLI::Option* option : app.parse_order()) {
    using kind = listen_request::kind;
    if (option == tcp_option) requests.push_back({kind::tcp, tcp_addresses.at(next_tcp++)});
    if (option == udp_option) requests.push_back({kind::udp, udp_addresses.at(next_udp++)});
    if (option == unix_option) requests.push_back({kind::unix_stream, unix_paths.at(next_unix++)});
  }
  if (requests.empty()) {
    std::cerr << "echo_server: no listener: give at least one --tcp, --udp or --unix\n"
              << app.help();
    return 2;
  }
  coronet::set_log_level(coronet::parse_log_level(log_level).value());

  asio::io_context context(1);
  server echo(context);
  const auto seconds = [](double s) {
    return std::chrono::duration_cast<coronet::timeout::duration>(std::chrono::duration<double>(s));
  };
  if (idle_option->count() > 0) echo.idle = seconds(idle_seconds);
  std::vector<std::string> ready_lines;
  try {
    for (const auto& request : requests) ready_lines.push_back(echo.bind(context, request));
  } catch (const std::exception& e) {
    std::cerr << "echo_server: " << e.what() << std::endl;
    return 1;  // the listeners bound so far close (and remove their files) on the way out
  }
  // Only once every listener is bound, so that a failure prints nothing on stdout.
  for (const auto& line : ready_lines) std::cout << line << '\n';
  std::cout.flush();
  if (threads > 1) {
    coronet::log().info("--threads {}: this version serves every connection from one thread",
                        threads);
  }

  echo.start(context.get_executor());
  asio::signal_set signals(context, SIGINT, SIGTERM);
  signals.async_wait([&](const std::error_code& ec, int signal) {
    if (ec) return;
    coronet::log().info("signal {}: stopping", signal);
    coronet::spawn(context.get_executor(), echo.stop(seconds(grace_seconds)), "graceful stop");
  });

  context.run();
  return 0;
}
