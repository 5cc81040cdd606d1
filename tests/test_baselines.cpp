// The two baseline echo servers coronet is benchmarked against (benchmarks/epoll_echo_server.cpp
// and benchmarks/asio_echo_server.cpp), driven as child processes through the command line and
// ready lines they share with echo_server. Every case runs once for each, as a subcase named
// after the program.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "support/child_process.hpp"
#include "support/proc.hpp"
#include "support/run.hpp"

using namespace std::chrono_literals;
using coronet::tcp_stream;
using coronet::test::child_process;
namespace test = coronet::test;

namespace {

struct baseline {
  std::string label;  // the subcase's name
  std::string name;   // what the program calls itself on stderr
  std::string path;
  std::vector<std::string> style;  // what goes before the case's own arguments

  // The command line of a case: `style`, then `args`.
  std::vector<std::string> with(std::vector<std::string> args) const {
    args.insert(args.begin(), style.begin(), style.end());
    return args;
  }
};

const std::vector<baseline>& baselines() {
  static const std::vector<baseline> all{
      {"epoll_echo_server", "epoll_echo_server", CORONET_EPOLL_ECHO_SERVER_PATH, {}},
      {"asio_echo_server", "asio_echo_server", CORONET_ASIO_ECHO_SERVER_PATH, {}},
      {"asio_echo_server --coroutines",
       "asio_echo_server",
       CORONET_ASIO_ECHO_SERVER_PATH,
       {"--coroutines"}},
  };
  return all;
}

// Runs the enclosing test case once per baseline: `server` is the one of this run.
#define FOR_EACH_BASELINE(server) \
  for (const baseline& server : baselines()) SUBCASE(server.label.c_str())

// One line on stderr starting with the program's name and holding `reason_part`; nothing on
// stdout; exit 1.
void check_setup_failure(const baseline& server, const std::vector<std::string>& args,
                         const std::string& reason_part) {
  std::string shown;
  for (const auto& a : args) shown += a + ' ';
  CAPTURE(shown);
  const auto r = test::run_to_exit(server.path, server.with(args));
  CHECK(r.exit_code == 1);
  CHECK(r.out.empty());
  const auto err_lines = test::lines_of(r.err);
  REQUIRE(err_lines.size() == 1);
  CHECK(err_lines[0].rfind(server.name + ": ", 0) == 0);
  CHECK_MESSAGE(err_lines[0].find(reason_part) != std::string::npos, err_lines[0]);
}

// Client `id`: three messages of its own, each echoed back exactly before the next; counts a
// client whose every reply matched in `good`. Never throws, so that `group` always hears of it.
asio::awaitable<void> echo_own_messages(coronet::endpoint where, unsigned id,
                                        test::wait_group& group, std::size_t& good) {
  auto stream = co_await tcp_stream::connect(where, {.limit = 5s});
  bool ok = static_cast<bool>(stream);
  for (unsigned round = 0; ok && round < 3; ++round) {
    const auto payload = test::pattern_text(100 + id * 97 + round * 1000, id * 3 + round);
    std::string back(payload.size(), '\0');
    ok = (co_await stream->send_all(asio::buffer(payload), 5s)) &&
         (co_await stream->recv_exact(asio::buffer(back), 5s)) && back == payload;
  }
  if (ok) ++good;
  group.done();
}

// 4 MiB sent in one send_all while the same connection's echo is read at the same time: the
// server meets a full socket buffer many times over and must neither lose nor reorder a byte.
asio::awaitable<void> send_whole(tcp_stream& stream, const std::string& payload, bool& sent,
                                 test::wait_group& group) {
  sent = static_cast<bool>(co_await stream.send_all(asio::buffer(payload), 20s));
  group.done();
}

asio::awaitable<void> receive_whole(tcp_stream& stream, std::string& back, bool& received,
                                    test::wait_group& group) {
  received = static_cast<bool>(co_await stream.recv_exact(asio::buffer(back), 20s));
  group.done();
}

// `payload` over a Unix stream, then the half-close: the echo comes back whole, then eof.
asio::awaitable<void> expect_unix_echo_and_fin(coronet::endpoint where, std::string payload) {
  auto stream = co_await coronet::unix_stream::connect(where, 5s);
  REQUIRE_MESSAGE(stream, stream.error().message());
  REQUIRE(co_await stream->send_all(asio::buffer(payload), 5s));
  REQUIRE(stream->shutdown(coronet::shutdown_type::send));
  std::string back(payload.size(), '\0');
  auto got = co_await stream->recv_exact(asio::buffer(back), 5s);
  REQUIRE_MESSAGE(got, got.error().message());
  CHECK(back == payload);
  char extra = 0;
  CHECK((co_await stream->recv(asio::buffer(&extra, 1), 5s)).error() == coronet::errc::eof);
}

// From each of `sockets` client sockets, datagrams of several sizes (60,000 bytes included),
// each echoed back unchanged from the server's address.
asio::awaitable<void> expect_udp_echo(coronet::endpoint where, coronet::endpoint any,
                                      std::size_t sockets) {
  const auto executor = co_await asio::this_coro::executor;
  std::vector<char> back(65536);
  for (unsigned s = 0; s < sockets; ++s) {
    auto socket = coronet::udp_socket::bind(executor, any);
    for (std::size_t size : {0U, 1U, 100U, 1472U, 8192U, 60000U}) {
      CAPTURE(s);
      CAPTURE(size);
      const auto datagram = test::pattern_text(size, s);
      REQUIRE(co_await socket.send_to(asio::buffer(datagram), where));
      auto got = co_await socket.recv_from(asio::buffer(back), 5s);
      REQUIRE_MESSAGE(got, got.error().message());
      CHECK(got.sender() == where);
      REQUIRE(got.bytes() == size);
      CHECK(std::equal(datagram.begin(), datagram.end(), back.begin()));
    }
  }
}

// Reads stderr lines until one holds `text` or `limit` passes; returns every line it read.
std::string read_stderr_through(child_process& server, const std::string& text,
                                std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  std::string seen;
  while (std::chrono::steady_clock::now() < until) {
    auto line = server.read_stderr_line(100ms);
    if (!line) continue;
    seen += *line + "\n";
    if (line->find(text) != std::string::npos) return seen;
  }
  FAIL("no \"" << text << "\" on stderr within the limit; it wrote:\n" << seen);
  return seen;
}

}  // namespace

