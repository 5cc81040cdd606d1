// Faults injected into the real echo_server and chat_server, run as child processes over
// loopback. Each fault is injected while a calm client (one that behaves) is being served, and
// every test checks the same four things afterwards:
//   - no crash: the server still runs, and exits 0 on SIGTERM with no sanitizer report;
//   - no stall: every exchange of the calm client completed, each within stall_limit;
//   - no leak: the server holds as many descriptors as before the fault (/proc/PID/fd);
//   - no corrupted byte: everything the clients get back is checked against what was sent.
// The limits are deadlines that make a bug fail fast, never measurements of speed.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <asio/detached.hpp>
#include <asio/experimental/awaitable_operators.hpp>

#include "support/child_process.hpp"
#include "support/connection_table.hpp"
#include "support/proc.hpp"
#include "support/run.hpp"

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using coronet::tcp_stream;
using coronet::test::child_process;
namespace test = coronet::test;

namespace {

enum class server_kind { echo, chat };

std::string name_of(server_kind kind) {
  return kind == server_kind::echo ? "echo_server" : "chat_server";
}

// How long a step the test expects may take: long, because it is a deadline, not a timing.
constexpr std::chrono::milliseconds patience = 10s;
// The longest one exchange of the calm client may take before it counts as stalled. The
// sanitizers slow the servers down about tenfold on the busiest fault (5,000 chat clients
// leaving one room at once: 0.8 s for the calm client's slowest exchange in the dev build, up
// to 10 s under ASan), so there the bound is wider.
#ifdef CORONET_TEST_UNDER_SANITIZER
constexpr std::chrono::milliseconds stall_limit = 20s;
#else
constexpr std::chrono::milliseconds stall_limit = 3s;
#endif
// chat_server's longest line, bytes of content.
constexpr std::size_t chat_max_line = 4096;

// --- what the clients send -----------------------------------------------------------------

// `size` bytes of every value, the same for the same seed (xorshift): what the clients send,
// so that a byte the server changes, drops, repeats or reorders shows.
std::string pattern(std::uint64_t seed, std::size_t size) {
  std::string out(size, '\0');
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 0x2545F4914F6CDD1DULL;
  for (auto& c : out) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x >> 56);
  }
  return out;
}

// `size` letters and digits, the same for the same seed: chat text.
std::string text_pattern(std::uint64_t seed, std::size_t size) {
  static constexpr std::string_view alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string text = pattern(seed, size);
  for (auto& c : text) c = alphabet[static_cast<unsigned char>(c) % alphabet.size()];
  return text;
}

// A chat line that proves itself: "<seq> <text>", the text a function of seq alone.
std::string numbered_line(std::uint64_t seq) {
  return std::to_string(seq) + " " + text_pattern(seq, 20 + seq % 400);
}

