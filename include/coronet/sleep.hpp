#pragma once
// sleep: wait a while in a coroutine, the asyncio.sleep() habit.

#include <asio/awaitable.hpp>

#include "coronet/result.hpp"
#include "coronet/source_location.hpp"
#include "coronet/timeout.hpp"

namespace coronet {

/// Waits `how_long` on the calling coroutine's executor, without holding its thread. On a
/// runtime that observes, runtime::suspended_operations() lists the wait as a "timer" with
/// `where`, the source location of the call (left to its default).
/// Errors: std::errc::operation_canceled when the awaiting coroutine is cancelled (a parallel
/// group, `||`, a task_group's stop).
///
///     co_await coronet::sleep(std::chrono::milliseconds(100));
asio::awaitable<result<void>> sleep(timeout::duration how_long,
                                    source_location where = source_location::current());

}  // namespace coronet