TEST_CASE("baselines: ready lines for tcp udp and unix follow the command-line order") {
  FOR_EACH_BASELINE(server) {
    const test::temp_dir dir;
    const auto first_path = std::string(dir.socket("first.sock").path());
    const auto second_path = std::string(dir.socket("second.sock").path());
    child_process child(server.path, server.with({"--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0",
                                                  "--unix", first_path, "--unix",
                                                  "unix:" + second_path, "--tcp", "127.0.0.1:0"}));
    const auto tcp = test::ready_endpoint(child.read_stdout_line(5s), "tcp");
    const auto udp = test::ready_endpoint(child.read_stdout_line(5s), "udp");
    CHECK(child.read_stdout_line(5s) == "listening unix " + first_path);
    CHECK(child.read_stdout_line(5s) == "listening unix " + second_path);  // without "unix:"
    const auto second_tcp = test::ready_endpoint(child.read_stdout_line(5s), "tcp");
    CHECK(tcp.is_v4());
    CHECK(udp.is_v4());
    CHECK(tcp != second_tcp);
    CHECK(std::filesystem::is_socket(first_path));
    CHECK(std::filesystem::is_socket(second_path));
    CHECK_FALSE(child.read_stdout_line(300ms).has_value());  // nothing more
    test::run([&]() -> asio::awaitable<void> {
      co_await test::expect_echo(tcp, "first");
      co_await test::expect_echo(second_tcp, "second");
    });
    child.send_signal(SIGTERM);
    CHECK(child.wait(2s) == 0);
    CHECK(child.read_all_stderr(1s).empty());
  }
}

