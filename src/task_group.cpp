#include "coronet/task_group.hpp"

#include <exception>
#include <list>
#include <system_error>
#include <utility>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/steady_timer.hpp>

#include "coronet/detail/io.hpp"
#include "coronet/log.hpp"

namespace coronet {

// Shared with every task's completion handler, so that a task ending after the group was
// destroyed touches live memory.
struct task_group::state {
  explicit state(const asio::any_io_executor& ex) : executor(ex), changed(ex) {}

  struct task {
    asio::cancellation_signal cancel;
  };

  asio::any_io_executor executor;
  std::list<task> tasks;       // a list: each signal must stay where its slot points
  asio::steady_timer changed;  // woken when the last task ends
  bool stopping = false;
};

task_group::task_group(const asio::any_io_executor& executor)
    : state_(std::make_shared<state>(executor)) {}

task_group::~task_group() {
  for (auto& t : state_->tasks) t.cancel.emit(asio::cancellation_type::terminal);
}

void task_group::spawn(asio::awaitable<void> task, std::string name) {
  auto entry = state_->tasks.emplace(state_->tasks.end());
  auto on_end = [shared = state_, entry, name = std::move(name)](std::exception_ptr error) {
    if (error) {
      try {
        std::rethrow_exception(error);
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
    shared->tasks.erase(entry);
    if (shared->tasks.empty()) shared->changed.cancel();
  };
  asio::co_spawn(state_->executor, std::move(task),
                 asio::bind_cancellation_slot(entry->cancel.slot(), std::move(on_end)));
  if (state_->stopping) entry->cancel.emit(asio::cancellation_type::terminal);
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
  for (auto& t : shared->tasks) t.cancel.emit(asio::cancellation_type::terminal);
  while (!shared->tasks.empty()) {
    shared->changed.expires_at(asio::steady_timer::time_point::max());
    co_await shared->changed.async_wait(detail::use_nothrow);
  }
  co_return cancelled;
}

}  // namespace coronet
