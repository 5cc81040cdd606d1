#pragma once
// raise_open_file_limit(): let a server hold as many sockets as the system allows it.

#include <cstddef>

#include "coronet/result.hpp"

namespace coronet {

/// Raises the process's soft limit on open descriptors (RLIMIT_NOFILE) to its hard limit, so
/// that a server is bounded by what the administrator allows rather than by a shell's default
/// of 1024. Returns the soft limit now in force.
///
/// Errors: the kernel's, from getrlimit/setrlimit (the limit is then unchanged).
///
/// Thread safety: safe from any thread; the limit is the whole process's.
result<std::size_t> raise_open_file_limit();

/// The soft limit on open descriptors now in force. Safe from any thread.
result<std::size_t> open_file_limit();

}  // namespace coronet