TEST_CASE("baselines: TCP echo is byte-exact on concurrent connections - 4 MiB in one go too") {
  FOR_EACH_BASELINE(server) {
    child_process child(server.path, server.with({"--tcp", "127.0.0.1:0", "--threads", "2"}));
    const auto where = test::ready_endpoint(child.read_stdout_line(5s));
    test::run(
        [&]() -> asio::awaitable<void> {
          const auto executor = co_await asio::this_coro::executor;
          auto big = co_await tcp_stream::connect(where, {.limit = 5s});
          REQUIRE_MESSAGE(big, big.error().message());
          const auto payload = test::pattern_text(4 * 1024 * 1024, 99);
          std::string back(payload.size(), '\0');
          bool sent = false;
          bool received = false;
          std::size_t good = 0;
          constexpr unsigned small_clients = 20;

          test::wait_group group(executor);
          group.add(2 + small_clients);
          coronet::spawn(executor, send_whole(*big, payload, sent, group), "4 MiB sender");
          coronet::spawn(executor, receive_whole(*big, back, received, group), "4 MiB reader");
          for (unsigned id = 0; id < small_clients; ++id) {
            coronet::spawn(executor, echo_own_messages(where, id, group, good), "client");
          }
          co_await group.wait();
          CHECK(sent);
          CHECK(received);
          CHECK(back == payload);
          CHECK(good == small_clients);
        },
        30s);
    child.send_signal(SIGTERM);
    CHECK(child.wait(2s) == 0);
  }
}

TEST_CASE("baselines: after the client's half-close the rest is echoed - then FIN") {
  FOR_EACH_BASELINE(server) {
    child_process child(server.path, server.with({"--tcp", "127.0.0.1:0"}));
    const auto where = test::ready_endpoint(child.read_stdout_line(5s));
    test::run([&]() -> asio::awaitable<void> {
      auto stream = co_await tcp_stream::connect(where, {.limit = 5s});
      REQUIRE(stream);
      // 300 kB fits in loopback's socket buffers, so sending all before reading cannot deadlock.
      const auto payload = test::pattern_text(300000, 1);
      REQUIRE(co_await stream->send_all(asio::buffer(payload), 5s));
      REQUIRE(stream->shutdown(coronet::shutdown_type::send));
      std::string back(payload.size(), '\0');
      auto got = co_await stream->recv_exact(asio::buffer(back), 5s);
      REQUIRE_MESSAGE(got, got.error().message());
      CHECK(back == payload);
      char extra = 0;
      auto end = co_await stream->recv(asio::buffer(&extra, 1), 5s);
      CHECK(end.error() == coronet::errc::eof);  // a FIN, not a reset nor a timeout
    });
    child.send_signal(SIGTERM);
    CHECK(child.wait(2s) == 0);
  }
}

TEST_CASE("baselines: UDP datagrams come back unchanged - 60000 bytes included") {
  FOR_EACH_BASELINE(server) {
    // Two sockets on the port: the kernel hashes each client socket to one of them.
    child_process child(server.path, server.with({"--udp", "127.0.0.1:0", "--threads", "2"}));
    const auto where = test::ready_endpoint(child.read_stdout_line(5s), "udp");
    test::run(
        [&]() -> asio::awaitable<void> { co_await expect_udp_echo(where, test::any_v4(), 4); });
    child.send_signal(SIGTERM);
    CHECK(child.wait(2s) == 0);
  }
}

TEST_CASE("baselines: over IPv6 TCP and UDP echo too") {
  if (!test::has_ipv6_loopback()) {
    MESSAGE("skipped: this machine has no IPv6 loopback");
    return;
  }
  FOR_EACH_BASELINE(server) {
    child_process child(server.path, server.with({"--tcp", "[::1]:0", "--udp", "[::1]:0"}));
    const auto tcp = test::ready_endpoint(child.read_stdout_line(5s), "tcp");
    const auto udp = test::ready_endpoint(child.read_stdout_line(5s), "udp");
    CHECK(tcp.is_v6());
    CHECK(udp.is_v6());
    test::run([&]() -> asio::awaitable<void> {
      co_await test::expect_echo(tcp, test::pattern_text(70000, 6));
      co_await expect_udp_echo(udp, coronet::endpoint(asio::ip::address_v6::loopback(), 0), 1);
    });
    child.send_signal(SIGTERM);
    CHECK(child.wait(2s) == 0);
  }
}

