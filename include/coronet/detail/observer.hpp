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
#include <system_error>

#include "coronet/source_location.hpp"

namespace coronet::detail {

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
//
// Thread safety: only from the owner's executor, as the socket's own operations; a thread's
// list is walked by that thread only.
class wait_record : public wait_link {
 public:
  wait_record() noexcept = default;
  wait_record(wait_record&& other) noexcept { take(other); }
  wait_record& operator=(wait_record&& other) noexcept {
    if (this != &other) {
      unlink();
      take(other);
    }
    return *this;
  }
  wait_record(const wait_record&) = delete;
  wait_record& operator=(const wait_record&) = delete;
  ~wait_record() { unlink(); }

  // An operation of `side` starts waiting (on a thread that observes; elsewhere, nothing).
  inline void begin(wait_side side, wait_kind kind, int fd,
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
  // Takes `other`'s entries and its place in its thread's list.
  void take(wait_record& other) noexcept {
    where_ = other.where_;
    since_ = other.since_;
    kind_ = other.kind_;
    fd_ = other.fd_;
    other.kind_ = {wait_kind::none, wait_kind::none};
    if (other.next == nullptr) return;
    prev = other.prev;
    next = other.next;
    prev->next = this;
    next->prev = this;
    other.prev = other.next = nullptr;
  }

  std::array<coronet::source_location, 2> where_{};
  std::array<std::int64_t, 2> since_{};
  std::array<wait_kind, 2> kind_{wait_kind::none, wait_kind::none};
  int fd_ = -1;
};

// A wait for the length of a scope: a coroutine holds one across its co_await.
class wait_scope {
 public:
  wait_scope(wait_record& record, wait_side side, wait_kind kind, int fd,
             coronet::source_location where) noexcept
      : record_(record), side_(side) {
    record_.begin(side, kind, fd, where);
  }
  wait_scope(const wait_scope&) = delete;
  wait_scope& operator=(const wait_scope&) = delete;
  ~wait_scope() { record_.end(side_); }

 private:
  wait_record& record_;
  wait_side side_;
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

void wait_record::begin(wait_side side, wait_kind kind, int fd,
                        coronet::source_location where) noexcept {
  thread_observer* observer = current_observer;
  if (observer == nullptr) return;
  const auto s = static_cast<std::size_t>(side);
  where_[s] = where;
  since_[s] = coarse_now();
  kind_[s] = kind;
  fd_ = fd;
  if (next != nullptr) return;
  wait_link& head = observer->waiting;
  prev = head.prev;
  next = &head;
  head.prev->next = this;
  head.prev = this;
}

// Counts an error an operation ended with: a timeout or a reset (`ec` in coronet's terms).
void count_error(thread_observer& observer, const std::error_code& ec) noexcept;

// Counts an operation's outcome on the calling thread, if it observes: its bytes, one message
// if it moved any, and its error.
inline void observe_received(const std::error_code& ec, std::size_t bytes) noexcept {
  thread_observer* observer = current_observer;
  if (observer == nullptr) return;
  if (bytes > 0) {
    observer->bytes_received.add(bytes);
    observer->messages_received.add(1);
  }
  if (ec) count_error(*observer, ec);
}

inline void observe_sent(const std::error_code& ec, std::size_t bytes) noexcept {
  thread_observer* observer = current_observer;
  if (observer == nullptr) return;
  if (bytes > 0) {
    observer->bytes_sent.add(bytes);
    observer->messages_sent.add(1);
  }
  if (ec) count_error(*observer, ec);
}

}  // namespace coronet::detail
