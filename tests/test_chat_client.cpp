// chat_client driven as a child process against a fake chat server on a thread of its own: stdin
// lines reach the server, server lines reach stdout, the ways a session ends, and the
// command-line contract.
#include <doctest/doctest.h>

#include <signal.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/use_future.hpp>

#include "support/child_process.hpp"
#include "support/run.hpp"

using namespace std::chrono_literals;
using coronet::test::child_process;
using coronet::test::stdin_source;
namespace test = coronet::test;

namespace {

const std::string chat_client = CORONET_CHAT_CLIENT_PATH;

// The lines the fake server received, handed from its thread to the test's.
class inbox {
 public:
  void push(std::string line) {
    {
      std::lock_guard lock(mutex_);
      lines_.push_back(std::move(line));
    }
    changed_.notify_all();
  }

  void end() {
    {
      std::lock_guard lock(mutex_);
      ended_ = true;
    }
    changed_.notify_all();
  }

  // The next line received; nullopt once the connection has ended with no line left, or when
  // `timeout` passes first.
  std::optional<std::string> next(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return !lines_.empty() || ended_; });
    if (lines_.empty()) return std::nullopt;
    std::string line = std::move(lines_.front());
    lines_.pop_front();
    return line;
  }

  // Whether the client has closed the connection (or it broke) within `timeout`.
  bool ended(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return ended_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::string> lines_;
  bool ended_ = false;
};

// The fake server's one session: greets the client as chat_server does, then records each
// line until the client goes.
asio::awaitable<void> serve_one_client(coronet::tcp_listener& listener,
                                       std::optional<coronet::tcp_stream>& client,
                                       inbox& received) {
  auto accepted = co_await listener.accept();
  if (accepted) {
    client.emplace(std::move(*accepted));
    (void)co_await client->send_all(asio::buffer(std::string_view("* welcome guest1\n")));
    coronet::stream_reader reader(*client);
    while (auto line = co_await reader.read_line()) received.push(std::string(*line));
  }
  received.end();
}

asio::awaitable<bool> send_to_client(std::optional<coronet::tcp_stream>& client, std::string line) {
  if (!client) co_return false;
  line += '\n';
  co_return static_cast<bool>(co_await client->send_all(asio::buffer(line)));
}

// Ends the session as chat_server does: a FIN; the client then closes its side.
asio::awaitable<void> close_client(std::optional<coronet::tcp_stream>& client) {
  if (client) (void)client->shutdown(coronet::shutdown_type::send);
  co_return;
}

// Ends the session with a reset instead.
asio::awaitable<void> reset_client(std::optional<coronet::tcp_stream>& client) {
  if (client) {
    (void)client->set_option(coronet::option::linger{.enabled = true, .timeout = 0s});
    client->close();
  }
  co_return;
}

// Waits for what the server thread was asked to do, at most `limit`.
template <class T>
T finished(std::future<T> outcome, std::chrono::milliseconds limit = 5s) {
  REQUIRE_MESSAGE(outcome.wait_for(limit) == std::future_status::ready,
                  "the fake server did not finish in time");
  return outcome.get();
}

// A stand-in for chat_server, on a thread of its own: accepts one client on `where` (port 0),
// greets it with "* welcome guest1", records the lines it sends, and sends lines or ends the
// session when the test says.
class fake_server {
 public:
  explicit fake_server(const coronet::endpoint& where = test::any_v4())
      : listener_(coronet::tcp_listener::bind(context_, where)),
        where_(listener_.local_endpoint()) {
    coronet::spawn(context_.get_executor(), serve_one_client(listener_, client_, received_),
                   "fake chat server");
    thread_ = std::thread([this] { context_.run(); });
  }
  fake_server(const fake_server&) = delete;
  fake_server& operator=(const fake_server&) = delete;
  ~fake_server() {
    context_.stop();
    thread_.join();
  }

  coronet::endpoint where() const { return where_; }

  // The next line the client sent (see inbox::next).
  std::optional<std::string> next_line(std::chrono::milliseconds timeout = 5s) {
    return received_.next(timeout);
  }
  bool client_gone(std::chrono::milliseconds timeout = 5s) { return received_.ended(timeout); }

