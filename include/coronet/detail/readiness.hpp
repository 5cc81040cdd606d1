#pragma once
// readiness: one io_context's own epoll set, which resumes the tasks waiting on its lean
// streams directly when their sockets become ready.

#include <sys/epoll.h>

#include <array>
#include <coroutine>
#include <cstdint>
#include <system_error>
#include <vector>

#include <asio/execution_context.hpp>
#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>

#include "coronet/task.hpp"

namespace coronet {
class lean_stream;
}

namespace coronet::detail {

// A spawned task, as its io_context's readiness set keeps it: destroyed, frame and all, if the
// context shuts down before the task ends.
class spawned_task : public task_owner {
 public:
  spawned_task() = default;
  virtual ~spawned_task() = default;
  spawned_task(const spawned_task&) = delete;
  spawned_task& operator=(const spawned_task&) = delete;

  // The task never ended: its frame was destroyed with the context. Deletes its owner's state.
  virtual void abandoned() noexcept = 0;

  task_chain chain;
  std::coroutine_handle<task_promise_base> frame;

 private:
  friend class readiness;
  spawned_task* prev_ = nullptr;
  spawned_task* next_ = nullptr;
};

// One io_context's epoll set (an Asio service: one per context, made on first use). Its
// descriptor is the one thing it registers with Asio's reactor. When that turns readable, it
// takes the ready events with epoll_wait(2) and resumes each waiting task in place, and asks
// again, without waiting, until the set has none (or 256 were taken): a wake-up through Asio
// costs about 700 instructions, an empty epoll_wait a system call and a few dozen.
//
// Each descriptor is registered once, edge-triggered for both directions, when its stream is
// made: no epoll_ctl(2) per wait. An event names its descriptor's slot with a generation, so
// that an event for a stream closed earlier in the same batch is dropped.
//
// Thread safety: only on its context's thread (the context must be run by one thread), like the
// streams and tasks it serves.
class readiness : public asio::execution_context::service {
 public:
  using key_type = readiness;
  static inline asio::execution_context::id id;

  explicit readiness(asio::io_context& context);
  ~readiness() override;

  // The readiness set of `context`, made on first use.
  static readiness& of(asio::io_context& context) { return asio::use_service<readiness>(context); }

  asio::io_context& context() noexcept { return context_; }

  // A slot's name: its index and its generation.
  using token = std::uint64_t;

  // Registers `fd` for `target`: both directions, edge-triggered. On failure returns 0 with
  // `ec` set; tokens are never 0.
  token add(int fd, lean_stream& target, std::error_code& ec) noexcept;
  // Whether `t` is still registered: false once its stream was closed (or destroyed).
  bool is_current(token t) const noexcept {
    // remove() moves the slot to its next generation: a token of an earlier one never matches.
    return slots_[static_cast<std::uint32_t>(t)].generation == static_cast<std::uint32_t>(t >> 32);
  }
  // `target` has moved: events now go to its new address.
  void move_target(token slot, lean_stream& target) noexcept;
  // Forgets the slot; any event for it not yet handled is dropped. The caller closes `fd`,
  // which takes it out of the epoll set. The last slot's removal stops the wait on Asio's
  // reactor, so that a context with nothing else to do returns from run().
  void remove(token slot) noexcept;

  // Resumes `waiter` from the context's queue (a cancelled or timed-out wait).
  void resume_later(std::coroutine_handle<> waiter);

  // Starts `task` (its frame, chain and owner in `spawned`) on the calling thread, which must be
  // the context's, and keeps it until it ends.
  void start(spawned_task& spawned) noexcept;
  // A spawned task has ended (or been abandoned): forget it.
  void forget(spawned_task& spawned) noexcept;

 private:
  struct slot {
    lean_stream* target = nullptr;
    std::uint32_t generation = 1;
  };

  void shutdown() override;
  void arm();
  void drain() noexcept;
  // Tells each of the first `n` events to its stream (lean_stream::on_ready), unless the stream
  // was closed earlier in the batch. Defined in lean_stream.cpp, next to on_ready(), which it
  // inlines: no call per event.
  void dispatch(int n) noexcept;

  asio::io_context& context_;
  int epoll_fd_ = -1;
  // epoll_fd_, for Asio's reactor. On the context's own executor type rather than
  // any_io_executor: each wake-up's completion then makes no type-erased executor calls.
  asio::posix::basic_stream_descriptor<asio::io_context::executor_type> watcher_;
  bool armed_ = false;
  bool shut_down_ = false;
  std::size_t active_ = 0;  // registered slots
  std::vector<slot> slots_;
  std::vector<std::uint32_t> free_slots_;
  spawned_task* tasks_ = nullptr;  // live spawned tasks, newest first
  std::array<epoll_event, 256> events_{};
};

}  // namespace coronet::detail
