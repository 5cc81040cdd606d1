#pragma once
// runtime: a pool of threads, one io_context each, that a server spreads its connections over.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>

#include "coronet/metrics.hpp"
#include "coronet/suspended_operation.hpp"
#include "coronet/timeout.hpp"

namespace coronet {

namespace detail {
struct thread_observer;
}  // namespace detail

/// How a runtime is made; fill with designated initialisers: `{.threads = 4, .observe = true}`.
struct runtime_options {
  /// How many threads; nullopt: one per hardware thread.
  std::optional<std::size_t> threads = std::nullopt;
  /// Whether its threads keep counters (metrics()) and record what each operation of a coronet
  /// socket or timer waits on (suspended_operations()). It costs each operation a few counter
  /// updates and a read of the coarse clock (benchmarks/README.md, "Observation").
  bool observe = false;
  /// A promise that while the runtime runs, every socket (and any other Asio I/O object) on
  /// context k is created, used and closed only on thread k: a program that builds its servers
  /// and sockets before start() or run(), and from then on only in coroutines on their own
  /// contexts. coronet's servers keep it (a connection is accepted as a bare descriptor and
  /// registered by the thread that serves it). The contexts then skip the per-socket locks of
  /// Asio's reactor (ASIO_CONCURRENCY_HINT_UNSAFE_IO): fewer instructions per operation
  /// (benchmarks/README.md). Breaking the promise is a data race.
  bool unlocked_io = false;
};

/// N threads, each running an io_context of its own: the threading model of coronet's
/// servers. A connection lives on one context for its whole life, so its coroutines never run
/// on two threads at once and need no locks; the threads share nothing but what a program
/// shares on purpose. (One io_context run by many threads would make every handler contend on
/// one queue; one per thread is several times faster, and muduo and Seastar are built so.)
///
/// Contexts are numbered 0 to size() - 1; thread k runs context k (with run(), thread 0 is
/// the caller's). spawn() starts a coroutine
/// on the next context in turn (round-robin) or on a chosen one; an exception escaping it is
/// logged, never lost. Each context is kept running while idle until stop().
///
/// Stopping: stop() ends every thread as soon as the handler it runs returns; coroutines not
/// finished then are destroyed with the runtime, closing their sockets. The graceful way is
/// handle_signals(graceful_stop): on SIGINT or SIGTERM it runs `graceful_stop()` (stop
/// accepting, let sessions finish), then stop(); a second signal stops at once.
///
/// An exception thrown by a plain handler (not a coroutine spawned through coronet) is caught
/// on its thread, logged at error level, and the thread goes on running its context.
///
/// Thread safety: size(), executor(), context(), next_index(), next_executor(), spawn() and
/// stop() are safe from any thread; start(), run(), join() and handle_signals() belong to the
/// thread that owns the runtime (the one that constructs it), never to one of its own threads.
///
/// Example:
///
///     coronet::runtime runtime;  // one thread per core
///     auto server = coronet::tcp_server::bind(runtime, endpoint, echo);
///     runtime.handle_signals([&] { return server.stop(std::chrono::seconds(1)); });
///     runtime.run();  // until SIGINT/SIGTERM and the graceful stop
class runtime {
 public:
  /// One thread per hardware thread (std::thread::hardware_concurrency(), at least 1).
  runtime();

  /// `threads` threads. Throws std::invalid_argument when `threads` is 0.
  explicit runtime(std::size_t threads);

  /// As `options` says. Throws std::invalid_argument when `options.threads` is 0.
  explicit runtime(runtime_options options);

  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  /// stop(), join(), then destroys every coroutine still unfinished on any context, which
  /// closes their sockets. Every context outlives every coroutine frame, so a frame that
  /// touches another context on its way out is safe.
  ~runtime();

  /// How many threads (and contexts). Safe from any thread.
  std::size_t size() const noexcept { return contexts_.size(); }

  /// Context `index`'s executor. Throws std::out_of_range for a bad index. Safe from any thread.
  asio::any_io_executor executor(std::size_t index) const;

