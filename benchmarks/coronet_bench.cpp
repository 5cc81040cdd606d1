// coronet_bench: drives an echo server with many concurrent sockets and reports throughput,
// latency percentiles, CPU per message and the proof that every connection had a socket of its
// own. Without --target it measures its own in-process coronet echo server (the same session
// code as echo_server) on loopback.
//
// Run:    build/bin/coronet_bench --proto tcp --mode pingpong --connections 1000 --size 64
//           --duration 5
//         build/bin/coronet_bench --proto udp --connections 100 --target 127.0.0.1:7000
//           --server-pid "$(pgrep -n echo_server)" --json run.json
// Pair:   any echo server: build/bin/echo_server, benchmarks' asio_echo_server and
//         epoll_echo_server (same command line and ready line), or none (built-in server).
//
// Modes:
//   pingpong  each connection keeps one message in flight: send `size` bytes, wait for all of
//             them back, check them, repeat. A message is one round trip. Over UDP a reply not
//             back within 1 s counts as a timeout error and the next message goes out.
//   flood     each connection sends messages back to back while reading the echo concurrently;
//             a message counts when its last byte is back. Over UDP, losses are reported
//             (udp_lost), not counted as errors: a flood over UDP is meant to overrun.
//   idle      (tcp and unix) each connection makes one round trip as soon as it is connected
//             (its connect counts as in flight until the echo is back, so a server slow to
//             accept never has more than 512 of this client's connections in its backlog),
//             then stays open and silent until the window ends: what a server holds per idle
//             connection. Every round trip counts as a message. With --server-pid the server's
//             RSS is read before the first connect and during the window, and the difference
//             per connection is reported.
//   connect   (tcp and unix) each connection, once all are open, closes and connects again
//             and again, with one checked round trip and a clean end (FIN, or TLS close_notify
//             answered) on every one: a message is a whole connection, so msg/s is connections
//             (with --tls, handshakes) per second and the latency is a connection's life.
// TLS:    --tls connects to a --target TLS server (echo_server --tls) and shakes hands on each
//         connection before its traffic; --tls-ca FILE verifies the server against that CA
//         (without it nothing is verified: the benchmark measures, it does not authenticate).
//         build/bin/coronet_bench --tls --tls-ca ca.pem --target 127.0.0.1:7443 --mode connect
// Phases: connect every socket (at most 512 connects in flight), then --warmup seconds of
// traffic that is not counted, then --duration seconds measured: messages completed inside
// that window, their latencies, and the CPU time the client (and the server, when known)
// spent inside it.
//
// Per-socket proof: each connection records its local endpoint and descriptor while all are
// open; the table shows how many are distinct (equal counts mean one socket per connection)
// and how many connections each client thread ran. Unix-domain clients bind to an
// automatically named abstract address first, so that they too have distinct local endpoints.
// Beyond one source address's ephemeral ports, TCP and UDP connections to a loopback target
// are spread over 127.0.0.1, 127.0.0.2, ... (--sources to choose).
//
// Exit codes: 0 when every connection opened and no error happened; 1 otherwise (or when the
// run cannot start: no server, not enough descriptors); 2 for a command-line mistake.

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <latch>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <CLI/CLI.hpp>
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <nlohmann/json.hpp>

#include "coronet/coronet.hpp"
#include "echo_session.hpp"
#include "grouped.hpp"
#include "latency_histogram.hpp"

namespace coronet_bench {
namespace {

using clock_type = std::chrono::steady_clock;
constexpr auto nothrow_awaitable = asio::experimental::as_tuple(asio::use_awaitable);
constexpr std::size_t max_udp_payload = 65507;  // IPv4: 65535 - 20 (IP) - 8 (UDP)
constexpr std::size_t connects_in_flight = 512;
constexpr auto udp_reply_limit = std::chrono::seconds(1);
constexpr auto connect_limit = std::chrono::seconds(10);

enum class proto { tcp, udp, unix_stream };
enum class mode { pingpong, flood, idle, connect };

struct options {
  proto protocol = proto::tcp;
  mode kind = mode::pingpong;
  std::size_t connections = 100;
  std::size_t size = 64;
  double duration_s = 5.0;
  double warmup_s = 1.0;
  std::size_t threads = 1;
  std::size_t server_threads = 1;
  std::string target;  // empty: the built-in server
  std::string json_path;
  std::optional<int> server_pid;
  std::size_t sources = 0;                           // 0: as many as the ephemeral ports need
  std::optional<asio::ip::address_v4> first_source;  // empty: 127.0.0.1
  bool tls = false;                                  // TLS over TCP
  std::string tls_ca;                                // trust this CA file; empty: no verification
};

std::string_view to_string(mode m) {
  switch (m) {
    case mode::pingpong: return "pingpong";
    case mode::flood: return "flood";
    case mode::idle: return "idle";
    case mode::connect: return "connect";
  }
  return "?";
}

std::string_view to_string(proto p) {
  switch (p) {
    case proto::tcp: return "tcp";
    case proto::udp: return "udp";
    case proto::unix_stream: return "unix";
  }
  return "?";
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch())
      .count();
}

// ---------------------------------------------------------------------------------------------
// CPU time, from /proc: one thread (/proc/self/task/TID/stat) or a whole process
// (/proc/PID/stat). Clock-tick resolution (10 ms), which a window of seconds makes small.

struct cpu_time {
  double user_s = 0;
  double sys_s = 0;
};

std::optional<cpu_time> read_cpu_time(const std::string& stat_path) {
  std::ifstream in(stat_path);
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  const auto close = line.rfind(')');  // the command name may hold spaces and parentheses
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(close + 1));
  std::string field;
  unsigned long long user = 0, sys = 0;
  // After the name: state is field 3; utime and stime are fields 14 and 15.
  for (int n = 3; n <= 15 && fields >> field; ++n) {
    if (n == 14) user = std::stoull(field);
    if (n == 15) sys = std::stoull(field);
  }
  const auto ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  return cpu_time{static_cast<double>(user) / ticks, static_cast<double>(sys) / ticks};
}

// A process's resident memory in KiB (VmRSS in /proc/PID/status).
std::optional<std::uint64_t> read_rss_kib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  }
  return std::nullopt;
}

std::optional<cpu_time> threads_cpu_time(const std::vector<pid_t>& tids) {
  cpu_time total;
  for (const auto tid : tids) {
    auto one = read_cpu_time("/proc/self/task/" + std::to_string(tid) + "/stat");
    if (!one) return std::nullopt;
    total.user_s += one->user_s;
    total.sys_s += one->sys_s;
  }
  return total;
}

// The kernel thread id of every runtime thread, asked on each thread itself.
std::vector<pid_t> runtime_thread_ids(coronet::runtime& runtime) {
  std::vector<pid_t> tids(runtime.size());
  std::latch all(static_cast<std::ptrdiff_t>(runtime.size()));
  for (std::size_t i = 0; i < runtime.size(); ++i) {
    asio::post(runtime.executor(i), [&tids, &all, i] {
      tids[i] = ::gettid();
      all.count_down();
    });
  }
  all.wait();
  return tids;
}

// ---------------------------------------------------------------------------------------------
// What every connection shares. The schedule is written by the coordinating (main) thread and
// read by the connections; everything else in thread_state belongs to one client thread.