// Whether `line` is numbered_line(seq) for the seq it starts with; that seq, if so.
std::optional<std::uint64_t> check_numbered_line(std::string_view line) {
  const auto space = line.find(' ');
  if (space == std::string_view::npos || space == 0 || space > 19) return std::nullopt;
  std::uint64_t seq = 0;
  for (const char c : line.substr(0, space)) {
    if (c < '0' || c > '9') return std::nullopt;
    seq = seq * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (line != numbered_line(seq)) return std::nullopt;
  return seq;
}

bool ended_by_peer(const std::error_code& ec) {
  return ec == coronet::errc::eof || ec == coronet::errc::unexpected_eof ||
         ec == std::errc::connection_reset || ec == std::errc::broken_pipe;
}

// --- the server under test -----------------------------------------------------------------

std::vector<std::string> server_args(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"--tcp", "127.0.0.1:0", "--threads", "2", "--log-level", "warn"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

struct server_under_test {
  server_under_test(server_kind k, const std::vector<std::string>& extra)
      : kind(k),
        process(k == server_kind::echo ? CORONET_ECHO_SERVER_PATH : CORONET_CHAT_SERVER_PATH,
                server_args(extra)),
        where(test::ready_endpoint(process.read_stdout_line(5s))) {}

  bool running() { return !process.wait(0ms).has_value(); }

  server_kind kind;
  child_process process;
  coronet::endpoint where;
};

// Exit 0 (after a SIGTERM), and nothing from a sanitizer on stderr (under the asan and tsan
// presets the servers are instrumented too).
void expect_clean_exit(server_under_test& server) {
  CHECK(server.process.wait(10s) == 0);
  const auto log = server.process.read_all_stderr(2s);
  CHECK_MESSAGE(log.find("Sanitizer") == std::string::npos, log);
  CHECK_MESSAGE(log.find("runtime error") == std::string::npos, log);
}

void stop(server_under_test& server) {
  server.process.send_signal(SIGTERM);
  expect_clean_exit(server);
}

// The server's descriptor count once it has stayed the same for 300 ms, or once it equals
// `expected` (polled for up to 15 s: closing connections takes the server a moment).
std::size_t settled_descriptors(pid_t pid, std::optional<std::size_t> expected = std::nullopt) {
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  std::size_t last = test::open_descriptors(pid);
  auto stable_since = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
    const auto now = test::open_descriptors(pid);
    if (expected && now == *expected) return now;
    if (now != last) {
      last = now;
      stable_since = std::chrono::steady_clock::now();
    } else if (!expected && std::chrono::steady_clock::now() - stable_since >= 300ms) {
      return now;
    }
  }
  return last;
}

// --- chat clients --------------------------------------------------------------------------

// One chat connection with its reader. Lines are read with read_until("\n"), which keeps a
// "\r": the server never sends one.
struct chatter {
  explicit chatter(tcp_stream connected)
      : stream(std::move(connected)), reader(stream, {.max_line = 1024 * 1024}) {}
  chatter(const chatter&) = delete;
  chatter& operator=(const chatter&) = delete;
  ~chatter() = default;

  tcp_stream stream;
  coronet::stream_reader<tcp_stream> reader;
  std::string nick;
};
using chatter_ptr = std::unique_ptr<chatter>;

// The next line, or the error that ended the wait.
asio::awaitable<coronet::result<std::string>> next_line(
    chatter& c, std::chrono::milliseconds limit = patience) {
  auto got = co_await c.reader.read_until("\n", limit);
  if (!got) co_return got.error();
  co_return std::string(*got);
}

asio::awaitable<void> say(chatter& c, std::string line) {
  line += '\n';
  const auto sent = co_await c.stream.send_all(asio::buffer(line), patience);
  REQUIRE_MESSAGE(sent, c.nick << " could not send: " << sent.error().message());
}

// The next line `c` receives is `wanted`.
asio::awaitable<void> expect(chatter& c, std::string wanted) {
  const auto got = co_await next_line(c);
  REQUIRE_MESSAGE(got, c.nick << " waited for \"" << wanted << "\": " << got.error().message());
  CHECK(*got == wanted);
}

// Connects and reads the welcome, `* welcome <nick>`.
asio::awaitable<coronet::result<chatter_ptr>> try_enter(coronet::endpoint where) {
  auto stream = co_await tcp_stream::connect(where, {.limit = patience});
  if (!stream) co_return stream.error();
  auto c = std::make_unique<chatter>(std::move(*stream));
  const auto welcome = co_await next_line(*c);
  if (!welcome) co_return welcome.error();
  if (!welcome->starts_with("* welcome ")) co_return make_error_code(std::errc::protocol_error);
  c->nick = welcome->substr(10);
  co_return c;
}

asio::awaitable<chatter_ptr> enter(coronet::endpoint where) {
  auto c = co_await try_enter(where);
  REQUIRE_MESSAGE(c, "entering chat: " << c.error().message());
  co_return std::move(*c);
}

// --- the calm client -----------------------------------------------------------------------

struct calm_state {
  bool ready = false;  // connected and about to exchange
  bool stop = false;   // asked to finish
  std::size_t exchanges = 0;
  std::chrono::steady_clock::duration slowest{};
  std::vector<std::string> problems;
};

// Echo: one connection, exchanges of checked bytes back to back.
asio::awaitable<void> calm_echo(coronet::endpoint where, calm_state& state) {
  auto stream = co_await tcp_stream::connect(where, {.limit = patience});
  if (!stream) {
    state.problems.push_back("calm client: connect: " + stream.error().message());
    co_return;
  }
  state.ready = true;
  for (std::uint64_t n = 0; !state.stop; ++n) {
    const auto started = std::chrono::steady_clock::now();
    const auto out = pattern(n, 100 + n % 4000);
    std::string back(out.size(), '\0');
    const auto sent = co_await stream->send_all(asio::buffer(out), stall_limit);
    const auto got = co_await stream->recv_exact(asio::buffer(back), stall_limit);
    if (!sent || !got) {
      state.problems.push_back("calm client: exchange " + std::to_string(n) + ": " +
                               (sent ? got.error() : sent.error()).message());
      co_return;
    }
    if (back != out) {
      state.problems.push_back("calm client: exchange " + std::to_string(n) + " came back changed");
      co_return;
    }
    ++state.exchanges;
    state.slowest = std::max(state.slowest, std::chrono::steady_clock::now() - started);
    co_await test::sleep_for(5ms);
  }
}

// Chat: two members in a room of their own, each line of one heard by the other, exactly and
// next. Both send, so that neither is ever idle.
asio::awaitable<void> calm_chat(coronet::endpoint where, calm_state& state) {
  auto a = co_await try_enter(where);
  auto b = co_await try_enter(where);
  if (!a || !b) {
    state.problems.push_back("calm client: enter: " + (a ? b.error() : a.error()).message());
    co_return;
  }
  // a moves first: b, still in the lobby, hears it leave; then b follows and a hears it come.
  co_await say(**a, "/join calm");
  const auto a_joined = co_await next_line(**a);
  const auto b_heard = co_await next_line(**b);
  co_await say(**b, "/join calm");
  const auto b_joined = co_await next_line(**b);
  const auto a_heard = co_await next_line(**a);
  if (!a_joined || *a_joined != "* joined calm" || !b_heard ||
      *b_heard != "* " + (*a)->nick + " left" || !b_joined || *b_joined != "* joined calm" ||
      !a_heard || *a_heard != "* " + (*b)->nick + " joined") {
    state.problems.push_back("calm client: joining its room went wrong");
    co_return;
  }
  state.ready = true;
  const std::array<std::pair<chatter*, chatter*>, 2> turns = {
      {{a->get(), b->get()}, {b->get(), a->get()}}};
  for (std::uint64_t n = 0; !state.stop; ++n) {
    const auto started = std::chrono::steady_clock::now();
    for (const auto& [from, to] : turns) {
      const auto line = numbered_line(n);
      const auto wire = line + "\n";
      const auto sent = co_await from->stream.send_all(asio::buffer(wire), stall_limit);
      const auto got = co_await next_line(*to, stall_limit);
      if (!sent || !got) {
        state.problems.push_back("calm client: line " + std::to_string(n) + ": " +
                                 (sent ? got.error() : sent.error()).message());
        co_return;
      }
      if (*got != from->nick + ": " + line) {
        state.problems.push_back("calm client: line " + std::to_string(n) + " came as \"" +
                                 got->substr(0, 80) + "\"");
        co_return;
      }
    }
    ++state.exchanges;
    state.slowest = std::max(state.slowest, std::chrono::steady_clock::now() - started);
    co_await test::sleep_for(5ms);
  }
}

// A few connections that each do one exchange and close: so that every runtime thread of the
// server has served a connection (and made whatever it makes once) before descriptors are
// counted.
asio::awaitable<void> warm_up(server_kind kind, coronet::endpoint where) {
  for (int i = 0; i < 4; ++i) {
    if (kind == server_kind::chat) {
      (void)co_await enter(where);
      continue;
    }
    auto stream = co_await tcp_stream::connect(where, {.limit = patience});
    REQUIRE_MESSAGE(stream, stream.error().message());
    const std::string out = "warm";
    std::string back(out.size(), '\0');
    REQUIRE(co_await stream->send_all(asio::buffer(out), patience));
    REQUIRE(co_await stream->recv_exact(asio::buffer(back), patience));
    CHECK(back == out);
  }
}

using fault = std::function<asio::awaitable<void>(server_under_test&)>;

// Starts a server of `kind` (with `extra` arguments), lets a calm client be served while
// `inject` does its worst, then checks the four things this file is about.
void check_fault(server_kind kind, const std::vector<std::string>& extra, const fault& inject,
                 std::chrono::milliseconds deadline = 90s) {
  CAPTURE(name_of(kind));
  server_under_test server(kind, extra);
  test::run([&] { return warm_up(kind, server.where); }, patience);
  const auto descriptors_before = settled_descriptors(server.process.pid());

  calm_state calm;
  test::run(
      [&]() -> asio::awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        test::wait_group calm_ended(executor);
        calm_ended.add();
        asio::co_spawn(executor,
                       kind == server_kind::echo ? calm_echo(server.where, calm)
                                                 : calm_chat(server.where, calm),
                       [&](std::exception_ptr e) {
                         if (e) calm.problems.push_back("calm client: an exception");
                         calm_ended.done();
                       });
        while (!calm.ready && calm.problems.empty()) co_await test::sleep_for(10ms);
        std::exception_ptr failure;
        try {
          co_await inject(server);
        } catch (...) {
          failure = std::current_exception();
        }
        // Served all through (each exchange within stall_limit), and still served after.
        const auto after_fault = calm.exchanges;
        while (calm.exchanges < after_fault + 3 && calm.problems.empty()) {
          co_await test::sleep_for(10ms);
        }
        calm.stop = true;
        co_await calm_ended.wait();
        if (failure) std::rethrow_exception(failure);
      },
      deadline);

  std::string problems;
  for (const auto& p : calm.problems) problems += p + "\n";
  CHECK_MESSAGE(calm.problems.empty(), problems);
  MESSAGE("slowest calm exchange " << std::chrono::duration<double>(calm.slowest).count() << " s");
  REQUIRE_MESSAGE(server.running(), name_of(kind) << " died");
  CHECK(settled_descriptors(server.process.pid(), descriptors_before) == descriptors_before);
  stop(server);
}

