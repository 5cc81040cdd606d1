// coronet_soak: echo_server and chat_server under mixed load with faults for minutes, watched
// for the slow failures a short test cannot see: a corrupted or lost byte, a chat line lost or
// reordered, a server that dies, descriptors or memory that grow.
//
// Run:    build/bin/coronet_soak --duration 300          (make soak; CI: make soak SOAK_SECONDS=60)
//         build/bin/coronet_soak --duration 60 --json soak.json
// Pair:   nothing: it starts echo_server (TCP, UDP and Unix listeners, --threads 2) and
//         chat_server (--threads 2) itself, found next to it in the bin directory, on 127.0.0.1
//         port 0 and a socket file in a fresh temporary directory; loopback only.
//
// The run: --warmup seconds of load (default: 15% of --duration, at least 5 s), a quiescent
// point, the rest of --duration seconds of load, a second quiescent point, then SIGTERM to both
// servers, which must exit 0.
// - Load (all checked), one thread's worth: --echo-connections (64) echo clients over TCP, Unix
//   and UDP, each connection with payloads of its own, every reply compared byte for byte; TCP
//   and Unix streams written while read, then half-closed; connections that open and close all
//   the time; --chat-clients (24) in --rooms (4), rounds in which each member sends numbered
//   lines and checks it gets every other member's lines, whole, in order.
// - Faults, all along (one every ~0.3 s): a reset while the server is sending, a half-close
//   with the rest of the echo read, a client trickling bytes then falling silent (closed by
//   echo_server's --idle-timeout), a client that sends megabytes and never reads then vanishes,
//   a burst of 300 connects (TCP and Unix in turn), junk datagrams, binary garbage and over-long
//   lines to chat_server, /nick and /join churn, a chat client that never reads, a line trickled a
//   byte at a time.
// - Every second: each server's descriptors (/proc/PID/fd) and resident memory (VmRSS). At each
//   quiescent point the load stops, every client connection is closed, and each server's
//   descriptor count is given up to --settle seconds (15) to settle (unchanged for 2 s; at the
//   end, also no higher than after the warm-up) before both figures are read.
//
// Fails (exit 1) on: any error a well-behaved client sees (a corrupted or missing byte, a chat
// line lost or out of order, an unexpected disconnect or timeout, a connect failure); a fault
// the server does not handle as its contract says; a server that exits during the run, does
// not exit 0 on SIGTERM, or logs an error or a sanitizer report; more descriptors at the end
// than after the warm-up; resident memory at the end above 1.10 x the post-warm-up figure (the
// larger of the first quiescent point's reading and the most read during the warm-up: see
// server_figures::rss_baseline()).
// Prints a progress line every 10 s and a summary with every figure; --json FILE writes it.
// It always stops by itself: a watchdog ends it (exit 1) at --duration + 240 s.
//
// Exit codes: 0 pass; 1 fail, or the servers cannot be started; 2 for a command-line mistake.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <spdlog/fmt/fmt.h>
#include <CLI/CLI.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include "coronet/coronet.hpp"
#include "grouped.hpp"

namespace coronet_soak {
namespace {

using namespace std::chrono_literals;
using coronet_bench::grouped;
using clock_type = std::chrono::steady_clock;
constexpr auto nothrow_awaitable = asio::experimental::as_tuple(asio::use_awaitable);

constexpr auto connect_limit = 10s;      // one connect, burst included
constexpr auto io_limit = 15s;           // a reply a well-behaved client waits for
constexpr auto close_limit = 10s;        // the server's FIN (or close) after ours, or after /quit
constexpr auto udp_reply_limit = 5s;     // one datagram in flight: a reply missing is an error
constexpr auto chat_silence_limit = 20;  // seconds without any line while lines are due
constexpr auto stuck_limit = 45s;        // for every client to end once the load pauses
constexpr auto settled_for = 2s;         // a server's descriptor count unchanged this long: settled
constexpr auto watchdog_margin = 240s;   // past --duration: the global deadline
constexpr std::size_t max_faults_in_flight = 12;
constexpr std::size_t burst_size = 300;  // connects at once
constexpr std::size_t max_line = 4096;   // chat_server's longest line (content bytes)
constexpr std::size_t error_lines_shown = 20;

// ---------------------------------------------------------------------------------------------
// Options.

struct settings {
  double duration_s = 300;
  double warmup_s = 0;  // 0 until parsed: default_warmup()
  std::string echo_server;
  std::string chat_server;
  std::vector<std::string> echo_server_args;  // appended to echo_server's command line
  std::size_t echo_connections = 64;
  std::size_t chat_clients = 24;
  std::size_t rooms = 4;
  double echo_idle_s = 10;
  double rss_tolerance_pct = 10;
  double settle_s = 15;  // the most a quiescent point waits for descriptors to settle
  std::uint64_t seed = 0;
  std::string json_path;
};

// The warm-up when none is given: 15% of the run, at least 5 s.
double default_warmup(double duration_s) { return std::max(5.0, 0.15 * duration_s); }

// ---------------------------------------------------------------------------------------------
// Small things.

std::uint64_t mix(std::uint64_t x) {  // splitmix64's finaliser: every input bit moves every bit
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// Bytes [offset, offset + out.size()) of the endless stream that `seed` names. Each connection
// has a seed of its own, so its payloads are its own: a byte delivered to the wrong connection,
// or twice, or shifted, does not match.
void stream_bytes(std::uint64_t seed, std::uint64_t offset, std::span<char> out) {
  std::size_t i = 0;
  while (i < out.size()) {
    const std::uint64_t at = offset + i;
    const std::uint64_t block = mix(seed + at / 8);
    for (std::uint64_t b = at % 8; b < 8 && i < out.size(); ++b, ++i) {
      out[i] = static_cast<char>((block >> (8 * b)) & 0xFFU);
    }
  }
}

// Where two equal-length buffers first differ.
std::size_t first_difference(std::span<const char> a, std::span<const char> b) {
  const auto n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return i;
  }
  return n;
}

std::string mebibytes(std::optional<std::uint64_t> kb) {
  return kb ? fmt::format("{:.1f} MiB", static_cast<double>(*kb) / 1024.0) : "?";
}

std::string count_or_unknown(std::optional<std::size_t> n) { return n ? std::to_string(*n) : "?"; }

asio::awaitable<void> nap(clock_type::duration d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  (void)co_await timer.async_wait(nothrow_awaitable);
}

// ---------------------------------------------------------------------------------------------
// A server under test: a child process with stdout on a pipe (its ready lines) and stderr in a
// log file, watched through /proc.

struct log_findings {
  std::size_t error_lines = 0;      // spdlog [error] or [critical]
  std::size_t sanitizer_lines = 0;  // an AddressSanitizer/ThreadSanitizer/UBSan report
  std::vector<std::string> first;   // the first few such lines
};

class server_process {
 public:
  server_process(std::string name, const std::string& program, std::vector<std::string> args,
                 std::filesystem::path log)
      : name_(std::move(name)), log_(std::move(log)) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) {
      throw std::system_error(errno, std::system_category(), "pipe");
    }
    const int log_fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log_fd < 0) {
      const int error = errno;
      ::close(out[0]);
      ::close(out[1]);
      throw std::system_error(error, std::system_category(), "cannot create " + log_.string());
    }
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(program.c_str()));
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int failure[2];  // the child's exec error, if any; a successful exec closes it
    if (::pipe2(failure, O_CLOEXEC) != 0) {
      const int error = errno;
      for (const int fd : {out[0], out[1], log_fd}) ::close(fd);
      throw std::system_error(error, std::system_category(), "pipe");
    }
    const pid_t parent = ::getpid();
    pid_ = ::fork();  // before any other thread of this process exists
    if (pid_ == 0) {
      // A server must not outlive the soak, whatever ends it (a crash, SIGKILL).
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      // SIGPIPE's default action, whatever this process does with it: a server that writes to
      // a closed socket without MSG_NOSIGNAL must die here as it would in use.
      struct sigaction default_action {};
      default_action.sa_handler = SIG_DFL;
      ::sigaction(SIGPIPE, &default_action, nullptr);
      ::dup2(out[1], STDOUT_FILENO);
      ::dup2(log_fd, STDERR_FILENO);
      ::execv(program.c_str(), argv.data());
      const int error = errno;
      [[maybe_unused]] const auto written = ::write(failure[1], &error, sizeof error);
      ::_exit(127);
    }
    const int fork_error = errno;
    for (const int fd : {out[1], log_fd, failure[1]}) ::close(fd);
    if (pid_ < 0) {
      ::close(out[0]);
      ::close(failure[0]);
      throw std::system_error(fork_error, std::system_category(), "fork");
    }
    int exec_error = 0;
    ssize_t got = 0;
    do {
      got = ::read(failure[0], &exec_error, sizeof exec_error);
    } while (got < 0 && errno == EINTR);
    ::close(failure[0]);
    if (got == static_cast<ssize_t>(sizeof exec_error)) {
      int status = 0;
      ::waitpid(pid_, &status, 0);
      status_ = 127;
      ::close(out[0]);
      throw std::system_error(exec_error, std::system_category(), "cannot start " + program);
    }
    stdout_ = out[0];
  }

  server_process(const server_process&) = delete;
  server_process& operator=(const server_process&) = delete;

  ~server_process() {
    if (!status_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    if (stdout_ >= 0) ::close(stdout_);
  }

  const std::string& name() const { return name_; }
  pid_t pid() const { return pid_; }

  // The next `n` lines of stdout; throws std::runtime_error when they do not come in `limit`.
  std::vector<std::string> ready_lines(std::size_t n, clock_type::duration limit) {
    const auto deadline = clock_type::now() + limit;
    std::vector<std::string> lines;
    while (lines.size() < n) {
      if (const auto newline = pending_.find('\n'); newline != std::string::npos) {
        lines.push_back(pending_.substr(0, newline));
        pending_.erase(0, newline + 1);
        continue;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
      pollfd p{stdout_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
        throw std::runtime_error(
            fmt::format("{} printed {} of its {} ready lines in time", name_, lines.size(), n));
      }
      char buffer[1024];
      const ssize_t got = ::read(stdout_, buffer, sizeof buffer);
      if (got <= 0) {
        throw std::runtime_error(
            fmt::format("{} closed its stdout after {} of {} ready lines", name_, lines.size(), n));
      }
      pending_.append(buffer, static_cast<std::size_t>(got));
    }
    return lines;
  }

  // The exit status (128 + signal when killed) once the process has ended, else nothing.
  std::optional<int> exited() {
    if (!status_) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
    }
    return status_;
  }

  // SIGTERM, then up to `limit` for the exit; SIGKILL after that. The status, or nothing when
  // the process had to be killed.
  std::optional<int> stop(clock_type::duration limit) {
    if (exited()) return status_;
    ::kill(pid_, SIGTERM);
    const auto deadline = clock_type::now() + limit;
    while (!exited() && clock_type::now() < deadline) std::this_thread::sleep_for(10ms);
    if (status_) return status_;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    status_ = 128 + SIGKILL;
    return std::nullopt;
  }

  std::optional<std::size_t> descriptors() const {
    std::error_code error;
    std::size_t n = 0;
    std::filesystem::directory_iterator entries("/proc/" + std::to_string(pid_) + "/fd", error);
    if (error) return std::nullopt;
    for (auto it = std::filesystem::begin(entries); it != std::filesystem::end(entries);
         it.increment(error)) {
      if (error) return std::nullopt;
      ++n;
    }
    return n;
  }

  // VmRSS of /proc/PID/status, in kB.
  std::optional<std::uint64_t> rss_kb() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
    }
    return std::nullopt;
  }

  log_findings scan_log() const {
    log_findings found;
    std::ifstream in(log_);
    std::string line;
    while (std::getline(in, line)) {
      const bool error = line.find("] [error] ") != std::string::npos ||
                         line.find("] [critical] ") != std::string::npos;
      const bool sanitizer = line.find("Sanitizer") != std::string::npos ||
                             line.find("runtime error:") != std::string::npos;
      if (error) ++found.error_lines;
      if (sanitizer) ++found.sanitizer_lines;
      if ((error || sanitizer) && found.first.size() < 5) found.first.push_back(line);
    }
    return found;
  }

  std::string log_tail(std::size_t lines) const {
    std::ifstream in(log_);
    std::vector<std::string> all;
    std::string line;
    while (std::getline(in, line)) all.push_back(line);
    std::string tail;
    for (auto i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) {
      tail += "    " + all[i] + "\n";
    }
    return tail;
  }

 private:
  std::string name_;
  std::filesystem::path log_;
  pid_t pid_ = -1;
  int stdout_ = -1;  // kept open: a server writing to a closed pipe would get SIGPIPE
  std::string pending_;
  std::optional<int> status_;
};