  // Sends `line` and "\n" to the client (connected by now: it printed the welcome line);
  // false when it could not.
  bool send(std::string line) {
    return finished(
        asio::co_spawn(context_, send_to_client(client_, std::move(line)), asio::use_future));
  }
  void close() { finished(asio::co_spawn(context_, close_client(client_), asio::use_future)); }
  void reset() { finished(asio::co_spawn(context_, reset_client(client_), asio::use_future)); }

 private:
  asio::io_context context_;        // declared first: the sockets below go before it
  coronet::tcp_listener listener_;  // only on the server's thread once it runs
  const coronet::endpoint where_;
  std::optional<coronet::tcp_stream> client_;  // only on the server's thread
  inbox received_;
  std::thread thread_;
};

// chat_client connected to `server`, its stdin a pipe the test writes; the welcome line read.
struct session {
  explicit session(fake_server& server)
      : client(chat_client, {"--connect", server.where().to_string()}, stdin_source::pipe()) {
    CHECK(client.read_stdout_line(5s) == "* welcome guest1");
  }
  child_process client;
};

// Runs chat_client with `args` to its end; checks that it printed nothing on stdout and one
// line on stderr, and returns that line.
std::string single_error_line(const std::vector<std::string>& args, int expected_exit) {
  const auto r = test::run_to_exit(chat_client, args);
  CHECK(r.exit_code == expected_exit);
  CHECK(r.out.empty());
  const auto lines = test::lines_of(r.err);
  REQUIRE_MESSAGE(lines.size() == 1, r.err);
  CHECK(lines[0].rfind("chat_client: ", 0) == 0);
  return lines[0];
}

}  // namespace

TEST_CASE("chat_client: stdin lines reach the server in order - server lines reach stdout") {
  fake_server server;
  session s(server);
  REQUIRE(s.client.write_stdin("hello\n"));
  REQUIRE(s.client.write_stdin("second line\nthird with CRLF\r\n"));
  REQUIRE(s.client.write_stdin("fourth in "));
  REQUIRE(s.client.write_stdin("two writes\n"));
  CHECK(server.next_line() == "hello");
  CHECK(server.next_line() == "second line");
  CHECK(server.next_line() == "third with CRLF");
  CHECK(server.next_line() == "fourth in two writes");

  REQUIRE(server.send("alice: hi"));
  REQUIRE(server.send("* bob joined"));
  CHECK(s.client.read_stdout_line(5s) == "alice: hi");
  CHECK(s.client.read_stdout_line(5s) == "* bob joined");

  s.client.close_stdin();
  CHECK(server.next_line() == "/quit");
  server.close();
  CHECK(s.client.wait(5s) == 0);
  CHECK(s.client.read_all_stderr(1s).empty());
}

TEST_CASE("chat_client: at the end of stdin it sends /quit - and exits 0 once the server closed") {
  fake_server server;
  session s(server);
  s.client.close_stdin();
  CHECK(server.next_line() == "/quit");
  // Still there, waiting for the server's close, and printing what the server still sends.
  CHECK(s.client.wait(300ms) == std::nullopt);
  REQUIRE(server.send("* bye"));
  CHECK(s.client.read_stdout_line(5s) == "* bye");
  server.close();
  CHECK(s.client.wait(5s) == 0);
  CHECK(server.client_gone());
  CHECK(s.client.read_all_stdout(1s).empty());
  CHECK(s.client.read_all_stderr(1s).empty());
}

TEST_CASE("chat_client: exits 0 when the server closes first - while stdin stays open") {
  fake_server server;
  session s(server);
  REQUIRE(server.send("* closing"));
  server.close();
  CHECK(s.client.read_stdout_line(5s) == "* closing");
  CHECK(s.client.wait(5s) == 0);
  CHECK(server.next_line() == std::nullopt);  // no /quit: the server had gone
  CHECK(server.client_gone());
  CHECK(s.client.read_all_stderr(1s).empty());
}