struct schedule {
  // steady_clock nanoseconds; "never" until the warm-up starts.
  std::atomic<std::int64_t> window_begin{INT64_MAX};
  std::atomic<std::int64_t> window_end{INT64_MAX};

  bool running(std::int64_t now) const { return now < window_end.load(std::memory_order_relaxed); }
  bool counts(std::int64_t completed) const {
    return completed >= window_begin.load(std::memory_order_relaxed) &&
           completed < window_end.load(std::memory_order_relaxed);
  }
};

struct error_counts {
  std::uint64_t connect = 0;
  std::uint64_t io = 0;
  std::uint64_t mismatch = 0;
  std::uint64_t timeout = 0;

  std::uint64_t total() const { return connect + io + mismatch + timeout; }
  void add(const error_counts& o) {
    connect += o.connect;
    io += o.io;
    mismatch += o.mismatch;
    timeout += o.timeout;
  }
};

struct thread_state {
  explicit thread_state(const asio::any_io_executor& executor)
      : gate(executor, clock_type::time_point::max()) {}

  // Connections wait here once connected, until every connection has had its try.
  asio::steady_timer gate;
  bool gate_open = false;

  latency_histogram latency;
  std::uint64_t messages = 0;              // completed inside the window
  std::atomic<std::uint64_t> progress{0};  // completed at all; read by the progress line
  error_counts errors;
  std::uint64_t udp_sent = 0;
  std::uint64_t udp_received = 0;
  std::size_t opened = 0;
  std::vector<coronet::endpoint> local_endpoints;
  std::vector<int> fds;

  void completed(std::int64_t sent_at, std::int64_t back_at, const schedule& when) {
    progress.store(progress.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (!when.counts(back_at)) return;
    ++messages;
    latency.record(static_cast<std::uint64_t>(back_at - sent_at));
  }
};

struct bench {
  options opts;
  coronet::endpoint target;
  std::vector<coronet::endpoint> sources;   // empty: let connect() pick
  std::optional<coronet::tls_context> tls;  // with --tls
  schedule when;
  std::vector<std::unique_ptr<thread_state>> threads;
  std::atomic<std::size_t> connects_done{0};
  std::atomic<std::size_t> connections_ended{0};
  std::atomic<std::size_t> connections_thrown{0};  // ended by an exception (spawn logs it)
};

// Counts a connection's connect attempt as done, and the connection as ended, whichever way its
// coroutine ends (an exception, or a frame destroyed at shutdown, included), so that the
// coordinator never waits for one that is gone; an exception also counts as an error.
struct end_guard {
  bench& b;
  bool connect_counted = false;

