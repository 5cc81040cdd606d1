#pragma once
// Runs one Asio asynchronous operation under a time limit, through Asio's per-operation
// cancellation slots (Asio 1.22 has no cancel_after): when the limit passes first, the
// operation is cancelled and reports std::errc::timed_out instead of operation_aborted.
// Cancelling the awaiting coroutine cancels the operation as well.

#include <chrono>
#include <memory>
#include <optional>
#include <system_error>
#include <tuple>
#include <utility>

#include <asio/awaitable.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>

#include "coronet/detail/io.hpp"
#include "coronet/timeout.hpp"

namespace coronet::detail {

// What the timer and the operation share; held by both, so that a timer firing as the
// operation completes touches live memory.
struct timed_state {
  asio::cancellation_signal signal;
  bool expired = false;
};

// `start(token)` starts the operation with the completion token it is given and returns what
// that token returns (an awaitable of a tuple whose first element is the error_code).
template <class Start>
auto timed(Start start, timeout limit) -> decltype(start(use_nothrow)) {
  auto state = std::make_shared<timed_state>();
  // The awaiting coroutine's own cancellation (a parent, a parallel group) reaches the
  // operation through our signal.
  auto parent = co_await asio::this_coro::cancellation_state;
  if (parent.slot().is_connected()) {
    parent.slot().assign([state](asio::cancellation_type type) { state->signal.emit(type); });
  }
  asio::steady_timer timer(co_await asio::this_coro::executor, limit.value());
  timer.async_wait([state](const std::error_code& ec) {
    if (ec) return;  // the operation finished first
    state->expired = true;
    state->signal.emit(asio::cancellation_type::terminal);
  });

  auto outcome = co_await start(asio::bind_cancellation_slot(state->signal.slot(), use_nothrow));
  timer.cancel();
  state->signal.slot().clear();  // a late timer must not reach a finished operation
  if (parent.slot().is_connected()) parent.slot().clear();

  auto& ec = std::get<0>(outcome);
  if (state->expired && ec == asio::error::operation_aborted) {
    ec = std::make_error_code(std::errc::timed_out);
  }
  co_return outcome;
}

// One limit over several operations (the addresses a connect tries, the reads of a line):
// each gets what is left of it.
class deadline {
 public:
  explicit deadline(timeout limit) noexcept {
    if (!limit.is_none()) at_ = std::chrono::steady_clock::now() + limit.value();
  }
  timeout remaining() const noexcept {
    if (!at_) return no_timeout;
    const auto left = *at_ - std::chrono::steady_clock::now();
    return left > timeout::duration::zero() ? timeout(left) : timeout(timeout::duration::zero());
  }
  bool expired() const noexcept { return at_ && std::chrono::steady_clock::now() >= *at_; }

 private:
  std::optional<std::chrono::steady_clock::time_point> at_;
};

// The operation as it is when there is no limit (no extra coroutine frame on that path), or
// under timed() when there is one.
template <class Start>
auto with_limit(Start start, timeout limit) -> decltype(start(use_nothrow)) {
  if (limit.is_none()) return start(use_nothrow);
  return timed(std::move(start), limit);
}

}  // namespace coronet::detail