// What the soak saw of one server.
struct server_figures {
  std::optional<std::size_t> fds_start, fds_warm, fds_end, fds_last;
  std::optional<std::uint64_t> rss_start, rss_warm, rss_end, rss_last;  // kB
  std::size_t fds_max = 0;
  std::uint64_t rss_max = 0;
  std::uint64_t rss_warmup_peak = 0;  // the most read during the warm-up
  std::optional<int> died;            // exit status, when it ended during the run
  std::optional<int> stop_status;     // after SIGTERM; nothing: had to be killed
  log_findings log;

  // What the end's RSS is held to: the larger of the reading at the first quiescent point and
  // the most read during the warm-up. One reading alone swings by some 5% with where the
  // allocator's heap top happens to be when the connections have gone (trimmed or not).
  std::optional<std::uint64_t> rss_baseline() const {
    if (!rss_warm) return std::nullopt;
    return std::max(*rss_warm, rss_warmup_peak);
  }
  std::optional<double> rss_growth_pct() const {
    const auto base = rss_baseline();
    if (!base || !rss_end || *base == 0) return std::nullopt;
    return (static_cast<double>(*rss_end) / static_cast<double>(*base) - 1.0) * 100.0;
  }
};

// ---------------------------------------------------------------------------------------------
// What the load and the faults share: one io_context on one thread, so none of this needs a
// lock.

enum class proto { tcp, unix_stream, udp };
constexpr std::array<const char*, 3> proto_names = {"tcp", "unix", "udp"};
const char* name_of(proto p) { return proto_names[static_cast<std::size_t>(p)]; }

enum class error_kind {
  connect,
  corrupt,
  lost,
  disconnect,
  timeout,
  refused,
  fault,
  stuck,
  exception
};
constexpr std::size_t error_kinds = 9;
constexpr std::array<const char*, error_kinds> error_names = {"connect",    "corrupt", "lost",
                                                              "disconnect", "timeout", "refused",
                                                              "fault",      "stuck",   "exception"};
constexpr std::array<const char*, error_kinds> error_descriptions = {
    "connect failures",
    "corrupted data",
    "chat lines lost, duplicated or out of order",
    "unexpected disconnects",
    "replies or closes that did not come in time",
    "chat lines refused by chat_server",
    "faults not handled as the servers' contracts say",
    "clients still running after the load paused",
    "exceptions in clients"};

enum class fault_kind {
  reset,
  half_close,
  slow,
  never_read,
  burst,
  udp_junk,
  chat_garbage,
  chat_long_line,
  chat_churn,
  chat_never_read,
  chat_trickle
};
constexpr std::size_t fault_kinds = 11;
constexpr std::array<const char*, fault_kinds> fault_names = {
    "reset",        "half_close",     "slow",       "never_read",      "burst",       "udp_junk",
    "chat_garbage", "chat_long_line", "chat_churn", "chat_never_read", "chat_trickle"};

struct soak {
  explicit soak(settings s) : opts(std::move(s)), rng(opts.seed) {}

  const settings opts;
  asio::any_io_executor executor;
  clock_type::time_point started = clock_type::now();
  coronet::endpoint echo_tcp, echo_udp, echo_unix, chat_tcp;
  bool big_datagrams = false;  // whether the server's receive buffer takes 64 KiB junk in bursts
  std::mt19937_64 rng;

  // Phases: the load runs while !pausing; a dead server sets aborted.
  bool pausing = true;
  double loaded_s = 0;  // seconds of load in the phases before the current one
  clock_type::time_point load_began;
  bool warming = false;  // in the warm-up's load
  bool aborted = false;
  bool finished = false;
  std::string phase = "starting";

  std::size_t active = 0;            // client tasks running
  std::size_t open_connections = 0;  // client sockets open
  std::size_t faults_in_flight = 0;
  bool burst_in_flight = false;
  std::uint64_t next_id = 1;

  // Tallies.
  std::array<std::uint64_t, 3> echo_messages{};  // by proto
  std::uint64_t echo_bytes = 0;                  // verified
  std::uint64_t chat_sent = 0;
  std::uint64_t chat_delivered = 0;  // verified at a recipient
  std::uint64_t chat_rounds = 0;
  std::uint64_t connections = 0;
  std::array<std::uint64_t, fault_kinds> faults{};
  std::array<std::uint64_t, error_kinds> errors{};
  std::array<std::string, error_kinds> first_error;
  std::size_t errors_shown = 0;

  std::uint64_t uniform(std::uint64_t low, std::uint64_t high) {
    return std::uniform_int_distribution<std::uint64_t>(low, high)(rng);
  }
  bool chance(unsigned percent) { return uniform(1, 100) <= percent; }
  std::chrono::milliseconds ms(std::uint64_t low, std::uint64_t high) {
    return std::chrono::milliseconds(static_cast<std::int64_t>(uniform(low, high)));
  }
  double elapsed() const {
    return std::chrono::duration<double>(clock_type::now() - started).count();
  }
  // Seconds of load so far: the quiescent points do not count.
  double load_elapsed() const {
    if (pausing) return loaded_s;
    return loaded_s + std::chrono::duration<double>(clock_type::now() - load_began).count();
  }
  std::uint64_t echo_total() const {
    return echo_messages[0] + echo_messages[1] + echo_messages[2];
  }
  std::uint64_t error_total() const {
    std::uint64_t n = 0;
    for (const auto e : errors) n += e;
    return n;
  }
  std::uint64_t fault_total() const {
    std::uint64_t n = 0;
    for (const auto f : faults) n += f;
    return n;
  }

  // Every error counts; the first ones are shown as they happen, the first of each kind is
  // kept for the summary.
  void error(error_kind kind, std::string text) {
    const auto k = static_cast<std::size_t>(kind);
    if (errors[k]++ == 0) first_error[k] = text;
    if (errors_shown < error_lines_shown) {
      fmt::print(stderr, "coronet_soak: {:.1f} s: error ({}): {}\n", elapsed(), error_names[k],
                 text);
      if (++errors_shown == error_lines_shown) {
        fmt::print(stderr, "coronet_soak: further errors are counted, not shown\n");
      }
    }
  }

  // A well-behaved client's I/O failed: a timeout or a disconnect.
  void io_error(std::string what, std::error_code e) {
    error(e == std::errc::timed_out ? error_kind::timeout : error_kind::disconnect,
          fmt::format("{}: {}", what, e.message()));
  }

  // Starts a client task. An exception escaping it is an error of the soak's own clients, and
  // counted so.
  void launch(asio::awaitable<void> task, std::string name);
};

asio::awaitable<void> guarded(soak& s, asio::awaitable<void> task, std::string name) {
  struct running {
    soak& s;
    ~running() { --s.active; }
  } guard{s};
  try {
    co_await std::move(task);
  } catch (const std::exception& e) {
    s.error(error_kind::exception, fmt::format("{}: {}", name, e.what()));
  }
}

void soak::launch(asio::awaitable<void> task, std::string name) {
  ++active;
  asio::co_spawn(executor, guarded(*this, std::move(task), std::move(name)), asio::detached);
}

// Held for as long as a client socket is open.
class connection_token {
 public:
  explicit connection_token(soak& s) : s_(s) {
    ++s_.open_connections;
    ++s_.connections;
  }
  connection_token(const connection_token&) = delete;
  connection_token& operator=(const connection_token&) = delete;
  ~connection_token() { --s_.open_connections; }

 private:
  soak& s_;
};

// ---------------------------------------------------------------------------------------------
// Streams: TCP and Unix alike.

template <class Stream>
constexpr proto proto_of() {
  return std::is_same_v<Stream, coronet::tcp_stream> ? proto::tcp : proto::unix_stream;
}

template <class Stream>
const coronet::endpoint& target_of(const soak& s) {
  return proto_of<Stream>() == proto::tcp ? s.echo_tcp : s.echo_unix;
}

template <class Stream>
asio::awaitable<coronet::result<Stream>> connect_to(const coronet::endpoint& to) {
  if constexpr (std::is_same_v<Stream, coronet::tcp_stream>) {
    auto stream = co_await coronet::tcp_stream::connect(to, {.limit = connect_limit});
    if (stream) (void)stream->set_option(coronet::option::no_delay{true});
    co_return stream;
  } else {
    co_return co_await coronet::unix_stream::connect(to, connect_limit);
  }
}

// A connect for any client: a failure is an error, whoever the client is.
template <class Stream>
asio::awaitable<std::optional<Stream>> open_stream(soak& s, const coronet::endpoint& to,
                                                   std::string_view who) {
  auto stream = co_await connect_to<Stream>(to);
  if (!stream) {
    s.error(error_kind::connect, fmt::format("{}: cannot connect to {}: {}", who, to.to_string(),
                                             stream.error().message()));
    co_return std::nullopt;
  }
  co_return std::move(*stream);
}

// Closes with a reset (TCP: SO_LINGER 0); a Unix peer sees its next send fail.
template <class Stream>
void reset_close(Stream& stream) {
  if constexpr (std::is_same_v<Stream, coronet::tcp_stream>) {
    (void)stream.set_option(coronet::option::linger{true, 0s});
  }
  stream.close();
}

// Half-closes and waits for the server's FIN, which must come once it has echoed everything.
template <class Stream>
asio::awaitable<void> finish_stream(soak& s, Stream& stream, const std::string& who) {
  (void)stream.shutdown(coronet::shutdown_type::send);
  char tail = 0;
  auto end = co_await stream.recv(asio::buffer(&tail, 1), coronet::timeout(close_limit));
  if (end.error() == coronet::errc::eof) co_return;
  if (end) {
    s.error(error_kind::corrupt, fmt::format("{}: a byte after every echo was back", who));
  } else {
    s.io_error(who + ": waiting for the server's FIN after ours", end.error());
  }
}