// Runs `f` against both servers.
void check_fault_on_both(const fault& f) {
  check_fault(server_kind::echo, {}, f);
  check_fault(server_kind::chat, {}, f);
}

// --- the faults ----------------------------------------------------------------------------

// Twenty clients that reset their connection (SO_LINGER 0) while the server is at work on
// it: echo_server writing 256 KiB back, chat_server in the middle of a line.
asio::awaitable<void> reset_mid_stream(server_under_test& server) {
  const auto big = pattern(1, 256 * 1024);
  for (int i = 0; i < 20; ++i) {
    auto rude = co_await tcp_stream::connect(server.where, {.limit = patience});
    REQUIRE_MESSAGE(rude, rude.error().message());
    if (server.kind == server_kind::echo) {
      (void)co_await rude->send(asio::buffer(big), patience);
    } else {
      const auto bytes = "hello " + std::to_string(i) + "\nhalf a li";
      REQUIRE(co_await rude->send_all(asio::buffer(bytes), patience));
    }
    char first = 0;  // the server has answered: it is writing to this connection
    CHECK(co_await rude->recv(asio::buffer(&first, 1), patience));
    REQUIRE(rude->set_option(coronet::option::linger{true, 0s}));
    rude->close();
  }
}

// A client that sends, then shuts down its sending side: the server still answers all it
// sent, then closes with a FIN.
asio::awaitable<void> half_close(server_under_test& server) {
  if (server.kind == server_kind::echo) {
    for (std::uint64_t i = 0; i < 4; ++i) {
      auto stream = co_await tcp_stream::connect(server.where, {.limit = patience});
      REQUIRE_MESSAGE(stream, stream.error().message());
      // 300 kB fits in loopback's buffers, so sending all before reading cannot deadlock.
      const auto out = pattern(100 + i, 300000);
      REQUIRE(co_await stream->send_all(asio::buffer(out), patience));
      REQUIRE(stream->shutdown(coronet::shutdown_type::send));
      std::string back(out.size(), '\0');
      REQUIRE(co_await stream->recv_exact(asio::buffer(back), patience));
      CHECK(back == out);
      char extra = 0;
      const auto end = co_await stream->recv(asio::buffer(&extra, 1), patience);
      CHECK(end.error() == coronet::errc::eof);  // a FIN, not a reset
    }
    co_return;
  }
  auto listener = co_await enter(server.where);
  auto closer = co_await enter(server.where);
  const std::string last_words = "first words\nlast words\n/who\n";
  REQUIRE(co_await closer->stream.send_all(asio::buffer(last_words), patience));
  REQUIRE(closer->stream.shutdown(coronet::shutdown_type::send));
  const auto who = co_await next_line(*closer);
  REQUIRE_MESSAGE(who, who.error().message());
  CHECK(who->starts_with("* in lobby: "));
  const auto end = co_await next_line(*closer);
  CHECK(end.error() == coronet::errc::eof);
  co_await expect(*listener, closer->nick + ": first words");
  co_await expect(*listener, closer->nick + ": last words");
  co_await expect(*listener, "* " + closer->nick + " left");
}

