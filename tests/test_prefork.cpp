// run_prefork: the supervisor and its workers, in a child process of the test, each worker
// reporting what it does on a shared pipe.
#include <doctest/doctest.h>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include "coronet/prefork.hpp"

using namespace std::chrono_literals;
using coronet::prefork_options;
using coronet::prefork_worker;

namespace {

using clock_type = std::chrono::steady_clock;

// Writes one line to the report pipe: one write(2) of less than PIPE_BUF, so lines from
// several workers never interleave.
void report(int fd, const std::string& line) {
  const std::string text = line + "\n";
  (void)!::write(fd, text.data(), text.size());
}

// A worker that reports "up INDEX PID", says it is ready and waits for SIGTERM, then reports
// "stopped INDEX" and returns 0.
int serve_until_sigterm(prefork_worker& self, int report_fd) {
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  ::sigprocmask(SIG_BLOCK, &term, nullptr);
  report(report_fd, "up " + std::to_string(self.index()) + " " + std::to_string(::getpid()));
  self.ready();
  int signal = 0;
  ::sigwait(&term, &signal);
  report(report_fd, "stopped " + std::to_string(self.index()));
  return 0;
}

// run_prefork() in a child process of the test; the lines its workers and on_ready report.
class pool_process {
 public:
  using worker_type = std::function<int(prefork_worker&, int report_fd)>;