// 70% small, 25% up to 4 KiB, 5% up to 32 KiB.
std::size_t message_size(soak& s) {
  const auto pick = s.uniform(1, 100);
  if (pick <= 70) return s.uniform(1, 256);
  if (pick <= 95) return s.uniform(257, 4096);
  return s.uniform(4097, 32768);
}

// One ping-pong connection: a few hundred messages at most, each echoed and compared, then
// the half-close. Returns whether it went well (a failed connect backs off in the lane).
template <class Stream>
asio::awaitable<bool> pingpong_connection(soak& s) {
  const auto id = s.next_id++;
  const auto who = fmt::format("{} echo connection {}", name_of(proto_of<Stream>()), id);
  auto stream = co_await open_stream<Stream>(s, target_of<Stream>(s), who);
  if (!stream) co_return false;
  connection_token token(s);
  const auto seed = mix(id);
  std::uint64_t offset = 0;
  std::vector<char> out, back;
  const auto messages = s.uniform(20, 400);
  for (std::uint64_t n = 0; n < messages && !s.pausing; ++n) {
    const auto size = message_size(s);
    out.resize(size);
    back.resize(size);
    stream_bytes(seed, offset, out);
    offset += size;
    auto sent = co_await stream->send_all(asio::buffer(out), coronet::timeout(io_limit));
    auto got = sent ? co_await stream->recv_exact(asio::buffer(back), coronet::timeout(io_limit))
                    : coronet::io_result(sent.bytes(), sent.error());
    if (!got) {
      s.io_error(fmt::format("{}, message {} ({} bytes)", who, n, size), got.error());
      co_return false;
    }
    if (back != out) {
      s.error(error_kind::corrupt, fmt::format("{}: message {} ({} bytes) came back different "
                                               "from byte {}",
                                               who, n, size, first_difference(out, back)));
      co_return false;
    }
    ++s.echo_messages[static_cast<std::size_t>(proto_of<Stream>())];
    s.echo_bytes += size;
    if (s.chance(50)) co_await nap(s.ms(0, 3));  // keeps the load modest: correctness, not speed
  }
  co_await finish_stream(s, *stream, who);
  co_return true;
}

// A stream connection: a writer sends up to 2 MiB in pieces while a reader checks every byte
// of the echo; then the half-close, after which exactly what was sent must come back, then FIN.
struct stream_flow {
  std::uint64_t sent = 0;
  bool writer_done = false;
  bool failed = false;
};

template <class Stream>
asio::awaitable<void> stream_writer(soak& s, Stream& stream, std::uint64_t seed,
                                    std::uint64_t total, stream_flow& flow,
                                    const std::string& who) {
  std::vector<char> chunk;
  while (flow.sent < total && !s.pausing && !flow.failed) {
    chunk.resize(std::min<std::uint64_t>(s.uniform(1, 64 * 1024), total - flow.sent));
    stream_bytes(seed, flow.sent, chunk);
    // Counted before the send: the echo of its first bytes may be back before it completes.
    flow.sent += chunk.size();
    auto sent = co_await stream.send_all(asio::buffer(chunk), coronet::timeout(io_limit));
    if (!sent) {
      if (!flow.failed) s.io_error(who + ": send", sent.error());
      flow.failed = true;
      co_return;
    }
    co_await nap(s.ms(1, 5));
  }
  flow.writer_done = true;
  (void)stream.shutdown(coronet::shutdown_type::send);
}

template <class Stream>
asio::awaitable<void> stream_checker(soak& s, Stream& stream, std::uint64_t seed, stream_flow& flow,
                                     const std::string& who) {
  std::vector<char> buffer(64 * 1024), expected;
  std::uint64_t received = 0;
  for (;;) {
    auto got = co_await stream.recv(asio::buffer(buffer), coronet::timeout(io_limit));
    if (!got) {
      if (flow.failed) co_return;
      if (got.error() == coronet::errc::eof && flow.writer_done && received == flow.sent) {
        co_return;
      }
      if (got.error() == coronet::errc::eof) {
        s.error(error_kind::corrupt,
                fmt::format("{}: the echo ended after {} of {} bytes", who, received, flow.sent));
      } else {
        s.io_error(fmt::format("{}: receive after {} bytes", who, received), got.error());
      }
      flow.failed = true;
      stream.close();  // ends the writer too
      co_return;
    }
    expected.resize(got.bytes());
    stream_bytes(seed, received, expected);
    const std::span<const char> back(buffer.data(), got.bytes());
    if (received + got.bytes() > flow.sent ||
        !std::equal(back.begin(), back.end(), expected.begin())) {
      s.error(error_kind::corrupt,
              fmt::format("{}: echo differs at byte {} of the stream ({} sent)", who,
                          received + first_difference(back, expected), flow.sent));
      flow.failed = true;
      stream.close();
      co_return;
    }
    received += got.bytes();
    s.echo_bytes += got.bytes();
  }
}

template <class Stream>
asio::awaitable<bool> stream_connection(soak& s) {
  using namespace asio::experimental::awaitable_operators;
  const auto id = s.next_id++;
  const auto who = fmt::format("{} stream connection {}", name_of(proto_of<Stream>()), id);
  auto stream = co_await open_stream<Stream>(s, target_of<Stream>(s), who);
  if (!stream) co_return false;
  connection_token token(s);
  const auto seed = mix(id);
  stream_flow flow;
  co_await (stream_writer(s, *stream, seed, s.uniform(64 * 1024, 2 * 1024 * 1024), flow, who) &&
            stream_checker(s, *stream, seed, flow, who));
  co_return !flow.failed;
}

// Churn: connect, one short message, then a half-close or a plain close.
template <class Stream>
asio::awaitable<bool> churn_connection(soak& s) {
  const auto id = s.next_id++;
  const auto who = fmt::format("{} churn connection {}", name_of(proto_of<Stream>()), id);
  auto stream = co_await open_stream<Stream>(s, target_of<Stream>(s), who);
  if (!stream) co_return false;
  connection_token token(s);
  std::vector<char> out(s.uniform(1, 64)), back(out.size());
  stream_bytes(mix(id), 0, out);
  auto sent = co_await stream->send_all(asio::buffer(out), coronet::timeout(io_limit));
  auto got = sent ? co_await stream->recv_exact(asio::buffer(back), coronet::timeout(io_limit))
                  : coronet::io_result(sent.bytes(), sent.error());
  if (!got) {
    s.io_error(who, got.error());
    co_return false;
  }
  if (back != out) {
    s.error(error_kind::corrupt,
            fmt::format("{}: the echo differs from byte {}", who, first_difference(out, back)));
    co_return false;
  }
  ++s.echo_messages[static_cast<std::size_t>(proto_of<Stream>())];
  s.echo_bytes += out.size();
  if (s.chance(50)) co_await finish_stream(s, *stream, who);
  co_return true;
}

// ---------------------------------------------------------------------------------------------
// UDP: a socket sends a few hundred datagrams, one in flight, each echoed and compared, then
// closes and the next one opens.

asio::awaitable<bool> udp_session(soak& s) {
  const auto id = s.next_id++;
  const auto who = fmt::format("udp socket {}", id);
  auto socket = coronet::udp_socket::open(s.executor, coronet::ip_family::v4);
  if (auto connected = socket.connect(s.echo_udp); !connected) {
    s.error(error_kind::connect, fmt::format("{}: connect: {}", who, connected.error().message()));
    co_return false;
  }
  connection_token token(s);
  const auto seed = mix(id);
  std::uint64_t offset = 0;
  std::vector<char> out, back;
  const auto datagrams = s.uniform(50, 500);
  for (std::uint64_t n = 0; n < datagrams && !s.pausing; ++n) {
    // Small enough that every socket's one datagram in flight fits Linux's default 208 KiB
    // receive buffer on the server side: a loss here is a bug, not an overflow.
    const auto size = s.chance(90) ? s.uniform(1, 1400) : s.uniform(1401, 8192);
    out.resize(size);
    back.resize(size + 1);  // one more: a longer datagram is not a match
    stream_bytes(seed, offset, out);
    offset += size;
    auto sent = co_await socket.send(asio::buffer(out), coronet::timeout(io_limit));
    if (!sent) {
      s.io_error(fmt::format("{}, datagram {}: send", who, n), sent.error());
      co_return false;
    }
    auto got = co_await socket.recv(asio::buffer(back), coronet::timeout(udp_reply_limit));
    if (!got) {
      s.io_error(fmt::format("{}, datagram {} ({} bytes): reply", who, n, size), got.error());
      co_return false;
    }
    if (got.bytes() != size || !std::equal(out.begin(), out.end(), back.begin())) {
      s.error(error_kind::corrupt,
              fmt::format("{}: datagram {} ({} bytes) came back as {} bytes{}", who, n, size,
                          got.size(), got.bytes() == size ? ", different" : ""));
      co_return false;
    }
    ++s.echo_messages[static_cast<std::size_t>(proto::udp)];
    s.echo_bytes += size;
    if (s.chance(50)) co_await nap(s.ms(0, 3));
  }
  co_return true;
}

// ---------------------------------------------------------------------------------------------
// The echo lanes: each keeps one kind of client going, connection after connection, until the
// load pauses.

enum class lane_kind {
  tcp_pingpong,
  unix_pingpong,
  udp,
  tcp_stream,
  unix_stream,
  tcp_churn,
  unix_churn
};

asio::awaitable<void> lane(soak& s, lane_kind kind) {
  while (!s.pausing) {
    bool ok = false;
    switch (kind) {
      case lane_kind::tcp_pingpong:
        ok = co_await pingpong_connection<coronet::tcp_stream>(s);
        break;
      case lane_kind::unix_pingpong:
        ok = co_await pingpong_connection<coronet::unix_stream>(s);
        break;
      case lane_kind::udp: ok = co_await udp_session(s); break;
      case lane_kind::tcp_stream: ok = co_await stream_connection<coronet::tcp_stream>(s); break;
      case lane_kind::unix_stream: ok = co_await stream_connection<coronet::unix_stream>(s); break;
      case lane_kind::tcp_churn: ok = co_await churn_connection<coronet::tcp_stream>(s); break;
      case lane_kind::unix_churn: ok = co_await churn_connection<coronet::unix_stream>(s); break;
    }
    // A failure was counted; the pause keeps a broken server from being hammered.
    const auto pause = ok ? s.ms(5, 30) : 500ms;
    co_await nap(pause);
  }
}