TEST_CASE("chat_client: a reset by the server exits 1 with one stderr line") {
  fake_server server;
  session s(server);
  server.reset();
  CHECK(s.client.wait(5s) == 1);
  const auto err = test::lines_of(s.client.read_all_stderr(1s));
  REQUIRE(err.size() == 1);
  CHECK_MESSAGE(err[0].rfind("chat_client: connection lost: ", 0) == 0, err[0]);
}

TEST_CASE("chat_client: SIGTERM sends /quit - and exits 0 once the server closed") {
  fake_server server;
  session s(server);
  s.client.send_signal(SIGTERM);
  CHECK(server.next_line() == "/quit");
  server.close();
  CHECK(s.client.wait(5s) == 0);
}

TEST_CASE("chat_client: reads a regular file on stdin - a last line without newline included") {
  test::temp_dir dir;
  const auto input = (dir.path() / "input.txt").string();
  std::ofstream(input) << "first\nsecond\r\nthird";
  fake_server server;
  child_process client(chat_client, {"--connect", server.where().to_string()},
                       stdin_source::file(input));
  CHECK(client.read_stdout_line(5s) == "* welcome guest1");
  CHECK(server.next_line() == "first");
  CHECK(server.next_line() == "second");
  CHECK(server.next_line() == "third");
  CHECK(server.next_line() == "/quit");
  server.close();
  CHECK(client.wait(5s) == 0);
}

TEST_CASE("chat_client: connects to an IPv6 loopback address") {
  if (!test::has_ipv6_loopback()) {
    MESSAGE("skipped: this machine has no IPv6 loopback");
    return;
  }
  fake_server server(coronet::endpoint(asio::ip::address_v6::loopback(), 0));
  REQUIRE(server.where().to_string().rfind("[::1]:", 0) == 0);
  session s(server);
  REQUIRE(s.client.write_stdin("over IPv6\n"));
  CHECK(server.next_line() == "over IPv6");
  s.client.close_stdin();
  CHECK(server.next_line() == "/quit");
  server.close();
  CHECK(s.client.wait(5s) == 0);
}

TEST_CASE("chat_client: gives up 5 s after /quit when the server never closes") {
  fake_server server;
  session s(server);
  s.client.close_stdin();
  CHECK(server.next_line() == "/quit");
  CHECK(s.client.wait(4s) == std::nullopt);
  CHECK(s.client.wait(4s) == 1);
  const auto err = test::lines_of(s.client.read_all_stderr(1s));
  REQUIRE(err.size() == 1);
  CHECK_MESSAGE(err[0].find("did not close") != std::string::npos, err[0]);
}

TEST_CASE("chat_client: a malformed address exits 1 with one stderr line") {
  for (const std::string address : {"nonsense", "127.0.0.1:70000", "[::1:80", "::1:80", ""}) {
    CAPTURE(address);
    const auto line = single_error_line({"--connect", address}, 1);
    CHECK_MESSAGE(line.rfind("chat_client: invalid --connect '" + address + "': ", 0) == 0, line);
  }
}

TEST_CASE("chat_client: an unreachable port exits 1 with one stderr line") {
  // Bound but not listening: the port stays ours and every connection attempt is refused.
  asio::io_context context;
  asio::ip::tcp::acceptor closed_port(context, asio::ip::tcp::v4());
  closed_port.bind({asio::ip::address_v4::loopback(), 0});
  const coronet::endpoint where(closed_port.local_endpoint());
  const auto line = single_error_line({"--connect", where.to_string()}, 1);
  CHECK_MESSAGE(
      line == "chat_client: cannot connect to " + where.to_string() + ": Connection refused", line);
}

TEST_CASE("chat_client: usage errors exit 2 with the usage on stderr") {
  const std::vector<std::vector<std::string>> cases = {
      {},                                     // no --connect
      {"--connect"},                          // missing value
      {"--connect", "127.0.0.1:1", "stray"},  // one address only
      {"--connect", "127.0.0.1:1", "--bogus"},
  };
  for (const auto& args : cases) {
    std::string shown;
    for (const auto& a : args) shown += a + ' ';
    CAPTURE(shown);
    const auto r = test::run_to_exit(chat_client, args);
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(r.err.rfind("chat_client: ", 0) == 0);
    CHECK(r.err.find("--connect") != std::string::npos);  // the usage names the option
  }
}