  /// Context `index`. Throws std::out_of_range for a bad index. Safe from any thread (the
  /// io_context's own rules apply to what is done with it).
  asio::io_context& context(std::size_t index);

  /// The next index in round-robin order. Safe from any thread.
  std::size_t next_index() noexcept;

  /// The next context's executor in round-robin order. Safe from any thread.
  asio::any_io_executor next_executor() noexcept;

  /// Starts `task` on the next context in turn; `name` prefixes what is logged if it throws.
  /// Safe from any thread.
  void spawn(asio::awaitable<void> task, std::string name);

  /// Starts `task` on context `index`. Throws std::out_of_range for a bad index. Safe from any
  /// thread.
  void spawn(std::size_t index, asio::awaitable<void> task, std::string name);

  /// Starts a thread for every context, context 0 included, and returns: for a program whose
  /// own thread has other work (run() is the usual way). Throws std::logic_error when the
  /// runtime has already been started: a runtime runs once. Only from the owning thread.
  void start();

  /// Waits until every thread has ended (after stop()). Only from the owning thread.
  void join();

  /// Runs context 0 on the calling thread and the others on threads of their own; returns
  /// once the runtime has stopped and every thread has ended. Only from the owning thread.
  void run();

  /// Makes every thread end as soon as the handler it is running returns. Idempotent; safe from
  /// any thread, a runtime thread included.
  void stop() noexcept;

  /// Whether stop() has been called. Safe from any thread.
  bool stopped() const noexcept { return stopped_.load(std::memory_order_acquire); }

  /// Whether the runtime observes (runtime_options::observe). Safe from any thread.
  bool observing() const noexcept { return observe_; }

  /// Its counters now, per thread and summed, each read without stopping anything; all 0
  /// unless it observes. Safe from any thread.
  metrics_snapshot metrics() const;

  /// Every operation its coroutines wait on now, with where each is awaited and since when.
  /// Each thread lists its own between two handlers; a thread that does not answer within
  /// `limit` (busy in one handler all that time) is named in `unanswered`. Await it from any
  /// executor while the runtime runs; empty unless it observes. Safe from any thread.
  asio::awaitable<suspended_report> suspended_operations(
      timeout limit = std::chrono::seconds(1)) const;

  /// Internal, for coronet's servers: thread `index`'s observer, or nullptr unless the runtime
  /// observes.
  detail::thread_observer* observer_of(std::size_t index) const noexcept;

  /// Wires SIGINT and SIGTERM to a graceful stop: the first runs `graceful_stop()` on context 0
  /// and, when it has finished (or thrown: logged), calls stop(); a second signal calls stop()
  /// at once. Without `graceful_stop`, the first signal calls stop(). Call before start(),
  /// from the owning thread, at most once.
  void handle_signals(std::function<asio::awaitable<void>()> graceful_stop = {});

  /// The same for a graceful stop whose coroutine returns a value, which is ignored:
  /// `runtime.handle_signals([&] { return server.stop(std::chrono::seconds(1)); })`.
  template <class GracefulStop>
  requires(!std::is_same_v<std::invoke_result_t<GracefulStop&>,
                           asio::awaitable<void>>) void handle_signals(GracefulStop graceful_stop) {
    handle_signals(std::function<asio::awaitable<void>()>(
        [stop = std::move(graceful_stop)]() -> asio::awaitable<void> { (void)co_await stop(); }));
  }

 private:
  // asio::io_context with execution_context::shutdown() reachable: ~runtime() shuts every
  // context down (destroying pending coroutine frames) before it destroys any of them.
  struct thread_context;

  void start_from(std::size_t first);
  void run_thread(std::size_t index, bool own_thread);

  std::vector<std::unique_ptr<thread_context>> contexts_;
  std::vector<std::thread> threads_;
  std::atomic<std::size_t> next_{0};
  std::atomic<bool> stopped_{false};
  bool started_ = false;
  bool observe_ = false;
  struct signal_state;
  std::shared_ptr<signal_state> signals_;
};

}  // namespace coronet