// How --echo-connections is shared out: 40% TCP ping-pong, 20% Unix ping-pong, 15% UDP, 10%
// streams (two thirds TCP), 15% churn (half Unix); the remainder goes to TCP ping-pong.
std::vector<lane_kind> echo_lanes(std::size_t n) {
  const auto share = [n](std::size_t percent) {
    return std::max<std::size_t>(1, n * percent / 100);
  };
  std::vector<lane_kind> lanes;
  const auto add = [&lanes](lane_kind k, std::size_t count) {
    lanes.insert(lanes.end(), count, k);
  };
  const auto streams = share(10), churn = share(15);
  add(lane_kind::unix_pingpong, share(20));
  add(lane_kind::udp, share(15));
  add(lane_kind::tcp_stream, streams - streams / 3);
  add(lane_kind::unix_stream, streams / 3);
  add(lane_kind::tcp_churn, churn - churn / 2);
  add(lane_kind::unix_churn, churn / 2);
  add(lane_kind::tcp_pingpong, n > lanes.size() ? n - lanes.size() : 1);
  return lanes;
}

// ---------------------------------------------------------------------------------------------
// Chat: each room runs rounds. In a round every member connects, takes its nick, joins the
// room and waits for the others; then each sends numbered lines (then "done N") while checking
// that it gets every other member's lines whole and in order; then /quit, and the server must
// close. Lines of other nicks (the faults join these rooms too) are ignored.

struct chat_round {
  std::size_t room = 0;
  std::uint64_t number = 0;
  std::string room_name;
  std::vector<std::string> nicks;
  std::map<std::string, std::size_t, std::less<>> by_nick;
  std::size_t joined = 0;
  std::size_t running = 0;
  bool failed = false;  // a member hit an error (counted): the others end without more
};

// Line `seq` of a member: "<seq> <text>", its text made from the names, mixing ASCII with
// multi-byte UTF-8, tabs and punctuation; 5% of lines are long (but within chat_server's limit).
std::string chat_text(const chat_round& r, std::size_t member, std::uint64_t seq) {
  static constexpr std::array<std::string_view, 24> tokens = {
      "a", "b", "c", "x",  "y",  "z",  "0", "7", " ", " ",    ".", ",",
      "!", "?", "-", "\t", "\"", "\\", "é", "ß", "€", "日本", "😀", "<>"};
  std::uint64_t state = mix(mix(mix(r.room) + r.number) + member * 1000003ULL + seq);
  const std::size_t target = state % 100 < 95 ? 1 + (state >> 8) % 160 : 1 + (state >> 8) % 3500;
  std::string text = std::to_string(seq) + " ";
  while (text.size() < target) {
    state = mix(state);
    text += tokens[state % tokens.size()];
  }
  return text;
}

// Reads lines until one equal to `want` (or starting with it, when `prefix`); other lines are
// skipped, as they may be news or a fault client's chatter. "! error" is an error.
asio::awaitable<bool> await_line(soak& s, coronet::stream_reader<coronet::tcp_stream>& reader,
                                 std::string want, bool prefix, std::string who) {
  const auto deadline = clock_type::now() + io_limit;
  for (std::size_t skipped = 0; skipped < 100000; ++skipped) {
    const auto left = std::max(deadline - clock_type::now(), clock_type::duration::zero());
    auto line = co_await reader.read_line(coronet::timeout(left));
    if (!line) {
      s.io_error(fmt::format("{}: waiting for '{}'", who, want), line.error());
      co_return false;
    }
    if (prefix ? line->starts_with(want) : *line == want) co_return true;
    if (line->starts_with("! ")) {
      s.error(error_kind::refused,
              fmt::format("{}: '{}' while waiting for '{}'", who, *line, want));
      co_return false;
    }
  }
  s.error(error_kind::timeout, fmt::format("{}: no '{}' among 100,000 lines", who, want));
  co_return false;
}

asio::awaitable<bool> send_line(soak& s, coronet::tcp_stream& stream, std::string line,
                                const std::string& who) {
  line += '\n';
  auto sent = co_await stream.send_all(asio::buffer(line), coronet::timeout(io_limit));
  if (!sent) s.io_error(who + ": send", sent.error());
  co_return static_cast<bool>(sent);
}

asio::awaitable<void> chat_sender(soak& s, coronet::tcp_stream& stream, chat_round& r,
                                  std::size_t me, bool& failed, const std::string& who) {
  const auto lines = s.uniform(40, 160);
  std::uint64_t seq = 0;
  for (; seq < lines && !s.pausing && !r.failed && !failed; ++seq) {
    const bool sent = co_await send_line(s, stream, chat_text(r, me, seq), who);
    if (!sent) {
      failed = true;
      co_return;
    }
    ++s.chat_sent;
    co_await nap(s.ms(40, 160));
  }
  if (r.failed || failed) co_return;
  const bool sent = co_await send_line(s, stream, fmt::format("done {}", seq), who);
  if (!sent) failed = true;
}

// One received line from the room: returns false, having counted the error, when it is wrong.
bool check_chat_line(soak& s, chat_round& r, std::size_t me, std::string_view line,
                     std::vector<std::uint64_t>& next, std::vector<bool>& done,
                     std::size_t& remaining, const std::string& who) {
  if (line.starts_with("* ")) return true;  // news: joins, leaves, renames
  if (line.starts_with("! ")) {
    s.error(error_kind::refused, fmt::format("{}: chat_server said '{}'", who, line));
    return false;
  }
  const auto colon = line.find(": ");
  const auto found =
      colon == std::string_view::npos ? r.by_nick.end() : r.by_nick.find(line.substr(0, colon));
  if (found == r.by_nick.end()) return true;  // another client's line: a fault's chatter
  const auto from = found->second;
  const auto text = line.substr(colon + 2);
  if (from == me) {
    s.error(error_kind::lost, fmt::format("{}: got its own line back: '{}'", who, text));
    return false;
  }
  if (done[from]) {
    s.error(error_kind::lost, fmt::format("{}: a line from {} after its 'done': '{}'", who,
                                          r.nicks[from], text.substr(0, 60)));
    return false;
  }
  if (text.starts_with("done ")) {
    const auto announced = std::strtoull(std::string(text.substr(5)).c_str(), nullptr, 10);
    if (announced != next[from]) {
      s.error(error_kind::lost, fmt::format("{}: {} sent {} lines, {} arrived", who, r.nicks[from],
                                            announced, next[from]));
      return false;
    }
    done[from] = true;
    --remaining;
    return true;
  }
  if (text == chat_text(r, from, next[from])) {
    ++next[from];
    ++s.chat_delivered;
    return true;
  }
  const auto number =
      std::strtoull(std::string(text.substr(0, text.find(' '))).c_str(), nullptr, 10);
  const char* what = number > next[from]   ? "missing (a later one came)"
                     : number < next[from] ? "repeated or out of order"
                                           : "corrupted";
  s.error(number == next[from] ? error_kind::corrupt : error_kind::lost,
          fmt::format("{}: line {} from {} {}: got '{}'", who, next[from], r.nicks[from], what,
                      text.substr(0, 60)));
  return false;
}

asio::awaitable<void> chat_receiver(soak& s, coronet::stream_reader<coronet::tcp_stream>& reader,
                                    chat_round& r, std::size_t me, bool& failed,
                                    const std::string& who) {
  const auto members = r.nicks.size();
  std::vector<std::uint64_t> next(members, 0);
  std::vector<bool> done(members, false);
  done[me] = true;
  std::size_t remaining = members - 1;
  int silent = 0;
  while (remaining > 0 && !failed) {
    auto line = co_await reader.read_line(coronet::timeout(1s));
    if (!line) {
      if (r.failed) co_return;
      if (line.error() == std::errc::timed_out && ++silent < chat_silence_limit) continue;
      std::string waiting;
      for (std::size_t m = 0; m < members; ++m) {
        if (!done[m]) waiting += (waiting.empty() ? "" : ", ") + r.nicks[m];
      }
      if (line.error() == std::errc::timed_out) {
        s.error(error_kind::lost, fmt::format("{}: no line for {} s; still due from {}", who,
                                              chat_silence_limit, waiting));
      } else {
        s.io_error(fmt::format("{} (lines still due from {})", who, waiting), line.error());
      }
      failed = true;
      co_return;
    }
    silent = 0;
    if (!check_chat_line(s, r, me, *line, next, done, remaining, who)) {
      failed = true;
      co_return;
    }
  }
}

// The welcome, /nick and /join, each reply awaited. Each co_await is a statement of its own:
// GCC 12 miscompiles one inside a condition when its arguments hold a string literal.
asio::awaitable<bool> enter_room(soak& s, coronet::tcp_stream& stream,
                                 coronet::stream_reader<coronet::tcp_stream>& reader,
                                 const std::string& nick, const std::string& room,
                                 const std::string& who) {
  bool ok = co_await await_line(s, reader, "* welcome ", true, who);
  if (ok) ok = co_await send_line(s, stream, "/nick " + nick, who);
  if (ok) ok = co_await await_line(s, reader, "* you are now " + nick, false, who);
  if (ok) ok = co_await send_line(s, stream, "/join " + room, who);
  if (ok) ok = co_await await_line(s, reader, "* joined " + room, false, who);
  co_return ok;
}

asio::awaitable<void> chat_member(soak& s, std::shared_ptr<chat_round> r, std::size_t me) {
  using namespace asio::experimental::awaitable_operators;
  struct leaving {
    chat_round& round;
    ~leaving() { --round.running; }
  } on_exit{*r};
  const auto& nick = r->nicks[me];
  const auto who = fmt::format("chat {} in {}", nick, r->room_name);
  auto stream = co_await open_stream<coronet::tcp_stream>(s, s.chat_tcp, who);
  if (!stream) {
    r->failed = true;
    co_return;
  }
  connection_token token(s);
  coronet::stream_reader<coronet::tcp_stream> reader(*stream, {.max_line = 1 << 20});
  const bool entered = co_await enter_room(s, *stream, reader, nick, r->room_name, who);
  if (!entered) {
    r->failed = true;
    co_return;
  }
  ++r->joined;
  // Every member in the room before anyone speaks: from then on each must get every line.
  for (const auto until = clock_type::now() + io_limit;
       r->joined < r->nicks.size() && !r->failed && clock_type::now() < until;) {
    co_await nap(20ms);
  }
  if (r->failed) co_return;
  if (r->joined < r->nicks.size()) {
    s.error(error_kind::timeout,
            fmt::format("{}: the room was not complete after {} s", who, io_limit.count()));
    r->failed = true;
    co_return;
  }
  bool failed = false;
  co_await (chat_sender(s, *stream, *r, me, failed, who) &&
            chat_receiver(s, reader, *r, me, failed, who));
  if (failed) r->failed = true;
  if (r->failed) co_return;

  // /quit: the server must close; nothing more from the round may arrive.
  const bool quit = co_await send_line(s, *stream, "/quit", who);
  if (!quit) co_return;
  const auto deadline = clock_type::now() + close_limit;
  for (;;) {
    const auto left = std::max(deadline - clock_type::now(), clock_type::duration::zero());
    auto line = co_await reader.read_line(coronet::timeout(left));
    if (!line) {
      if (line.error() != coronet::errc::eof) {
        s.io_error(who + ": waiting for the close after /quit", line.error());
      }
      break;
    }
    const auto colon = line->find(": ");
    if (colon != std::string_view::npos && r->by_nick.count(line->substr(0, colon)) > 0) {
      s.error(error_kind::lost, fmt::format("{}: a line after every member's 'done': '{}'", who,
                                            line->substr(0, 60)));
      break;
    }
  }
}

