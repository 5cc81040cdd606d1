#pragma once
// What a runtime thread observes of its own work when the runtime observes (runtime_options::
// observe): counters, and the list of the operations its coroutines wait on. Each runtime
// thread points current_observer at its own; on any other thread it is null, and every hook
// below costs one test of it.

#include <time.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <system_error>
#include <utility>

#include "coronet/source_location.hpp"

namespace coronet::detail {

struct thread_observer;

// One counter of one thread: written only by that thread (a load and a store, no locked
// read-modify-write on the hot path), read from any thread.
class thread_counter {
 public:
  void add(std::uint64_t n) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  // A high-water mark: keeps the largest value seen.
  void raise_to(std::uint64_t n) noexcept {
    if (n > value_.load(std::memory_order_relaxed)) value_.store(n, std::memory_order_relaxed);
  }
  std::uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

// What a suspended operation waits for.
enum class wait_kind : std::uint8_t {
  none,
  accept,
  connect,
  handshake,
  recv,
  send,
  readable,
  shutdown,
  timer,
};

// The side of a socket an operation belongs to: one of each may be in flight at once.
enum class wait_side : std::uint8_t { receive = 0, send = 1 };

// A node of a thread's list of waiting records; the list's head is one too.
struct wait_link {
  wait_link* prev = nullptr;
  wait_link* next = nullptr;
};

// What one socket (or timer) waits on: for each side, the kind, since when (the coarse
// monotonic clock, nanoseconds) and the source location of the co_await. Linked into its
// thread's list while either side waits, so that the thread can list what it waits on.
// On the heap, shared by its socket's wait_slot and each wait in progress (a wait_ref): an
// operation that completes after its socket was closed and destroyed still ends its wait in
// live memory. It never moves while linked.
//
// Thread safety: only from the owner's executor, as the socket's own operations (so the count
// needs no atomics); a thread's list is walked by that thread only.
class wait_record : public wait_link {
 public:
  wait_record() noexcept = default;
  wait_record(const wait_record&) = delete;
  wait_record& operator=(const wait_record&) = delete;
  ~wait_record() { unlink(); }

  void add_ref() noexcept { ++refs_; }
  void release() noexcept {
    if (--refs_ == 0) delete this;
  }

  // An operation of `side` starts waiting, on the thread `observer` belongs to.
  void begin(thread_observer& observer, wait_side side, wait_kind kind, int fd,
             coronet::source_location where) noexcept;

  // The operation of `side` is over.
  void end(wait_side side) noexcept {
    const auto s = static_cast<std::size_t>(side);
    if (kind_[s] == wait_kind::none) return;
    kind_[s] = wait_kind::none;
    if (kind_[1 - s] == wait_kind::none) unlink();
  }

  int fd() const noexcept { return fd_; }
  wait_kind kind(wait_side side) const noexcept { return kind_[static_cast<std::size_t>(side)]; }
  std::int64_t since(wait_side side) const noexcept {
    return since_[static_cast<std::size_t>(side)];
  }
  const coronet::source_location& where(wait_side side) const noexcept {
    return where_[static_cast<std::size_t>(side)];
  }

 private:
  void unlink() noexcept {
    if (next == nullptr) return;
    prev->next = next;
    next->prev = prev;
    prev = next = nullptr;
  }

  std::array<coronet::source_location, 2> where_{};
  std::array<std::int64_t, 2> since_{};
  std::array<wait_kind, 2> kind_{wait_kind::none, wait_kind::none};
  int fd_ = -1;
  unsigned refs_ = 1;
};

// One wait in progress: ends it, and lets go of its record, when the operation completes or
// is destroyed unfinished. Empty when the thread does not observe. Move-only; held by a
// coroutine frame (wait_scope) or by a completion handler (as_io_result).
class wait_ref {
 public:
  wait_ref() noexcept = default;
  wait_ref(wait_record* record, wait_side side) noexcept : record_(record), side_(side) {}
  wait_ref(wait_ref&& other) noexcept
      : record_(std::exchange(other.record_, nullptr)), side_(other.side_) {}
  wait_ref& operator=(wait_ref&& other) noexcept {
    if (this != &other) {
      reset();
      record_ = std::exchange(other.record_, nullptr);
      side_ = other.side_;
    }
    return *this;
  }
  ~wait_ref() { reset(); }

  // The wait is over. Inline, and no more than a test when the thread does not observe: a
  // completion handler holds a wait_ref, and Asio moves the handler, destroying each moved-from
  // one, several times per operation.
  void reset() noexcept {
    if (record_ != nullptr) end_wait();
  }

 private:
  void end_wait() noexcept;  // out of line (metrics.cpp): only observing threads get there

