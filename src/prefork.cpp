#include "coronet/prefork.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <spdlog/fmt/fmt.h>

#include "coronet/log.hpp"

namespace coronet {
namespace {

using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds first_restart_delay{100};
constexpr auto short_life = std::chrono::seconds(1);  // ending sooner counts as failing to start

[[noreturn]] void throw_errno(const char* what) {
  throw std::system_error(errno, std::system_category(), what);
}

// "exited with 3", "killed by signal 9 (Killed)".
std::string describe(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return fmt::format("killed by signal {} ({})", WTERMSIG(status), ::strsignal(WTERMSIG(status)));
  }
  return fmt::format("ended with status {}", status);
}

// One worker's place in the pool, whichever process holds it now.
struct worker_slot {
  std::optional<pid_t> pid;        // empty while the worker is down
  clock_type::time_point started;  // of the current process
  clock_type::time_point restart_at;
  milliseconds restart_delay{0};
  bool ready = false;
};

// The parent's side: a loop over a signalfd (SIGCHLD and the signals to pass on) and the pipe
// the workers announce readiness on.
class supervisor {
 public:
  supervisor(const prefork_options& options, const std::function<int(prefork_worker&)>& worker,
             const std::function<void()>& on_ready)
      : options_(options), worker_(worker), on_ready_(on_ready), slots_(options.workers) {}

  supervisor(const supervisor&) = delete;
  supervisor& operator=(const supervisor&) = delete;

  ~supervisor() {
    for (int fd : {signal_fd_, ready_read_, ready_write_}) {
      if (fd >= 0) ::close(fd);
    }
    if (mask_set_) ::sigprocmask(SIG_SETMASK, &caller_mask_, nullptr);
  }

  int run() {
    set_up();
    start_deadline_ = clock_type::now() + options_.start_limit;
    for (std::size_t k = 0; k < slots_.size(); ++k) {
      if (!start(k)) {
        const int error = errno;
        stop(SIGTERM);
        wait_for_all();
        throw std::system_error(error, std::system_category(), "cannot start a worker process");
      }
    }
    while (!finished()) step();
    return exit_code_;
  }

 private:
  void set_up() {
    sigset_t handled;
    sigemptyset(&handled);
    for (int s : {SIGCHLD, SIGINT, SIGTERM, SIGUSR1}) sigaddset(&handled, s);
    if (::sigprocmask(SIG_BLOCK, &handled, &caller_mask_) != 0) throw_errno("sigprocmask");
    mask_set_ = true;
    signal_fd_ = ::signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK);
    if (signal_fd_ < 0) throw_errno("signalfd");
    std::array<int, 2> pipe_fds{};
    if (::pipe2(pipe_fds.data(), O_CLOEXEC | O_NONBLOCK) != 0) throw_errno("pipe2");
    ready_read_ = pipe_fds[0];
    ready_write_ = pipe_fds[1];
    parent_ = ::getpid();
  }

