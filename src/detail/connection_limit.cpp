#include "coronet/detail/connection_limit.hpp"

#include <algorithm>
#include <utility>

#include <asio/post.hpp>
#include <asio/this_coro.hpp>

#include "coronet/detail/io.hpp"

namespace coronet::detail {

asio::awaitable<connection_limit::slot> connection_limit::acquire() {
  std::shared_ptr<waiter> me;
  {
    std::lock_guard lock(mutex_);
    if (!max_ || in_use_ < *max_) {
      ++in_use_;
      co_return slot(shared_from_this());
    }
    me = std::make_shared<waiter>(co_await asio::this_coro::executor);
    waiters_.push_back(me);
  }
  // If this frame is destroyed while it waits (its context shut down), the place in the queue,
  // or the slot already handed over, must not be lost with it.
  struct leave_queue {
    connection_limit& limit;
    std::shared_ptr<waiter> me;
    ~leave_queue() { limit.leave(*me); }
  } guard{*this, me};
  // Woken either by release() handing over a slot or by cancellation.
  (void)co_await me->wake.async_wait(use_nothrow);
  std::lock_guard lock(mutex_);
  if (!me->granted) co_return slot();
  me->taken = true;
  co_return slot(shared_from_this());
}

void connection_limit::leave(waiter& me) noexcept {
  std::lock_guard lock(mutex_);
  if (me.taken) return;
  if (me.granted) {
    release_locked();
  } else {
    auto it = std::find_if(waiters_.begin(), waiters_.end(),
                           [&](const auto& w) { return w.get() == &me; });
    if (it != waiters_.end()) waiters_.erase(it);
  }
}

std::size_t connection_limit::in_use() const {
  std::lock_guard lock(mutex_);
  return in_use_;
}

void connection_limit::release() noexcept {
  std::lock_guard lock(mutex_);
  release_locked();
}

void connection_limit::release_locked() noexcept {
  if (waiters_.empty()) {
    --in_use_;
    return;
  }
  // Hand the slot straight to the first waiter: in_use_ stays, nobody can overtake it.
  auto next = std::move(waiters_.front());
  waiters_.pop_front();
  next->granted = true;
  // The timer belongs to the waiter's executor: cancel it there.
  asio::post(next->wake.get_executor(), [next] { next->wake.cancel(); });
}

}  // namespace coronet::detail
