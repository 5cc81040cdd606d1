#pragma once
// task: coronet's own coroutine type, whose waits on a lean_stream resume its frame directly.

#include <concepts>
#include <coroutine>
#include <exception>
#include <new>
#include <type_traits>
#include <utility>

namespace coronet {

template <class T = void>
class task;

namespace detail {

// An operation a task waits on that can be ended early (a lean_stream's receive or send).
class cancellable_wait {
 public:
  // Ends the wait with std::errc::operation_canceled; the task resumes later, from its
  // executor's queue, never inside this call.
  virtual void cancel() noexcept = 0;

 protected:
  cancellable_wait() = default;
  cancellable_wait(const cancellable_wait&) = default;
  cancellable_wait& operator=(const cancellable_wait&) = default;
  ~cancellable_wait() = default;
};

// What a spawned task and every task it awaits, directly or through others, share: the one
// operation the chain waits on now, and whether it was cancelled. Two plain fields, so that a
// wait costs two stores to record, not a cancellation handler.
struct task_chain {
  cancellable_wait* waiting = nullptr;
  // Once set, every operation started from then on ends at once with operation_canceled.
  bool cancelled = false;

  void cancel() noexcept {
    cancelled = true;
    if (auto* wait = std::exchange(waiting, nullptr)) wait->cancel();
  }
};

// Who spawned a task: told when it ends (after its frame, and so its sockets, are gone).
class task_owner {
 public:
  virtual void task_ended(std::exception_ptr error) noexcept = 0;

 protected:
  task_owner() = default;
  task_owner(const task_owner&) = default;
  task_owner& operator=(const task_owner&) = default;
  ~task_owner() = default;
};

class task_promise_base {
 public:
  std::suspend_always initial_suspend() noexcept { return {}; }

  struct final_awaiter {
    bool await_ready() noexcept { return false; }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> self) noexcept {
      task_promise_base& promise = self.promise();
      if (promise.continuation_) return promise.continuation_;
      // A spawned task: its frame goes first, closing what it owns, then its owner hears.
      task_owner* owner = promise.owner_;
      std::exception_ptr error = std::move(promise.error_);
      self.destroy();
      if (owner != nullptr) owner->task_ended(std::move(error));
      return std::noop_coroutine();
    }
    void await_resume() noexcept {}
  };
  final_awaiter final_suspend() noexcept { return {}; }

  void unhandled_exception() noexcept { error_ = std::current_exception(); }

  // The chain this task belongs to; null only before it starts.
  task_chain* chain() const noexcept { return chain_; }

 protected:
  template <class>
  friend class coronet::task;
  friend void start_task(std::coroutine_handle<task_promise_base>, task_chain&,
                         task_owner&) noexcept;

  std::coroutine_handle<> continuation_;  // the awaiting task; null for a spawned one
  task_chain* chain_ = nullptr;
  task_owner* owner_ = nullptr;  // a spawned task's
  std::exception_ptr error_;
};

template <class T>
class task_promise : public task_promise_base {
 public:
  task_promise() noexcept {}  // the value comes with co_return
  task_promise(const task_promise&) = delete;
  task_promise& operator=(const task_promise&) = delete;
  task<T> get_return_object() noexcept;
  template <class U>
  requires std::convertible_to<U&&, T>
  void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    ::new (static_cast<void*>(&value_)) T(std::forward<U>(value));
    has_value_ = true;
  }
  ~task_promise() {
    if (has_value_) value_.~T();
  }
  T take() {
    if (error_) std::rethrow_exception(error_);
    return std::move(value_);
  }

 private:
  union {
    T value_;
  };
  bool has_value_ = false;
};

template <>
class task_promise<void> : public task_promise_base {
 public:
  task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void take() {
    if (error_) std::rethrow_exception(error_);
  }
};

// A promise of coronet's: the awaiters of tasks and of lean_stream operations need its chain.
template <class Promise>
concept task_promise_type = std::derived_from<Promise, task_promise_base>;

// Starts `root` as a spawned task of `chain`, reporting its end to `owner`. Runs it on the
// calling thread until it first suspends.
inline void start_task(std::coroutine_handle<task_promise_base> root, task_chain& chain,
                       task_owner& owner) noexcept {
  root.promise().chain_ = &chain;
  root.promise().owner_ = &owner;
  root.resume();
}

}  // namespace detail

/// A coroutine of coronet's own: `coronet::task<int> f() { co_return 42; }`.
///
/// Where an `asio::awaitable` waits on a socket through Asio's reactor (an operation object, a
/// completion handler and a trip through the scheduler per wait), a task waiting on a
/// lean_stream is resumed directly by the thread's readiness set when the socket is ready:
/// nothing is allocated per operation, and an idle connection's task holds its own frame and
/// nothing else (benchmarks/README.md, "Tasks and lean streams").
///
/// A task starts when it is awaited (`co_await f()` from another task) or spawned
/// (task_group::spawn, coronet::spawn); an exception escaping it reaches its awaiter, or the
/// spawner's end handler. It can await other tasks and lean_stream operations; it cannot await
/// Asio's awaitables, nor can an asio::awaitable await it.
///
/// Cancellation: a spawned task's group cancels it by ending the operation it waits on with
/// std::errc::operation_canceled; every operation it starts afterwards ends the same way at
/// once.
///
/// Thread safety: a task runs on the thread that spawned it, its whole life.
template <class T>
class [[nodiscard]] task {
 public:
  using promise_type = detail::task_promise<T>;

  task(task&& other) noexcept : frame_(std::exchange(other.frame_, {})) {}
  task& operator=(task&& other) noexcept {
    if (this != &other) {
      if (frame_) frame_.destroy();
      frame_ = std::exchange(other.frame_, {});
    }
    return *this;
  }
  task(const task&) = delete;
  task& operator=(const task&) = delete;
  /// A task never started (or finished, when awaited) is destroyed with its frame.
  ~task() {
    if (frame_) frame_.destroy();
  }

  /// Awaiting a task starts it; the awaiter resumes when it ends, with its value or exception.
  class awaiter {
   public:
    explicit awaiter(std::coroutine_handle<promise_type> child) noexcept : child_(child) {}
    bool await_ready() noexcept { return false; }
    template <detail::task_promise_type Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> parent) noexcept {
      child_.promise().continuation_ = parent;
      child_.promise().chain_ = parent.promise().chain();
      return child_;
    }
    T await_resume() { return child_.promise().take(); }

   private:
    std::coroutine_handle<promise_type> child_;
  };
  awaiter operator co_await() && noexcept { return awaiter(frame_); }

  /// Internal, for the spawners: gives up the frame, to be started and destroyed elsewhere.
  std::coroutine_handle<detail::task_promise_base> release() noexcept {
    auto frame = std::exchange(frame_, {});
    return std::coroutine_handle<detail::task_promise_base>::from_address(frame.address());
  }

 private:
  friend promise_type;
  explicit task(std::coroutine_handle<promise_type> frame) noexcept : frame_(frame) {}
  std::coroutine_handle<promise_type> frame_;
};

namespace detail {
template <class T>
task<T> task_promise<T>::get_return_object() noexcept {
  return task<T>(std::coroutine_handle<task_promise<T>>::from_promise(*this));
}
inline task<void> task_promise<void>::get_return_object() noexcept {
  return task<void>(std::coroutine_handle<task_promise<void>>::from_promise(*this));
}
}  // namespace detail

}  // namespace coronet