TEST_CASE("baselines: Unix stream echo - then FIN after the client's half-close") {
  FOR_EACH_BASELINE(server) {
    const test::temp_dir dir;
    const auto path = std::string(dir.socket("echo.sock").path());
    const auto abstract = std::string(test::unique_abstract_name().path());
    child_process child(server.path,
                        server.with({"--unix", path, "--unix", abstract, "--threads", "2"}));
    CHECK(child.read_stdout_line(5s) == "listening unix " + path);
    CHECK(child.read_stdout_line(5s) == "listening unix " + abstract);
    test::run([&]() -> asio::awaitable<void> {
      for (unsigned i = 0; i < 4; ++i) {  // on both threads, whichever takes each
        co_await expect_unix_echo_and_fin(coronet::endpoint::unix_domain(path).value(),
                                          test::pattern_text(150000 + i, i));
      }
      co_await expect_unix_echo_and_fin(coronet::endpoint::unix_domain(abstract).value(),
                                        test::pattern_text(1000, 5));
    });
    child.send_signal(SIGTERM);
    CHECK(child.wait(2s) == 0);
  }
}

TEST_CASE("baselines: --threads 2 serves 50 concurrent connections") {
  FOR_EACH_BASELINE(server) {
    child_process child(server.path, server.with({"--tcp", "127.0.0.1:0", "--threads", "2"}));
    const auto where = test::ready_endpoint(child.read_stdout_line(5s));
    std::size_t good = 0;
    test::run(
        [&]() -> asio::awaitable<void> {
          const auto executor = co_await asio::this_coro::executor;
          test::wait_group group(executor);
          group.add(50);
          for (unsigned id = 0; id < 50; ++id) {
            coronet::spawn(executor, echo_own_messages(where, id, group, good), "client");
          }
          co_await group.wait();
        },
        30s);
    CHECK(good == 50);
    // --threads 2 started a second thread (epoll: two loop threads besides main, which waits
    // for the signal; asio: main runs context 0 and one thread runs context 1).
    const auto tasks = std::filesystem::path("/proc") / std::to_string(child.pid()) / "task";
    const auto count = std::distance(std::filesystem::directory_iterator(tasks),
                                     std::filesystem::directory_iterator());
    CHECK(count >= 2);
    child.send_signal(SIGTERM);
    CHECK(child.wait(2s) == 0);
  }
}

TEST_CASE("baselines: a peer that resets mid-stream does not stop them") {
  FOR_EACH_BASELINE(server) {
    child_process child(server.path, server.with({"--tcp", "127.0.0.1:0"}));
    const auto where = test::ready_endpoint(child.read_stdout_line(5s));
    test::run([&]() -> asio::awaitable<void> {
      for (int i = 0; i < 20; ++i) {
        auto rude = co_await tcp_stream::connect(where, {.limit = 5s});
        REQUIRE(rude);
        const std::string junk(256 * 1024, 'r');
        CHECK(co_await rude->send(asio::buffer(junk)));
        REQUIRE(rude->set_option(coronet::option::linger{true, 0s}));
        rude->close();  // RST while the server is echoing
      }
      co_await test::expect_echo(where, "still serving");
    });
    CHECK_FALSE(child.wait(0ms).has_value());  // still running
    child.send_signal(SIGINT);
    CHECK(child.wait(2s) == 0);
  }
}