// A room: one round after another until the load pauses.
asio::awaitable<void> chat_room(soak& s, std::size_t room, std::size_t members) {
  while (!s.pausing) {
    auto r = std::make_shared<chat_round>();
    r->room = room;
    r->number = s.next_id++;
    r->room_name = fmt::format("soak{}", room);
    for (std::size_t m = 0; m < members; ++m) {
      r->nicks.push_back(fmt::format("m{}-{}-{}", room, r->number, m));
      r->by_nick.emplace(r->nicks.back(), m);
    }
    r->running = members;
    for (std::size_t m = 0; m < members; ++m) {
      s.launch(chat_member(s, r, m), "chat member " + r->nicks[m]);
    }
    while (r->running > 0) co_await nap(50ms);  // each member's every wait is bounded
    if (!r->failed) ++s.chat_rounds;
    const auto pause = r->failed ? 500ms : 50ms;
    co_await nap(pause);
  }
}

// ---------------------------------------------------------------------------------------------
// Faults. Each is bounded in time, looks at s.pausing wherever it waits long, and counts as an
// error only what the servers' contracts promise: an echo is exact even around a half-close or
// a trickle; echo_server closes an idle connection after --idle-timeout; chat_server refuses an
// over-long line and closes, and closes after /quit.

struct fault_ticket {
  soak& s;
  explicit fault_ticket(soak& on) : s(on) { ++s.faults_in_flight; }
  fault_ticket(const fault_ticket&) = delete;
  fault_ticket& operator=(const fault_ticket&) = delete;
  ~fault_ticket() { --s.faults_in_flight; }
};

// Reads and drops what comes until the peer closes; false when it has not within `limit`.
template <class Stream>
asio::awaitable<bool> drain_until_closed(soak& s, Stream& stream, clock_type::duration limit) {
  std::vector<char> sink(64 * 1024);
  for (const auto until = clock_type::now() + limit; clock_type::now() < until;) {
    auto got = co_await stream.recv(asio::buffer(sink), coronet::timeout(1s));
    if (got) continue;
    if (got.error() == std::errc::timed_out) {
      if (s.pausing) co_return true;  // not waited out: not a finding
      continue;
    }
    co_return true;  // eof or a reset: closed
  }
  co_return false;
}

// A reset while the server is busy sending: ask for a big echo, read a little, reset.
template <class Stream>
asio::awaitable<void> fault_reset(soak& s) {
  const auto id = s.next_id++;
  auto stream = co_await open_stream<Stream>(s, target_of<Stream>(s), fmt::format("reset {}", id));
  if (!stream) co_return;
  connection_token token(s);
  std::vector<char> data(s.uniform(64 * 1024, 512 * 1024));
  stream_bytes(mix(id), 0, data);
  (void)co_await stream->send_all(asio::buffer(data), coronet::timeout(2s));
  std::array<char, 4096> some;
  (void)co_await stream->recv(asio::buffer(some), coronet::timeout(2s));
  reset_close(*stream);
}

// Half-close right after sending: the whole echo must still come, then FIN.
template <class Stream>
asio::awaitable<void> fault_half_close(soak& s) {
  const auto id = s.next_id++;
  const auto who = fmt::format("{} half-close {}", name_of(proto_of<Stream>()), id);
  auto stream = co_await open_stream<Stream>(s, target_of<Stream>(s), who);
  if (!stream) co_return;
  connection_token token(s);
  // Within what the socket buffers hold, so the echo need not be read while sending.
  std::vector<char> out(s.uniform(1, 64 * 1024)), back(out.size());
  stream_bytes(mix(id), 0, out);
  auto sent = co_await stream->send_all(asio::buffer(out), coronet::timeout(io_limit));
  if (!sent) {
    s.io_error(who + ": send", sent.error());
    co_return;
  }
  (void)stream->shutdown(coronet::shutdown_type::send);
  auto got = co_await stream->recv_exact(asio::buffer(back), coronet::timeout(io_limit));
  if (!got) {
    s.io_error(fmt::format("{}: {} of {} bytes back", who, got.bytes(), out.size()), got.error());
    co_return;
  }
  if (back != out) {
    s.error(error_kind::corrupt,
            fmt::format("{}: the echo differs from byte {}", who, first_difference(out, back)));
    co_return;
  }
  ++s.echo_messages[static_cast<std::size_t>(proto_of<Stream>())];
  s.echo_bytes += out.size();
  char tail = 0;
  auto end = co_await stream->recv(asio::buffer(&tail, 1), coronet::timeout(close_limit));
  if (end.error() != coronet::errc::eof) {
    if (end) {
      s.error(error_kind::corrupt, who + ": a byte after the whole echo");
    } else {
      s.io_error(who + ": waiting for the server's FIN", end.error());
    }
  }
}

// A byte at a time, each echoed and checked; then silence, which echo_server must end by
// closing after --idle-timeout.
template <class Stream>
asio::awaitable<void> fault_slow(soak& s) {
  const auto id = s.next_id++;
  const auto who = fmt::format("{} slow client {}", name_of(proto_of<Stream>()), id);
  auto stream = co_await open_stream<Stream>(s, target_of<Stream>(s), who);
  if (!stream) co_return;
  connection_token token(s);
  std::vector<char> out(s.uniform(10, 40));
  stream_bytes(mix(id), 0, out);
  for (std::size_t i = 0; i < out.size() && !s.pausing; ++i) {
    char back = 0;
    auto sent = co_await stream->send_all(asio::buffer(&out[i], 1), coronet::timeout(io_limit));
    auto got = sent
                   ? co_await stream->recv_exact(asio::buffer(&back, 1), coronet::timeout(io_limit))
                   : coronet::io_result(0, sent.error());
    if (!got) {
      s.io_error(fmt::format("{}: byte {}", who, i), got.error());
      co_return;
    }
    if (back != out[i]) {
      s.error(error_kind::corrupt, fmt::format("{}: byte {} came back different", who, i));
      co_return;
    }
    s.echo_bytes += 1;
    co_await nap(s.ms(50, 150));
  }
  const auto limit = std::chrono::duration<double>(s.opts.echo_idle_s + 10);
  if (!co_await drain_until_closed(s, *stream,
                                   std::chrono::duration_cast<clock_type::duration>(limit))) {
    s.error(error_kind::fault,
            fmt::format("{}: still open {:.0f} s after it fell silent (--idle-timeout {:.0f})", who,
                        limit.count(), s.opts.echo_idle_s));
  }
}

// Sends up to a few MiB without reading (until the buffers are full), holds, vanishes.
template <class Stream>
asio::awaitable<void> fault_never_read(soak& s) {
  const auto id = s.next_id++;
  auto stream =
      co_await open_stream<Stream>(s, target_of<Stream>(s), fmt::format("never-read {}", id));
  if (!stream) co_return;
  connection_token token(s);
  std::vector<char> chunk(64 * 1024);
  stream_bytes(mix(id), 0, chunk);
  const auto target = s.uniform(1, 4) * 1024 * 1024;
  for (std::uint64_t sent = 0; sent < target && !s.pausing; sent += chunk.size()) {
    if (!co_await stream->send_all(asio::buffer(chunk), coronet::timeout(1s))) break;
  }
  co_await nap(s.ms(200, 1000));
  reset_close(*stream);
}

// A burst: a few hundred clients connect at once, each with one short message checked.
struct burst_state {
  std::size_t remaining = 0;
};

template <class Stream>
asio::awaitable<void> burst_client(soak& s, std::shared_ptr<burst_state> burst) {
  struct done {
    burst_state& b;
    ~done() { --b.remaining; }
  } on_exit{*burst};
  const auto id = s.next_id++;
  const auto who = fmt::format("{} burst client {}", name_of(proto_of<Stream>()), id);
  auto stream = co_await open_stream<Stream>(s, target_of<Stream>(s), who);
  if (!stream) co_return;
  connection_token token(s);
  // Far larger than a server session's own buffer (echo_server's is 128 bytes): every session
  // of the burst goes through its thread's buffer and the copies for a slow peer, so the
  // server's memory reaches its working size within the first bursts of the warm-up instead of
  // creeping there as larger messages come by chance.
  std::vector<char> out(s.uniform(16 * 1024, 24 * 1024)), back(out.size());
  stream_bytes(mix(id), 0, out);
  auto sent = co_await stream->send_all(asio::buffer(out), coronet::timeout(io_limit));
  auto got = sent ? co_await stream->recv_exact(asio::buffer(back), coronet::timeout(io_limit))
                  : coronet::io_result(sent.bytes(), sent.error());
  if (!got) {
    s.io_error(who, got.error());
  } else if (back != out) {
    s.error(error_kind::corrupt, who + ": the echo differs");
  } else {
    ++s.echo_messages[static_cast<std::size_t>(proto_of<Stream>())];
    s.echo_bytes += out.size();
  }
}

template <class Stream>
asio::awaitable<void> fault_burst(soak& s) {
  s.burst_in_flight = true;
  auto burst = std::make_shared<burst_state>();
  // Always as many: a burst sets the servers' peak of open connections, which the warm-up must
  // have reached for the memory figures after it to be a fair baseline.
  burst->remaining = burst_size;
  const auto n = burst->remaining;
  for (std::size_t i = 0; i < n; ++i) s.launch(burst_client<Stream>(s, burst), "burst client");
  while (burst->remaining > 0) co_await nap(20ms);  // each client's every wait is bounded
  s.burst_in_flight = false;
}

// Junk datagrams from a socket that closes at once: sizes 0 and up, the largest only when the
// server's receive buffer can take one next to the well-behaved clients' datagrams.
asio::awaitable<void> fault_udp_junk(soak& s) {
  auto socket = coronet::udp_socket::open(s.executor, coronet::ip_family::v4);
  if (auto connected = socket.connect(s.echo_udp); !connected) {
    s.error(error_kind::connect, "udp junk: connect: " + connected.error().message());
    co_return;
  }
  connection_token token(s);
  std::vector<char> junk(65507);
  stream_bytes(mix(s.next_id++), 0, junk);
  const auto count = s.uniform(1, 3);
  for (std::uint64_t i = 0; i < count; ++i) {
    const auto size = i == 0 && s.big_datagrams && s.chance(30) ? junk.size()
                      : s.chance(20)                            ? 0
                                                                : s.uniform(1, 1400);
    (void)co_await socket.send(asio::buffer(junk.data(), size), coronet::timeout(1s));
  }
}

// A room for a fault client: one of the soak's rooms (its members must not be disturbed), the
// lobby, or a room of the faults' own.
std::string fault_room(soak& s) {
  const auto pick = s.uniform(0, 2);
  if (pick == 0) return fmt::format("soak{}", s.uniform(0, s.opts.rooms - 1));
  if (pick == 1) return "lobby";
  return fmt::format("faults{}", s.uniform(0, 3));
}

// After /quit the server must close.
asio::awaitable<void> quit_and_expect_close(soak& s, coronet::tcp_stream& stream,
                                            const std::string& who) {
  const std::string quit = "/quit\n";
  if (!co_await stream.send_all(asio::buffer(quit), coronet::timeout(io_limit))) co_return;
  if (!co_await drain_until_closed(s, stream, close_limit)) {
    s.error(error_kind::fault, fmt::format("{}: chat_server did not close within {} s of /quit",
                                           who, close_limit.count()));
  }
}

