#pragma once
// with_timeout(): a time limit around any awaitable, for what has no limit of its own.

#include <exception>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include <asio/awaitable.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "coronet/result.hpp"
#include "coronet/timeout.hpp"

namespace coronet {

/// What with_timeout() gives for an awaitable of T: T itself when T already carries an error
/// (result<U>, io_result, datagram_result), else result<T>.
template <class T>
using timed_result_t =
    std::conditional_t<std::is_constructible_v<T, std::error_code>, T, result<T>>;

namespace detail {

// How the task ended: its value or its exception. Asio 1.22's `||` ends on the first branch
// that succeeds and waits out one that throws, so the task's branch must never throw: a task
// failing at once would otherwise be reported as a timeout when the limit passes. `||` also
// needs results it can default-construct.
template <class T>
struct task_outcome {
  std::optional<T> value;
  std::exception_ptr error;
};

template <class T>
asio::awaitable<task_outcome<T>> capture(asio::awaitable<T> task) {
  task_outcome<T> out;
  try {
    out.value.emplace(co_await std::move(task));
  } catch (...) {
    out.error = std::current_exception();
  }
  co_return out;
}

inline asio::awaitable<std::exception_ptr> capture(asio::awaitable<void> task) {
  std::exception_ptr error;
  try {
    co_await std::move(task);
  } catch (...) {
    error = std::current_exception();
  }
  co_return error;
}

}  // namespace detail

/// Runs `task` under `limit`: if the limit passes first, `task` is cancelled (through its
/// cancellation slot: the operation it waits on ends) and the outcome is std::errc::timed_out.
///
///     auto found = co_await coronet::with_timeout(coronet::resolve("example.com:80"), 2s);
///     if (found.error() == std::errc::timed_out) ...
///
/// Cancellation: what `task` loses when cut off is what its own operations say they lose.
/// Thread safety: as for `task`; it runs on the calling coroutine's executor.
template <class T>
asio::awaitable<timed_result_t<T>> with_timeout(asio::awaitable<T> task, timeout limit) {
  if (limit.is_none()) co_return co_await std::move(task);
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(co_await asio::this_coro::executor, limit.value());
  auto first = co_await (detail::capture(std::move(task)) || timer.async_wait(asio::use_awaitable));
  if (first.index() == 1) co_return timed_result_t<T>(std::make_error_code(std::errc::timed_out));
  auto& outcome = std::get<0>(first);
  if (outcome.error) std::rethrow_exception(outcome.error);
  co_return std::move(*outcome.value);
}

/// The same for an awaitable that returns nothing: result<void>.
inline asio::awaitable<result<void>> with_timeout(asio::awaitable<void> task, timeout limit) {
  if (limit.is_none()) {
    co_await std::move(task);
    co_return result<void>();
  }
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(co_await asio::this_coro::executor, limit.value());
  auto first = co_await (detail::capture(std::move(task)) || timer.async_wait(asio::use_awaitable));
  if (first.index() == 1) co_return std::make_error_code(std::errc::timed_out);
  if (auto error = std::get<0>(first)) std::rethrow_exception(error);
  co_return result<void>();
}

}  // namespace coronet
