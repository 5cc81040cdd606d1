// C10K: 10,000 concurrent TCP connections to the real echo_server, each echoing a payload of
// its own; every connection is a socket of its own at both ends, which the server's
// connection table (SIGUSR1) shows. Prints the server's descriptors and resident memory.
#include <doctest/doctest.h>

#include <signal.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <asio/detached.hpp>

#include "support/child_process.hpp"
#include "support/connection_table.hpp"
#include "support/proc.hpp"
#include "support/run.hpp"

using namespace std::chrono_literals;
using coronet::tcp_stream;
using coronet::test::child_process;
namespace test = coronet::test;

namespace {

constexpr std::size_t connections = 10000;
// Connects go out in waves of this many at once, so that the listener's backlog (4,096 by
// default) is never what is being tested.
constexpr std::size_t wave = 1000;

// Connects, stores the stream in `slot`; done() either way.
asio::awaitable<void> connect_one(coronet::endpoint where, std::optional<tcp_stream>& slot,
                                  test::wait_group& group) {
  auto stream = co_await tcp_stream::connect(where, {.limit = 30s});
  if (stream) slot = std::move(*stream);
  group.done();
}

// A payload no other connection sends: its number, then bytes that depend on it.
std::string payload_of(std::size_t id) {
  std::string payload = "connection " + std::to_string(id) + ":";
  for (std::size_t i = 0; i < 64; ++i)
    payload += static_cast<char>('a' + static_cast<int>((id * 31 + i * 7) % 26));
  return payload;
}

asio::awaitable<void> echo_own(tcp_stream& stream, std::size_t id, std::size_t& echoed,
                               test::wait_group& group) {
  const auto out = payload_of(id);
  std::string back(out.size(), '\0');
  const auto sent = co_await stream.send_all(asio::buffer(out), 30s);
  const auto got = co_await stream.recv_exact(asio::buffer(back), 30s);
  if (sent && got && back == out) ++echoed;
  group.done();
}

}  // namespace

TEST_CASE("c10k: 10000 concurrent connections to echo_server each echo their own payload") {
  // This process holds one descriptor per client; echo_server raises its own limit.
  const auto limit = coronet::raise_open_file_limit();
  REQUIRE(limit);
  REQUIRE_MESSAGE(*limit >= connections + 100, "the open file limit is " << *limit);
  child_process server(CORONET_ECHO_SERVER_PATH,
                       {"--tcp", "127.0.0.1:0", "--threads", "2", "--log-level", "warn"});
  const auto where = test::ready_endpoint(server.read_stdout_line(5s));
  test::run(
      [&]() -> asio::awaitable<void> {
        // The sockets are made and closed in here: they must not outlive the io_context.
        std::vector<std::optional<tcp_stream>> clients(connections);
        const auto executor = co_await asio::this_coro::executor;
        for (std::size_t first = 0; first < connections; first += wave) {
          test::wait_group group(executor);
          group.add(wave);
          for (std::size_t i = first; i < first + wave; ++i) {
            asio::co_spawn(executor, connect_one(where, clients[i], group), asio::detached);
          }
          co_await group.wait();
        }
        std::size_t connected = 0;
        for (const auto& c : clients) {
          if (c) ++connected;
        }
        REQUIRE(connected == connections);

        // All open at once, every one echoes its own payload.
        test::wait_group group(executor);
        group.add(connections);
        std::size_t echoed = 0;
        for (std::size_t i = 0; i < connections; ++i) {
          asio::co_spawn(executor, echo_own(*clients[i], i, echoed, group), asio::detached);
        }
        co_await group.wait();
        CHECK(echoed == connections);

        // Our end: 10,000 distinct local endpoints and descriptors.
        std::set<coronet::endpoint> locals;
        std::set<int> fds;
        for (auto& c : clients) {
          locals.insert(c->local_endpoint());
          fds.insert(c->native_handle());
        }
        CHECK(locals.size() == connections);
        CHECK(fds.size() == connections);

        // The server's end: one row per connection, each with its own descriptor, the peers
        // being exactly our local endpoints.
        const auto server_fds = test::open_descriptors(server.pid());
        const auto server_rss = test::resident_bytes(server.pid());
        server.send_signal(SIGUSR1);
        const auto table = test::read_connection_table(server, connections, 60s);
        std::set<int> server_sockets;
        std::set<coronet::endpoint> peers;
        for (const auto& row : table) {
          server_sockets.insert(row.fd);
          peers.insert(row.peer);
        }
        CHECK(table.size() == connections);
        CHECK(server_sockets.size() == connections);
        CHECK(peers == locals);
        CHECK(server_fds >= connections);
        std::cout << "c10k: echo_server held " << connections << " connections with " << server_fds
                  << " descriptors open and " << server_rss / (1024 * 1024) << " MiB resident"
                  << std::endl;
      },
      240s);

  server.send_signal(SIGTERM);
  CHECK(server.wait(30s) == 0);
  const auto log = server.read_all_stderr(2s);
  CHECK_MESSAGE(log.find("Sanitizer") == std::string::npos, log);
}

TEST_CASE(
    "c100k.sh: clients in several processes hold every connection at once - the workers "
    "split them") {
  // benchmarks/c100k.sh at a size CI can afford: the same steps and checks as the 100,000 run.
  const std::string bin = std::filesystem::path(CORONET_ECHO_SERVER_PATH).parent_path().string();
  const std::string script = std::string(CORONET_SOURCE_DIR) + "/benchmarks/c100k.sh";
  const auto run = test::run_to_exit(
      "/usr/bin/env", {"CONNECTIONS=3000", "WORKERS=2", "CLIENTS=3", "HOLD=4", script, bin}, 60s);
  INFO(run.out, run.err);
  CHECK(run.exit_code == 0);
  CHECK(run.out.find("c100k: PASS") != std::string::npos);
  CHECK(run.out.find("from 3 coronet_bench processes (127.0.0.2-127.0.0.4)") != std::string::npos);
  // Both workers hold some of the 3,000, and together all of them.
  std::smatch m;
  REQUIRE(std::regex_search(
      run.out, m, std::regex(R"(held at once: +(\d+) connections, by worker: (\d+) (\d+))")));
  CHECK(std::stoul(m[1].str()) == 3000);
  CHECK(std::stoul(m[2].str()) > 0);
  CHECK(std::stoul(m[3].str()) > 0);
  CHECK(std::stoul(m[2].str()) + std::stoul(m[3].str()) == 3000);
  CHECK(std::regex_search(
      run.out,
      std::regex(
          R"(server RSS: +[0-9.]+ MiB before, [0-9.]+ MiB with all open: \d+ bytes per connection)")));

  const auto bad = test::run_to_exit("/usr/bin/env", {"CONNECTIONS=2", "CLIENTS=3", script, bin});
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("more CLIENTS than CONNECTIONS") != std::string::npos);
}