// Binary garbage in lines: any byte but the newline, NULs and invalid UTF-8 included.
asio::awaitable<void> fault_chat_garbage(soak& s) {
  const auto who = fmt::format("chat garbage {}", s.next_id++);
  auto stream = co_await open_stream<coronet::tcp_stream>(s, s.chat_tcp, who);
  if (!stream) co_return;
  connection_token token(s);
  std::string data = "/join " + fault_room(s) + "\n";
  const auto lines = s.uniform(1, 20);
  for (std::uint64_t i = 0; i < lines; ++i) {
    const auto length = s.uniform(0, 2000);
    for (std::uint64_t j = 0; j < length; ++j) {
      auto c = static_cast<char>(s.uniform(0, 255));
      data += c == '\n' ? '\0' : c;
    }
    data += '\n';
  }
  if (!co_await stream->send_all(asio::buffer(data), coronet::timeout(io_limit))) co_return;
  if (s.chance(50)) {
    co_await quit_and_expect_close(s, *stream, who);
  } else {
    reset_close(*stream);
  }
}

// A line over the limit: chat_server must refuse it and close.
asio::awaitable<void> fault_chat_long_line(soak& s) {
  const auto who = fmt::format("chat long line {}", s.next_id++);
  auto stream = co_await open_stream<coronet::tcp_stream>(s, s.chat_tcp, who);
  if (!stream) co_return;
  connection_token token(s);
  std::string line(s.uniform(max_line + 1, 5 * max_line), 'x');
  line += '\n';
  // The server may close (and reset) before all of it is sent: not a finding.
  (void)co_await stream->send_all(asio::buffer(line), coronet::timeout(io_limit));
  if (!co_await drain_until_closed(s, *stream, close_limit)) {
    s.error(error_kind::fault,
            fmt::format("{}: chat_server did not close within {} s of a {}-byte line", who,
                        close_limit.count(), line.size() - 1));
  }
}

// /nick and /join churn, with bad names, unknown commands and a little talk.
asio::awaitable<void> fault_chat_churn(soak& s) {
  const auto id = s.next_id++;
  const auto who = fmt::format("chat churn {}", id);
  auto stream = co_await open_stream<coronet::tcp_stream>(s, s.chat_tcp, who);
  if (!stream) co_return;
  connection_token token(s);
  const auto commands = s.uniform(5, 30);
  for (std::uint64_t i = 0; i < commands && !s.pausing; ++i) {
    std::string line;
    switch (s.uniform(0, 9)) {
      case 0:
      case 1: line = fmt::format("/nick f{}x{}", id, i); break;
      case 2:
      case 3: line = "/join " + fault_room(s); break;
      case 4: line = "/who"; break;
      case 5: line = "/nick bad!name"; break;
      case 6: line = s.chance(50) ? "/join" : "/join a b"; break;
      case 7: line = "/frobnicate"; break;
      case 8: line = "/nick " + std::string(40, 'n'); break;
      default: line = fmt::format("churn {} says {}", id, i); break;
    }
    line += '\n';
    if (!co_await stream->send_all(asio::buffer(line), coronet::timeout(io_limit))) co_return;
    co_await nap(s.ms(5, 50));
  }
  co_await quit_and_expect_close(s, *stream, who);
}

// Joins a room, sends lines worth up to a MiB, never reads, holds a while, then resets.
asio::awaitable<void> fault_chat_never_read(soak& s) {
  const auto id = s.next_id++;
  auto stream = co_await open_stream<coronet::tcp_stream>(s, s.chat_tcp,
                                                          fmt::format("chat never-read {}", id));
  if (!stream) co_return;
  connection_token token(s);
  std::string data = "/join " + fault_room(s) + "\n";
  const auto target = s.uniform(128 * 1024, 1024 * 1024);
  while (data.size() < target) data += fmt::format("{:x<4000}\n", fmt::format("flood {} ", id));
  (void)co_await stream->send_all(asio::buffer(data), coronet::timeout(2s));
  co_await nap(s.ms(1000, 3000));
  reset_close(*stream);
}

// A line a byte at a time, then /quit.
asio::awaitable<void> fault_chat_trickle(soak& s) {
  const auto id = s.next_id++;
  const auto who = fmt::format("chat trickle {}", id);
  auto stream = co_await open_stream<coronet::tcp_stream>(s, s.chat_tcp, who);
  if (!stream) co_return;
  connection_token token(s);
  const std::string join = "/join " + fault_room(s) + "\n";
  if (!co_await stream->send_all(asio::buffer(join), coronet::timeout(io_limit))) co_return;
  const std::string line = fmt::format("trickle {} {}\n", id, std::string(s.uniform(5, 40), 't'));
  for (const char c : line) {
    if (s.pausing) break;
    if (!co_await stream->send_all(asio::buffer(&c, 1), coronet::timeout(io_limit))) co_return;
    co_await nap(s.ms(20, 80));
  }
  co_await quit_and_expect_close(s, *stream, who);
}

// The echo faults, over one kind of stream.
template <class Stream>
asio::awaitable<void> stream_fault(soak& s, fault_kind kind) {
  switch (kind) {
    case fault_kind::reset: co_await fault_reset<Stream>(s); break;
    case fault_kind::half_close: co_await fault_half_close<Stream>(s); break;
    case fault_kind::slow: co_await fault_slow<Stream>(s); break;
    case fault_kind::never_read: co_await fault_never_read<Stream>(s); break;
    case fault_kind::burst: co_await fault_burst<Stream>(s); break;
    default: break;
  }
}

// Without a conditional expression of awaitables: GCC 12 destroys such a temporary twice.
asio::awaitable<void> run_fault(soak& s, fault_kind kind) {
  fault_ticket ticket(s);
  switch (kind) {
    case fault_kind::udp_junk: co_await fault_udp_junk(s); break;
    case fault_kind::chat_garbage: co_await fault_chat_garbage(s); break;
    case fault_kind::chat_long_line: co_await fault_chat_long_line(s); break;
    case fault_kind::chat_churn: co_await fault_chat_churn(s); break;
    case fault_kind::chat_never_read: co_await fault_chat_never_read(s); break;
    case fault_kind::chat_trickle: co_await fault_chat_trickle(s); break;
    default: {
      // Bursts alternate, TCP first, so that even a short warm-up has had one of each.
      const auto bursts = s.faults[static_cast<std::size_t>(fault_kind::burst)];
      const bool tcp = kind == fault_kind::burst ? bursts % 2 == 1 : s.chance(60);
      if (tcp) {
        co_await stream_fault<coronet::tcp_stream>(s, kind);
      } else {
        co_await stream_fault<coronet::unix_stream>(s, kind);
      }
      break;
    }
  }
}

// One fault every 0.15-0.45 s while the load runs. Every kind comes once in each cycle, in a
// fresh order; the first cycle starts with the ones that take the servers' memory highest, so
// that the warm-up has seen them before the first quiescent point is measured.
asio::awaitable<void> inject_faults(soak& s) {
  std::vector<fault_kind> cycle = {
      fault_kind::burst,      fault_kind::never_read,   fault_kind::chat_never_read,
      fault_kind::reset,      fault_kind::half_close,   fault_kind::slow,
      fault_kind::udp_junk,   fault_kind::chat_garbage, fault_kind::chat_long_line,
      fault_kind::chat_churn, fault_kind::chat_trickle};
  std::size_t at = 0;
  while (!s.pausing) {
    co_await nap(s.ms(150, 450));
    if (s.pausing) break;
    if (at == cycle.size()) {
      std::shuffle(cycle.begin(), cycle.end(), s.rng);
      at = 0;
    }
    const auto kind = cycle[at];
    if (s.faults_in_flight >= max_faults_in_flight ||
        (kind == fault_kind::burst && s.burst_in_flight)) {
      continue;  // the same kind at the next tick
    }
    ++at;
    ++s.faults[static_cast<std::size_t>(kind)];
    s.launch(run_fault(s, kind),
             std::string("fault ") + fault_names[static_cast<std::size_t>(kind)]);
  }
}

void start_load(soak& s) {
  s.pausing = false;
  s.load_began = clock_type::now();
  for (const auto kind : echo_lanes(s.opts.echo_connections)) s.launch(lane(s, kind), "echo lane");
  const auto members = std::max<std::size_t>(2, s.opts.chat_clients / s.opts.rooms);
  for (std::size_t room = 0; room < s.opts.rooms; ++room) {
    s.launch(chat_room(s, room, members), "chat room");
  }
  s.launch(inject_faults(s), "fault injector");
}

// ---------------------------------------------------------------------------------------------
// Watching the servers, the quiescent points and the timeline.

struct watched {
  server_process& process;
  server_figures figures;
};

struct rates {
  clock_type::time_point at;
  std::uint64_t echo = 0;
  std::uint64_t chat = 0;
};

void print_progress(soak& s, std::vector<watched>& servers, rates& last) {
  const auto now = clock_type::now();
  const auto seconds = std::chrono::duration<double>(now - last.at).count();
  const auto per_second = [seconds](std::uint64_t n) {
    return grouped(static_cast<std::uint64_t>(static_cast<double>(n) / std::max(seconds, 1e-3)));
  };
  std::string line = fmt::format(
      "soak {:>4.0f} s  {:<9} load {:.0f}/{:.0f} s  echo {} msg/s  chat {} lines/s  faults {}  "
      "errors {}",
      s.elapsed(), s.phase, s.load_elapsed(), s.opts.duration_s,
      per_second(s.echo_total() - last.echo), per_second(s.chat_delivered - last.chat),
      grouped(s.fault_total()), grouped(s.error_total()));
  for (const auto& w : servers) {
    line += fmt::format("  {} fds {} rss {}", w.process.name(),
                        count_or_unknown(w.figures.fds_last), mebibytes(w.figures.rss_last));
  }
  fmt::print("{}\n", line);
  std::fflush(stdout);
  last = {now, s.echo_total(), s.chat_delivered};
}

// Every second: each server's descriptors and memory, and whether it still runs; a progress
// line every 10 s.
asio::awaitable<void> monitor(soak& s, std::vector<watched>& servers) {
  asio::steady_timer tick(s.executor);
  auto next = clock_type::now();
  rates last{clock_type::now()};
  int seconds = 0;
  while (!s.finished) {
    next += 1s;
    tick.expires_at(next);
    (void)co_await tick.async_wait(nothrow_awaitable);
    for (auto& w : servers) {
      if (w.figures.died) continue;
      if (const auto status = w.process.exited()) {
        w.figures.died = status;
        fmt::print(stderr, "coronet_soak: {:.1f} s: {} exited with status {}; the load stops\n",
                   s.elapsed(), w.process.name(), *status);
        s.aborted = true;  // the load stops within 0.1 s
        continue;
      }
      w.figures.fds_last = w.process.descriptors();
      w.figures.rss_last = w.process.rss_kb();
      if (w.figures.fds_last) w.figures.fds_max = std::max(w.figures.fds_max, *w.figures.fds_last);
      if (w.figures.rss_last) w.figures.rss_max = std::max(w.figures.rss_max, *w.figures.rss_last);
      if (w.figures.rss_last && s.warming) {
        w.figures.rss_warmup_peak = std::max(w.figures.rss_warmup_peak, *w.figures.rss_last);
      }
    }
    if (++seconds % 10 == 0) print_progress(s, servers, last);
  }
}

