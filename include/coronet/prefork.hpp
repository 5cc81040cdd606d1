#pragma once
// prefork: a server run as several worker processes, each with its own runtime, sharing
// SO_REUSEPORT listeners, under a parent that supervises them.

#include <chrono>
#include <cstddef>
#include <functional>

namespace coronet {

/// How run_prefork() runs its workers.
struct prefork_options {
  /// How many worker processes to keep running (at least 1).
  std::size_t workers = 2;
  /// At the start, how long the workers together get to call prefork_worker::ready().
  std::chrono::milliseconds start_limit{10'000};
  /// After a stop signal is passed on, how long the workers get to exit before SIGKILL.
  std::chrono::milliseconds stop_limit{30'000};
  /// The longest wait before restarting a worker that keeps failing within a second of its
  /// start; the wait starts at 100 ms and doubles up to this.
  std::chrono::milliseconds longest_restart_delay{5'000};
};

/// What a worker process knows of the pool.
class prefork_worker {
 public:
  prefork_worker(std::size_t index, int ready_fd) noexcept : index_(index), ready_fd_(ready_fd) {}

  /// 0 .. workers-1. A restarted worker keeps the number of the one it replaces.
  std::size_t index() const noexcept { return index_; }
  /// Tells the parent that this worker serves: call it once its listeners are bound. Later
  /// calls do nothing.
  void ready() noexcept;

 private:
  std::size_t index_;
  int ready_fd_;
};

/// Runs `worker` in options.workers child processes and supervises them until SIGINT or
/// SIGTERM; returns the exit code for the parent process. Each child exits with what `worker`
/// returns (1 when it throws: the exception is logged).
///
/// - `on_ready` runs in the parent once every worker has called ready(): where a program
///   prints its ready lines, once for the whole pool.
/// - A worker that ends while the pool runs (a crash, a kill, or an exit) is logged and
///   started again under the same index: at once, or, while it keeps ending within a second of
///   its start, after a wait that doubles from 100 ms up to longest_restart_delay.
/// - SIGINT and SIGTERM are passed on to every worker (a second one too, for a program that
///   stops at once on the second), and SIGKILL ends any worker still running stop_limit later.
///   SIGUSR1 is passed on as it comes. Once `worker` has returned (or thrown), these signals
///   are blocked in its process: its exit runs the exit handlers and flushes its output
///   whatever comes.
/// - Each worker gets SIGTERM if the parent dies.
///
/// Returns 0 when every worker ended with status 0 (or by the signal passed on) after a stop
/// signal, 1 otherwise. If a worker ends before every worker is ready, the others are stopped
/// and its exit code is returned (1 when it exited with 0 or a signal killed it); 1 if
/// start_limit passes first.
///
/// Errors: throws std::system_error when the parent cannot set up its signal handling or
/// start the first workers; std::invalid_argument for zero workers.
///
/// Thread safety: call it from a process's only thread, before any other thread or
/// io_context exists: fork() copies only the calling thread, and a worker builds its own
/// runtime. It blocks SIGCHLD, SIGINT, SIGTERM and SIGUSR1 in the parent while it runs;
/// the workers start with the signal mask the caller had.
///
/// Example:
///
///     auto port = coronet::reserved_port::bind(coronet::endpoint::parse("127.0.0.1:0").value());
///     return coronet::run_prefork(
///         {.workers = 4},
///         [&](coronet::prefork_worker& w) {
///           port.close();
///           coronet::runtime rt(1);
///           auto server = coronet::tcp_server::bind(rt, port.local_endpoint(), handler,
///                                                   {.placement = coronet::placement::reuse_port});
///           rt.handle_signals([&] { return stop_gracefully(server); });  // co_await stop()
///           w.ready();
///           rt.run();
///           return 0;
///         },
///         [&] { std::cout << "listening " << port.local_endpoint() << std::endl; });
int run_prefork(const prefork_options& options, const std::function<int(prefork_worker&)>& worker,
                const std::function<void()>& on_ready);

}  // namespace coronet