  void count_connect() {
    connect_counted = true;
    b.connects_done.fetch_add(1, std::memory_order_acq_rel);
  }
  ~end_guard() {
    if (!connect_counted) b.connects_done.fetch_add(1, std::memory_order_acq_rel);
    if (std::uncaught_exceptions() > 0) b.connections_thrown.fetch_add(1);
    b.connections_ended.fetch_add(1, std::memory_order_acq_rel);
  }
};

// ---------------------------------------------------------------------------------------------
// Payloads. Ping-pong messages start with the connection's id and the message's sequence
// number, so a reply from another connection or a stale UDP reply is told apart; the rest is a
// per-connection pattern. A flood stream repeats one per-connection pattern, checked at each
// byte's offset in the stream.

std::vector<char> pattern(std::uint32_t id, std::size_t size) {
  std::vector<char> bytes(size);
  for (std::size_t i = 0; i < size; ++i) {
    bytes[i] = static_cast<char>((id * 131U + i * 7U + 1U) & 0xFFU);
  }
  return bytes;
}

void stamp(std::vector<char>& message, std::uint32_t id, std::uint64_t sequence) {
  char header[12];
  std::memcpy(header, &id, sizeof id);
  std::memcpy(header + sizeof id, &sequence, sizeof sequence);
  std::memcpy(message.data(), header, std::min(message.size(), sizeof header));
}

// ---------------------------------------------------------------------------------------------
// Stream connections (TCP and Unix).

// The end of sending: TCP's FIN, or TLS's close_notify.
template <class Stream>
asio::awaitable<void> half_close(Stream& stream) {
  if constexpr (std::is_same_v<Stream, coronet::tls_stream>) {
    (void)co_await stream.shutdown(coronet::timeout(std::chrono::seconds(5)));
  } else {
    (void)stream.shutdown(coronet::shutdown_type::send);
  }
}

template <class Stream>
asio::awaitable<void> finish_stream(Stream& stream, thread_state& thread) {
  // Half-close and wait for the server's FIN (over TLS, its close_notify): a server must close
  // what the client closed.
  co_await half_close(stream);
  char tail = 0;
  auto end =
      co_await stream.recv(asio::buffer(&tail, 1), coronet::timeout(std::chrono::seconds(5)));
  if (end.error() != coronet::errc::eof) {
    ++thread.errors.io;
    coronet::log().warn("connection did not end with the server's FIN: {}",
                        end ? "more data" : end.error().message());
  }
}

template <class Stream>
asio::awaitable<void> stream_pingpong(Stream& stream, std::uint32_t id, bench& b,
                                      thread_state& thread) {
  auto message = pattern(id, b.opts.size);
  std::vector<char> reply(b.opts.size);
  for (std::uint64_t sequence = 0;; ++sequence) {
    const auto sent_at = now_ns();
    if (!b.when.running(sent_at)) break;
    stamp(message, id, sequence);
    auto sent = co_await stream.send_all(asio::buffer(message));
    auto got = sent ? co_await stream.recv_exact(asio::buffer(reply))
                    : coronet::io_result(0, sent.error());
    if (!got) {
      ++thread.errors.io;
      coronet::log().warn("connection {}: {}", id, got.error().message());
      co_return;
    }
    if (reply != message) {
      ++thread.errors.mismatch;
      coronet::log().warn("connection {}: reply differs from message {}", id, sequence);
      co_return;
    }
    thread.completed(sent_at, now_ns(), b.when);
  }
  co_await finish_stream(stream, thread);
}

// Flood: the writer sends back to back, noting when each message went out; the reader checks
// every byte against the pattern and completes a message when its last byte is back.
template <class Stream>
asio::awaitable<void> flood_writer(Stream& stream, const std::vector<char>& message,
                                   std::deque<std::int64_t>& sent_at, bench& b,
                                   thread_state& thread, bool& failed) {
  for (;;) {
    const auto now = now_ns();
    if (!b.when.running(now) || failed) break;
    sent_at.push_back(now);
    auto sent = co_await stream.send_all(asio::buffer(message));
    if (!sent) {
      if (!failed) ++thread.errors.io;
      failed = true;
      co_return;
    }
  }
  co_await half_close(stream);
}

template <class Stream>
asio::awaitable<void> flood_reader(Stream& stream, const std::vector<char>& message,
                                   std::deque<std::int64_t>& sent_at, bench& b,
                                   thread_state& thread, bool& failed) {
  std::vector<char> buffer(std::max<std::size_t>(message.size(), 64 * 1024));
  std::size_t offset = 0;  // into the current message
  for (;;) {
    auto got =
        co_await stream.recv(asio::buffer(buffer), coronet::timeout(std::chrono::seconds(30)));
    if (!got) {
      if (got.error() == coronet::errc::eof && offset == 0 && sent_at.empty()) co_return;
      if (!failed) {
        ++thread.errors.io;
        coronet::log().warn("flood: {} with {} messages not echoed", got.error().message(),
                            sent_at.size());
      }
      failed = true;
      stream.close();  // ends the writer too, if it waits in send
      co_return;
    }
    for (std::size_t at = 0; at < got.bytes();) {
      const auto n = std::min(got.bytes() - at, message.size() - offset);
      if (std::memcmp(buffer.data() + at, message.data() + offset, n) != 0 || sent_at.empty()) {
        ++thread.errors.mismatch;
        failed = true;
        stream.close();
        co_return;
      }
      at += n;
      offset += n;
      if (offset == message.size()) {
        offset = 0;
        thread.completed(sent_at.front(), now_ns(), b.when);
        sent_at.pop_front();
      }
    }
  }
}

template <class Stream>
asio::awaitable<void> stream_flood(Stream& stream, std::uint32_t id, bench& b,
                                   thread_state& thread) {
  using namespace asio::experimental::awaitable_operators;
  const auto message = pattern(id, b.opts.size);
  std::deque<std::int64_t> sent_at;
  bool failed = false;
  co_await (flood_writer(stream, message, sent_at, b, thread, failed) &&
            flood_reader(stream, message, sent_at, b, thread, failed));
}

// Once a socket is connected: record its part of the proof (while every socket is open, so
// equal values would mean a shared socket), then wait at the gate for the others.
asio::awaitable<void> opened(const coronet::endpoint& local, int fd, end_guard& guard,
                             thread_state& thread) {
  ++thread.opened;
  thread.local_endpoints.push_back(local);
  thread.fds.push_back(fd);
  guard.count_connect();
  if (!thread.gate_open) (void)co_await thread.gate.async_wait(nothrow_awaitable);
}

// Idle, first part: one checked round trip, counted, right after the connect. Until it is
// back the connect still counts as in flight, so a server slow to accept never has more than
// connects_in_flight connections of this client waiting in its backlog. True when it came back.
template <class Stream>
asio::awaitable<bool> idle_round_trip(Stream& stream, std::uint32_t id, thread_state& thread,
                                      std::size_t size) {
  auto message = pattern(id, size);
  stamp(message, id, 0);
  std::vector<char> reply(size);
  const auto sent_at = now_ns();
  auto sent = co_await stream.send_all(asio::buffer(message));
  auto got =
      sent ? co_await stream.recv_exact(asio::buffer(reply)) : coronet::io_result(0, sent.error());
  if (!got) {
    ++thread.errors.io;
    coronet::log().warn("connection {}: {}", id, got.error().message());
    co_return false;
  }
  if (reply != message) {
    ++thread.errors.mismatch;
    coronet::log().warn("connection {}: reply differs from its message", id);
    co_return false;
  }
  const auto back_at = now_ns();
  thread.progress.store(thread.progress.load(std::memory_order_relaxed) + 1,
                        std::memory_order_relaxed);
  ++thread.messages;
  thread.latency.record(static_cast<std::uint64_t>(back_at - sent_at));
  co_return true;
}

// Idle, second part: silence until the window ends.
template <class Stream>
asio::awaitable<void> stream_idle(Stream& stream, bench& b, thread_state& thread) {
  const auto window_end = b.when.window_end.load(std::memory_order_relaxed);
  asio::steady_timer hold(co_await asio::this_coro::executor,
                          clock_type::time_point(std::chrono::nanoseconds(window_end)));
  (void)co_await hold.async_wait(nothrow_awaitable);
  co_await finish_stream(stream, thread);
}

// After connecting: the proof and the gate, then the mode.
template <class Stream>
asio::awaitable<void> run_stream(Stream& stream, std::uint32_t id, end_guard& guard, bench& b,
                                 thread_state& thread) {
  if (b.opts.kind == mode::idle) {
    const bool echoed = co_await idle_round_trip(stream, id, thread, b.opts.size);
    co_await opened(stream.local_endpoint(), stream.native_handle(), guard, thread);
    if (echoed) co_await stream_idle(stream, b, thread);
    co_return;
  }
  co_await opened(stream.local_endpoint(), stream.native_handle(), guard, thread);
  switch (b.opts.kind) {
    case mode::pingpong: co_await stream_pingpong(stream, id, b, thread); break;
    case mode::flood: co_await stream_flood(stream, id, b, thread); break;
    case mode::connect: co_await finish_stream(stream, thread); break;  // then stream_reconnect
    case mode::idle: break;                                             // above
  }
}

// Connect mode, after the first connection: connect again and again until the window ends,
// with one checked round trip and a clean end on each connection. A message is one whole
// connection: connect (with its TLS handshake), round trip and close. `connect()` gives a new
// connected stream.
template <class Connect>
asio::awaitable<void> stream_reconnect(Connect connect, std::uint32_t id, bench& b,
                                       thread_state& thread) {
  auto message = pattern(id, b.opts.size);
  std::vector<char> reply(b.opts.size);
  for (std::uint64_t sequence = 1;; ++sequence) {
    const auto started_at = now_ns();
    if (!b.when.running(started_at)) break;
    auto stream = co_await connect();
    if (!stream) {
      ++thread.errors.connect;
      coronet::log().warn("connection {}: cannot connect again: {}", id, stream.error().message());
      co_return;
    }
    stamp(message, id, sequence);
    auto sent = co_await stream->send_all(asio::buffer(message));
    auto got = sent ? co_await stream->recv_exact(asio::buffer(reply))
                    : coronet::io_result(0, sent.error());
    if (!got || reply != message) {
      ++(got ? thread.errors.mismatch : thread.errors.io);
      coronet::log().warn("connection {}: {}", id,
                          got ? "reply differs from its message" : got.error().message());
      co_return;
    }
    co_await finish_stream(*stream, thread);
    thread.completed(started_at, now_ns(), b.when);
  }
}

void connect_failed(end_guard& guard, const bench& b, thread_state& thread, std::uint32_t id,
                    std::error_code error) {
  ++thread.errors.connect;
  if (thread.errors.connect <= 3) {
    coronet::log().warn("connection {}: cannot connect to {}: {}", id, b.target.to_string(),
                        error.message());
  }
  guard.count_connect();
}

asio::awaitable<coronet::result<coronet::tcp_stream>> connect_tcp(const bench& b,
                                                                  std::uint32_t id) {
  coronet::connect_options how{.limit = connect_limit};
  if (!b.sources.empty()) how.local = b.sources[id % b.sources.size()];
  auto stream = co_await coronet::tcp_stream::connect(b.target, how);
  if (stream) (void)stream->set_option(coronet::option::no_delay{true});
  co_return stream;
}

// TLS: the TCP connect as above, then the handshake, within the same limit.
asio::awaitable<coronet::result<coronet::tls_stream>> connect_tls(const bench& b,
                                                                  std::uint32_t id) {
  auto tcp = co_await connect_tcp(b, id);
  if (!tcp) co_return tcp.error();
  coronet::tls_stream stream(std::move(*tcp), *b.tls);
  if (auto shaken = co_await stream.handshake(connect_limit); !shaken) {
    if (id < 3) coronet::log().warn("TLS: {}", stream.failure_detail());
    co_return shaken.error();
  }
  co_return std::move(stream);
}

// A stream connection's life: connect, the mode's traffic, and in connect mode the rest of
// its connections.
template <class Connect>
asio::awaitable<void> stream_connection(Connect connect, std::uint32_t id, bench& b,
                                        thread_state& thread) {
  end_guard guard{b};
  auto stream = co_await connect();
  if (!stream) {
    connect_failed(guard, b, thread, id, stream.error());
    co_return;
  }
  co_await run_stream(*stream, id, guard, b, thread);
  if (b.opts.kind == mode::connect) co_await stream_reconnect(connect, id, b, thread);
}

asio::awaitable<void> tcp_connection(std::uint32_t id, bench& b, thread_state& thread) {
  co_await stream_connection([&b, id] { return connect_tcp(b, id); }, id, b, thread);
}

asio::awaitable<void> tls_connection(std::uint32_t id, bench& b, thread_state& thread) {
  co_await stream_connection([&b, id] { return connect_tls(b, id); }, id, b, thread);
}

asio::awaitable<coronet::result<void>> connect_socket(asio::local::stream_protocol::socket& socket,
                                                      asio::local::stream_protocol::endpoint to) {
  auto [error] = co_await socket.async_connect(to, nothrow_awaitable);
  if (error) co_return error;
  co_return coronet::result<void>{};
}

// A Unix-domain client socket is unnamed unless bound; binding to an empty address asks the
// kernel for a unique abstract name (Linux "autobind"), so the proof can tell sockets apart.
asio::awaitable<coronet::result<coronet::unix_stream>> connect_autobound(
    const coronet::endpoint& target) {
  auto executor = co_await asio::this_coro::executor;
  asio::local::stream_protocol::socket socket(executor);
  std::error_code error;
  socket.open(asio::local::stream_protocol(), error);
  if (error) co_return error;
  sockaddr_un unnamed{};
  unnamed.sun_family = AF_UNIX;
  if (::bind(socket.native_handle(), reinterpret_cast<const sockaddr*>(&unnamed),
             sizeof(sa_family_t)) != 0) {
    co_return std::error_code(errno, std::system_category());
  }
  const asio::local::stream_protocol::endpoint where(target.path());
  auto connected = co_await coronet::with_timeout(connect_socket(socket, where), connect_limit);
  if (!connected) co_return connected.error();
  co_return coronet::unix_stream(std::move(socket));
}

asio::awaitable<void> unix_connection(std::uint32_t id, bench& b, thread_state& thread) {
  co_await stream_connection([&b] { return connect_autobound(b.target); }, id, b, thread);
}

// ---------------------------------------------------------------------------------------------
// UDP sockets: bound (to a source address when spreading), connected to the target, then
// send()/recv().

asio::awaitable<void> udp_pingpong(coronet::udp_socket& socket, std::uint32_t id, bench& b,
                                   thread_state& thread) {
  auto message = pattern(id, b.opts.size);
  std::vector<char> reply(b.opts.size + 1);  // one more: a longer datagram is not a match
  for (std::uint64_t sequence = 0;; ++sequence) {
    const auto sent_at = now_ns();
    if (!b.when.running(sent_at)) break;
    stamp(message, id, sequence);
    auto sent = co_await socket.send(asio::buffer(message));
    ++thread.udp_sent;
    if (!sent) {
      ++thread.errors.io;
      coronet::log().warn("udp socket {}: {}", id, sent.error().message());
      co_return;
    }
    // Wait for this message's reply; a late reply to an earlier message is skipped.
    const auto deadline = clock_type::now() + udp_reply_limit;
    for (;;) {
      const auto left = deadline - clock_type::now();
      auto got = co_await socket.recv(
          asio::buffer(reply), coronet::timeout(std::max(left, clock_type::duration::zero())));
      if (!got) {
        if (got.error() == std::errc::timed_out) {
          ++thread.errors.timeout;
          break;
        }
        ++thread.errors.io;
        coronet::log().warn("udp socket {}: {}", id, got.error().message());
        co_return;
      }
      if (got.bytes() == message.size() &&
          std::memcmp(reply.data(), message.data(), message.size()) == 0) {
        ++thread.udp_received;
        thread.completed(sent_at, now_ns(), b.when);
        break;
      }
    }
  }
}

// UDP flood: messages carry their send time after the id and sequence (when there is room),
// so the reader needs no queue and a lost datagram costs nothing but the count.
asio::awaitable<void> udp_flood_writer(coronet::udp_socket& socket, std::uint32_t id, bench& b,
                                       thread_state& thread) {
  auto message = pattern(id, b.opts.size);
  for (std::uint64_t sequence = 0;; ++sequence) {
    const auto now = now_ns();
    if (!b.when.running(now)) break;
    stamp(message, id, sequence);
    if (message.size() >= 20) std::memcpy(message.data() + 12, &now, sizeof now);
    auto sent = co_await socket.send(asio::buffer(message));
    if (!sent) {
      if (sent.error() == std::errc::no_buffer_space) continue;  // the kernel's queue is full
      ++thread.errors.io;
      coronet::log().warn("udp socket {}: {}", id, sent.error().message());
      co_return;
    }
    ++thread.udp_sent;
  }
}

asio::awaitable<void> udp_flood_reader(coronet::udp_socket& socket, std::uint32_t id, bench& b,
                                       thread_state& thread) {
  const auto expected = pattern(id, b.opts.size);
  std::vector<char> reply(b.opts.size + 1);
  for (;;) {
    // Past the window, wait a little for the replies still on their way, then stop.
    const auto limit = b.when.running(now_ns()) ? coronet::timeout(std::chrono::seconds(30))
                                                : coronet::timeout(std::chrono::milliseconds(200));
    auto got = co_await socket.recv(asio::buffer(reply), limit);
    if (!got) {
      if (got.error() == std::errc::timed_out && !b.when.running(now_ns())) co_return;
      ++thread.errors.io;
      coronet::log().warn("udp socket {}: {}", id, got.error().message());
      co_return;
    }
    const auto header = std::min<std::size_t>(expected.size(), expected.size() >= 20 ? 20 : 12);
    if (got.bytes() != expected.size() ||
        std::memcmp(reply.data() + header, expected.data() + header, expected.size() - header) !=
            0) {
      ++thread.errors.mismatch;
      continue;
    }
    ++thread.udp_received;
    std::int64_t sent_at = 0;
    const auto back_at = now_ns();
    if (expected.size() >= 20) std::memcpy(&sent_at, reply.data() + 12, sizeof sent_at);
    if (sent_at == 0) {
      // No room for a time stamp: counted, without a latency.
      thread.progress.store(thread.progress.load(std::memory_order_relaxed) + 1,
                            std::memory_order_relaxed);
      if (b.when.counts(back_at)) ++thread.messages;
    } else {
      thread.completed(sent_at, back_at, b.when);
    }
  }
}

asio::awaitable<void> udp_connection(std::uint32_t id, bench& b, thread_state& thread) {
  end_guard guard{b};
  auto executor = co_await asio::this_coro::executor;
  std::optional<coronet::udp_socket> socket;
  try {
    // Without source addresses, connect() lets the kernel pick the address and port.
    socket.emplace(b.sources.empty()
                       ? coronet::udp_socket::open(executor, b.target.is_v6()
                                                                 ? coronet::ip_family::v6
                                                                 : coronet::ip_family::v4)
                       : coronet::udp_socket::bind(executor, b.sources[id % b.sources.size()]));
  } catch (const std::system_error& e) {
    connect_failed(guard, b, thread, id, e.code());
    co_return;
  }
  if (auto connected = socket->connect(b.target); !connected) {
    connect_failed(guard, b, thread, id, connected.error());
    co_return;
  }
  co_await opened(socket->local_endpoint(), socket->native_handle(), guard, thread);
  if (b.opts.kind == mode::pingpong) {
    co_await udp_pingpong(*socket, id, b, thread);
  } else {
    using namespace asio::experimental::awaitable_operators;
    co_await (udp_flood_writer(*socket, id, b, thread) && udp_flood_reader(*socket, id, b, thread));
  }
}

// ---------------------------------------------------------------------------------------------
// The built-in server: coronet's echo sessions (echo_server's own) on a runtime of its own,
// bound to a free loopback port or a socket file in a fresh temporary directory.

class builtin_server {
 public:
  builtin_server(proto protocol, std::size_t threads) : runtime_(unlocked(threads)) {
    const auto loopback = coronet::endpoint(asio::ip::address_v4::loopback(), 0);
    switch (protocol) {
      case proto::tcp:
        tcp_.emplace(coronet::tcp_server::bind(runtime_, loopback, [](coronet::lean_stream s) {
          return coronet_examples::echo_session(std::move(s));
        }));
        where_ = tcp_->local_endpoint();
        break;
      case proto::unix_stream: {
        char pattern[] = "/tmp/coronet_bench.XXXXXX";
        if (::mkdtemp(pattern) == nullptr) {
          throw std::system_error(errno, std::system_category(),
                                  "cannot make a temporary directory");
        }
        directory_ = pattern;
        where_ = coronet::endpoint::unix_domain((directory_ / "echo.sock").string()).value();
        unix_.emplace(coronet::unix_server::bind(runtime_, where_, [](coronet::lean_stream s) {
          return coronet_examples::echo_session(std::move(s));
        }));
        break;
      }
      case proto::udp: {
        udp_ = coronet_examples::bind_udp_echo(runtime_, loopback);
        where_ = udp_.front()->local_endpoint();
        for (std::size_t i = 0; i < udp_.size(); ++i) {
          runtime_.spawn(i, coronet_examples::udp_echo(udp_[i]), "built-in udp echo");
        }
        break;
      }
    }
    runtime_.start();
    tids_ = runtime_thread_ids(runtime_);
  }