// echo_server --idle-timeout 0.5: a client sending one byte a second is served its first
// byte, then closed in the silence before its second.
asio::awaitable<void> trickle_echo(coronet::endpoint where, test::wait_group& group,
                                   std::size_t& cut) {
  auto stream = co_await tcp_stream::connect(where, {.limit = patience});
  REQUIRE_MESSAGE(stream, stream.error().message());
  char byte = 's';
  REQUIRE(co_await stream->send_all(asio::buffer(&byte, 1), patience));
  char back = 0;
  REQUIRE(co_await stream->recv_exact(asio::buffer(&back, 1), patience));
  CHECK(back == 's');
  co_await test::sleep_for(1s);
  (void)co_await stream->send_all(asio::buffer(&byte, 1), patience);
  const auto end = co_await stream->recv(asio::buffer(&back, 1), patience);
  CHECK_MESSAGE(ended_by_peer(end.error()), end.error().message());
  if (ended_by_peer(end.error())) ++cut;
  group.done();
}

// chat_server --idle-timeout 2: a client that sends a byte a second and never ends its line is
// told "! error: idle timeout" and closed, though it was never silent for more than a second.
asio::awaitable<void> trickle_chat(coronet::endpoint where, test::wait_group& group,
                                   std::size_t& cut) {
  auto slow = co_await enter(where);
  std::size_t trickled = 0;
  bool told = false;
  for (int second = 0; second < 8 && !told; ++second) {
    const char byte = 'z';
    if (co_await slow->stream.send_all(asio::buffer(&byte, 1), patience)) ++trickled;
    // Until the next byte is due: news of the other slow clients leaving, or the error.
    const auto next_byte = std::chrono::steady_clock::now() + 1s;
    for (;;) {
      const auto got = co_await next_line(*slow, test::left_until(next_byte));
      if (!got && got.error() == std::errc::timed_out) break;
      REQUIRE_MESSAGE(got, got.error().message());
      if (got->starts_with("* ")) continue;
      CHECK(*got == "! error: idle timeout");
      told = true;
      break;
    }
  }
  REQUIRE_MESSAGE(told, "still connected after trickling " << trickled << " bytes");
  CHECK_MESSAGE(trickled >= 2, "closed after " << trickled << " byte(s)");
  for (;;) {  // then news at most, and a FIN
    const auto got = co_await next_line(*slow);
    if (got && got->starts_with("* ")) continue;
    CHECK_MESSAGE(got.error() == coronet::errc::eof, (got ? *got : got.error().message()));
    break;
  }
  ++cut;
  group.done();
}

