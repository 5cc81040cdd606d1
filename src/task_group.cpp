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
    asio::cancellation_signal cancel;     // an awaitable's
    detail::task_chain* chain = nullptr;  // a coronet::task's

    void stop() {
      if (chain != nullptr) {
        chain->cancel();
      } else {
        cancel.emit(asio::cancellation_type::terminal);
      }
    }
  };

  asio::any_io_executor executor;
  std::list<task> tasks;       // a list: each signal must stay where its slot points
  asio::steady_timer changed;  // woken when the last task ends
  bool stopping = false;
};

task_group::task_group(const asio::any_io_executor& executor)
    : state_(std::make_shared<state>(executor)) {}

task_group::~task_group() {
  for (auto& t : state_->tasks) t.stop();
}

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
    if (auto f = std::exchange(on_end, nullptr)) {
      try {
        f(std::move(error));
      } catch (const std::exception& e) {
        log().error("a task's end handler threw: {}", e.what());
      } catch (...) {
        log().error("a task's end handler threw");
      }
    }
    forget();
  }

  void forget() {
    const auto owner = std::move(shared);
    owner->tasks.erase(entry);
    if (owner->tasks.empty()) owner->changed.cancel();
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

// A coronet::task of the group: what its readiness set keeps while it runs, and what calls
// on_end and leaves the group once it has ended (its frame already gone).
struct task_group::lean_task final : detail::spawned_task {
  lean_task(std::shared_ptr<state> s, std::list<state::task>::iterator e,
            std::function<void(std::exception_ptr)> f, detail::readiness& r)
      : shared(std::move(s)), entry(e), on_end(std::move(f)), readiness(r) {}

  void task_ended(std::exception_ptr error) noexcept override {
    readiness.forget(*this);
    task_end end(std::move(shared), entry, std::move(on_end));
    delete this;
    end(std::move(error));
  }

  void abandoned() noexcept override {
    // task_end's destructor leaves the group without calling on_end.
    task_end end(std::move(shared), entry, std::move(on_end));
    delete this;
  }

  std::shared_ptr<state> shared;
  std::list<state::task>::iterator entry;
  std::function<void(std::exception_ptr)> on_end;
  detail::readiness& readiness;
};

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
  auto entry = state_->tasks.emplace(state_->tasks.end());
  auto* spawned = new lean_task(state_, entry, std::move(on_end), readiness);
  spawned->frame = task.release();
  entry->chain = &spawned->chain;
  spawned->chain.cancelled = state_->stopping;
  readiness.start(*spawned);
}

std::size_t task_group::size() const noexcept { return state_->tasks.size(); }

asio::awaitable<std::size_t> task_group::stop(timeout grace) {
  const auto shared = state_;  // the group may be destroyed while this waits
  shared->stopping = true;
  if (!shared->tasks.empty()) {
    if (grace.is_none()) {
      shared->changed.expires_at(asio::steady_timer::time_point::max());
    } else {
      shared->changed.expires_after(grace.value());
    }
    co_await shared->changed.async_wait(detail::use_nothrow);
  }
  const std::size_t cancelled = shared->tasks.size();
  for (auto& t : shared->tasks) t.stop();
  while (!shared->tasks.empty()) {
    shared->changed.expires_at(asio::steady_timer::time_point::max());
    co_await shared->changed.async_wait(detail::use_nothrow);
  }
  co_return cancelled;
}

}  // namespace coronet
