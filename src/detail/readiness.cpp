#include "coronet/detail/readiness.hpp"

#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>

#include <asio/post.hpp>

#include "coronet/log.hpp"

namespace coronet::detail {
namespace {

constexpr std::uint32_t index_of(readiness::token t) noexcept {
  return static_cast<std::uint32_t>(t);
}

int make_epoll() {
  const int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) {
    throw std::system_error(errno, std::system_category(), "cannot create an epoll set");
  }
  return fd;
}

}  // namespace

readiness::readiness(asio::io_context& context)
    : asio::execution_context::service(context),
      context_(context),
      epoll_fd_(make_epoll()),
      watcher_(context.get_executor(), epoll_fd_) {}

readiness::~readiness() {
  // The watcher owns epoll_fd_ and closes it.
  std::error_code ignored;
  watcher_.close(ignored);
}

readiness::token readiness::add(int fd, lean_stream& target, std::error_code& ec) noexcept {
  std::uint32_t index;
  if (!free_slots_.empty()) {
    index = free_slots_.back();
    free_slots_.pop_back();
  } else {
    index = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  slot& s = slots_[index];
  const token t = (static_cast<token>(s.generation) << 32) | index;
  epoll_event event{};
  event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  event.data.u64 = t;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) {
    ec.assign(errno, std::system_category());
    free_slots_.push_back(index);
    return 0;
  }
  ec.clear();
  s.target = &target;
  ++active_;
  if (!armed_) arm();
  return t;
}

void readiness::move_target(token t, lean_stream& target) noexcept {
  slots_[index_of(t)].target = &target;
}

void readiness::remove(token t) noexcept {
  const std::uint32_t index = index_of(t);
  slot& s = slots_[index];
  s.target = nullptr;
  ++s.generation;
  if (s.generation == 0) s.generation = 1;  // a token is never 0
  free_slots_.push_back(index);
  if (--active_ == 0 && armed_) {
    std::error_code ignored;
    watcher_.cancel(ignored);
  }
}

void readiness::resume_later(std::coroutine_handle<> waiter) {
  asio::post(context_, [waiter] { waiter.resume(); });
}

void readiness::start(spawned_task& spawned) noexcept {
  spawned.next_ = tasks_;
  if (tasks_ != nullptr) tasks_->prev_ = &spawned;
  tasks_ = &spawned;
  start_task(spawned.frame, spawned.chain, spawned);
}

void readiness::forget(spawned_task& spawned) noexcept {
  if (spawned.prev_ != nullptr) {
    spawned.prev_->next_ = spawned.next_;
  } else if (tasks_ == &spawned) {
    tasks_ = spawned.next_;
  }
  if (spawned.next_ != nullptr) spawned.next_->prev_ = spawned.prev_;
  spawned.prev_ = spawned.next_ = nullptr;
}

void readiness::shutdown() {
  shut_down_ = true;
  // Every task still suspended goes with its frame: its sockets close, its waits end.
  while (tasks_ != nullptr) {
    spawned_task& spawned = *tasks_;
    forget(spawned);
    spawned.frame.destroy();
    spawned.abandoned();
  }
  std::error_code ignored;
  watcher_.cancel(ignored);
}

void readiness::arm() {
  armed_ = true;
  watcher_.async_wait(asio::posix::descriptor_base::wait_read, [this](std::error_code ec) {
    armed_ = false;
    if (shut_down_) return;
    if (!ec) {
      drain();
    } else if (active_ > 0) {
      arm();  // cancelled as the last slot went, and a new one came before this ran
    }
  });
}

// Every event epoll has now, each stream told in turn, then again while the set has more
// (tasks resumed meanwhile have sent, and their peers answered). After 256 the work goes on
// from the context's queue, so that other handlers get their turn; once the set has nothing,
// Asio's reactor is asked to wake it again.
void readiness::drain() noexcept {
  std::size_t taken = 0;
  for (;;) {
    int n;
    do {
      n = ::epoll_wait(epoll_fd_, events_.data(), static_cast<int>(events_.size()), 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      log().error("readiness: epoll_wait: {}",
                  std::error_code(errno, std::system_category()).message());
      n = 0;
    }
    dispatch(n);
    if (active_ == 0) return;
    if (n == 0) break;
    taken += static_cast<std::size_t>(n);
    if (taken >= events_.size()) {
      armed_ = true;
      asio::post(context_, [this] {
        armed_ = false;
        if (!shut_down_) drain();
      });
      return;
    }
  }
  arm();
}

}  // namespace coronet::detail