asio::awaitable<void> slowloris(server_under_test& server) {
  constexpr std::size_t clients = 10;
  const auto executor = co_await asio::this_coro::executor;
  test::wait_group group(executor);
  std::size_t cut = 0;
  for (std::size_t i = 0; i < clients; ++i) {
    group.add();
    asio::co_spawn(executor,
                   server.kind == server_kind::echo ? trickle_echo(server.where, group, cut)
                                                    : trickle_chat(server.where, group, cut),
                   asio::detached);
  }
  co_await group.wait();
  CHECK(cut == clients);
}

// echo_server: a client that sends and never reads. The server stops reading it once its
// replies fill the buffers (the client's sends then block) and holds no more than that.
asio::awaitable<void> non_reading_echo(server_under_test& server) {
  const auto rss_before = test::resident_bytes(server.process.pid());
  auto stream = co_await tcp_stream::connect(server.where, {.limit = patience});
  REQUIRE_MESSAGE(stream, stream.error().message());
  const auto chunk = pattern(7, 64 * 1024);
  std::size_t sent = 0;
  bool blocked = false;
  while (sent < 256 * 1024 * 1024) {
    const auto r = co_await stream->send(asio::buffer(chunk), 1s);
    sent += r.bytes();
    if (!r) {
      blocked = r.error() == std::errc::timed_out;
      break;
    }
  }
  CHECK_MESSAGE(blocked, "sent " << sent << " bytes without being held back");
  co_await test::sleep_for(1s);  // stuck a while, with the calm client being served
  const auto rss_stuck = test::resident_bytes(server.process.pid());
  CHECK_MESSAGE(rss_stuck < rss_before + 32 * 1024 * 1024,
                "resident " << rss_before << " -> " << rss_stuck << " bytes");
  stream->close();
}

// chat_server: a client that never reads, in a room another client floods with 24 MB of lines.
// Past its 4 MiB queue it is dropped; what it did get is every line in order, unchanged.
asio::awaitable<void> non_reading_chat(server_under_test& server) {
  auto deaf = co_await enter(server.where);
  auto flood = co_await enter(server.where);
  constexpr std::uint64_t lines = 6000;
  const auto line_for = [](std::uint64_t seq) {
    return std::to_string(seq) + " " + text_pattern(seq, 3990);
  };
  std::string batch;
  for (std::uint64_t seq = 0; seq < lines; ++seq) {
    batch += line_for(seq) + "\n";
    if (batch.size() >= 64 * 1024 || seq + 1 == lines) {
      REQUIRE(co_await flood->stream.send_all(asio::buffer(batch), patience));
      batch.clear();
    }
  }
  // Now read what the deaf client was sent: a run of the flood's lines from the first on, then
  // the end of the connection, well before the last line.
  std::uint64_t next = 0;
  for (;;) {
    const auto got = co_await next_line(*deaf);
    if (!got) {
      CHECK_MESSAGE(ended_by_peer(got.error()), got.error().message());
      break;
    }
    REQUIRE_MESSAGE(*got == flood->nick + ": " + line_for(next), "line " << next << " changed");
    ++next;
    REQUIRE_MESSAGE(next < lines, "the deaf client was sent every line: never dropped");
  }
  MESSAGE("the deaf client got " << next << " of " << lines << " lines before it was dropped");
}

