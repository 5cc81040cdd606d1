#pragma once
// child_process: runs a program of the project with its stdout and stderr on pipes, so a test
// can read its ready line, signal it and collect its exit status, each with a deadline; and,
// when asked, its stdin on a pipe the test writes or on a file.

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace coronet::test {

/// Where a child's stdin comes from, when not from the test process's own stdin.
struct stdin_source {
  /// A pipe the test feeds with write_stdin() and ends with close_stdin().
  static stdin_source pipe() { return {}; }
  /// The file at `path`, opened for reading.
  static stdin_source file(std::string path) { return {std::move(path)}; }

  std::string path;  ///< empty: a pipe
};

class child_process {
 public:
  /// Starts `program` with `args`, its stdin the test process's own; throws std::system_error
  /// when it cannot.
  child_process(const std::string& program, const std::vector<std::string>& args);
  /// The same, with stdin from `input`.
  child_process(const std::string& program, const std::vector<std::string>& args,
                const stdin_source& input);
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  /// Kills the child (SIGKILL) if it still runs, and reaps it.
  ~child_process();

  /// The next line of stdout without its "\n"; nullopt on EOF or when `timeout` passes.
  std::optional<std::string> read_stdout_line(std::chrono::milliseconds timeout);
  /// The same for stderr.
  std::optional<std::string> read_stderr_line(std::chrono::milliseconds timeout);

  /// Everything the child writes to stdout / stderr until it closes them (or `timeout` passes).
  std::string read_all_stdout(std::chrono::milliseconds timeout);
  std::string read_all_stderr(std::chrono::milliseconds timeout);

  /// Writes all of `data` to the child's stdin pipe (stdin_source::pipe() only), blocking while
  /// the pipe is full; false when the child has closed it or there is no pipe. Never raises
  /// SIGPIPE.
  bool write_stdin(std::string_view data);
  /// Closes the stdin pipe: the child reads end of file.
  void close_stdin();

  void send_signal(int signal);

  /// The exit code, or 128 + signal number when killed by a signal; nullopt if it still runs
  /// after `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout);

  pid_t pid() const noexcept { return pid_; }

 private:
  // Forks and execs; `stdin_fd` (when not -1) becomes the child's stdin.
  void start(const std::string& program, const std::vector<std::string>& args, int stdin_fd);
  std::optional<std::string> read_line(int& fd, std::string& pending,
                                       std::chrono::milliseconds timeout);
  std::string read_all(int& fd, std::string& pending, std::chrono::milliseconds timeout);

  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;
  int stdin_fd_ = -1;  // the write end of the child's stdin pipe
  std::string stdout_pending_;
  std::string stderr_pending_;
  std::optional<int> status_;
};

/// What a program printed and how it ended.
struct run_outcome {
  std::optional<int> exit_code;  ///< nullopt: still running when the wait ended
  std::string out;
  std::string err;
};

/// Runs `program` with `args` to its end, collecting stdout and stderr; each step waits at most
/// `timeout`.
run_outcome run_to_exit(const std::string& program, const std::vector<std::string>& args,
                        std::chrono::milliseconds timeout = std::chrono::seconds(5));

/// `text` split at each "\n" (the newline dropped, no empty line after a final one).
std::vector<std::string> lines_of(const std::string& text);

/// Whether `line` is one of `lines`, whole.
bool has_line(const std::vector<std::string>& lines, std::string_view line);

}  // namespace coronet::test
