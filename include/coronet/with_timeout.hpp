#pragma once
// with_timeout(): a time limit around any awaitable, for what has no limit of its own.

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

template <class T>
asio::awaitable<std::optional<T>> as_optional(asio::awaitable<T> task) {
  co_return co_await std::move(task);
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
  // `||` needs results it can default-construct: carry T in an optional.
  auto first =
      co_await (detail::as_optional(std::move(task)) || timer.async_wait(asio::use_awaitable));
  if (first.index() == 0) co_return std::move(*std::get<0>(first));
  co_return timed_result_t<T>(std::make_error_code(std::errc::timed_out));
}

/// The same for an awaitable that returns nothing: result<void>.
inline asio::awaitable<result<void>> with_timeout(asio::awaitable<void> task, timeout limit) {
  if (limit.is_none()) {
    co_await std::move(task);
    co_return result<void>();
  }
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(co_await asio::this_coro::executor, limit.value());
  auto first = co_await (std::move(task) || timer.async_wait(asio::use_awaitable));
  if (first.index() == 0) co_return result<void>();
  co_return std::make_error_code(std::errc::timed_out);
}

}  // namespace coronet