asio::awaitable<void> non_reading(server_under_test& server) {
  if (server.kind == server_kind::echo) return non_reading_echo(server);
  return non_reading_chat(server);
}

// 5,000 connects in one burst, each then served: its own payload echoed, or its welcome.
asio::awaitable<void> storm_client(server_kind kind, coronet::endpoint where, std::uint64_t id,
                                   std::optional<tcp_stream>& slot, std::size_t& served,
                                   test::wait_group& group) {
  auto stream = co_await tcp_stream::connect(where, {.limit = 30s});
  if (stream) {
    if (kind == server_kind::echo) {
      const auto out = "client " + std::to_string(id) + " " + pattern(id, 64);
      std::string back(out.size(), '\0');
      const auto sent = co_await stream->send_all(asio::buffer(out), 30s);
      const auto got = co_await stream->recv_exact(asio::buffer(back), 30s);
      if (sent && got && back == out) ++served;
    } else {
      coronet::stream_reader reader(*stream);
      const auto welcome = co_await reader.read_line(30s);
      if (welcome && welcome->starts_with("* welcome guest")) ++served;
    }
    slot = std::move(*stream);
  }
  group.done();
}

asio::awaitable<void> connect_storm(server_under_test& server) {
  constexpr std::size_t storm = 5000;
  const auto executor = co_await asio::this_coro::executor;
  std::vector<std::optional<tcp_stream>> clients(storm);
  std::size_t served = 0;
  test::wait_group group(executor);
  group.add(storm);
  for (std::size_t i = 0; i < storm; ++i) {
    asio::co_spawn(executor, storm_client(server.kind, server.where, i, clients[i], served, group),
                   asio::detached);
  }
  co_await group.wait();
  CHECK(served == storm);
  std::set<coronet::endpoint> locals;
  for (const auto& c : clients) {
    if (c) locals.insert(c->local_endpoint());
  }
  CHECK(locals.size() == storm);
  clients.clear();  // all 5,000 close at once
}

// The server under a descriptor limit just above what it holds: a hundred clients it cannot
// accept wait in its backlog while the calm client (accepted before) goes on being served;
// once they leave it accepts again.
asio::awaitable<void> out_of_descriptors(server_under_test& server) {
  const auto pid = server.process.pid();
  const auto limit = static_cast<rlim_t>(test::open_descriptors(pid) + 8);
  const rlimit lowered{limit, limit};
  REQUIRE(::prlimit(pid, RLIMIT_NOFILE, &lowered, nullptr) == 0);
  std::vector<tcp_stream> waiting;
  for (int i = 0; i < 100; ++i) {
    // The kernel completes each connection whether or not the server accepts it.
    auto client = co_await tcp_stream::connect(server.where, {.limit = patience});
    REQUIRE_MESSAGE(client, client.error().message());
    waiting.push_back(std::move(*client));
  }
  co_await test::sleep_for(1s);
  waiting.clear();
  // Serving new clients again, with the limit still in force.
  if (server.kind == server_kind::chat) {
    (void)co_await enter(server.where);
  } else {
    auto stream = co_await tcp_stream::connect(server.where, {.limit = patience});
    REQUIRE_MESSAGE(stream, stream.error().message());
    const std::string out = "descriptors are back";
    std::string back(out.size(), '\0');
    REQUIRE(co_await stream->send_all(asio::buffer(out), patience));
    const auto got = co_await stream->recv_exact(asio::buffer(back), patience);
    REQUIRE_MESSAGE(got, got.error().message());
    CHECK(back == out);
  }
}

// A second server started on the first one's port fails with one clear line, and the first
// one goes on serving.
asio::awaitable<void> port_in_use(server_under_test& server) {
  const std::string program =
      server.kind == server_kind::echo ? CORONET_ECHO_SERVER_PATH : CORONET_CHAT_SERVER_PATH;
  const std::vector<std::string> args = {"--tcp", server.where.to_string()};
  const auto second = test::run_to_exit(program, args, patience);
  CHECK(second.exit_code == 1);
  const auto lines = test::lines_of(second.err);
  REQUIRE(lines.size() == 1);
  CHECK_MESSAGE(lines[0].find("Address already in use") != std::string::npos, lines[0]);
  CHECK_MESSAGE(lines[0].find(server.where.to_string()) != std::string::npos, lines[0]);
  co_return;
}