  builtin_server(const builtin_server&) = delete;
  builtin_server& operator=(const builtin_server&) = delete;

  ~builtin_server() {
    try {
      // Stop on the server's own threads while they run, then let the runtime go.
      if (tcp_)
        asio::co_spawn(runtime_.executor(0), tcp_->stop(std::chrono::seconds(0)), asio::use_future)
            .get();
      if (unix_)
        asio::co_spawn(runtime_.executor(0), unix_->stop(std::chrono::seconds(0)), asio::use_future)
            .get();
      for (std::size_t i = 0; i < udp_.size(); ++i) {
        asio::co_spawn(runtime_.executor(i), coronet_examples::close_udp(udp_[i]), asio::use_future)
            .get();
      }
    } catch (const std::exception& e) {
      coronet::log().warn("built-in server: stopping: {}", e.what());
    }
    runtime_.stop();
    runtime_.join();
    tcp_.reset();
    unix_.reset();
    udp_.clear();
    if (!directory_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(directory_, ignored);
    }
  }

  const coronet::endpoint& where() const { return where_; }
  std::size_t threads() const { return runtime_.size(); }
  std::optional<cpu_time> cpu() const { return threads_cpu_time(tids_); }

 private:
  // As echo_server's: every socket is made before start() or by the thread it lives on.
  static coronet::runtime_options unlocked(std::size_t threads) {
    coronet::runtime_options options;
    options.threads = threads;
    options.unlocked_io = true;
    return options;
  }

