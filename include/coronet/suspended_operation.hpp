#pragma once
// suspended_operation: what a coroutine on a runtime thread waits on, where it awaits it and
// since when: the answer to "what is that stuck connection doing?".

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "coronet/endpoint.hpp"

namespace coronet {

/// One operation a coroutine awaits on a runtime that observes (runtime_options::observe): an
/// accept, connect, handshake, recv, send, readable wait, shutdown or timer of coronet's, with
/// the source location of the `co_await` that awaits it (for a wrapper such as stream_reader,
/// its caller's).
///
/// Thread safety: a plain value; copy it freely.
struct suspended_operation {
  /// The runtime thread (context index) it waits on.
  std::size_t thread = 0;
  /// "accept", "connect", "handshake", "recv", "send", "readable", "shutdown" or "timer".
  std::string kind;
  /// The socket's descriptor; -1 for a timer.
  int fd = -1;
  /// The socket's two ends (getsockname, getpeername), when it has them.
  std::string local;
  std::string peer;
  /// When the wait began, and how long it has lasted (to a few milliseconds).
  std::chrono::system_clock::time_point since{};
  std::chrono::milliseconds waited{0};
  /// Where it is awaited: file, line and function, as coronet::source_location
  /// (std::source_location where the library has it) gives them.
  std::string file;
  std::uint32_t line = 0;
  std::string function;
};

/// Every operation a runtime's coroutines wait on, thread by thread, as
/// runtime::suspended_operations() gathers it: each thread lists its own, between two of its
/// handlers.
struct suspended_report {
  /// Whether the runtime observes; when not, nothing is recorded.
  bool observing = false;
  /// When it was gathered.
  std::chrono::system_clock::time_point at{};
  /// By thread, then by how long each has waited, longest first.
  std::vector<suspended_operation> operations;
  /// Threads that did not answer in time: each was busy running one handler all along.
  std::vector<std::size_t> unanswered;
};

/// The report as a table, one line per operation (the format is in the README, "Observing a
/// server"):
///
///     suspended operations: 2 at 2026-11-26 13:45:02.120 UTC
///       thread     fd kind       waited_s  local                  peer                   where
///            0      7 accept       12.305  127.0.0.1:7000         -                      ...
std::string format_suspended(const suspended_report& report);

}  // namespace coronet
