#include "coronet/runtime.hpp"

#include <pthread.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstddef>
#include <cstring>
#include <exception>
#include <iterator>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include <asio/executor_work_guard.hpp>
#include <asio/generic/seq_packet_protocol.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>

#include "coronet/detail/io.hpp"
#include "coronet/detail/native_endpoint.hpp"
#include "coronet/detail/observer.hpp"
#include "coronet/detail/timed.hpp"
#include "coronet/endpoint.hpp"
#include "coronet/log.hpp"
#include "coronet/spawn.hpp"

namespace coronet {

// Hint 1 (one thread runs the context) keeps the reactor's per-descriptor locks, which guard
// a socket touched from another thread; UNSAFE_IO drops them for runtime_options::unlocked_io.
// Asio recycles a closed socket's descriptor state while its thread may still read it, so even
// creating a socket from another thread is a race without them (ThreadSanitizer showed it).
struct runtime::thread_context : asio::io_context {
  explicit thread_context(int concurrency_hint)
      : asio::io_context(concurrency_hint), keep_running(get_executor()) {}

  using asio::io_context::shutdown;  // protected in asio::execution_context

  // Keeps run() going while the context has nothing to do, until stop().
  asio::executor_work_guard<asio::io_context::executor_type> keep_running;

  // What the thread observes, when the runtime observes.
  detail::thread_observer observer;
  // The running thread's CPU clock (-1 when it is not running), and the CPU time it had used
  // when it last stopped running.
  std::atomic<clockid_t> cpu_clock{-1};
  std::atomic<std::int64_t> cpu_ns_before{0};
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

runtime::runtime(std::size_t threads)
    : runtime([threads] {
        runtime_options options;
        options.threads = threads;
        return options;
      }()) {}

runtime::runtime(runtime_options options) : observe_(options.observe) {
  const std::size_t threads = options.threads.value_or(default_threads());
  if (threads == 0) throw std::invalid_argument("coronet::runtime needs at least one thread");
  const int hint = options.unlocked_io ? ASIO_CONCURRENCY_HINT_UNSAFE_IO : 1;
  contexts_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) {
    contexts_.push_back(std::make_unique<thread_context>(hint));
  }
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
  auto& context = *contexts_[index];
  struct observing_scope {
    observing_scope(thread_context& c, bool on) : context(c), active(on) {
      if (!active) return;
      previous = detail::current_observer;  // run() from a thread of another runtime
      detail::current_observer = &context.observer;
      clockid_t clock{};
      if (::pthread_getcpuclockid(::pthread_self(), &clock) == 0) context.cpu_clock = clock;
    }
    ~observing_scope() {
      if (!active) return;
      const clockid_t clock = context.cpu_clock.exchange(-1);
      timespec used{};
      if (clock != -1 && ::clock_gettime(clock, &used) == 0) {
        context.cpu_ns_before =
            static_cast<std::int64_t>(used.tv_sec) * 1'000'000'000 + used.tv_nsec;
      }
      detail::current_observer = previous;
    }
    thread_context& context;
    bool active;
    detail::thread_observer* previous = nullptr;
  } observing(context, observe_);
  for (;;) {
    try {
      context.run();
      return;
    } catch (const std::exception& e) {
      log().error("{}: a handler threw: {}; the thread goes on", name, e.what());
    } catch (...) {
      log().error("{}: a handler threw an unknown exception; the thread goes on", name);
    }
  }
}

namespace {

double cpu_seconds(const std::atomic<clockid_t>& clock, const std::atomic<std::int64_t>& before) {
  const clockid_t id = clock.load();
  timespec used{};
  if (id != -1 && ::clock_gettime(id, &used) == 0) {
    return static_cast<double>(used.tv_sec) + static_cast<double>(used.tv_nsec) / 1e9;
  }
  return static_cast<double>(before.load()) / 1e9;
}

// getsockname() or getpeername() of `fd` as text; "-" when it has none. Read into Asio's
// endpoints, which the rest of coronet already converts.
std::string end_of(int fd, bool peer) {
  sockaddr_storage address{};
  socklen_t size = sizeof(address);
  auto* raw = reinterpret_cast<sockaddr*>(&address);
  if ((peer ? ::getpeername(fd, raw, &size) : ::getsockname(fd, raw, &size)) != 0) return "-";
  if (address.ss_family == AF_INET || address.ss_family == AF_INET6) {
    asio::ip::tcp::endpoint ip;
    std::memcpy(ip.data(), &address, size);
    return detail::from_native(ip).to_string();
  }
  if (address.ss_family == AF_UNIX) {
    return detail::from_native(asio::generic::seq_packet_protocol::endpoint(raw, size)).to_string();
  }
  return "-";
}

const char* kind_name(detail::wait_kind kind) noexcept {
  switch (kind) {
    case detail::wait_kind::none: return "none";
    case detail::wait_kind::accept: return "accept";
    case detail::wait_kind::connect: return "connect";
    case detail::wait_kind::handshake: return "handshake";
    case detail::wait_kind::recv: return "recv";
    case detail::wait_kind::send: return "send";
    case detail::wait_kind::readable: return "readable";
    case detail::wait_kind::shutdown: return "shutdown";
    case detail::wait_kind::timer: return "timer";
  }
  return "?";
}

// Thread `index`'s waiting operations; runs on that thread.
std::vector<suspended_operation> list_waits(const detail::thread_observer& observer,
                                            std::size_t index) {
  std::vector<suspended_operation> out;
  const auto now = detail::coarse_now();
  const auto wall_now = std::chrono::system_clock::now();
  for (const detail::wait_link* link = observer.waiting.next; link != &observer.waiting;
       link = link->next) {
    const auto& record = static_cast<const detail::wait_record&>(*link);
    std::string local;
    std::string peer;
    if (record.fd() >= 0) {
      local = end_of(record.fd(), false);
      peer = end_of(record.fd(), true);
    }
    for (auto side : {detail::wait_side::receive, detail::wait_side::send}) {
      if (record.kind(side) == detail::wait_kind::none) continue;
      const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::nanoseconds(std::max<std::int64_t>(0, now - record.since(side))));
      const auto& where = record.where(side);
      out.push_back(suspended_operation{
          .thread = index,
          .kind = kind_name(record.kind(side)),
          .fd = record.fd(),
          .local = local,
          .peer = peer,
          .since =
              std::chrono::time_point_cast<std::chrono::system_clock::duration>(wall_now - waited),
          .waited = waited,
          .file = where.file_name(),
          .line = where.line(),
          .function = where.function_name()});
    }
  }
  return out;
}

}  // namespace

