#include "coronet/task_group.hpp"

#include <exception>
#include <list>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <utility>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include "coronet/detail/io.hpp"
#include "coronet/detail/readiness.hpp"
#include "coronet/log.hpp"
#include "detail/log_task_end.hpp"

namespace coronet {

// Shared with every task's completion handler, so that a task ending after the group was
// destroyed touches live memory.
struct task_group::state {
  explicit state(const asio::any_io_executor& ex) : executor(ex), changed(ex) {}

  struct task {
    asio::cancellation_signal cancel;
  };

  // How many tasks run, of both kinds.
  std::size_t size() const noexcept { return tasks.size() + lean_count; }

  // Cancels every task: an awaitable through its slot, a coronet::task through its chain.
  void cancel_all();

  // A task has ended and whatever it held is released: wakes stop() when it was the last.
  void task_gone() {
    if (size() == 0) changed.cancel();
  }

  asio::any_io_executor executor;
  std::list<task> tasks;  // the awaitables; a list: each signal must stay where its slot points
  lean_task* lean_first = nullptr;  // the coronet::tasks, an intrusive list (no node to allocate)
  std::size_t lean_count = 0;
  asio::steady_timer changed;  // woken when the last task ends
  bool stopping = false;
};

task_group::task_group(const asio::any_io_executor& executor)
    : state_(std::make_shared<state>(executor)) {}

task_group::~task_group() { state_->cancel_all(); }

namespace {

// Calls a task's end handler, if any, and destroys it; what escapes it is logged.
void call_on_end(std::function<void(std::exception_ptr)> on_end, std::exception_ptr error) {
  if (!on_end) return;
  try {
    on_end(std::move(error));
  } catch (const std::exception& e) {
    log().error("a task's end handler threw: {}", e.what());
  } catch (...) {
    log().error("a task's end handler threw");
  }
}

}  // namespace

void detail::log_task_end(std::string_view name, std::exception_ptr error) {
  if (!error) return;
  try {
    std::rethrow_exception(std::move(error));
  } catch (const std::system_error& e) {
    // A cancelled task that awaits again is told so by an exception: that is its end.
    if (e.code() == asio::error::operation_aborted) {
      log().debug("{}: cancelled", name);
    } else {
      log().error("{}: {}", name, e.what());
    }
  } catch (const std::exception& e) {
    log().error("{}: {}", name, e.what());
  } catch (...) {
    log().error("{}: unknown exception", name);
  }
}

// The completion handler of one task. A task whose frame is destroyed without finishing (its
// context shut down) never calls it, only destroys it: then too its entry must go, or the
// group would later emit into a cancellation slot whose operation no longer exists.
struct task_group::task_end {
  task_end(std::shared_ptr<state> s, std::list<state::task>::iterator e,
           std::function<void(std::exception_ptr)> f)
      : shared(std::move(s)), entry(e), on_end(std::move(f)) {}
  task_end(task_end&& other) noexcept
      : shared(std::move(other.shared)), entry(other.entry), on_end(std::move(other.on_end)) {}
  task_end(const task_end&) = delete;
  task_end& operator=(const task_end&) = delete;
  task_end& operator=(task_end&&) = delete;
  ~task_end() {
    if (shared) forget();
  }

  void operator()(std::exception_ptr error) {
    // Whatever on_end holds goes before the group hears of the end: a stop() that returns once
    // every task has ended finds it released.
    call_on_end(std::exchange(on_end, nullptr), std::move(error));
    forget();
  }

  void forget() {
    const auto owner = std::move(shared);
    owner->tasks.erase(entry);
    owner->task_gone();
  }

