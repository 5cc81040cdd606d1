// echo_server: writes every byte it receives back to its sender, in order, until the peer closes.
//
// Run:    build/bin/echo_server --tcp 127.0.0.1:7000 --tcp [::1]:7000
// Pair:   build/bin/echo_client --target 127.0.0.1:7000   (or: nc 127.0.0.1 7000)
// Stop:   Ctrl-C or SIGTERM: stops accepting, closes the connections, exits 0.
//
// Exit codes: 0 after a signal; 1 when an address is malformed or cannot be bound (one line
// on stderr); 2 for a command-line mistake (usage on stderr).

#include <array>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <list>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "coronet/coronet.hpp"

namespace {

// The live sessions' streams, so that a signal can close them. Used from the one thread that
// runs the io_context.
class session_registry {
 public:
  // Keeps `stream` listed for as long as the returned guard lives.
  class entry {
   public:
    entry(session_registry& registry, coronet::tcp_stream& stream)
        : registry_(registry),
          position_(registry.streams_.insert(registry.streams_.end(), &stream)) {
      // A connection accepted just before the stop signal must not outlive it.
      if (registry.stopping_) stream.close();
    }
    entry(const entry&) = delete;
    entry& operator=(const entry&) = delete;
    ~entry() { registry_.streams_.erase(position_); }

   private:
    session_registry& registry_;
    std::list<coronet::tcp_stream*>::iterator position_;
  };

  void close_all() noexcept {
    stopping_ = true;
    for (auto* stream : streams_) stream->close();
  }

 private:
  bool stopping_ = false;
  std::list<coronet::tcp_stream*> streams_;
};

asio::awaitable<void> echo_session(coronet::tcp_stream stream, session_registry& sessions) {
  const session_registry::entry listed(sessions, stream);
  const auto peer = stream.remote_endpoint();
  coronet::log().debug("{}: connected", peer.to_string());

  std::array<char, 16 * 1024> buffer;
  for (;;) {
    auto got = co_await stream.recv(asio::buffer(buffer));
    if (!got) {
      if (got.error() == coronet::errc::eof) {
        // Everything received was echoed: answer the peer's FIN with ours.
        (void)stream.shutdown(coronet::shutdown_type::send);
        coronet::log().debug("{}: closed by peer", peer.to_string());
      } else {
        coronet::log().debug("{}: receive failed: {}", peer.to_string(), got.error().message());
      }
      break;
    }
    auto sent = co_await stream.send_all(asio::buffer(buffer.data(), got.bytes()));
    if (!sent) {
      coronet::log().debug("{}: send failed: {}", peer.to_string(), sent.error().message());
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

asio::awaitable<void> accept_loop(coronet::tcp_listener& listener, session_registry& sessions) {
  const auto executor = co_await asio::this_coro::executor;
  while (listener.is_open()) {
    auto stream = co_await listener.accept();
    if (stream) {
      coronet::spawn(executor, echo_session(std::move(*stream), sessions), "echo session");
      continue;
    }
    if (stream.error() == std::errc::operation_canceled) break;
    if (is_resource_shortage(stream.error())) {
      coronet::log().warn("accept on {}: {}; retrying in 100 ms",
                          listener.local_endpoint().to_string(), stream.error().message());
      asio::steady_timer pause(executor, std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::use_awaitable);
    } else {
      coronet::log().debug("accept on {}: {}", listener.local_endpoint().to_string(),
                           stream.error().message());
    }
  }
}

int fail(const std::string& reason) {
  std::cerr << "echo_server: " << reason << std::endl;
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("coronet echo server: sends every byte back to its sender", "echo_server");
  std::vector<std::string> tcp_addresses;
  unsigned threads = 1;
  std::string log_level = "info";
  app.add_option("--tcp", tcp_addresses, "listen on ADDR (127.0.0.1:0, [::1]:7000); repeatable")
      ->type_name("ADDR")
      ->allow_extra_args(false)  // one ADDR per --tcp: a stray word is an error, not an address
      ->take_all();
  app.add_option("--threads", threads, "worker threads (this version runs everything on one)")
      ->check(CLI::Range(1U, 1024U));
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
  if (tcp_addresses.empty()) {
    std::cerr << "echo_server: no listener: give at least one --tcp ADDR\n" << app.help();
    return 2;
  }
  coronet::set_log_level(coronet::parse_log_level(log_level).value());

  std::vector<coronet::endpoint> endpoints;
  for (const auto& text : tcp_addresses) {
    auto ep = coronet::endpoint::parse(text);
    if (!ep) return fail("invalid --tcp '" + text + "': " + ep.error().message());
    endpoints.push_back(*ep);
  }

  asio::io_context context(1);
  std::vector<coronet::tcp_listener> listeners;
  try {
    for (const auto& ep : endpoints) listeners.push_back(coronet::tcp_listener::bind(context, ep));
  } catch (const std::system_error& e) {
    return fail(e.what());
  }
  // Only once every listener is bound, so that a failure prints nothing on stdout.
  for (const auto& listener : listeners) {
    std::cout << "listening tcp " << listener.local_endpoint().to_string() << '\n';
  }
  std::cout.flush();
  if (threads > 1) {
    coronet::log().info("--threads {}: this version serves every connection from one thread",
                        threads);
  }

  session_registry sessions;
  for (auto& listener : listeners) {
    coronet::spawn(context.get_executor(), accept_loop(listener, sessions), "accept loop");
  }

  asio::signal_set signals(context, SIGINT, SIGTERM);
  signals.async_wait([&](const std::error_code& ec, int signal) {
    if (ec) return;
    coronet::log().info("signal {}: stopping", signal);
    for (auto& listener : listeners) listener.close();
    sessions.close_all();
  });

  context.run();
  return 0;
}