TEST_CASE("baselines: SIGTERM and SIGINT exit 0 - close everything and remove the socket file") {
  FOR_EACH_BASELINE(server) {
    for (int signal : {SIGTERM, SIGINT}) {
      CAPTURE(signal);
      const test::temp_dir dir;
      const auto path = std::string(dir.socket("echo.sock").path());
      child_process child(server.path,
                          server.with({"--tcp", "127.0.0.1:0", "--unix", path, "--threads", "2"}));
      const auto where = test::ready_endpoint(child.read_stdout_line(5s));
      CHECK(child.read_stdout_line(5s) == "listening unix " + path);
      test::run([&]() -> asio::awaitable<void> {
        std::vector<tcp_stream> idle;
        for (int i = 0; i < 10; ++i) {
          idle.push_back((co_await tcp_stream::connect(where, {.limit = 5s})).value());
        }
        co_await test::expect_echo(where, "before the signal");

        child.send_signal(signal);
        CHECK(child.wait(2s) == 0);
        // It closed its connections on the way out and no longer listens.
        for (auto& stream : idle) {
          char byte = 0;
          CHECK_FALSE(co_await stream.recv(asio::buffer(&byte, 1), 5s));
        }
        CHECK((co_await tcp_stream::connect(where, {.limit = 5s})).error() ==
              std::errc::connection_refused);
      });
      CHECK_FALSE(std::filesystem::exists(path));
    }
  }
}

TEST_CASE("baselines: an address in use or a bad path exits 1 with one line on stderr") {
  FOR_EACH_BASELINE(server) {
    asio::io_context context;
    const test::temp_dir dir;
    // Without SO_REUSEPORT, so that the servers' SO_REUSEPORT sockets cannot share them.
    auto tcp_taken = coronet::tcp_listener::bind(context, test::any_v4());
    auto udp_taken = coronet::udp_socket::bind(context, test::any_v4());
    const auto tcp_text = tcp_taken.local_endpoint().to_string();
    const auto udp_text = udp_taken.local_endpoint().to_string();
    check_setup_failure(server, {"--tcp", "127.0.0.1:0", "--tcp", tcp_text},
                        tcp_text + ": Address already in use");
    check_setup_failure(server, {"--udp", udp_text}, udp_text + ": Address already in use");

    // A path another server listens on: refused, and that server keeps its file.
    const auto live = std::string(dir.socket("live.sock").path());
    auto unix_taken =
        coronet::unix_listener::bind(context, coronet::endpoint::unix_domain(live).value());
    check_setup_failure(server, {"--unix", live}, "Address already in use");
    CHECK(std::filesystem::is_socket(live));

    // A file that is not a socket: refused and left alone.
    const auto regular = std::string(dir.socket("data.txt").path());
    std::ofstream(regular) << "keep me";
    check_setup_failure(server, {"--unix", regular}, "not a socket");
    std::ifstream in(regular);
    CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == "keep me");

    check_setup_failure(server, {"--unix", (dir.path() / "no-such-dir" / "s.sock").string()},
                        "No such file");
    check_setup_failure(server, {"--unix", "/" + std::string(120, 'x')}, "longer than 107");

    // A socket file created before a later failure is removed again.
    const auto first = std::string(dir.socket("first.sock").path());
    check_setup_failure(server, {"--unix", first, "--tcp", tcp_text}, "Address already in use");
    CHECK_FALSE(std::filesystem::exists(first));
  }
}

TEST_CASE("baselines: a stale unix socket file is replaced") {
  FOR_EACH_BASELINE(server) {
    const test::temp_dir dir;
    const auto stale = std::string(dir.socket("stale.sock").path());
    {
      const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
      REQUIRE(fd >= 0);
      sockaddr_un address{};
      address.sun_family = AF_UNIX;
      std::strncpy(address.sun_path, stale.c_str(), sizeof address.sun_path - 1);
      REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
      ::close(fd);  // leaves the file, as a crashed server would
    }
    child_process child(server.path, server.with({"--unix", stale}));
    CHECK(child.read_stdout_line(5s) == "listening unix " + stale);
    test::run([&]() -> asio::awaitable<void> {
      co_await expect_unix_echo_and_fin(coronet::endpoint::unix_domain(stale).value(), "hello");
    });
    child.send_signal(SIGTERM);
    CHECK(child.wait(2s) == 0);
    CHECK_FALSE(std::filesystem::exists(stale));
  }
}

