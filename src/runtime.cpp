#include "coronet/runtime.hpp"

#include <pthread.h>

#include <csignal>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include <asio/executor_work_guard.hpp>
#include <asio/signal_set.hpp>

#include "coronet/log.hpp"
#include "coronet/spawn.hpp"

namespace coronet {

// Asio's reactor keeps its per-descriptor locks (hint 1, not UNSAFE_IO): an accept on one
// thread registers the new socket with another thread's reactor, which may be handling a
// recycled descriptor state at that moment (ThreadSanitizer showed the race).
struct runtime::thread_context : asio::io_context {
  thread_context() : asio::io_context(1), keep_running(get_executor()) {}

  using asio::io_context::shutdown;  // protected in asio::execution_context

  // Keeps run() going while the context has nothing to do, until stop().
  asio::executor_work_guard<asio::io_context::executor_type> keep_running;
};

// Lives on context 0; shared with the handler waiting for the next signal.
struct runtime::signal_state {
  signal_state(asio::io_context& context, std::function<asio::awaitable<void>()> stop)
      : signals(context, SIGINT, SIGTERM), graceful_stop(std::move(stop)) {}

  asio::signal_set signals;
  std::function<asio::awaitable<void>()> graceful_stop;
  bool stopping = false;
};

namespace {

std::size_t default_threads() noexcept {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

}  // namespace

runtime::runtime() : runtime(default_threads()) {}

runtime::runtime(std::size_t threads) {
  if (threads == 0) throw std::invalid_argument("coronet::runtime needs at least one thread");
  contexts_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) contexts_.push_back(std::make_unique<thread_context>());
}

runtime::~runtime() {
  stop();
  join();
  // Destroy every pending handler (unfinished coroutine frames) on every context first, so
  // that a frame going away may still reach any context; only then the contexts themselves.
  for (auto& context : contexts_) context->shutdown();
  signals_.reset();
  contexts_.clear();
}

asio::any_io_executor runtime::executor(std::size_t index) const {
  return contexts_.at(index)->get_executor();
}

asio::io_context& runtime::context(std::size_t index) { return *contexts_.at(index); }

std::size_t runtime::next_index() noexcept {
  return next_.fetch_add(1, std::memory_order_relaxed) % contexts_.size();
}

asio::any_io_executor runtime::next_executor() noexcept {
  return contexts_[next_index()]->get_executor();
}

void runtime::spawn(asio::awaitable<void> task, std::string name) {
  coronet::spawn(next_executor(), std::move(task), std::move(name));
}

void runtime::spawn(std::size_t index, asio::awaitable<void> task, std::string name) {
  coronet::spawn(executor(index), std::move(task), std::move(name));
}

void runtime::start() { start_from(0); }

void runtime::start_from(std::size_t first) {
  if (started_) throw std::logic_error("coronet::runtime: a runtime runs once");
  started_ = true;
  threads_.reserve(contexts_.size());
  for (std::size_t i = first; i < contexts_.size(); ++i) {
    threads_.emplace_back([this, i] { run_thread(i, true); });
  }
}

void runtime::join() {
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

void runtime::run() {
  // Context 0 runs on the caller: a one-thread runtime stays a single-threaded process, where
  // glibc skips the cancellation-point bookkeeping around every recv() and send().
  start_from(1);
  run_thread(0, false);
  join();
}

void runtime::stop() noexcept {
  if (stopped_.exchange(true, std::memory_order_acq_rel)) return;
  for (auto& context : contexts_) context->stop();
}

void runtime::run_thread(std::size_t index, bool own_thread) {
  // Named so that top -H, perf and gdb show which context a thread runs; not the caller of
  // run(), whose name is the process's.
  const std::string name = "coronet-" + std::to_string(index);
  if (own_thread) ::pthread_setname_np(::pthread_self(), name.substr(0, 15).c_str());
  for (;;) {
    try {
      contexts_[index]->run();
      return;
    } catch (const std::exception& e) {
      log().error("{}: a handler threw: {}; the thread goes on", name, e.what());
    } catch (...) {
      log().error("{}: a handler threw an unknown exception; the thread goes on", name);
    }
  }
}

namespace {

// The coroutine a first signal starts: the caller's graceful stop, then the hard one.
asio::awaitable<void> graceful_then_stop(std::function<asio::awaitable<void>()> graceful,
                                         runtime& owner) {
  try {
    co_await graceful();
  } catch (const std::exception& e) {
    log().error("graceful stop: {}", e.what());
  }
  owner.stop();
}

}  // namespace

void runtime::handle_signals(std::function<asio::awaitable<void>()> graceful_stop) {
  if (signals_) throw std::logic_error("coronet::runtime::handle_signals(): called twice");
  signals_ = std::make_shared<signal_state>(*contexts_.front(), std::move(graceful_stop));
  // Each wait re-arms the next one; the handler holds the state, not the runtime's member.
  struct waiter {
    runtime* owner;
    std::shared_ptr<signal_state> state;
    void operator()(const std::error_code& ec, int signal) {
      if (ec) return;  // cancelled: the runtime is going away
      if (state->stopping || !state->graceful_stop) {
        log().info("signal {}: stopping now", signal);
        owner->stop();
        return;
      }
      log().info("signal {}: stopping gracefully (again to stop now)", signal);
      state->stopping = true;
      coronet::spawn(owner->executor(0), graceful_then_stop(state->graceful_stop, *owner),
                     "graceful stop");
      state->signals.async_wait(waiter{owner, state});
    }
  };
  signals_->signals.async_wait(waiter{this, signals_});
}

}  // namespace coronet
