#pragma once
// task_group: coroutines that can be stopped together, the graceful stop of a server.

#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <string>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

#include "coronet/task.hpp"
#include "coronet/timeout.hpp"

namespace coronet {

/// A set of running coroutines (a server's sessions) that stop together: Asio awaitables and
/// coronet tasks alike.
///
/// spawn() starts a task and keeps track of it; an exception escaping a task is logged, never
/// lost. stop(grace) is the graceful stop: having stopped accepting, the caller lets the live
/// tasks finish on their own for up to `grace`, then stop() cancels those still running,
/// through their cancellation slots (the operation each one waits on ends with
/// std::errc::operation_canceled), and waits until every task has ended. Each task's frame,
/// and so its sockets, is gone by then: nothing is leaked.
///
/// A task spawned once stop() has begun is cancelled at once. A task_group may be destroyed
/// while tasks run (they are cancelled and end on their own), but stop() is the way to know
/// they have ended.
///
/// Thread safety: constructing one is safe from any thread; every other member, the destructor
/// included, only from the group's executor, where its tasks run and which must run one handler
/// at a time (an io_context run by one thread, or a strand).
///
/// Example:
///
///     coronet::task_group sessions(ex);
///     while (auto stream = co_await listener.accept())
///       sessions.spawn(echo(std::move(*stream)), "echo");
///     // on SIGTERM: listener.close(); then
///     std::size_t cut = co_await sessions.stop(std::chrono::seconds(1));
class task_group {
 public:
  explicit task_group(const asio::any_io_executor& executor);
  task_group(const task_group&) = delete;
  task_group& operator=(const task_group&) = delete;
  ~task_group();

  /// Starts `task` on the group's executor. `name` prefixes what is logged if it throws.
  void spawn(asio::awaitable<void> task, std::string name);

  /// Starts `task` on the group's executor and, when it ends, calls `on_end` there with the
  /// exception that escaped it (null if none) instead of logging it: for a caller that knows
  /// better what to say, or has something to undo. If the task's frame is destroyed before it
  /// finishes (its context shut down), `on_end` is destroyed without being called. An
  /// exception escaping `on_end` is logged.
  void spawn(asio::awaitable<void> task, std::function<void(std::exception_ptr)> on_end);

  /// Starts a coronet::task at once, on the calling thread (the group's executor, which must
  /// be an io_context's), until it first suspends; otherwise as the forms above. Cancelling it
  /// ends the lean_stream operation it waits on with std::errc::operation_canceled. Throws
  /// std::invalid_argument when the group's executor is not an io_context's.
  void spawn(coronet::task<void> task, std::string name);
  void spawn(coronet::task<void> task, std::function<void(std::exception_ptr)> on_end);

  /// How many tasks are still running.
  std::size_t size() const noexcept;

  /// Waits up to `grace` (no_timeout: as long as they take) for every task to end, cancels
  /// those still running, and waits for them to end. Returns how many had to be cancelled.
  asio::awaitable<std::size_t> stop(timeout grace);

 private:
  struct state;
  struct task_end;
  struct lean_task;
  std::shared_ptr<state> state_;
};

}  // namespace coronet
