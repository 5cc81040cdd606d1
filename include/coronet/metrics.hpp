#pragma once
// metrics: what a runtime counted of its connections and traffic, read as one snapshot, and
// its text in the Prometheus and OpenMetrics exposition formats.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace coronet {

struct suspended_report;

/// A runtime's counters, of one thread or summed over all (metrics_snapshot). Kept only by a
/// runtime that observes (runtime_options::observe), for what runs on its threads: the
/// operations of every coronet socket used there, and the servers bound to it.
///
/// Thread safety: a plain value, a snapshot; copy it freely.
struct metrics_counters {
  /// Connections the runtime's servers accepted; counted on the accepting thread.
  std::uint64_t connections_accepted = 0;
  /// Server connections whose handler has ended; counted on the connection's thread.
  std::uint64_t connections_closed = 0;
  /// Server connections open now: started on this thread and not ended (for the total:
  /// accepted, handed over and not ended).
  std::uint64_t connections_open = 0;
  /// Incoming connections lost before a handler ran: aborted by the peer while queued
  /// (ECONNABORTED and the other errors accept(2) says to retry), or a handler that threw
  /// before its coroutine existed.
  std::uint64_t connections_refused = 0;
  /// accept() failures for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM).
  std::uint64_t accept_exhausted = 0;
  /// Bytes every operation moved (decrypted bytes for TLS).
  std::uint64_t bytes_received = 0;
  std::uint64_t bytes_sent = 0;
  /// Operations that moved bytes: a recv() or a datagram is one message in; a send(), a
  /// send_all() or a datagram sent is one message out.
  std::uint64_t messages_received = 0;
  std::uint64_t messages_sent = 0;
  /// Operations that ended with std::errc::timed_out.
  std::uint64_t timeouts = 0;
  /// Operations that ended with std::errc::connection_reset or broken_pipe.
  std::uint64_t resets = 0;
  /// The most connections seen waiting in a TCP listener's kernel backlog, read right after an
  /// accept (TCP_INFO); per accepting thread, the largest of all for the total.
  std::uint64_t accept_queue_high_water = 0;
  /// The most accepted connections handed to this thread and not started yet (round-robin
  /// placement); the largest of all for the total.
  std::uint64_t handover_queue_high_water = 0;
  /// CPU time the thread has used, user and system; for the total, the threads' sum.
  double cpu_seconds = 0;
};

/// A runtime's counters at one moment: per thread, and summed on read.
struct metrics_snapshot {
  /// Whether the runtime observes; when not, every counter is 0.
  bool observing = false;
  /// The sum over all threads (the high-water marks: the largest).
  metrics_counters total;
  /// Thread k's counters (context k).
  std::vector<metrics_counters> threads;
};

/// The two text formats of the exposition: Prometheus' 0.0.4 (`text/plain; version=0.0.4`)
/// and OpenMetrics 1.0 (`application/openmetrics-text; version=1.0.0`), whose counters are
/// named without `_total` in their `# TYPE` lines and which ends with `# EOF`.
enum class metrics_format { prometheus, openmetrics };

/// The snapshot as text, every family prefixed `coronet_`: the totals, then per thread
/// (label `thread`) the open connections, messages, CPU seconds; with `waits`, how many
/// operations wait, by kind. `extra` (already in the format) goes in before `# EOF`.
std::string format_metrics(const metrics_snapshot& snapshot, metrics_format format,
                           const suspended_report* waits = nullptr, const std::string& extra = {});

/// The HTTP Content-Type of `format`.
const char* content_type(metrics_format format) noexcept;

}  // namespace coronet