  coronet::runtime runtime_;  // first: destroyed last, after every socket on it
  std::optional<coronet::tcp_server> tcp_;
  std::optional<coronet::unix_server> unix_;
  std::vector<std::shared_ptr<coronet::udp_socket>> udp_;
  std::filesystem::path directory_;
  coronet::endpoint where_;
  std::vector<pid_t> tids_;
};

// ---------------------------------------------------------------------------------------------
// Setup: descriptors and source addresses.

// Raises RLIMIT_NOFILE to at least `needed`: the soft limit up to the hard one, and the hard
// one too when the process may (root, up to fs.nr_open). Returns the limit in force.
std::size_t ensure_descriptors(std::size_t needed) {
  (void)coronet::raise_open_file_limit();
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < needed) {
    rlimit wanted{needed, std::max<rlim_t>(needed, limit.rlim_max)};
    if (::setrlimit(RLIMIT_NOFILE, &wanted) == 0) limit = wanted;
  }
  return limit.rlim_cur;
}

std::size_t ephemeral_ports() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  std::size_t low = 32768, high = 60999;  // Linux's defaults
  in >> low >> high;
  return high >= low ? high - low + 1 : 0;
}

// Source addresses for TCP and UDP: none (the kernel picks) while one address's ephemeral
// ports suffice and --first-source is not given, else first_source (127.0.0.1 by default),
// the next address, ... with room to spare on each.
std::vector<coronet::endpoint> source_addresses(const options& opts,
                                                const coronet::endpoint& target) {
  if (opts.protocol == proto::unix_stream) return {};
  const std::size_t per_address = ephemeral_ports() * 9 / 10;
  std::size_t count = opts.sources;
  if (count == 0) {
    count = (opts.connections + per_address - 1) / std::max<std::size_t>(per_address, 1);
    if (count <= 1 && !opts.first_source) return {};
    count = std::max<std::size_t>(count, 1);
  }
  const bool loopback_v4 = target.is_v4() && target.address().to_v4().to_bytes()[0] == 127;
  if (!loopback_v4) {
    throw std::runtime_error(
        fmt::format("{} connections need {} source addresses, which only a 127.x.x.x target allows "
                    "(one address has about {} ephemeral ports)",
                    opts.connections, count, per_address));
  }
  const std::uint32_t first = opts.first_source ? opts.first_source->to_uint() : (127U << 24) | 1;
  // Within 127.0.0.0/8, and never the network's broadcast address.
  if (first + count - 1 >= (128U << 24) - 1) {
    throw std::runtime_error(fmt::format("{} source addresses from {} leave 127.0.0.0/8", count,
                                         asio::ip::make_address_v4(first).to_string()));
  }
  std::vector<coronet::endpoint> sources;
  for (std::uint32_t i = 0; i < count; ++i) {
    sources.emplace_back(asio::ip::make_address_v4(first + i), 0);
  }
  return sources;
}

// ---------------------------------------------------------------------------------------------
// The run and what it measured.

struct report {
  options opts;
  std::string target;
  bool builtin = false;
  std::size_t server_threads = 0;
  double duration_s = 0;
  std::uint64_t messages = 0;
  latency_histogram latency;
  error_counts errors;
  std::uint64_t unfinished = 0;
  std::uint64_t udp_sent = 0;
  std::uint64_t udp_received = 0;
  std::size_t opened = 0;
  std::size_t unique_local_endpoints = 0;
  std::size_t unique_fds = 0;
  std::size_t source_addresses = 1;
  std::string first_source;  // empty: the kernel picked
  std::vector<std::size_t> per_thread;
  std::optional<cpu_time> client_cpu;
  std::optional<cpu_time> server_cpu;
  std::optional<std::uint64_t> server_rss_before_kib;  // before the first connect
  std::optional<std::uint64_t> server_rss_window_kib;  // the last reading inside the window

