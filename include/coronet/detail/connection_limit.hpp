#pragma once
// connection_limit: the semaphore behind a server's max_connections, shared by accept loops on
// several threads and released by sessions on any thread.

#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>

#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>

namespace coronet::detail {

class connection_limit : public std::enable_shared_from_this<connection_limit> {
 public:
  // Releases its slot when destroyed, wherever that happens; movable, so that it can travel
  // with the connection from the accept loop to the session.
  class slot {
   public:
    slot() noexcept = default;
    explicit slot(std::shared_ptr<connection_limit> owner) noexcept : owner_(std::move(owner)) {}
    slot(slot&&) noexcept = default;
    slot& operator=(slot&& other) noexcept {
      if (this != &other) {
        release();
        owner_ = std::move(other.owner_);
      }
      return *this;
    }
    slot(const slot&) = delete;
    slot& operator=(const slot&) = delete;
    ~slot() { release(); }

    explicit operator bool() const noexcept { return owner_ != nullptr; }

   private:
    void release() noexcept {
      if (owner_) std::exchange(owner_, nullptr)->release();
    }
    std::shared_ptr<connection_limit> owner_;
  };

  // nullopt: no limit (slots are still counted).
  explicit connection_limit(std::optional<std::size_t> max) : max_(max) {}

  // Takes a slot, waiting on the calling coroutine's executor while all are taken. Slots go to
  // waiters in the order they came. An empty slot means the wait was cancelled.
  asio::awaitable<slot> acquire();

  // Slots taken now. Safe from any thread.
  std::size_t in_use() const;

 private:
  struct waiter {
    explicit waiter(const asio::any_io_executor& ex)
        : wake(ex, asio::steady_timer::time_point::max()) {}
    asio::steady_timer wake;  // cancelled on the waiter's own executor when it gets a slot
    bool granted = false;     // under mutex_: release() handed it a slot
    bool taken = false;       // under mutex_: acquire() returned that slot
  };

  void release() noexcept;
  void release_locked() noexcept;
  // A waiter going away: out of the queue, or its handed-over slot passed on.
  void leave(waiter& me) noexcept;

  mutable std::mutex mutex_;
  const std::optional<std::size_t> max_;
  std::size_t in_use_ = 0;
  std::deque<std::shared_ptr<waiter>> waiters_;
};

}  // namespace coronet::detail