  // Forks worker k; false (errno set) when fork fails. Never returns in the child.
  bool start(std::size_t k) {
    // Whatever is buffered would otherwise be written twice, once by each process.
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) return false;
    if (pid == 0) run_worker(k);
    auto& slot = slots_[k];
    slot.pid = pid;
    slot.started = clock_type::now();
    slot.ready = false;
    log().info("worker {} started: pid {}", k, pid);
    return true;
  }

  [[noreturn]] void run_worker(std::size_t k) {
    ::close(signal_fd_);
    ::close(ready_read_);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent_) std::_Exit(1);  // the parent died before prctl took effect
    ::sigprocmask(SIG_SETMASK, &caller_mask_, nullptr);
    int code = 1;
    try {
      prefork_worker self(k, ready_write_);
      code = worker_(self);
    } catch (const std::exception& e) {
      log().error("worker {}: {}", k, e.what());
    } catch (...) {
      log().error("worker {}: an exception that is not a std::exception", k);
    }
    // The worker is ending: a stop signal now asks for what is already under way, and its
    // default action would cut the exit short, before the exit handlers run and the buffered
    // output is flushed.
    sigset_t passed_on;
    sigemptyset(&passed_on);
    for (int s : {SIGINT, SIGTERM, SIGUSR1}) sigaddset(&passed_on, s);
    ::sigprocmask(SIG_BLOCK, &passed_on, nullptr);
    std::exit(code);
  }

  bool finished() const {
    return stopping_ &&
           std::none_of(slots_.begin(), slots_.end(), [](const auto& s) { return s.pid; });
  }

  // Waits for the next signal, readiness or deadline, and handles it.
  void step() {
    std::array<pollfd, 2> fds{pollfd{signal_fd_, POLLIN, 0}, pollfd{ready_read_, POLLIN, 0}};
    const auto deadline = next_deadline();
    int wait_ms = -1;
    if (deadline) {
      const auto left = std::chrono::ceil<milliseconds>(*deadline - clock_type::now());
      wait_ms = static_cast<int>(std::clamp<milliseconds::rep>(left.count(), 0, 60'000));
    }
    if (::poll(fds.data(), fds.size(), wait_ms) < 0 && errno != EINTR) throw_errno("poll");
    read_signals();
    read_ready();
    on_time(clock_type::now());
  }

  std::optional<clock_type::time_point> next_deadline() const {
    std::optional<clock_type::time_point> next;
    const auto consider = [&next](clock_type::time_point t) {
      if (!next || t < *next) next = t;
    };
    if (stopping_) {
      consider(kill_at_);
      return next;
    }
    if (!all_ready_) consider(start_deadline_);
    for (const auto& s : slots_) {
      if (!s.pid) consider(s.restart_at);
    }
    return next;
  }

  void read_signals() {
    signalfd_siginfo info{};
    while (::read(signal_fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
      const int signal = static_cast<int>(info.ssi_signo);
      if (signal == SIGCHLD) {
        reap();
      } else if (signal == SIGINT || signal == SIGTERM) {
        log().info("signal {}: stopping the workers", signal);
        stop(signal);
      } else {
        pass_on(signal);
      }
    }
  }

  void read_ready() {
    std::uint32_t k = 0;
    while (::read(ready_read_, &k, sizeof k) == static_cast<ssize_t>(sizeof k)) {
      if (k >= slots_.size() || !slots_[k].pid || slots_[k].ready) continue;
      slots_[k].ready = true;
      log().info("worker {} ready: pid {}", k, *slots_[k].pid);
      if (!all_ready_ && !stopping_ &&
          std::all_of(slots_.begin(), slots_.end(), [](const auto& s) { return s.ready; })) {
        all_ready_ = true;
        if (on_ready_) on_ready_();
      }
    }
  }

  void reap() {
    int status = 0;
    pid_t pid = 0;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      const auto slot =
          std::find_if(slots_.begin(), slots_.end(), [pid](const auto& s) { return s.pid == pid; });
      if (slot == slots_.end()) continue;  // not one of ours
      // A worker that said it was ready and then ended wrote before it exited: take that
      // first, so that it counts as ready.
      read_ready();
      const auto k = static_cast<std::size_t>(slot - slots_.begin());
      slot->pid.reset();
      slot->ready = false;
      ended(k, pid, status);
    }
  }

  void ended(std::size_t k, pid_t pid, int status) {
    auto& slot = slots_[k];
    if (stopping_) {
      const bool clean = (WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
                         (WIFSIGNALED(status) && WTERMSIG(status) == stop_signal_);
      if (!clean) {
        log().warn("worker {} (pid {}) {} while stopping", k, pid, describe(status));
        if (exit_code_ == 0) exit_code_ = 1;
      }
      return;
    }
    if (!all_ready_) {
      log().error("worker {} (pid {}) {} before the pool was ready", k, pid, describe(status));
      exit_code_ = WIFEXITED(status) && WEXITSTATUS(status) != 0 ? WEXITSTATUS(status) : 1;
      stop(SIGTERM);
      return;
    }
    const auto now = clock_type::now();
    if (now - slot.started < short_life) {
      slot.restart_delay =
          std::clamp(slot.restart_delay * 2, first_restart_delay, options_.longest_restart_delay);
    } else {
      slot.restart_delay = milliseconds{0};
    }
    slot.restart_at = now + slot.restart_delay;
    log().warn("worker {} (pid {}) {}; restarting it{}", k, pid, describe(status),
               slot.restart_delay.count() > 0 ? fmt::format(" in {} ms", slot.restart_delay.count())
                                              : std::string());
  }

  void on_time(clock_type::time_point now) {
    if (stopping_) {
      if (now < kill_at_) return;
      for (std::size_t k = 0; k < slots_.size(); ++k) {
        if (!slots_[k].pid) continue;
        log().warn("worker {} (pid {}) still runs {} ms after the stop signal: killing it", k,
                   *slots_[k].pid, options_.stop_limit.count());
        ::kill(*slots_[k].pid, SIGKILL);
      }
      kill_at_ = clock_type::time_point::max();
      return;
    }
    if (!all_ready_ && now >= start_deadline_) {
      log().error("the workers were not all ready within {} ms", options_.start_limit.count());
      exit_code_ = 1;
      stop(SIGTERM);
      return;
    }
    for (std::size_t k = 0; k < slots_.size(); ++k) {
      if (slots_[k].pid || now < slots_[k].restart_at) continue;
      if (!start(k)) {
        log().error("cannot restart worker {}: {}; trying again in {} ms", k, std::strerror(errno),
                    options_.longest_restart_delay.count());
        slots_[k].restart_at = now + options_.longest_restart_delay;
      }
    }
  }

  // Passes `signal` on to every worker; the first call also starts the stop's clock.
  void stop(int signal) {
    if (!stopping_) {
      stopping_ = true;
      stop_signal_ = signal;
      kill_at_ = clock_type::now() + options_.stop_limit;
    }
    pass_on(signal);
  }

  void pass_on(int signal) {
    for (const auto& s : slots_) {
      if (s.pid) ::kill(*s.pid, signal);
    }
  }

  // Only when the first workers cannot all be started: blocks until the started ones end.
  void wait_for_all() {
    for (auto& s : slots_) {
      if (!s.pid) continue;
      int status = 0;
      ::waitpid(*s.pid, &status, 0);
      s.pid.reset();
    }
  }

  const prefork_options& options_;
  const std::function<int(prefork_worker&)>& worker_;
  const std::function<void()>& on_ready_;
  std::vector<worker_slot> slots_;
  sigset_t caller_mask_{};
  bool mask_set_ = false;
  int signal_fd_ = -1;
  int ready_read_ = -1;
  int ready_write_ = -1;
  pid_t parent_ = -1;
  clock_type::time_point start_deadline_;
  bool all_ready_ = false;
  bool stopping_ = false;
  int stop_signal_ = SIGTERM;
  clock_type::time_point kill_at_ = clock_type::time_point::max();
  int exit_code_ = 0;
};

}  // namespace

void prefork_worker::ready() noexcept {
  if (ready_fd_ < 0) return;
  const auto k = static_cast<std::uint32_t>(index_);
  // One write of four bytes: atomic on a pipe, whatever the other workers write.
  (void)!::write(ready_fd_, &k, sizeof k);
  ::close(ready_fd_);
  ready_fd_ = -1;
}

int run_prefork(const prefork_options& options, const std::function<int(prefork_worker&)>& worker,
                const std::function<void()>& on_ready) {
  if (options.workers == 0) throw std::invalid_argument("coronet::run_prefork: zero workers");
  if (!worker) throw std::invalid_argument("coronet::run_prefork: the worker is empty");
  supervisor pool(options, worker, on_ready);
  return pool.run();
}

}  // namespace coronet