  wait_record* record_ = nullptr;
  wait_side side_ = wait_side::receive;
};

// What a socket keeps of its waits: nothing but a pointer until it first waits on a thread
// that observes, then a wait_record of its own (so that a runtime that does not observe costs
// each connection 8 bytes, and a record never moves with its socket).
class wait_slot {
 public:
  wait_slot() noexcept = default;
  wait_slot(wait_slot&& other) noexcept : record_(std::exchange(other.record_, nullptr)) {}
  wait_slot& operator=(wait_slot&& other) noexcept {
    if (this != &other) {
      if (record_ != nullptr) record_->release();
      record_ = std::exchange(other.record_, nullptr);
    }
    return *this;
  }
  ~wait_slot() {
    if (record_ != nullptr) record_->release();
  }

  // An operation of `side` starts waiting: recorded on a thread that observes (the wait lasts
  // as long as the wait_ref returned), else nothing (an empty wait_ref). Inline, and no more
  // than a test of current_observer on a thread that does not observe.
  [[nodiscard]] inline wait_ref begin(wait_side side, wait_kind kind, int fd,
                                      coronet::source_location where) noexcept;

 private:
  // begin() on a thread that observes; out of line (metrics.cpp).
  wait_ref begin_observed(thread_observer& observer, wait_side side, wait_kind kind, int fd,
                          coronet::source_location where) noexcept;

  wait_record* record_ = nullptr;
};

// A wait for the length of a scope: a coroutine holds one across its co_await.
class wait_scope {
 public:
  wait_scope(wait_slot& slot, wait_side side, wait_kind kind, int fd,
             coronet::source_location where) noexcept
      : wait_(slot.begin(side, kind, fd, where)) {}
  wait_scope(const wait_scope&) = delete;
  wait_scope& operator=(const wait_scope&) = delete;

 private:
  wait_ref wait_;  // ends the wait as the scope ends, its socket alive or not
};

// One runtime thread's observation. Cache-line aligned: each is written by its own thread.
struct alignas(64) thread_observer {
  thread_observer() noexcept { waiting.prev = waiting.next = &waiting; }
  thread_observer(const thread_observer&) = delete;
  thread_observer& operator=(const thread_observer&) = delete;

  // Counted by the thread where each happens: an accept loop's thread for accepts, a
  // connection's thread for its session and its traffic.
  thread_counter accepted;          // connections a server accepted
  thread_counter refused;           // connections lost before a session ran
  thread_counter accept_exhausted;  // accept() failing for want of descriptors or memory
  thread_counter sessions_started;  // server sessions started on this thread
  thread_counter sessions_ended;    // and ended
  thread_counter bytes_received;
  thread_counter bytes_sent;
  thread_counter messages_received;  // operations that received bytes (or a datagram)
  thread_counter messages_sent;
  thread_counter timeouts;           // operations that ended with std::errc::timed_out
  thread_counter resets;             // connection_reset, broken_pipe
  thread_counter accept_queue_high;  // the most connections seen queued in a listener's backlog
  // Connections handed to this thread and not started yet: written by the accepting thread
  // and by this one, so a true atomic; its high-water mark is kept by the accepting thread.
  std::atomic<std::int64_t> handover_pending{0};
  std::atomic<std::int64_t> handover_high{0};

  wait_link waiting;  // the head of the list of this thread's waiting records
};

inline thread_local thread_observer* current_observer = nullptr;

// The coarse monotonic clock (a few nanoseconds to read; ticks of a few milliseconds), in
// nanoseconds: good enough to say since when something has waited.
inline std::int64_t coarse_now() noexcept {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

wait_ref wait_slot::begin(wait_side side, wait_kind kind, int fd,
                          coronet::source_location where) noexcept {
  thread_observer* observer = current_observer;
  if (observer == nullptr) return {};
  return begin_observed(*observer, side, kind, fd, where);
}

// Counts an error an operation ended with: a timeout or a reset (`ec` in coronet's terms).
void count_error(thread_observer& observer, const std::error_code& ec) noexcept;

// Counts an operation's outcome on the calling thread, if it observes: its bytes into `bytes`,
// one message into `messages` if it moved any, and its error.
inline void observe(const std::error_code& ec, std::size_t n,
                    thread_counter thread_observer::*bytes,
                    thread_counter thread_observer::*messages) noexcept {
  thread_observer* observer = current_observer;
  if (observer == nullptr) return;
  if (n > 0) {
    (observer->*bytes).add(n);
    (observer->*messages).add(1);
  }
  if (ec) count_error(*observer, ec);
}

inline void observe_received(const std::error_code& ec, std::size_t n) noexcept {
  observe(ec, n, &thread_observer::bytes_received, &thread_observer::messages_received);
}

inline void observe_sent(const std::error_code& ec, std::size_t n) noexcept {
  observe(ec, n, &thread_observer::bytes_sent, &thread_observer::messages_sent);
}

}  // namespace coronet::detail