  double msgs_per_sec() const {
    return duration_s > 0 ? static_cast<double>(messages) / duration_s : 0.0;
  }
  std::uint64_t error_total() const { return errors.total() + unfinished; }
  bool ok() const {
    return error_total() == 0 && opened == opts.connections &&
           unique_local_endpoints == opts.connections && unique_fds == opts.connections &&
           messages > 0 && (opts.kind != mode::idle || messages == opts.connections);
  }
  // Idle mode: the server's RSS growth per connection, in bytes.
  std::optional<double> server_bytes_per_connection() const {
    if (!server_rss_before_kib || !server_rss_window_kib || opts.connections == 0) {
      return std::nullopt;
    }
    return (static_cast<double>(*server_rss_window_kib) -
            static_cast<double>(*server_rss_before_kib)) *
           1024.0 / static_cast<double>(opts.connections);
  }
  std::optional<double> cpu_per_message(const std::optional<cpu_time>& cpu) const {
    if (!cpu || messages == 0) return std::nullopt;
    return (cpu->user_s + cpu->sys_s) / static_cast<double>(messages);
  }
};

std::optional<cpu_time> difference(const std::optional<cpu_time>& before,
                                   const std::optional<cpu_time>& after) {
  if (!before || !after) return std::nullopt;
  return cpu_time{after->user_s - before->user_s, after->sys_s - before->sys_s};
}

void sleep_until_ns(std::int64_t when) {
  std::this_thread::sleep_until(clock_type::time_point(std::chrono::nanoseconds(when)));
}