TEST_CASE("baselines: command-line mistakes exit 2 with the usage on stderr") {
  const std::vector<std::vector<std::string>> cases = {
      {},                                          // no listener at all
      {"--threads", "2"},                          // still none
      {"--bogus"},                                 // unknown option
      {"--tcp", "127.0.0.1:0", "--bogus"},         // unknown option after a good one
      {"--tcp"},                                   // missing value
      {"--tcp", "127.0.0.1:0", "stray"},           // one ADDR per --tcp
      {"--tcp", "127.0.0.1:0", "--threads", "0"},  // no threads
      {"--tcp", "127.0.0.1:0", "--threads", "x"},  // not a number
      {"--tcp", "127.0.0.1"},                      // no port
      {"--tcp", "127.0.0.1:70000"},                // port out of range
      {"--tcp", "localhost:80"},                   // numeric hosts only
      {"--udp", "[::1:80"},                        // unbalanced
      {"--udp", "::1:80"},                         // IPv6 needs its brackets
      {"--tcp", ""},                               // empty
      {"--unix", ""},                              // empty
      {"--unix", "unix:"},                         // empty after the prefix
  };
  FOR_EACH_BASELINE(server) {
    for (const auto& args : cases) {
      std::string shown;
      for (const auto& a : args) shown += a + ' ';
      CAPTURE(shown);
      const auto r = test::run_to_exit(server.path, server.with(args));
      CHECK(r.exit_code == 2);
      CHECK(r.out.empty());
      CHECK(r.err.rfind(server.name + ": ", 0) == 0);
      CHECK(r.err.find("--tcp") != std::string::npos);  // the usage names the options
    }
    const auto help = test::run_to_exit(server.path, server.with({"--help"}));
    CHECK(help.exit_code == 0);
    CHECK(help.out.find("--threads") != std::string::npos);
    if (server.name == "asio_echo_server")
      CHECK(help.out.find("--coroutines") != std::string::npos);
  }
}

TEST_CASE("baselines: out of descriptors they warn - do not spin - and serve once they free") {
#ifdef CORONET_TEST_UNDER_UBSAN
  // UBSan checks a virtual call's target by writing it to a pipe(): with no descriptor left
  // that fails and UBSan aborts the server on a false "invalid vptr". Run in the dev, tsan
  // and clang builds.
  MESSAGE("skipped under UBSan: its vptr check needs a free descriptor");
  return;
#endif
  FOR_EACH_BASELINE(server) {
    child_process child(server.path, server.with({"--tcp", "127.0.0.1:0", "--threads", "2"}));
    const auto where = test::ready_endpoint(child.read_stdout_line(5s));
    // Room for a few descriptors more than it holds now, far fewer than the clients below.
    const auto limit = static_cast<rlim_t>(test::open_descriptors(child.pid()) + 8);
    const rlimit lowered{limit, limit};
    REQUIRE(::prlimit(child.pid(), RLIMIT_NOFILE, &lowered, nullptr) == 0);
    test::run(
        [&]() -> asio::awaitable<void> {
          std::vector<tcp_stream> clients;
          for (int i = 0; i < 100; ++i) {
            // The kernel completes each connection whether or not the server accepts it.
            auto client = co_await tcp_stream::connect(where, {.limit = 5s});
            REQUIRE_MESSAGE(client, client.error().message());
            REQUIRE(co_await client->send_all(asio::buffer(std::string_view("ping"))));
            clients.push_back(std::move(*client));
          }
          // (1) It says so, once.
          const auto said = read_stderr_through(child, "Too many open files", 10s);
          CHECK(test::lines_of(said).size() == 1);

          // (2) While it cannot accept, it waits rather than spins on the readable listener.
          const auto cpu_before = test::cpu_time(child.pid());
          const auto wall_before = std::chrono::steady_clock::now();
          co_await test::sleep_for(1s);
          const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - wall_before;
          const auto cpu = test::cpu_time(child.pid()) - cpu_before;
          CHECK_MESSAGE(cpu.count() < wall.count() / 2, server.label << " used " << cpu.count()
                                                                     << " s of CPU in "
                                                                     << wall.count() << " s");

          // (3) Once the clients are gone, it serves again.
          clients.clear();
          co_await test::expect_echo(where, "descriptors are back", 10s);
        },
        30s);
    child.send_signal(SIGTERM);
    CHECK(child.wait(5s) == 0);
  }
}
