#pragma once
// log_task_end(): how a task's end is logged, by task_group and by the servers' sessions.

#include <exception>
#include <string_view>

namespace coronet::detail {

// Logs the exception that ended a task, as "NAME: WHAT" (an error), or "NAME: cancelled" (at
// debug level) for a cancelled task that awaited again and was told so by operation_aborted.
// Nothing for a null `error`. Defined in task_group.cpp.
void log_task_end(std::string_view name, std::exception_ptr error);

}  // namespace coronet::detail