  std::shared_ptr<state> shared;  // null once moved from or done
  std::list<state::task>::iterator entry;
  std::function<void(std::exception_ptr)> on_end;
};

void task_group::spawn(asio::awaitable<void> task, std::string name) {
  spawn(std::move(task),
        [name = std::move(name)](std::exception_ptr error) { detail::log_task_end(name, error); });
}

void task_group::spawn(asio::awaitable<void> task, std::function<void(std::exception_ptr)> on_end) {
  auto entry = state_->tasks.emplace(state_->tasks.end());
  asio::co_spawn(state_->executor, std::move(task),
                 asio::bind_cancellation_slot(entry->cancel.slot(),
                                              task_end(state_, entry, std::move(on_end))));
  if (state_->stopping) entry->cancel.emit(asio::cancellation_type::terminal);
}

// A coronet::task of the group: what its readiness set keeps while it runs, linked into the
// group's list of them, and what calls on_end and leaves the group once it has ended (its frame
// already gone).
struct task_group::lean_task final : detail::spawned_task {
  lean_task(std::shared_ptr<state> s, std::function<void(std::exception_ptr)> f,
            detail::readiness& r)
      : shared(std::move(s)), on_end(std::move(f)), readiness(r) {
    next = shared->lean_first;
    if (next != nullptr) next->prev = this;
    shared->lean_first = this;
    ++shared->lean_count;
  }

  void task_ended(std::exception_ptr error) noexcept override {
    readiness.forget(*this);
    auto owner = leave();
    // Whatever on_end holds goes before the group hears of the end, as for an awaitable.
    auto f = std::move(on_end);
    delete this;
    call_on_end(std::move(f), std::move(error));
    owner->task_gone();
  }

  void abandoned() noexcept override {
    auto owner = leave();
    delete this;  // on_end goes uncalled
    owner->task_gone();
  }

  // Out of the group's list; returns the group's state.
  std::shared_ptr<state> leave() noexcept {
    if (prev != nullptr) {
      prev->next = next;
    } else {
      shared->lean_first = next;
    }
    if (next != nullptr) next->prev = prev;
    --shared->lean_count;
    return std::move(shared);
  }

  std::shared_ptr<state> shared;
  std::function<void(std::exception_ptr)> on_end;
  detail::readiness& readiness;
  lean_task* prev = nullptr;
  lean_task* next = nullptr;
};

void task_group::state::cancel_all() {
  for (auto& t : tasks) t.cancel.emit(asio::cancellation_type::terminal);
  // A chain's cancel() only marks it and posts the resumption: the list stays as it is.
  for (auto* t = lean_first; t != nullptr; t = t->next) t->chain.cancel();
}

void task_group::spawn(coronet::task<void> task, std::string name) {
  spawn(std::move(task),
        [name = std::move(name)](std::exception_ptr error) { detail::log_task_end(name, error); });
}

void task_group::spawn(coronet::task<void> task, std::function<void(std::exception_ptr)> on_end) {
  const auto* executor = state_->executor.target<asio::io_context::executor_type>();
  if (executor == nullptr) {
    throw std::invalid_argument("task_group: a coronet::task needs an io_context's executor");
  }
  auto& readiness = detail::readiness::of(executor->context());
  auto* spawned = new lean_task(state_, std::move(on_end), readiness);
  spawned->frame = task.release();
  spawned->chain.cancelled = state_->stopping;
  readiness.start(*spawned);
}

std::size_t task_group::size() const noexcept { return state_->size(); }

asio::awaitable<std::size_t> task_group::stop(timeout grace) {
  const auto shared = state_;  // the group may be destroyed while this waits
  shared->stopping = true;
  if (shared->size() > 0) {
    if (grace.is_none()) {
      shared->changed.expires_at(asio::steady_timer::time_point::max());
    } else {
      shared->changed.expires_after(grace.value());
    }
    co_await shared->changed.async_wait(detail::use_nothrow);
  }
  const std::size_t cancelled = shared->size();
  shared->cancel_all();
  while (shared->size() > 0) {
    shared->changed.expires_at(asio::steady_timer::time_point::max());
    co_await shared->changed.async_wait(detail::use_nothrow);
  }
  co_return cancelled;
}

}  // namespace coronet