// Opens every connection, lets them run through warm-up and the window, and collects.
report run(const options& opts) {
  report out;
  out.opts = opts;
  std::optional<builtin_server> server;
  coronet::endpoint target;
  if (opts.target.empty()) {
    server.emplace(opts.protocol, opts.server_threads);
    target = server->where();
    out.builtin = true;
    out.server_threads = server->threads();
  } else {
    auto parsed = opts.protocol == proto::unix_stream
                      ? coronet::endpoint::unix_domain(opts.target.rfind("unix:", 0) == 0
                                                           ? opts.target.substr(5)
                                                           : opts.target)
                      : coronet::endpoint::parse(opts.target);
    if (!parsed || (opts.protocol != proto::unix_stream && !parsed->is_ip())) {
      throw std::runtime_error(fmt::format("invalid --target '{}': {}", opts.target,
                                           parsed ? "not HOST:PORT" : parsed.error().message()));
    }
    target = *parsed;
  }
  out.target = target.to_string();
  const auto server_stat =
      opts.server_pid ? "/proc/" + std::to_string(*opts.server_pid) + "/stat" : std::string();
  auto server_cpu = [&]() -> std::optional<cpu_time> {
    if (server) return server->cpu();
    if (opts.server_pid) return read_cpu_time(server_stat);
    return std::nullopt;
  };
  if (opts.server_pid && !read_cpu_time(server_stat)) {
    throw std::runtime_error(fmt::format("--server-pid {}: no such process", *opts.server_pid));
  }
  auto server_rss = [&]() -> std::optional<std::uint64_t> {
    if (opts.server_pid) return read_rss_kib(*opts.server_pid);
    return std::nullopt;  // the built-in server shares this process's memory
  };
  out.server_rss_before_kib = server_rss();

  bench b;
  b.opts = opts;
  b.target = target;
  b.sources = source_addresses(opts, target);
  if (opts.tls) {
    b.tls = opts.tls_ca.empty() ? coronet::tls_context::client({.verify_peer = false})
                                : coronet::tls_context::client({.ca_file = opts.tls_ca});
  }
  out.source_addresses = std::max<std::size_t>(b.sources.size(), 1);
  if (!b.sources.empty()) out.first_source = b.sources.front().address().to_string();

  coronet::runtime client(opts.threads);
  for (std::size_t i = 0; i < client.size(); ++i) {
    b.threads.push_back(std::make_unique<thread_state>(client.executor(i)));
  }
  client.start();
  const auto client_tids = runtime_thread_ids(client);
  const bool progress = ::isatty(STDERR_FILENO) != 0;

  // Connect, a bounded number at a time so that a listener's backlog is not overrun.
  for (std::size_t id = 0; id < opts.connections; ++id) {
    while (id - b.connects_done.load(std::memory_order_acquire) >= connects_in_flight) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    const auto index = id % client.size();
    auto& thread = *b.threads[index];
    const auto n = static_cast<std::uint32_t>(id);
    switch (opts.protocol) {
      case proto::tcp:
        if (opts.tls) {
          client.spawn(index, tls_connection(n, b, thread), "bench tls connection");
        } else {
          client.spawn(index, tcp_connection(n, b, thread), "bench tcp connection");
        }
        break;
      case proto::unix_stream:
        client.spawn(index, unix_connection(n, b, thread), "bench unix connection");
        break;
      case proto::udp: client.spawn(index, udp_connection(n, b, thread), "bench udp socket"); break;
    }
  }
  while (b.connects_done.load(std::memory_order_acquire) < opts.connections) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  // Schedule the window, then open the gates: the schedule reaches each thread with the post.
  const auto begin = now_ns() + static_cast<std::int64_t>(opts.warmup_s * 1e9);
  const auto end = begin + static_cast<std::int64_t>(opts.duration_s * 1e9);
  b.when.window_begin.store(begin, std::memory_order_relaxed);
  b.when.window_end.store(end, std::memory_order_relaxed);
  for (auto& thread : b.threads) {
    asio::post(thread->gate.get_executor(), [&t = *thread] {
      t.gate_open = true;
      t.gate.cancel();
    });
  }
  if (progress && opts.warmup_s > 0) {
    std::fprintf(stderr, "coronet_bench: warming up for %.1f s\n", opts.warmup_s);
  }

  sleep_until_ns(begin);
  const auto client_before = threads_cpu_time(client_tids);
  const auto server_before = server_cpu();
  out.server_rss_window_kib = server_rss();
  auto completed = [&b] {
    std::uint64_t n = 0;
    for (const auto& t : b.threads) n += t->progress.load(std::memory_order_relaxed);
    return n;
  };
  for (int second = 1; begin + second * std::int64_t{1'000'000'000} < end; ++second) {
    const auto before = completed();
    sleep_until_ns(begin + second * std::int64_t{1'000'000'000});
    if (const auto rss = server_rss()) out.server_rss_window_kib = rss;
    if (progress) {
      std::fprintf(stderr, "coronet_bench: %d/%.0f s  %s msg/s\n", second, opts.duration_s,
                   grouped(completed() - before).c_str());
    }
  }
  sleep_until_ns(end);
  const auto client_after = threads_cpu_time(client_tids);
  const auto server_after = server_cpu();
  out.duration_s = static_cast<double>(end - begin) / 1e9;

  // Let every connection finish its last message and close; a stuck one is an error.
  const auto give_up = clock_type::now() + std::chrono::seconds(10);
  while (b.connections_ended.load(std::memory_order_acquire) < opts.connections &&
         clock_type::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  out.unfinished = opts.connections - b.connections_ended.load(std::memory_order_acquire);
  out.errors.io += b.connections_thrown.load();
  if (out.unfinished > 0) {
    coronet::log().warn("{} connections still waiting for the server 10 s after the end",
                        out.unfinished);
  }
  client.stop();
  client.join();

  std::vector<coronet::endpoint> locals;
  std::vector<int> fds;
  for (auto& thread : b.threads) {
    out.messages += thread->messages;
    out.latency.merge(thread->latency);
    out.errors.add(thread->errors);
    out.udp_sent += thread->udp_sent;
    out.udp_received += thread->udp_received;
    out.opened += thread->opened;
    out.per_thread.push_back(thread->opened);
    locals.insert(locals.end(), thread->local_endpoints.begin(), thread->local_endpoints.end());
    fds.insert(fds.end(), thread->fds.begin(), thread->fds.end());
    thread.reset();  // its gate timer must go before the runtime's contexts do
  }
  std::sort(locals.begin(), locals.end());
  out.unique_local_endpoints =
      static_cast<std::size_t>(std::unique(locals.begin(), locals.end()) - locals.begin());
  std::sort(fds.begin(), fds.end());
  out.unique_fds = static_cast<std::size_t>(std::unique(fds.begin(), fds.end()) - fds.begin());
  out.client_cpu = difference(client_before, client_after);
  out.server_cpu = difference(server_before, server_after);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Output: a table for people, JSON for programs.

template <class Number>
nlohmann::json optional_number(const std::optional<Number>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

nlohmann::json to_json(const report& r) {
  const auto us = [&r](double q) -> nlohmann::json {
    if (r.latency.count() == 0) return nullptr;
    return static_cast<double>(r.latency.percentile_ns(q)) / 1e3;
  };
  nlohmann::json latency = {{"p50", us(0.50)},   {"p90", us(0.90)}, {"p99", us(0.99)},
                            {"p999", us(0.999)}, {"max", nullptr},  {"mean", nullptr}};
  if (r.latency.count() > 0) {
    latency["max"] = static_cast<double>(r.latency.max_ns()) / 1e3;
    latency["mean"] = r.latency.mean_ns() / 1e3;
  }
  nlohmann::json cpu = {{"client_user_s", nullptr},
                        {"client_sys_s", nullptr},
                        {"server_user_s", nullptr},
                        {"server_sys_s", nullptr}};
  if (r.client_cpu) {
    cpu["client_user_s"] = r.client_cpu->user_s;
    cpu["client_sys_s"] = r.client_cpu->sys_s;
  }
  if (r.server_cpu) {
    cpu["server_user_s"] = r.server_cpu->user_s;
    cpu["server_sys_s"] = r.server_cpu->sys_s;
  }
  nlohmann::json out = {
      {"proto", to_string(r.opts.protocol)},
      {"mode", to_string(r.opts.kind)},
      {"tls", r.opts.tls},
      {"connections", r.opts.connections},
      {"size", r.opts.size},
      {"threads", r.opts.threads},
      {"target", r.target},
      {"server", r.builtin ? "built-in" : "external"},
      {"server_threads", r.builtin ? nlohmann::json(r.server_threads) : nlohmann::json(nullptr)},
      {"warmup_s", r.opts.warmup_s},
      {"duration_s", r.duration_s},
      {"messages", r.messages},
      {"msgs_per_sec", r.msgs_per_sec()},
      {"bytes_per_sec", r.msgs_per_sec() * static_cast<double>(r.opts.size)},
      {"latency_us", latency},
      {"sockets",
       {{"opened", r.opened},
        {"unique_local_endpoints", r.unique_local_endpoints},
        {"unique_fds", r.unique_fds},
        {"source_addresses", r.source_addresses},
        {"first_source",
         r.first_source.empty() ? nlohmann::json() : nlohmann::json(r.first_source)},
        {"per_thread", r.per_thread}}},
      {"errors", r.error_total()},
      {"error_detail",
       {{"connect", r.errors.connect},
        {"io", r.errors.io},
        {"mismatch", r.errors.mismatch},
        {"timeout", r.errors.timeout + r.unfinished}}},
      {"cpu", cpu},
      {"client_cpu_s_per_msg", optional_number(r.cpu_per_message(r.client_cpu))},
      {"server_cpu_s_per_msg", optional_number(r.cpu_per_message(r.server_cpu))},
      {"server_rss_kib",
       {{"before", optional_number(r.server_rss_before_kib)},
        {"window", optional_number(r.server_rss_window_kib)}}},
      {"server_bytes_per_connection", optional_number(r.server_bytes_per_connection())},
      {"ok", r.ok()}};
  if (r.opts.protocol == proto::udp) {
    out["udp_sent"] = r.udp_sent;
    out["udp_lost"] = r.udp_sent - std::min(r.udp_sent, r.udp_received);
  }
  return out;
}

std::string cpu_line(const report& r, const std::optional<cpu_time>& cpu) {
  const auto per = r.cpu_per_message(cpu);
  if (!per) return "unknown";
  const auto m = static_cast<double>(r.messages);
  return fmt::format("{:.2f} µs (user {:.2f} + sys {:.2f})", *per * 1e6, cpu->user_s / m * 1e6,
                     cpu->sys_s / m * 1e6);
}

void print_table(const report& r) {
  const auto& o = r.opts;
  std::string server = r.builtin ? fmt::format("built-in coronet echo server, {} thread{}",
                                               r.server_threads, r.server_threads == 1 ? "" : "s")
                                 : "external server";
  if (!r.builtin && o.server_pid) server += fmt::format(", pid {}", *o.server_pid);
  std::string per_thread;
  for (std::size_t i = 0; i < r.per_thread.size(); ++i) {
    per_thread += fmt::format("{}{}", i == 0 ? "" : " / ", grouped(r.per_thread[i]));
  }
  const auto us = [&r](double q) { return static_cast<double>(r.latency.percentile_ns(q)) / 1e3; };
  fmt::print("coronet_bench: {} {}, {} connections, {} B messages, {} client thread{}\n",
             to_string(o.protocol), o.kind == mode::pingpong ? "ping-pong" : to_string(o.kind),
             grouped(o.connections), grouped(o.size), o.threads, o.threads == 1 ? "" : "s");
  fmt::print("{:<24}{} ({})\n", "target", r.target, server);
  fmt::print("{:<24}{:.2f} s measured after {:.2f} s of warm-up\n", "window", r.duration_s,
             o.warmup_s);
  if (o.kind == mode::idle) {
    fmt::print("{:<24}{} (one per connection, before the window)\n", "round trips",
               grouped(r.messages));
  } else {
    fmt::print("{:<24}{} ({} msg/s, {:.1f} MB/s)\n", "messages", grouped(r.messages),
               grouped(static_cast<std::uint64_t>(r.msgs_per_sec())),
               r.msgs_per_sec() * static_cast<double>(o.size) / 1e6);
  }
  if (r.latency.count() > 0) {
    fmt::print("{:<24}p50 {:.1f}  p90 {:.1f}  p99 {:.1f}  p99.9 {:.1f}  max {:.1f}  mean {:.1f}\n",
               "latency µs", us(0.5), us(0.9), us(0.99), us(0.999),
               static_cast<double>(r.latency.max_ns()) / 1e3, r.latency.mean_ns() / 1e3);
  } else {
    fmt::print("{:<24}no samples\n", "latency µs");
  }
  fmt::print("{:<24}client {}; server {}\n", "cpu per message", cpu_line(r, r.client_cpu),
             cpu_line(r, r.server_cpu));
  if (r.server_rss_before_kib && r.server_rss_window_kib) {
    std::string line = fmt::format("{:.1f} MiB before connecting, {:.1f} MiB in the window",
                                   static_cast<double>(*r.server_rss_before_kib) / 1024.0,
                                   static_cast<double>(*r.server_rss_window_kib) / 1024.0);
    if (o.kind == mode::idle) {
      line += fmt::format(": {:.0f} bytes per idle connection", *r.server_bytes_per_connection());
    }
    fmt::print("{:<24}{}\n", "server memory (RSS)", line);
  }
  fmt::print(
      "{:<24}opened {} of {}, unique local endpoints {}, unique fds {}, source "
      "addresses {}{}\n",
      "sockets", grouped(r.opened), grouped(o.connections), grouped(r.unique_local_endpoints),
      grouped(r.unique_fds), r.source_addresses,
      r.first_source.empty() ? std::string() : " from " + r.first_source);
  fmt::print("{:<24}{}\n", "connections per thread", per_thread);
  if (o.protocol == proto::udp) {
    fmt::print("{:<24}sent {}, lost {}\n", "datagrams", grouped(r.udp_sent),
               grouped(r.udp_sent - std::min(r.udp_sent, r.udp_received)));
  }
  fmt::print("{:<24}{} (connect {}, io {}, mismatch {}, timeout {})\n", "errors",
             grouped(r.error_total()), r.errors.connect, r.errors.io, r.errors.mismatch,
             r.errors.timeout + r.unfinished);
  fmt::print("{:<24}{}\n", "result", r.ok() ? "ok" : "FAILED");
}

}  // namespace
}  // namespace coronet_bench

int main(int argc, char** argv) {
  using namespace coronet_bench;
  CLI::App app(
      "coronet_bench: many concurrent sockets against an echo server; throughput, "
      "latency percentiles, CPU per message and the per-socket proof",
      "coronet_bench");
  options opts;
  std::string protocol = "tcp";
  std::string kind = "pingpong";
  int server_pid = 0;
  app.add_option("--proto", protocol, "tcp, udp or unix")
      ->check(CLI::IsMember({"tcp", "udp", "unix"}));
  app.add_option("--mode", kind,
                 "pingpong (one message in flight), flood, idle (one round trip, then "
                 "silence: with --server-pid, the server's memory per connection), or connect "
                 "(each connection connects again and again, one round trip each: a message "
                 "is a whole connection, its TLS handshake included)")
      ->check(CLI::IsMember({"pingpong", "flood", "idle", "connect"}));
  app.add_option("--connections", opts.connections, "concurrent connections (UDP: sockets)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}));
  app.add_option("--size", opts.size, "bytes per message")
      ->check(CLI::Range(std::size_t{1}, std::size_t{16} << 20));
  app.add_option("--duration", opts.duration_s, "seconds measured")
      ->check(CLI::Range(0.1, 86400.0));
  app.add_option("--warmup", opts.warmup_s, "seconds of traffic before measuring (default 1)")
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--threads", opts.threads, "client threads (default 1)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{256}));
  app.add_option("--server-threads", opts.server_threads,
                 "threads of the built-in server (default 1)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{256}));
  auto* target = app.add_option("--target", opts.target,
                                "server to measure: HOST:PORT, or a path for unix (default: "
                                "a built-in server)");
  app.add_option("--server-pid", server_pid,
                 "the --target server's process, for its CPU time per message and its memory")
      ->check(CLI::Range(1, 1 << 30))
      ->needs(target);
  app.add_option("--sources", opts.sources,
                 "spread over this many source addresses 127.0.0.1.. (default: as the "
                 "ephemeral ports need)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{254}));
  std::string first_source;
  auto* first_source_option =
      app.add_option("--first-source", first_source,
                     "the first source address (127.x.x.x; default 127.0.0.1), the others "
                     "following it: several clients of one server each take their own")
          ->type_name("ADDR");
  auto* tls_flag =
      app.add_flag("--tls", opts.tls, "TLS over TCP, to a --target TLS server (echo_server --tls)");
  app.add_option("--tls-ca", opts.tls_ca,
                 "verify the server's certificate against this CA file (default: no "
                 "verification; the benchmark measures, it does not authenticate)")
      ->type_name("FILE")
      ->needs(tls_flag);
  app.add_option("--json", opts.json_path, "also write the results as one JSON object here");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "coronet_bench: " << e.what() << "\n\n" << app.help();
    return 2;
  }
  opts.protocol = protocol == "udp"    ? proto::udp
                  : protocol == "unix" ? proto::unix_stream
                                       : proto::tcp;
  opts.kind = kind == "flood"     ? mode::flood
              : kind == "idle"    ? mode::idle
              : kind == "connect" ? mode::connect
                                  : mode::pingpong;
  if (server_pid != 0) opts.server_pid = server_pid;
  if (opts.protocol == proto::udp && opts.size > max_udp_payload) {
    std::cerr << "coronet_bench: --size " << opts.size << " is more than a UDP datagram holds ("
              << max_udp_payload << ")\n";
    return 2;
  }
  if (opts.protocol == proto::udp && (opts.kind == mode::idle || opts.kind == mode::connect)) {
    std::cerr << "coronet_bench: --mode " << kind << " is for tcp and unix connections\n";
    return 2;
  }
  if (opts.tls && (opts.protocol != proto::tcp || opts.target.empty())) {
    std::cerr << "coronet_bench: --tls is for --proto tcp with a --target (echo_server --tls)\n";
    return 2;
  }
  if (opts.protocol == proto::unix_stream &&
      (opts.sources != 0 || first_source_option->count() > 0)) {
    std::cerr << "coronet_bench: --sources and --first-source are for tcp and udp\n";
    return 2;
  }
  if (first_source_option->count() > 0) {
    std::error_code ec;
    const auto address = asio::ip::make_address_v4(first_source, ec);
    if (ec || address.to_bytes()[0] != 127) {
      std::cerr << "coronet_bench: --first-source '" << first_source
                << "': not a 127.x.x.x address\n";
      return 2;
    }
    opts.first_source = address;
  }

  // Each connection is a descriptor, twice over with the built-in server (both ends).
  const std::size_t per_connection = opts.target.empty() ? 2 : 1;
  const std::size_t needed = opts.connections * per_connection + 64;
  if (const auto limit = ensure_descriptors(needed); limit < needed) {
    std::cerr << "coronet_bench: " << opts.connections << " connections need about " << needed
              << " descriptors; the limit is " << limit
              << " (raise it with ulimit -n, or run as root)\n";
    return 1;
  }

  try {
    const auto result = run(opts);
    print_table(result);
    if (!opts.json_path.empty()) {
      std::ofstream out(opts.json_path);
      out << to_json(result).dump(2) << '\n';
      if (!out) {
        std::cerr << "coronet_bench: cannot write " << opts.json_path << "\n";
        return 1;
      }
    }
    return result.ok() ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "coronet_bench: " << e.what() << "\n";
    return 1;
  }
}