detail::thread_observer* runtime::observer_of(std::size_t index) const noexcept {
  return observe_ ? &contexts_[index]->observer : nullptr;
}

metrics_snapshot runtime::metrics() const {
  metrics_snapshot out;
  out.observing = observe_;
  std::uint64_t started = 0;
  std::uint64_t ended = 0;
  for (const auto& context : contexts_) {
    const auto& o = context->observer;
    metrics_counters c;
    c.connections_accepted = o.accepted.get();
    const auto thread_ended = o.sessions_ended.get();
    const auto thread_started = o.sessions_started.get();
    c.connections_closed = thread_ended;
    c.connections_open = thread_started > thread_ended ? thread_started - thread_ended : 0;
    c.connections_refused = o.refused.get();
    c.accept_exhausted = o.accept_exhausted.get();
    c.bytes_received = o.bytes_received.get();
    c.bytes_sent = o.bytes_sent.get();
    c.messages_received = o.messages_received.get();
    c.messages_sent = o.messages_sent.get();
    c.timeouts = o.timeouts.get();
    c.resets = o.resets.get();
    c.accept_queue_high_water = o.accept_queue_high.get();
    c.handover_queue_high_water =
        static_cast<std::uint64_t>(std::max<std::int64_t>(0, o.handover_high.load()));
    c.cpu_seconds = observe_ ? cpu_seconds(context->cpu_clock, context->cpu_ns_before) : 0.0;
    started += thread_started;
    ended += thread_ended;

    auto& t = out.total;
    t.connections_accepted += c.connections_accepted;
    t.connections_closed += c.connections_closed;
    t.connections_refused += c.connections_refused;
    t.accept_exhausted += c.accept_exhausted;
    t.bytes_received += c.bytes_received;
    t.bytes_sent += c.bytes_sent;
    t.messages_received += c.messages_received;
    t.messages_sent += c.messages_sent;
    t.timeouts += c.timeouts;
    t.resets += c.resets;
    t.accept_queue_high_water = std::max(t.accept_queue_high_water, c.accept_queue_high_water);
    t.handover_queue_high_water =
        std::max(t.handover_queue_high_water, c.handover_queue_high_water);
    t.cpu_seconds += c.cpu_seconds;
    out.threads.push_back(c);
  }
  out.total.connections_open = started > ended ? started - ended : 0;
  return out;
}

asio::awaitable<suspended_report> runtime::suspended_operations(timeout limit) const {
  suspended_report report;
  report.observing = observe_;
  report.at = std::chrono::system_clock::now();
  if (!observe_) co_return report;
  // Shared with each thread's answer, which may come after the caller has given up, on a
  // thread of its own: so it holds nothing of the caller's executor, and the caller looks for
  // the answers rather than being woken by them.
  struct gathering {
    explicit gathering(std::size_t n) : answered(n, false), lists(n) {}
    std::mutex mutex;
    std::vector<bool> answered;
    std::vector<std::vector<suspended_operation>> lists;
    std::size_t remaining = 0;
  };
  auto shared = std::make_shared<gathering>(contexts_.size());
  shared->remaining = contexts_.size();
  for (std::size_t k = 0; k < contexts_.size(); ++k) {
    const detail::thread_observer* observer = &contexts_[k]->observer;
    asio::post(*contexts_[k], [shared, observer, k] {
      auto list = list_waits(*observer, k);
      std::lock_guard lock(shared->mutex);
      shared->lists[k] = std::move(list);
      shared->answered[k] = true;
      --shared->remaining;
    });
  }
  // Every millisecond at first, then less often: a listing is a person's or a scraper's.
  asio::steady_timer pause(co_await asio::this_coro::executor);
  const detail::deadline until(limit);
  for (auto step = std::chrono::milliseconds(1);;
       step = std::min(step * 2, std::chrono::milliseconds(50))) {
    {
      std::lock_guard lock(shared->mutex);
      if (shared->remaining == 0) break;
    }
    if (until.expired()) break;
    pause.expires_after(step);
    (void)co_await pause.async_wait(detail::use_nothrow);
  }
  std::lock_guard lock(shared->mutex);
  for (std::size_t k = 0; k < contexts_.size(); ++k) {
    if (!shared->answered[k]) {
      report.unanswered.push_back(k);
      continue;
    }
    auto& list = shared->lists[k];
    std::stable_sort(list.begin(), list.end(),
                     [](const auto& a, const auto& b) { return a.waited > b.waited; });
    std::move(list.begin(), list.end(), std::back_inserter(report.operations));
  }
  co_return report;
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
