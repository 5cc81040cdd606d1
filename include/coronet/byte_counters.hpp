#pragma once
// byte_counters: how many bytes a stream has received and sent, readable from any thread.

#include <atomic>
#include <cstdint>

namespace coronet {

/// Two running totals of one stream's traffic: bytes received and bytes sent. A stream given a
/// byte_counters (basic_stream::count_bytes()) adds what each of its operations moved; a
/// server keeps one per connection to list them while they run.
///
/// Thread safety: add_received() and add_sent() only from the stream's own executor (one
/// writer); received() and sent() are safe from any thread at any time.
class byte_counters {
 public:
  /// Bytes received so far. Safe from any thread.
  std::uint64_t received() const noexcept { return received_.load(std::memory_order_relaxed); }

  /// Bytes sent so far. Safe from any thread.
  std::uint64_t sent() const noexcept { return sent_.load(std::memory_order_relaxed); }

  /// Adds `n` received bytes. Only from the one thread that writes these counters.
  void add_received(std::uint64_t n) noexcept { add(received_, n); }

  /// Adds `n` sent bytes. Only from the one thread that writes these counters.
  void add_sent(std::uint64_t n) noexcept { add(sent_, n); }

 private:
  // One writer: a load and a store, with no locked read-modify-write on the hot path.
  static void add(std::atomic<std::uint64_t>& total, std::uint64_t n) noexcept {
    total.store(total.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  std::atomic<std::uint64_t> received_{0};
  std::atomic<std::uint64_t> sent_{0};
};

}  // namespace coronet