// Waits up to `limit` for `process`'s descriptor count to stop changing (and, with a target, to
// come down to it); the last count read, when it could be read.
asio::awaitable<std::optional<std::size_t>> settled_descriptors(server_process& process,
                                                                std::optional<std::size_t> target,
                                                                clock_type::duration limit) {
  std::optional<std::size_t> last = process.descriptors();
  auto unchanged_since = clock_type::now();
  for (const auto until = clock_type::now() + limit; clock_type::now() < until;) {
    co_await nap(200ms);
    const auto now = process.descriptors();
    if (!now) co_return std::nullopt;
    if (now != last) {
      last = now;
      unchanged_since = clock_type::now();
      continue;
    }
    if (clock_type::now() - unchanged_since >= settled_for && (!target || *now <= *target)) break;
  }
  co_return last;
}

// A quiescent point: the load pauses, every client ends (its connections closed), and each
// server's descriptors and memory are read once the count has settled. False when the clients
// did not all end (counted as an error) or a server is gone.
asio::awaitable<bool> quiesce(soak& s, std::vector<watched>& servers, bool at_end) {
  s.pausing = true;
  s.phase = "quiescent";
  const auto until = clock_type::now() + stuck_limit;
  while ((s.active > 0 || s.open_connections > 0) && clock_type::now() < until) {
    co_await nap(100ms);
  }
  if (s.active > 0 || s.open_connections > 0) {
    s.error(error_kind::stuck,
            fmt::format("{} client tasks with {} connections still running {} s after the load "
                        "paused",
                        s.active, s.open_connections, stuck_limit.count()));
    co_return false;
  }
  const auto settle_limit = std::chrono::duration_cast<clock_type::duration>(
      std::chrono::duration<double>(s.opts.settle_s));
  bool ok = true;
  for (auto& w : servers) {
    if (w.figures.died) {
      ok = false;
      continue;
    }
    auto& fds = at_end ? w.figures.fds_end : w.figures.fds_warm;
    auto& rss = at_end ? w.figures.rss_end : w.figures.rss_warm;
    const auto target = at_end ? w.figures.fds_warm : std::nullopt;
    fds = co_await settled_descriptors(w.process, target, settle_limit);
    rss = w.process.rss_kb();
    ok = ok && fds && rss;
  }
  std::string line = fmt::format("soak {:>4.0f} s  quiescent point {}:", s.elapsed(),
                                 at_end ? "at the end" : "after the warm-up");
  for (const auto& w : servers) {
    const auto& f = w.figures;
    line += fmt::format("  {} fds {} rss {}", w.process.name(),
                        count_or_unknown(at_end ? f.fds_end : f.fds_warm),
                        mebibytes(at_end ? f.rss_end : f.rss_warm));
  }
  fmt::print("{}\n", line);
  std::fflush(stdout);
  co_return ok;
}

// Load until `until` seconds of load in all, or until a server dies.
asio::awaitable<void> load_until(soak& s, double until) {
  start_load(s);
  while (!s.aborted && s.load_elapsed() < until) co_await nap(100ms);
  s.loaded_s = s.load_elapsed();
  s.pausing = true;
}

asio::awaitable<void> timeline(soak& s, std::vector<watched>& servers) {
  for (auto& w : servers) {
    w.figures.fds_start = w.process.descriptors();
    w.figures.rss_start = w.process.rss_kb();
  }
  s.phase = "warm-up";
  s.warming = true;
  co_await load_until(s, s.opts.warmup_s);
  s.warming = false;
  bool warm = false;
  if (!s.aborted) warm = co_await quiesce(s, servers, false);
  if (warm) {
    s.phase = "load";
    co_await load_until(s, s.opts.duration_s);
    (void)co_await quiesce(s, servers, true);
  } else {
    s.pausing = true;
  }
  s.phase = "stopping";
  s.finished = true;
}

// ---------------------------------------------------------------------------------------------
// The verdict and the report.

struct verdict {
  std::vector<std::string> reasons;
  bool pass() const { return reasons.empty(); }
};

verdict judge(const soak& s, const std::vector<watched>& servers) {
  verdict v;
  // A server that died first: the clients' errors are likely its consequences.
  for (const auto& w : servers) {
    const auto& f = w.figures;
    const auto& name = w.process.name();
    if (f.died) {
      v.reasons.push_back(fmt::format("{} exited during the run with status {}", name, *f.died));
    } else if (!f.stop_status) {
      v.reasons.push_back(fmt::format("{} did not exit within 10 s of SIGTERM (killed)", name));
    } else if (*f.stop_status != 0) {
      v.reasons.push_back(
          fmt::format("{} exited with status {} after SIGTERM", name, *f.stop_status));
    }
  }
  for (std::size_t k = 0; k < error_kinds; ++k) {
    if (s.errors[k] > 0) {
      v.reasons.push_back(fmt::format("{}: {} (first: {})", error_descriptions[k],
                                      grouped(s.errors[k]), s.first_error[k]));
    }
  }
  const double limit = 1.0 + s.opts.rss_tolerance_pct / 100.0;
  for (const auto& w : servers) {
    const auto& f = w.figures;
    const auto& name = w.process.name();
    if (f.fds_warm && f.fds_end && *f.fds_end > *f.fds_warm) {
      v.reasons.push_back(
          fmt::format("fd growth: {} held {} descriptors after the warm-up and {} at the end (+{})",
                      name, *f.fds_warm, *f.fds_end, *f.fds_end - *f.fds_warm));
    }
    if (const auto base = f.rss_baseline();
        base && f.rss_end && static_cast<double>(*f.rss_end) > limit * static_cast<double>(*base)) {
      v.reasons.push_back(fmt::format(
          "RSS growth: {} {} after the warm-up, {} at the end (+{:.1f}%, limit +{:.0f}%)", name,
          mebibytes(base), mebibytes(f.rss_end), *f.rss_growth_pct(), s.opts.rss_tolerance_pct));
    }
    if (!f.died && !s.aborted && (!f.fds_warm || !f.fds_end || !f.rss_warm || !f.rss_end) &&
        s.errors[static_cast<std::size_t>(error_kind::stuck)] == 0) {
      v.reasons.push_back(fmt::format("{}: no figures from a quiescent point", name));
    }
    if (f.log.error_lines > 0) {
      v.reasons.push_back(fmt::format("{} logged {} error line(s) (first: {})", name,
                                      f.log.error_lines, f.log.first.front()));
    }
    if (f.log.sanitizer_lines > 0) {
      v.reasons.push_back(
          fmt::format("{}'s log has a sanitizer report (first: {})", name, f.log.first.front()));
    }
  }
  if (!s.aborted && (s.echo_total() == 0 || s.chat_delivered == 0)) {
    v.reasons.push_back("no traffic: the load never ran");
  }
  return v;
}

void print_summary(const soak& s, const std::vector<watched>& servers, const verdict& v,
                   double wall_s) {
  const auto& o = s.opts;
  const auto per_second = [&s](std::uint64_t n) {
    return grouped(static_cast<std::uint64_t>(static_cast<double>(n) / std::max(s.loaded_s, 1.0)));
  };
  fmt::print(
      "\ncoronet_soak: {:.0f} s of load of {:.0f} ({:.0f} s warm-up), {:.0f} s in all, seed {}\n",
      s.loaded_s, o.duration_s, o.warmup_s, wall_s, o.seed);
  fmt::print("{:<16}{} messages ({} msg/s): tcp {}, unix {}, udp {}; {:.1f} MB verified\n", "echo",
             grouped(s.echo_total()), per_second(s.echo_total()), grouped(s.echo_messages[0]),
             grouped(s.echo_messages[1]), grouped(s.echo_messages[2]),
             static_cast<double>(s.echo_bytes) / 1e6);
  fmt::print("{:<16}{} lines sent, {} deliveries verified ({} lines/s), {} rounds in {} rooms\n",
             "chat", grouped(s.chat_sent), grouped(s.chat_delivered), per_second(s.chat_delivered),
             grouped(s.chat_rounds), o.rooms);
  fmt::print("{:<16}{} opened by the soak's clients\n", "connections", grouped(s.connections));
  std::string faults;
  for (std::size_t k = 0; k < fault_kinds; ++k) {
    faults += fmt::format("{}{} {}", k == 0 ? "" : ", ", fault_names[k], grouped(s.faults[k]));
  }
  fmt::print("{:<16}{} ({})\n", "faults", grouped(s.fault_total()), faults);
  std::string errors;
  for (std::size_t k = 0; k < error_kinds; ++k) {
    errors += fmt::format("{}{} {}", k == 0 ? "" : ", ", error_names[k], grouped(s.errors[k]));
  }
  fmt::print("{:<16}{} ({})\n", "errors", grouped(s.error_total()), errors);
  for (const auto& w : servers) {
    const auto& f = w.figures;
    const auto growth = f.rss_growth_pct();
    fmt::print("{:<16}fds start {} warm {} end {} max {}\n", w.process.name(),
               count_or_unknown(f.fds_start), count_or_unknown(f.fds_warm),
               count_or_unknown(f.fds_end), f.fds_max);
    fmt::print("{:<16}rss start {} warm {} (warm-up peak {}) end {}{} max {}\n", "",
               mebibytes(f.rss_start), mebibytes(f.rss_warm), mebibytes(f.rss_warmup_peak),
               mebibytes(f.rss_end), growth ? fmt::format(" ({:+.1f}%)", *growth) : "",
               mebibytes(f.rss_max));
    fmt::print("{:<16}{}; log: {} error lines, {} sanitizer lines\n", "",
               f.died          ? fmt::format("exited during the run with status {}", *f.died)
               : f.stop_status ? fmt::format("exit status {} after SIGTERM", *f.stop_status)
                               : std::string("killed: no exit within 10 s of SIGTERM"),
               f.log.error_lines, f.log.sanitizer_lines);
  }
  if (v.pass()) {
    fmt::print("{:<16}PASS\n", "result");
  } else {
    fmt::print("{:<16}FAIL\n", "result");
    for (const auto& reason : v.reasons) fmt::print("  - {}\n", reason);
  }
  std::fflush(stdout);
}

