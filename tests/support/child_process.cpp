#include "support/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>

#include <cerrno>
#include <csignal>
#include <ctime>
#include <system_error>
#include <thread>
#include <utility>

namespace coronet::test {
namespace {

using clock_type = std::chrono::steady_clock;

[[noreturn]] void throw_errno(const char* what) {
  throw std::system_error(errno, std::system_category(), what);
}

int remaining_ms(clock_type::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Reads what is available on `fd` into `out`, waiting until `deadline`. Returns false on EOF
// (and closes fd), true when data arrived or time ran out.
bool read_some(int& fd, std::string& out, clock_type::time_point deadline) {
  if (fd < 0) return false;
  pollfd p{fd, POLLIN, 0};
  const int ready = ::poll(&p, 1, remaining_ms(deadline));
  if (ready <= 0) return true;
  char buffer[4096];
  const ssize_t n = ::read(fd, buffer, sizeof buffer);
  if (n > 0) {
    out.append(buffer, static_cast<std::size_t>(n));
    return true;
  }
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  ::close(fd);
  fd = -1;
  return false;
}

}  // namespace

child_process::child_process(const std::string& program, const std::vector<std::string>& args) {
  start(program, args, -1);
}

child_process::child_process(const std::string& program, const std::vector<std::string>& args,
                             const stdin_source& input) {
  int in_fd = -1;
  if (input.path.empty()) {
    int in_pipe[2];
    if (::pipe2(in_pipe, O_CLOEXEC) != 0) throw_errno("pipe");
    in_fd = in_pipe[0];
    stdin_fd_ = in_pipe[1];
  } else {
    in_fd = ::open(input.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (in_fd < 0) throw_errno("open");
  }
  try {
    start(program, args, in_fd);
  } catch (...) {
    ::close(in_fd);
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
    throw;
  }
  ::close(in_fd);  // the child has its own copy
}

void child_process::start(const std::string& program, const std::vector<std::string>& args,
                          int stdin_fd) {
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw_errno("pipe");
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) throw_errno("pipe");

  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(program.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  pid_ = ::fork();
  if (pid_ < 0) throw_errno("fork");
  if (pid_ == 0) {
    if (stdin_fd >= 0) ::dup2(stdin_fd, STDIN_FILENO);
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(err_pipe[1], STDERR_FILENO);
    ::execv(program.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  stdout_fd_ = out_pipe[0];
  stderr_fd_ = err_pipe[0];
}

child_process::~child_process() {
  if (!status_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
  if (stderr_fd_ >= 0) ::close(stderr_fd_);
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
}

std::optional<std::string> child_process::read_line(int& fd, std::string& pending,
                                                    std::chrono::milliseconds timeout) {
  const auto deadline = clock_type::now() + timeout;
  for (;;) {
    const auto newline = pending.find('\n');
    if (newline != std::string::npos) {
      std::string line = pending.substr(0, newline);
      pending.erase(0, newline + 1);
      return line;
    }
    if (clock_type::now() >= deadline) return std::nullopt;
    if (!read_some(fd, pending, deadline)) return std::nullopt;
  }
}

std::optional<std::string> child_process::read_stdout_line(std::chrono::milliseconds timeout) {
  return read_line(stdout_fd_, stdout_pending_, timeout);
}

std::optional<std::string> child_process::read_stderr_line(std::chrono::milliseconds timeout) {
  return read_line(stderr_fd_, stderr_pending_, timeout);
}

std::string child_process::read_all(int& fd, std::string& pending,
                                    std::chrono::milliseconds timeout) {
  const auto deadline = clock_type::now() + timeout;
  while (clock_type::now() < deadline && read_some(fd, pending, deadline)) {
  }
  return std::exchange(pending, {});
}

std::string child_process::read_all_stdout(std::chrono::milliseconds timeout) {
  return read_all(stdout_fd_, stdout_pending_, timeout);
}

std::string child_process::read_all_stderr(std::chrono::milliseconds timeout) {
  return read_all(stderr_fd_, stderr_pending_, timeout);
}

bool child_process::write_stdin(std::string_view data) {
  if (stdin_fd_ < 0) return false;
  // A child that closed its stdin would have this process killed by SIGPIPE: block it in this
  // thread, and take back the one a failed write left pending.
  sigset_t pipe_signal;
  sigset_t old_mask;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_signal, &old_mask);
  bool ok = true;
  while (!data.empty()) {
    const ssize_t n = ::write(stdin_fd_, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ok = false;
      if (errno == EPIPE) {
        const timespec no_wait{0, 0};
        ::sigtimedwait(&pipe_signal, nullptr, &no_wait);
      }
      break;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  return ok;
}

void child_process::close_stdin() {
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
  stdin_fd_ = -1;
}

void child_process::send_signal(int signal) {
  if (!status_) ::kill(pid_, signal);
}

std::optional<int> child_process::wait(std::chrono::milliseconds timeout) {
  const auto deadline = clock_type::now() + timeout;
  while (!status_) {
    int status = 0;
    const pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (clock_type::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return status_;
}

run_outcome run_to_exit(const std::string& program, const std::vector<std::string>& args,
                        std::chrono::milliseconds timeout) {
  child_process child(program, args);
  run_outcome r;
  r.out = child.read_all_stdout(timeout);
  r.err = child.read_all_stderr(timeout);
  r.exit_code = child.wait(timeout);
  return r;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool has_line(const std::vector<std::string>& lines, std::string_view line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

}  // namespace coronet::test
