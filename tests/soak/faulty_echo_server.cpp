// faulty_echo_server: an echo server with a deliberate defect, for coronet_soak's own tests: a
// soak run against it must fail and name the defect. It takes the part of echo_server's
// command line that coronet_soak passes and prints the same ready lines.
//
// Run:    build/bin/faulty_echo_server --tcp 127.0.0.1:0 --udp 127.0.0.1:0 --unix /tmp/e.sock
//           --leak-every 20
// Pair:   build/bin/coronet_soak --echo-server build/bin/faulty_echo_server
//           --echo-server-arg=--leak-every=20
// Stop:   SIGINT or SIGTERM: closes the UDP sockets, stops the servers (1 s of grace), exits 0.
//
// Defects (each off unless asked for):
//   --leak-every N     every Nth TCP or Unix connection leaks a descriptor (/dev/null, opened
//                      and never closed), as a session that forgets to close a file would.
//   --corrupt-every N  every Nth TCP or Unix connection has the first byte it echoes flipped.
// Everything else is echo_server's behaviour: UDP through echo_server's own code
// (examples/echo_session.hpp), TCP and Unix through a copy of its session with the defect in.
//
// Exit codes: 0 after a signal; 1 when an address cannot be bound; 2 for a command-line mistake.

#include <fcntl.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <asio/co_spawn.hpp>
#include <asio/use_awaitable.hpp>

#include "coronet/coronet.hpp"
#include "echo_session.hpp"

namespace {

struct defects {
  std::uint64_t leak_every = 0;     // 0: never
  std::uint64_t corrupt_every = 0;  // 0: never
  std::atomic<std::uint64_t> accepted{0};
};

// echo_session with the defects: which ones this connection gets is decided when it starts.
template <class Stream>
asio::awaitable<void> faulty_session(Stream stream, coronet::timeout idle, defects& d) {
  const auto n = d.accepted.fetch_add(1) + 1;
  if (d.leak_every > 0 && n % d.leak_every == 0) {
    (void)::open("/dev/null", O_RDONLY | O_CLOEXEC);  // the leak itself: never closed
  }
  bool corrupt = d.corrupt_every > 0 && n % d.corrupt_every == 0;

  std::array<char, 16 * 1024> buffer;
  for (;;) {
    auto got = co_await stream.recv(asio::buffer(buffer), idle);
    if (!got) {
      if (got.error() == coronet::errc::eof) (void)stream.shutdown(coronet::shutdown_type::send);
      break;
    }
    if (corrupt) {
      buffer[0] = static_cast<char>(buffer[0] ^ 0x01);
      corrupt = false;
    }
    if (!co_await stream.send_all(asio::buffer(buffer.data(), got.bytes()))) break;
  }
  stream.close();
}

asio::awaitable<void> stop_all(coronet::runtime& runtime, std::optional<coronet::tcp_server>& tcp,
                               std::optional<coronet::unix_server>& unix_server,
                               std::vector<std::shared_ptr<coronet::udp_socket>>& udp) {
  for (std::size_t i = 0; i < udp.size(); ++i) {
    co_await asio::co_spawn(runtime.executor(i % runtime.size()),
                            coronet_examples::close_udp(udp[i]), asio::use_awaitable);
  }
  if (tcp) (void)co_await tcp->stop(std::chrono::seconds(1));
  if (unix_server) (void)co_await unix_server->stop(std::chrono::seconds(1));
}

}  // namespace

int main(int argc, char** argv) {
  (void)coronet::raise_open_file_limit();
  CLI::App app("an echo server with a deliberate defect, for coronet_soak's tests",
               "faulty_echo_server");
  std::string tcp_address, udp_address, unix_path;
  unsigned threads = 2;
  double idle_seconds = 0;
  auto d = std::make_unique<defects>();
  app.add_option("--tcp", tcp_address, "TCP on ADDR")->type_name("ADDR");
  app.add_option("--udp", udp_address, "UDP on ADDR")->type_name("ADDR");
  app.add_option("--unix", unix_path, "Unix stream socket at PATH")->type_name("PATH");
  app.add_option("--threads", threads, "runtime threads")->check(CLI::Range(1U, 64U));
  app.add_option("--idle-timeout", idle_seconds, "close a connection silent for SECS")
      ->type_name("SECS")
      ->check(CLI::PositiveNumber);
  app.add_option("--leak-every", d->leak_every, "leak a descriptor every N connections")
      ->type_name("N")
      ->check(CLI::PositiveNumber);
  app.add_option("--corrupt-every", d->corrupt_every, "flip a byte every N connections")
      ->type_name("N")
      ->check(CLI::PositiveNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "faulty_echo_server: " << e.what() << "\n\n" << app.help();
    return 2;
  }
  if (tcp_address.empty() && udp_address.empty() && unix_path.empty()) {
    std::cerr << "faulty_echo_server: no listener: give --tcp, --udp or --unix\n" << app.help();
    return 2;
  }

  const coronet::timeout idle = idle_seconds > 0
                                    ? coronet::timeout(std::chrono::duration<double>(idle_seconds))
                                    : coronet::no_timeout;
  coronet::runtime runtime(threads);
  std::optional<coronet::tcp_server> tcp;
  std::optional<coronet::unix_server> unix_server;
  std::vector<std::shared_ptr<coronet::udp_socket>> udp;
  std::vector<std::string> ready;
  try {
    // In echo_server's order of ready lines when coronet_soak starts it: tcp, udp, unix.
    if (!tcp_address.empty()) {
      tcp.emplace(coronet::tcp_server::bind(runtime, coronet::endpoint::parse(tcp_address).value(),
                                            [idle, &d = *d](coronet::tcp_stream s) {
                                              return faulty_session(std::move(s), idle, d);
                                            }));
      ready.push_back("listening tcp " + tcp->local_endpoint().to_string());
    }
    if (!udp_address.empty()) {
      udp = coronet_examples::bind_udp_echo(runtime, coronet::endpoint::parse(udp_address).value());
      ready.push_back("listening udp " + udp.front()->local_endpoint().to_string());
    }
    if (!unix_path.empty()) {
      unix_server.emplace(
          coronet::unix_server::bind(runtime, coronet::endpoint::unix_domain(unix_path).value(),
                                     [idle, &d = *d](coronet::unix_stream s) {
                                       return faulty_session(std::move(s), idle, d);
                                     }));
      ready.push_back("listening unix " + unix_path);
    }
  } catch (const std::exception& e) {
    std::cerr << "faulty_echo_server: " << e.what() << std::endl;
    return 1;
  }

  runtime.handle_signals(
      [&runtime, &tcp, &unix_server, &udp] { return stop_all(runtime, tcp, unix_server, udp); });
  for (std::size_t i = 0; i < udp.size(); ++i) {
    runtime.spawn(i % runtime.size(), coronet_examples::udp_echo(udp[i]), "udp echo");
  }
  for (const auto& line : ready) std::cout << line << '\n';
  std::cout.flush();
  runtime.run();
  return 0;
}