nlohmann::json to_json(const soak& s, const std::vector<watched>& servers, const verdict& v,
                       double wall_s) {
  const auto optional = [](const auto& value) {
    return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
  };
  nlohmann::json faults = nlohmann::json::object();
  for (std::size_t k = 0; k < fault_kinds; ++k) faults[fault_names[k]] = s.faults[k];
  nlohmann::json errors = nlohmann::json::object();
  for (std::size_t k = 0; k < error_kinds; ++k) errors[error_names[k]] = s.errors[k];
  nlohmann::json server_list = nlohmann::json::array();
  for (const auto& w : servers) {
    const auto& f = w.figures;
    server_list.push_back({{"name", w.process.name()},
                           {"fds",
                            {{"start", optional(f.fds_start)},
                             {"warm", optional(f.fds_warm)},
                             {"end", optional(f.fds_end)},
                             {"max", f.fds_max}}},
                           {"rss_kb",
                            {{"start", optional(f.rss_start)},
                             {"warm", optional(f.rss_warm)},
                             {"warmup_peak", f.rss_warmup_peak},
                             {"baseline", optional(f.rss_baseline())},
                             {"end", optional(f.rss_end)},
                             {"growth_pct", optional(f.rss_growth_pct())},
                             {"max", f.rss_max}}},
                           {"died", optional(f.died)},
                           {"stop_status", optional(f.stop_status)},
                           {"log_error_lines", f.log.error_lines},
                           {"log_sanitizer_lines", f.log.sanitizer_lines}});
  }
  return {
      {"duration_s", s.opts.duration_s},
      {"warmup_s", s.opts.warmup_s},
      {"load_s", s.loaded_s},
      {"wall_s", wall_s},
      {"seed", s.opts.seed},
      {"echo",
       {{"messages", s.echo_total()},
        {"tcp", s.echo_messages[0]},
        {"unix", s.echo_messages[1]},
        {"udp", s.echo_messages[2]},
        {"bytes_verified", s.echo_bytes}}},
      {"chat", {{"sent", s.chat_sent}, {"delivered", s.chat_delivered}, {"rounds", s.chat_rounds}}},
      {"connections", s.connections},
      {"faults", faults},
      {"fault_total", s.fault_total()},
      {"errors", errors},
      {"error_total", s.error_total()},
      {"servers", server_list},
      {"reasons", v.reasons},
      {"pass", v.pass()}};
}

// ---------------------------------------------------------------------------------------------
// The global deadline: whatever happens, the run ends.

class watchdog {
 public:
  watchdog(clock_type::duration limit, std::vector<pid_t> servers)
      : thread_([this, limit, servers] {
          std::unique_lock lock(mutex_);
          if (done_cv_.wait_for(lock, limit, [this] { return done_; })) return;
          std::fprintf(stderr,
                       "coronet_soak: FAIL: still running at the global deadline; killing the "
                       "servers\n");
          for (const auto pid : servers) ::kill(pid, SIGKILL);
          std::_Exit(1);
        }) {}
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;
  ~watchdog() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    done_cv_.notify_one();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
  std::thread thread_;  // last: started once the rest is ready
};

// A fresh directory for the Unix socket and the servers' logs, removed at the end.
class temp_dir {
 public:
  temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "coronet-soak-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::system_error(errno, std::system_category(), "mkdtemp");
    }
    path_ = pattern;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// The endpoint in a ready line, "listening <kind> <where>".
coronet::endpoint ready_endpoint(const std::string& line, const std::string& kind) {
  const std::string prefix = "listening " + kind + " ";
  if (line.rfind(prefix, 0) != 0) {
    throw std::runtime_error(fmt::format("expected a '{}...' ready line, got '{}'", prefix, line));
  }
  const auto where = line.substr(prefix.size());
  auto ep =
      kind == "unix" ? coronet::endpoint::unix_domain(where) : coronet::endpoint::parse(where);
  if (!ep) throw std::runtime_error(fmt::format("unreadable ready line '{}'", line));
  return *ep;
}

std::uint64_t read_sysctl(const char* path) {
  std::ifstream in(path);
  std::uint64_t value = 0;
  in >> value;
  return value;
}

int run(const settings& opts) {
  const auto wall_start = clock_type::now();
  temp_dir dir;
  const auto socket_path = (dir.path() / "echo.sock").string();
  std::vector<std::string> echo_args = {
      "--tcp",     "127.0.0.1:0", "--udp", "127.0.0.1:0",    "--unix",
      socket_path, "--threads",   "2",     "--idle-timeout", fmt::format("{}", opts.echo_idle_s)};
  echo_args.insert(echo_args.end(), opts.echo_server_args.begin(), opts.echo_server_args.end());
  std::optional<server_process> echo, chat;
  auto s = std::make_unique<soak>(opts);
  try {
    // Named after the programs, so that a stand-in (a test's faulty server) is named as such.
    const auto name = [](const std::string& path) {
      return std::filesystem::path(path).filename().string();
    };
    echo.emplace(name(opts.echo_server), opts.echo_server, echo_args,
                 dir.path() / "echo_server.log");
    chat.emplace(name(opts.chat_server), opts.chat_server,
                 std::vector<std::string>{"--tcp", "127.0.0.1:0", "--threads", "2"},
                 dir.path() / "chat_server.log");
    const auto echo_ready = echo->ready_lines(3, 10s);
    s->echo_tcp = ready_endpoint(echo_ready[0], "tcp");
    s->echo_udp = ready_endpoint(echo_ready[1], "udp");
    s->echo_unix = ready_endpoint(echo_ready[2], "unix");
    s->chat_tcp = ready_endpoint(chat->ready_lines(1, 10s)[0], "tcp");
  } catch (const std::exception& e) {
    std::cerr << "coronet_soak: cannot start the servers: " << e.what() << "\n";
    for (auto* p : {&echo, &chat}) {
      if (*p) std::cerr << "  " << (*p)->name() << "'s log:\n" << (*p)->log_tail(20);
    }
    return 1;
  }
  // A send to a closed socket fails with EPIPE here instead of ending the soak (the servers
  // were given the default action back when they started).
  std::signal(SIGPIPE, SIG_IGN);
  s->big_datagrams = read_sysctl("/proc/sys/net/core/rmem_max") >= 1024 * 1024;
  fmt::print(
      "coronet_soak: {:.0f} s ({:.0f} s warm-up), seed {}; {} pid {} (tcp {}, udp {}, unix {}), "
      "{} pid {} (tcp {}); {} echo clients, {} chat clients in {} rooms\n",
      opts.duration_s, opts.warmup_s, opts.seed, echo->name(), echo->pid(), s->echo_tcp.to_string(),
      s->echo_udp.to_string(), socket_path, chat->name(), chat->pid(), s->chat_tcp.to_string(),
      opts.echo_connections, opts.chat_clients, opts.rooms);
  std::fflush(stdout);

  const auto limit = std::chrono::duration_cast<clock_type::duration>(
                         std::chrono::duration<double>(opts.duration_s)) +
                     watchdog_margin;
  watchdog guard(limit, {echo->pid(), chat->pid()});
  std::vector<watched> servers{{*echo, {}}, {*chat, {}}};
  {
    asio::io_context context;  // after s: the frames it destroys at the end may touch s
    s->executor = context.get_executor();
    s->started = clock_type::now();
    asio::co_spawn(context, timeline(*s, servers), asio::detached);
    asio::co_spawn(context, monitor(*s, servers), asio::detached);
    context.run_for(limit);
  }

  for (auto& w : servers) {
    if (!w.figures.died) w.figures.stop_status = w.process.stop(10s);
    w.figures.log = w.process.scan_log();
  }
  const auto wall_s = std::chrono::duration<double>(clock_type::now() - wall_start).count();
  const auto v = judge(*s, servers);
  print_summary(*s, servers, v, wall_s);
  if (!v.pass()) {
    for (const auto& w : servers) {
      const auto tail = w.process.log_tail(10);
      if (!tail.empty()) fmt::print("{}'s log, last lines:\n{}", w.process.name(), tail);
    }
  }
  if (!opts.json_path.empty()) {
    std::ofstream out(opts.json_path);
    out << to_json(*s, servers, v, wall_s).dump(2) << '\n';
    if (!out) {
      std::cerr << "coronet_soak: cannot write " << opts.json_path << "\n";
      return 1;
    }
  }
  return v.pass() ? 0 : 1;
}

}  // namespace
}  // namespace coronet_soak

int main(int argc, char** argv) {
  using namespace coronet_soak;
  CLI::App app(
      "coronet_soak: echo_server and chat_server under mixed load with faults; fails on any "
      "error, descriptor growth or memory growth",
      "coronet_soak");
  settings opts;
  std::error_code ignored;
  const auto bin = std::filesystem::read_symlink("/proc/self/exe", ignored).parent_path();
  opts.echo_server = (bin / "echo_server").string();
  opts.chat_server = (bin / "chat_server").string();
  opts.seed = std::random_device{}();
  app.add_option("--duration", opts.duration_s, "seconds of load, warm-up included (default 300)")
      ->check(CLI::Range(5.0, 86400.0));
  auto* warmup = app.add_option("--warmup", opts.warmup_s,
                                "seconds of load before the first quiescent point (default 15% "
                                "of --duration, at least 5)")
                     ->check(CLI::Range(1.0, 86400.0));
  app.add_option("--echo-server", opts.echo_server, "the echo server (default: next to this)")
      ->type_name("PATH");
  app.add_option("--chat-server", opts.chat_server, "the chat server (default: next to this)")
      ->type_name("PATH");
  app.add_option("--echo-server-arg", opts.echo_server_args,
                 "one more argument for the echo server (repeatable; --echo-server-arg=--x=1)")
      ->type_name("ARG")
      ->allow_extra_args(false);
  app.add_option("--echo-connections", opts.echo_connections,
                 "concurrent well-behaved echo clients (default 64)")
      ->check(CLI::Range(std::size_t{8}, std::size_t{1000}));
  app.add_option("--chat-clients", opts.chat_clients, "chat clients in the rooms (default 24)")
      ->check(CLI::Range(std::size_t{2}, std::size_t{500}));
  app.add_option("--rooms", opts.rooms, "chat rooms (default 4)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{50}));
  app.add_option("--echo-idle-timeout", opts.echo_idle_s,
                 "echo_server's --idle-timeout, which closes the silent slow clients (default 10)")
      ->type_name("SECS")
      ->check(CLI::Range(1.0, 600.0));
  app.add_option("--rss-tolerance", opts.rss_tolerance_pct,
                 "percent of RSS growth allowed from the warm-up to the end (default 10)")
      ->check(CLI::Range(0.0, 10000.0));
  app.add_option("--settle", opts.settle_s,
                 "seconds each quiescent point waits at most for a server's descriptor count "
                 "to settle (default 15)")
      ->type_name("SECS")
      ->check(CLI::Range(2.5, 60.0));
  app.add_option("--seed", opts.seed, "seed for the load's choices (default: random, printed)");
  app.add_option("--json", opts.json_path, "also write the summary as one JSON object here")
      ->type_name("FILE");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "coronet_soak: " << e.what() << "\n\n" << app.help();
    return 2;
  }
  if (warmup->count() == 0) opts.warmup_s = default_warmup(opts.duration_s);
  if (opts.warmup_s + 2.0 > opts.duration_s) {
    std::cerr << "coronet_soak: --warmup " << opts.warmup_s
              << " leaves less than 2 s of load after it in --duration " << opts.duration_s << "\n";
    return 2;
  }
  if (opts.chat_clients < 2 * opts.rooms) {
    std::cerr << "coronet_soak: --chat-clients must be at least 2 per room\n";
    return 2;
  }
  (void)coronet::raise_open_file_limit();
  try {
    return run(opts);
  } catch (const std::exception& e) {
    std::cerr << "coronet_soak: " << e.what() << "\n";
    return 1;
  }
}