// Binary bytes of every value and lines far past any limit. echo_server returns every byte;
// chat_server passes a line of any bytes on unchanged, and answers an over-long line with an
// error and a FIN.
asio::awaitable<void> echo_binary(coronet::endpoint where, std::uint64_t seed) {
  auto stream = co_await tcp_stream::connect(where, {.limit = patience});
  REQUIRE_MESSAGE(stream, stream.error().message());
  const auto out = pattern(seed, 4 * 1024 * 1024);  // no "line" ends: one 4 MB run of bytes
  std::string back(out.size(), '\0');
  const auto send_pieces = [&]() -> asio::awaitable<bool> {
    std::size_t at = 0;
    for (std::size_t k = 1; at < out.size(); k = k * 7 % 65537) {
      const auto n = std::min(out.size() - at, k);
      if (!co_await stream->send_all(asio::buffer(out.data() + at, n), patience)) co_return false;
      at += n;
    }
    co_return true;
  };
  const auto receive = [&]() -> asio::awaitable<bool> {
    co_return static_cast<bool>(co_await stream->recv_exact(asio::buffer(back), patience));
  };
  const auto [sent, got] = co_await (send_pieces() && receive());
  CHECK(sent);
  CHECK(got);
  CHECK(back == out);
}

asio::awaitable<void> garbage_to_chat(coronet::endpoint where) {
  auto listener = co_await enter(where);
  auto babbler = co_await enter(where);
  for (std::uint64_t i = 0; i < 50; ++i) {
    auto junk = pattern(1000 + i, 1 + (i * 997) % chat_max_line);
    std::replace(junk.begin(), junk.end(), '\n', 'n');
    if (junk.front() == '/') junk.front() = 's';
    if (junk.back() == '\r') junk.back() = 'r';
    co_await say(*babbler, junk);
    co_await expect(*listener, babbler->nick + ": " + junk);
  }
  // Over-long: the error line, then a FIN. 32 KiB fits in loopback's buffers at once, so the
  // send is over before the server answers.
  auto rambler = co_await enter(where);
  const auto ramble = std::string(32 * 1024, 'w') + "\n";
  REQUIRE(co_await rambler->stream.send_all(asio::buffer(ramble), patience));
  co_await expect(*rambler, "! error: line too long");
  const auto end = co_await next_line(*rambler);
  CHECK(end.error() == coronet::errc::eof);
  co_await expect(*listener, "* " + rambler->nick + " left");
  // And 4 MB of binary with no line end at all: the connection ends, one way or the other.
  auto flooder = co_await enter(where);
  auto flood = pattern(5, 4 * 1024 * 1024);
  std::replace(flood.begin(), flood.end(), '\n', 'n');
  (void)co_await flooder->stream.send_all(asio::buffer(flood), patience);
  for (;;) {
    const auto got = co_await next_line(*flooder);
    if (got) continue;
    CHECK_MESSAGE(ended_by_peer(got.error()), got.error().message());
    break;
  }
  co_await expect(*listener, "* " + flooder->nick + " left");
}

asio::awaitable<void> echo_binary_three_at_once(coronet::endpoint where) {
  co_await (echo_binary(where, 1) && echo_binary(where, 2) && echo_binary(where, 3));
}

asio::awaitable<void> garbage(server_under_test& server) {
  if (server.kind == server_kind::chat) return garbage_to_chat(server.where);
  return echo_binary_three_at_once(server.where);
}

// --- SIGTERM under full load ---------------------------------------------------------------

// How one loaded connection went: the bytes or lines it checked, whether any was wrong, and
// what ended it.
struct pump_result {
  std::uint64_t verified = 0;
  bool corrupted = false;
  std::error_code end;
};

// Echo: sends its own pattern in 16 KiB pieces and checks each piece back, until the
// connection ends. Whatever came back, a whole piece or part of one, must be what was sent.
asio::awaitable<void> echo_pump(coronet::endpoint where, std::uint64_t id, pump_result& r,
                                test::wait_group& group) {
  auto stream = co_await tcp_stream::connect(where, {.limit = patience});
  if (!stream) r.end = stream.error();
  for (std::uint64_t n = 0; stream; ++n) {
    const auto out = pattern(id * 1000003 + n, 16 * 1024);
    std::string back(out.size(), '\0');
    const auto sent = co_await stream->send_all(asio::buffer(out), patience);
    const auto got = co_await stream->recv_exact(asio::buffer(back), patience);
    if (!std::equal(back.begin(), back.begin() + static_cast<std::ptrdiff_t>(got.bytes()),
                    out.begin())) {
      r.corrupted = true;
      break;
    }
    r.verified += got.bytes();
    if (!sent || !got) {
      r.end = got ? sent.error() : got.error();
      break;
    }
  }
  group.done();
}

