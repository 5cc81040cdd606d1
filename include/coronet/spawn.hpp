#pragma once
// spawn(): start a coroutine that runs on its own, with nothing lost if it fails.

#include <string>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>

#include "coronet/task.hpp"

namespace coronet {

/// Starts `task` on `executor` and returns at once. When the task ends with an exception, the
/// exception is logged at error level on the coronet logger as `<name>: <what>`, never lost or
/// rethrown into the event loop. Whatever the task owns (its sockets) is closed as its frame
/// is destroyed.
///
/// Thread safety: safe from any thread; the task runs on `executor`.
void spawn(const asio::any_io_executor& executor, asio::awaitable<void> task, std::string name);

/// Starts a coronet::task on `context`'s thread (posted: it starts once that thread gets to it)
/// and returns at once; an exception escaping it is logged as above. If the context shuts down
/// first, the task's frame is destroyed, started or not.
///
/// Thread safety: safe from any thread.
void spawn(asio::io_context& context, coronet::task<void> task, std::string name);

}  // namespace coronet