  pool_process(const prefork_options& options, const worker_type& worker) {
    std::array<int, 2> fds{};
    if (::pipe(fds.data()) != 0) throw std::system_error(errno, std::system_category(), "pipe");
    pid_ = ::fork();
    if (pid_ < 0) throw std::system_error(errno, std::system_category(), "fork");
    if (pid_ == 0) {
      ::close(fds[0]);
      const int out = fds[1];
      int code = 100;
      try {
        code = coronet::run_prefork(
            options, [&](prefork_worker& self) { return worker(self, out); },
            [out] { report(out, "pool ready"); });
      } catch (...) {
        code = 101;
      }
      std::_Exit(code);  // not the test's exit: no doctest report from this process
    }
    ::close(fds[1]);
    lines_fd_ = fds[0];
  }
  pool_process(const pool_process&) = delete;
  pool_process& operator=(const pool_process&) = delete;
  ~pool_process() {
    if (!status_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(lines_fd_);
  }

  // The next reported line; nullopt at end of file or when `limit` passes.
  std::optional<std::string> next_line(std::chrono::milliseconds limit) {
    const auto deadline = clock_type::now() + limit;
    for (;;) {
      if (const auto end = pending_.find('\n'); end != std::string::npos) {
        std::string line = pending_.substr(0, end);
        pending_.erase(0, end + 1);
        return line;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{lines_fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      std::array<char, 512> buffer{};
      const auto n = ::read(lines_fd_, buffer.data(), buffer.size());
      if (n <= 0) return std::nullopt;
      pending_.append(buffer.data(), static_cast<std::size_t>(n));
    }
  }

  // The next line that starts with `prefix`, skipping others.
  std::optional<std::string> next_line_starting(const std::string& prefix,
                                                std::chrono::milliseconds limit) {
    const auto deadline = clock_type::now() + limit;
    while (clock_type::now() < deadline) {
      auto line = next_line(
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now()));
      if (!line) return std::nullopt;
      if (line->rfind(prefix, 0) == 0) return line;
    }
    return std::nullopt;
  }

  void signal(int s) { ::kill(pid_, s); }

  // run_prefork()'s result, or 128 + signal; nullopt if it still runs after `limit`.
  std::optional<int> wait(std::chrono::milliseconds limit) {
    const auto deadline = clock_type::now() + limit;
    while (!status_) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (clock_type::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(10ms);
    }
    return status_;
  }

  pid_t pid() const noexcept { return pid_; }

 private:
  pid_t pid_ = -1;
  int lines_fd_ = -1;
  std::string pending_;
  std::optional<int> status_;
};

// "up 1 4242" -> {1, 4242}.
std::pair<std::size_t, pid_t> parse_up(const std::string& line) {
  std::istringstream in(line);
  std::string word;
  std::size_t index = 0;
  pid_t pid = 0;
  in >> word >> index >> pid;
  REQUIRE(word == "up");
  return {index, pid};
}

bool process_gone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

bool gone_within(pid_t pid, std::chrono::milliseconds limit) {
  const auto deadline = clock_type::now() + limit;
  while (clock_type::now() < deadline) {
    if (process_gone(pid)) return true;
    std::this_thread::sleep_for(10ms);
  }
  return process_gone(pid);
}

}  // namespace

TEST_CASE("run_prefork: on_ready runs once every worker is ready - and SIGTERM ends all with 0") {
  pool_process pool({.workers = 3}, serve_until_sigterm);
  std::map<std::size_t, pid_t> workers;
  for (int i = 0; i < 3; ++i) {
    const auto line = pool.next_line(5s);
    REQUIRE(line);
    workers.insert(parse_up(*line));
  }
  CHECK(pool.next_line(5s) == "pool ready");  // after all three, and only once
  REQUIRE(workers.size() == 3);
  CHECK(workers.begin()->first == 0);
  CHECK(workers.rbegin()->first == 2);
  std::set<pid_t> pids;
  for (const auto& [index, pid] : workers) pids.insert(pid);
  CHECK(pids.size() == 3);
  CHECK(pids.count(pool.pid()) == 0);

  pool.signal(SIGTERM);
  std::set<std::string> stopped;
  for (int i = 0; i < 3; ++i) {
    const auto line = pool.next_line(5s);
    REQUIRE(line);
    stopped.insert(*line);
  }
  CHECK(stopped == std::set<std::string>{"stopped 0", "stopped 1", "stopped 2"});
  CHECK(pool.wait(5s) == 0);
  CHECK(pool.next_line(1s) == std::nullopt);  // nothing more: no restart after the stop
  for (const pid_t pid : pids) CHECK(gone_within(pid, 2s));
}

TEST_CASE("run_prefork: a killed worker is started again under its index") {
  pool_process pool({.workers = 2}, serve_until_sigterm);
  std::map<std::size_t, pid_t> workers;
  workers.insert(parse_up(pool.next_line(5s).value()));
  workers.insert(parse_up(pool.next_line(5s).value()));
  REQUIRE(pool.next_line(5s) == "pool ready");
  REQUIRE(workers.size() == 2);

  ::kill(workers.at(1), SIGKILL);
  const auto again = parse_up(pool.next_line_starting("up", 5s).value());
  CHECK(again.first == 1);
  CHECK(again.second != workers.at(1));
  CHECK(gone_within(workers.at(1), 2s));

  pool.signal(SIGTERM);
  CHECK(pool.wait(5s) == 0);
  CHECK(gone_within(again.second, 2s));
  CHECK(gone_within(workers.at(0), 2s));
}

TEST_CASE("run_prefork: a worker that fails before the pool is ready - its code - others stop") {
  pool_process pool({.workers = 3}, [](prefork_worker& self, int out) {
    if (self.index() == 1) return 3;  // as a server whose bind failed
    return serve_until_sigterm(self, out);
  });
  CHECK(pool.wait(5s) == 3);
  // on_ready never ran, and every other worker that started is gone with the supervisor.
  while (auto line = pool.next_line(1s)) {
    CAPTURE(*line);
    CHECK(*line != "pool ready");
    if (line->rfind("up", 0) == 0) CHECK(gone_within(parse_up(*line).second, 2s));
  }
}

TEST_CASE("run_prefork: a worker that throws exits 1") {
  pool_process pool({.workers = 1}, [](prefork_worker&, int) -> int {
    throw std::runtime_error("no configuration");
  });
  CHECK(pool.wait(5s) == 1);
}

TEST_CASE("run_prefork: a worker still running stop_limit after SIGTERM is killed - result 1") {
  pool_process pool({.workers = 1, .stop_limit = 300ms}, [](prefork_worker& self, int out) -> int {
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    ::sigprocmask(SIG_BLOCK, &term, nullptr);  // and never waits for it
    report(out, "up " + std::to_string(self.index()) + " " + std::to_string(::getpid()));
    self.ready();
    for (;;) ::pause();
  });
  const auto worker = parse_up(pool.next_line(5s).value());
  REQUIRE(pool.next_line(5s) == "pool ready");
  pool.signal(SIGTERM);
  CHECK(pool.wait(5s) == 1);
  CHECK(gone_within(worker.second, 2s));
}

TEST_CASE("run_prefork: a worker that keeps dying at once is restarted with growing delays") {
  pool_process pool(
      {.workers = 1, .longest_restart_delay = 400ms}, [](prefork_worker& self, int out) {
        report(out, "up " + std::to_string(self.index()) + " " + std::to_string(::getpid()));
        self.ready();
        return 1;
      });
  REQUIRE(pool.next_line_starting("pool ready", 5s));
  // Restarts after 100, 200, 400, 400, ... ms: about 6 more in 2 s. In a tight loop there
  // would be hundreds.
  int starts = 0;
  const auto until = clock_type::now() + 2s;
  while (clock_type::now() < until) {
    auto line = pool.next_line(
        std::chrono::duration_cast<std::chrono::milliseconds>(until - clock_type::now()));
    if (line && line->rfind("up", 0) == 0) ++starts;
  }
  CHECK(starts >= 3);
  CHECK(starts <= 8);
  pool.signal(SIGTERM);
  CHECK(pool.wait(5s).has_value());
}

TEST_CASE("run_prefork: a stop signal during a worker's exit does not cut it short") {
  pool_process pool({.workers = 1}, [](prefork_worker& self, int out) {
    report(out, "up " + std::to_string(self.index()) + " " + std::to_string(::getpid()));
    self.ready();
    // Output that only the exit flushes, and an exit handler that says it runs (the worker
    // has returned by then) and takes a while.
    FILE* buffered = ::fdopen(::dup(out), "w");
    std::setvbuf(buffered, nullptr, _IOFBF, BUFSIZ);
    std::fputs("flushed at exit\n", buffered);
    static int exit_report_fd = -1;
    exit_report_fd = out;
    std::atexit([] {
      report(exit_report_fd, "exiting");
      std::this_thread::sleep_for(500ms);
    });
    return 0;
  });
  REQUIRE(pool.next_line_starting("exiting", 5s));
  pool.signal(SIGTERM);  // passed on while the worker's exit handler runs
  CHECK(pool.next_line_starting("flushed at exit", 5s));
  CHECK(pool.wait(5s) == 0);
}

TEST_CASE("run_prefork: the workers get SIGTERM when the supervisor dies") {
  pool_process pool({.workers = 2}, serve_until_sigterm);
  const auto a = parse_up(pool.next_line(5s).value());
  const auto b = parse_up(pool.next_line(5s).value());
  REQUIRE(pool.next_line(5s) == "pool ready");
  pool.signal(SIGKILL);
  CHECK(pool.wait(5s) == 128 + SIGKILL);
  std::set<std::string> stopped;
  for (int i = 0; i < 2; ++i) {
    if (auto line = pool.next_line(5s)) stopped.insert(*line);
  }
  CHECK(stopped == std::set<std::string>{"stopped 0", "stopped 1"});
  CHECK(gone_within(a.second, 2s));
  CHECK(gone_within(b.second, 2s));
}

TEST_CASE("run_prefork: zero workers and an empty worker are refused") {
  CHECK_THROWS_AS(coronet::run_prefork({.workers = 0}, [](prefork_worker&) { return 0; }, {}),
                  std::invalid_argument);
  CHECK_THROWS_AS(coronet::run_prefork({.workers = 1}, {}, {}), std::invalid_argument);
}

TEST_CASE("run_prefork: SIGUSR1 is passed on to every worker - which go on running") {
  pool_process pool({.workers = 2}, [](prefork_worker& self, int out) {
    sigset_t wanted;
    sigemptyset(&wanted);
    sigaddset(&wanted, SIGTERM);
    sigaddset(&wanted, SIGUSR1);
    ::sigprocmask(SIG_BLOCK, &wanted, nullptr);
    report(out, "up " + std::to_string(self.index()) + " " + std::to_string(::getpid()));
    self.ready();
    for (;;) {
      int signal = 0;
      ::sigwait(&wanted, &signal);
      if (signal == SIGTERM) return 0;
      report(out, "usr1 " + std::to_string(self.index()));
    }
  });
  const auto a = parse_up(pool.next_line(5s).value());
  const auto b = parse_up(pool.next_line(5s).value());
  REQUIRE(pool.next_line(5s) == "pool ready");
  pool.signal(SIGUSR1);
  std::set<std::string> got;
  for (int i = 0; i < 2; ++i) {
    if (auto line = pool.next_line(5s)) got.insert(*line);
  }
  CHECK(got == std::set<std::string>{"usr1 0", "usr1 1"});
  CHECK_FALSE(gone_within(a.second, 100ms));  // still serving, not restarted
  CHECK_FALSE(gone_within(b.second, 100ms));
  pool.signal(SIGTERM);
  CHECK(pool.wait(5s) == 0);
}