// Chat: says a numbered line every 2 ms, and checks every line it hears: each of another
// member's lines is whole, and follows that member's previous one.
asio::awaitable<void> chat_pump(coronet::endpoint where, pump_result& r, test::wait_group& group) {
  auto c = co_await try_enter(where);
  if (!c) r.end = c.error();
  if (c) {
    chatter& me = **c;
    const auto speak = [&]() -> asio::awaitable<void> {
      for (std::uint64_t seq = 0;; ++seq) {
        const auto wire = numbered_line(seq) + "\n";
        if (!co_await me.stream.send_all(asio::buffer(wire), patience)) co_return;
        co_await test::sleep_for(2ms);
      }
    };
    const auto listen = [&]() -> asio::awaitable<void> {
      std::map<std::string, std::uint64_t> last_seq;
      for (;;) {
        const auto got = co_await next_line(me);
        if (!got) {
          r.end = got.error();
          co_return;
        }
        if (got->starts_with("* ")) continue;  // news: someone left
        const auto colon = got->find(": ");
        const auto seq = colon == std::string::npos
                             ? std::nullopt
                             : check_numbered_line(std::string_view(*got).substr(colon + 2));
        if (!seq) {
          r.corrupted = true;
          co_return;
        }
        const auto nick = got->substr(0, colon);
        const auto previous = last_seq.find(nick);
        if (previous != last_seq.end() && *seq != previous->second + 1) {
          r.corrupted = true;  // a line lost or out of order
          co_return;
        }
        last_seq[nick] = *seq;
        ++r.verified;
      }
    };
    co_await (speak() && listen());
  }
  group.done();
}

}  // namespace

TEST_CASE("faults: a reset mid-stream") { check_fault_on_both(reset_mid_stream); }

TEST_CASE("faults: a half-close is answered in full then closed with FIN") {
  check_fault_on_both(half_close);
}

TEST_CASE("faults: slowloris clients are closed by the idle timeout") {
  check_fault(server_kind::echo, {"--idle-timeout", "0.5"}, slowloris);
  check_fault(server_kind::chat, {"--idle-timeout", "2"}, slowloris);
}

TEST_CASE("faults: a client that never reads") { check_fault_on_both(non_reading); }

TEST_CASE("faults: a connect storm of 5000 in one burst") {
  const auto limit = coronet::raise_open_file_limit();
  REQUIRE(limit);
  REQUIRE_MESSAGE(*limit >= 5500, "the open file limit is " << *limit);
  check_fault_on_both(connect_storm);
}

TEST_CASE("faults: out of descriptors") {
#ifdef CORONET_TEST_UNDER_UBSAN
  // UBSan checks a virtual call's target by writing it to a pipe(): with no descriptor left
  // that fails and UBSan aborts the server on a false "invalid vptr". Run in the dev, tsan
  // and clang builds.
  MESSAGE("skipped under UBSan: its vptr check needs a free descriptor");
  return;
#endif
  check_fault_on_both(out_of_descriptors);
}

TEST_CASE("faults: a port already in use") { check_fault_on_both(port_in_use); }

TEST_CASE("faults: garbage bytes and over-long lines") { check_fault_on_both(garbage); }

TEST_CASE("faults: SIGTERM under full load ends every connection cleanly and exits 0") {
  for (const auto kind : {server_kind::echo, server_kind::chat}) {
    CAPTURE(name_of(kind));
    server_under_test server(kind, {});
    std::vector<pump_result> results(kind == server_kind::echo ? 100 : 30);
    test::run(
        [&]() -> asio::awaitable<void> {
          const auto executor = co_await asio::this_coro::executor;
          test::wait_group group(executor);
          group.add(results.size());
          for (std::size_t i = 0; i < results.size(); ++i) {
            asio::co_spawn(executor,
                           kind == server_kind::echo ? echo_pump(server.where, i, results[i], group)
                                                     : chat_pump(server.where, results[i], group),
                           asio::detached);
          }
          co_await test::sleep_for(1s);  // under load
          server.process.send_signal(SIGTERM);
          co_await group.wait();
        },
        60s);
    std::uint64_t verified = 0;
    for (const auto& r : results) {
      CHECK_FALSE(r.corrupted);
      CHECK_MESSAGE(ended_by_peer(r.end), r.end.message());
      verified += r.verified;
    }
    CHECK(verified > 0);
    expect_clean_exit(server);
  }
}
