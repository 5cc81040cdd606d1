#include "coronet/basic_server.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include <asio/co_spawn.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>

#include "coronet/byte_counters.hpp"
#include "coronet/detail/connection_limit.hpp"
#include "coronet/detail/io.hpp"
#include "coronet/detail/observer.hpp"
#include "coronet/detail/readiness.hpp"
#include "coronet/log.hpp"
#include "coronet/spawn.hpp"
#include "coronet/task_group.hpp"
#include "coronet/tls_server.hpp"
#include "detail/log_task_end.hpp"

namespace coronet {
namespace {

// A TCP or TLS server's listeners: reusable addresses, IPv4 peers on `[::]`.
listen_options listen_options_for(const server_options& options) {
  return listen_options{.backlog = options.backlog,
                        .reuse_address = true,
                        .reuse_port = options.placement == placement::reuse_port,
                        .v6_only = false};
}

tcp_listener bind_listener(std::type_identity<tcp_listener>, const asio::any_io_executor& executor,
                           const endpoint& local, const server_options& options) {
  return tcp_listener::bind(executor, local, listen_options_for(options));
}

unix_listener bind_listener(std::type_identity<unix_listener>,
                            const asio::any_io_executor& executor, const endpoint& local,
                            const server_options& options) {
  if (options.placement == placement::reuse_port) {
    throw std::invalid_argument("cannot serve " + local.to_string() +
                                " with placement::reuse_port: it needs TCP");
  }
  return unix_listener::bind(executor, local, unix_listen_options{.backlog = options.backlog});
}

// What makes a TCP or Unix server's listeners.
template <class Listener>
auto plain_listener(const server_options& options) {
  return [options](const asio::any_io_executor& executor, const endpoint& where) {
    return bind_listener(std::type_identity<Listener>{}, executor, where, options);
  };
}

// accept() failures the kernel documents as "try again" (accept(2)): a connection that went
// away before it was taken, or a network error that belongs to it.
bool is_transient(const std::error_code& ec) {
  return ec == std::errc::connection_aborted || ec == std::errc::protocol_error ||
         ec == std::errc::operation_not_permitted || ec == std::errc::network_down ||
         ec == std::errc::network_unreachable || ec == std::errc::host_unreachable ||
         ec == std::errc::no_protocol_option || ec == std::errc::operation_not_supported;
}

// The process or system running out of something that frees up as connections close.
bool is_resource_shortage(const std::error_code& ec) {
  return ec == std::errc::too_many_files_open || ec == std::errc::too_many_files_open_in_system ||
         ec == std::errc::no_buffer_space || ec == std::errc::not_enough_memory;
}

// Runs `make(k)` on every context k of `on` at once, and returns the sum of what they return
// once all have finished. The caller stays on its own executor.
asio::awaitable<std::size_t> sum_on_every_thread(
    runtime& on, const std::function<asio::awaitable<std::size_t>(std::size_t)>& make) {
  struct shared {
    shared(const asio::any_io_executor& home, std::size_t n)
        : done(home, asio::steady_timer::time_point::max()), remaining(n) {}
    asio::steady_timer done;
    std::size_t remaining;
    std::size_t sum = 0;
  };
  const auto home = co_await asio::this_coro::executor;
  auto all = std::make_shared<shared>(home, on.size());
  for (std::size_t k = 0; k < on.size(); ++k) {
    // `all` moves on to `home`: its timer must not be destroyed on thread k, after the caller
    // (and perhaps its context) is gone.
    asio::co_spawn(on.executor(k), make(k),
                   [all, home, k](std::exception_ptr e, std::size_t n) mutable {
                     asio::post(home, [all = std::move(all), e, n, k] {
                       if (e) {
                         try {
                           std::rethrow_exception(e);
                         } catch (const std::exception& error) {
                           log().error("server stop on thread {}: {}", k, error.what());
                         }
                       }
                       all->sum += n;
                       if (--all->remaining == 0) all->done.cancel();
                     });
                   });
  }
  while (all->remaining > 0) (void)co_await all->done.async_wait(detail::use_nothrow);
  co_return all->sum;
}

int listening_fd(tcp_listener& listener) noexcept { return listener.native_handle(); }
int listening_fd(tls_listener& listener) noexcept { return listener.tcp().native_handle(); }
int listening_fd(unix_listener& listener) noexcept { return listener.native_handle(); }

// How many connections wait in a TCP listener's kernel backlog (for a listening socket,
// TCP_INFO's tcpi_unacked is its accept queue's length); 0 for a Unix-domain one.
std::uint64_t backlog_of(int fd) noexcept {
  tcp_info info{};
  socklen_t size = sizeof(info);
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &size) != 0) return 0;
  return info.tcpi_unacked;
}
std::uint64_t queued_connections(tcp_listener& listener) noexcept {
  return backlog_of(listening_fd(listener));
}
std::uint64_t queued_connections(tls_listener& listener) noexcept {
  return backlog_of(listening_fd(listener));
}
std::uint64_t queued_connections(unix_listener&) noexcept { return 0; }

// An accepted connection's descriptor on its way to the thread that will serve it: closed if
// it never gets there (that thread's context shut down first).
class owned_fd {
 public:
  explicit owned_fd(int fd) noexcept : fd_(fd) {}
  owned_fd(owned_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  owned_fd& operator=(owned_fd&&) = delete;
  ~owned_fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// For accept_descriptor(), whose accept4(2) comes before any wait. (Asio makes a listening
// socket non-blocking only for its own accept operations.)
void make_non_blocking(int fd) noexcept {
  if (const int flags = ::fcntl(fd, F_GETFL); flags >= 0 && (flags & O_NONBLOCK) == 0) {
    ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  }
}

// Takes the next queued connection off `listener`, which make_non_blocking() has prepared, as
// a bare descriptor registered with no thread's reactor yet; waits while there is none.
template <class Listener>
asio::awaitable<result<owned_fd>> accept_descriptor(Listener& listener) {
  for (;;) {
    const int fd = ::accept4(listening_fd(listener), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) co_return owned_fd(fd);
    const int error = errno;
    if (error == EINTR) continue;
    if (error != EAGAIN && error != EWOULDBLOCK) {
      co_return detail::to_coronet_error(std::error_code(error, std::system_category()));
    }
    auto queued = co_await listener.wait_for_connection();
    if (!queued) co_return queued.error();
  }
}

// Registers `fd`, as an Asio socket of `protocol`, with the reactor of `executor`'s context,
// which must be the calling thread's. On failure `fd` stays the caller's.
template <class Protocol>
std::optional<typename Protocol::socket> adopt_socket(const asio::any_io_executor& executor,
                                                      const Protocol& protocol, owned_fd& fd,
                                                      std::error_code& ec) {
  typename Protocol::socket socket(executor);
  socket.assign(protocol, fd.get(), ec);
  if (ec) return std::nullopt;
  fd.release();
  return socket;
}

std::optional<asio::ip::tcp::socket> adopt_tcp(const endpoint& local,
                                               const asio::any_io_executor& executor, owned_fd& fd,
                                               std::error_code& ec) {
  return adopt_socket(executor, local.is_v6() ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), fd, ec);
}

// The stream a connection accepted on `listener` becomes on the thread that serves it.
std::optional<tcp_stream> adopt_stream(const tcp_listener& listener,
                                       const asio::any_io_executor& executor, owned_fd& fd,
                                       std::error_code& ec) {
  auto socket = adopt_tcp(listener.local_endpoint(), executor, fd, ec);
  if (!socket) return std::nullopt;
  return tcp_stream(std::move(*socket));
}
std::optional<tls_stream> adopt_stream(const tls_listener& listener,
                                       const asio::any_io_executor& executor, owned_fd& fd,
                                       std::error_code& ec) {
  auto socket = adopt_tcp(listener.local_endpoint(), executor, fd, ec);
  if (!socket) return std::nullopt;
  return tls_stream(tcp_stream(std::move(*socket)), listener.context());
}
std::optional<unix_stream> adopt_stream(const unix_listener&, const asio::any_io_executor& executor,
                                        owned_fd& fd, std::error_code& ec) {
  auto socket = adopt_socket(executor, asio::local::stream_protocol(), fd, ec);
  if (!socket) return std::nullopt;
  return unix_stream(std::move(*socket));
}

// A connection's two ends as its thread's table keeps them. For TCP, Asio's endpoints (28 bytes
// each) rather than coronet::endpoint (140, with room for a Unix path): the table holds one
// entry per connection. connections() turns them back.
// Made from the server's stream type or from a lean_stream.
template <class Stream>
struct stored_ends {
  template <class Any>
  explicit stored_ends(const Any& s) : local(s.local_endpoint()), peer(s.remote_endpoint()) {}
  endpoint local;
  endpoint peer;
};

struct stored_ip_ends {
  template <class Stream>
  explicit stored_ip_ends(const Stream& s)
      : local(s.local_endpoint().tcp()), peer(s.remote_endpoint().tcp()) {}
  asio::ip::tcp::endpoint local;
  asio::ip::tcp::endpoint peer;
};

template <>
struct stored_ends<tcp_stream> : stored_ip_ends {
  using stored_ip_ends::stored_ip_ends;
};

template <>
struct stored_ends<tls_stream> : stored_ip_ends {
  using stored_ip_ends::stored_ip_ends;
};

}  // namespace

template <class Listener>
struct basic_server<Listener>::state {
  // A live connection, by id in its thread's table: what connections() reports, with the byte
  // counts read when it is asked.
  struct record {
    const byte_counters* counters;  // its connection_end's, which outlives the record
    std::chrono::system_clock::time_point started;
    stored_ends<stream_type> ends;
    int fd;

    connection_info info(std::uint64_t id, std::size_t thread) const {
      return connection_info{.id = id,
                             .fd = fd,
                             .local = ends.local,
                             .peer = ends.peer,
                             .thread = thread,
                             .bytes_received = counters->received(),
                             .bytes_sent = counters->sent(),
                             .started = started};
    }
  };

  // What belongs to one runtime thread; only that thread's coroutines touch the task groups
  // and the listener, while `open` is read by connections() from any thread.
  struct thread_part {
    explicit thread_part(const asio::any_io_executor& executor)
        : loops(executor), sessions(executor) {}

    std::optional<Listener> listener;  // every thread with reuse_port; thread 0 otherwise
    task_group loops;                  // the accept loop
    task_group sessions;               // one task per connection
    mutable std::mutex mutex;          // guards `open`
    std::unordered_map<std::uint64_t, record> open;
  };

  state(runtime& on, handler_type h, task_handler_type t, const server_options& o)
      : owner(on),
        handler(std::move(h)),
        task_handler(std::move(t)),
        options(o),
        limit(std::make_shared<detail::connection_limit>(o.max_connections)) {
    for (std::size_t k = 0; k < on.size(); ++k) {
      threads.push_back(std::make_unique<thread_part>(on.executor(k)));
    }
  }

  runtime& owner;
  const handler_type handler;            // empty when the server has a task handler
  const task_handler_type task_handler;  // empty when it has an awaitable one
  const server_options options;
  endpoint local;
  std::shared_ptr<detail::connection_limit> limit;
  std::vector<std::unique_ptr<thread_part>> threads;
  std::atomic<std::uint64_t> next_id{1};
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> ended_received{0};  // bytes of the connections that have ended
  std::atomic<std::uint64_t> ended_sent{0};
  std::atomic<bool> stopping{false};
  // The server's own round-robin turn: its connections spread evenly over the threads even
  // when other servers on the runtime accept in between (a runtime-wide turn would let two
  // servers take alternate threads each).
  std::atomic<std::size_t> turn{0};

  std::size_t next_thread() noexcept {
    return turn.fetch_add(1, std::memory_order_relaxed) % owner.size();
  }

  class connection_end;

  // Lists the connection in its thread's table, counting its bytes from now on into `end`'s
  // counters (the stream's reference to them keeps `end`, not the entry, alive).
  template <class Stream>
  static void register_connection(state& self, std::size_t thread, std::uint64_t id, Stream& stream,
                                  const std::shared_ptr<connection_end>& end) {
    auto& part = *self.threads[thread];
    stream.count_bytes(std::shared_ptr<byte_counters>(end, &end->counters));
    record entry{.counters = &end->counters,
                 .started = std::chrono::system_clock::now(),
                 .ends = stored_ends<stream_type>(stream),
                 .fd = static_cast<int>(stream.native_handle())};
    std::lock_guard lock(part.mutex);
    part.open.emplace(id, std::move(entry));
  }

  // Logs an exception that escaped a connection's handler (`how`: before its coroutine
  // existed), with the connection's number and peer, from its table entry, which is still there.
  static void log_handler_failure(const state& self, std::size_t thread, std::uint64_t id,
                                  std::exception_ptr error, std::string_view how = {}) {
    std::string name = "connection " + std::to_string(id) + " from ";
    {
      const auto& part = *self.threads[thread];
      std::lock_guard lock(part.mutex);
      if (const auto found = part.open.find(id); found != part.open.end()) {
        name += endpoint(found->second.ends.peer).to_string();
      }
    }
    if (!how.empty()) name.append(": ").append(how);
    detail::log_task_end(name, std::move(error));
  }

  // What a connection holds until its handler's coroutine ends, however it ends (its frame
  // destroyed before it finished included): its entry in its thread's table, which then goes
  // (its bytes to the totals), its slot under max_connections, and the server's state; and
  // the connection's byte counters, in the same allocation. Shared by the end handler the
  // session group keeps: no coroutine frame of its own, which an idle connection would hold
  // all its life.
  class connection_end {
   public:
    connection_end(std::shared_ptr<state> s, std::size_t thread, std::uint64_t id,
                   detail::connection_limit::slot slot) noexcept
        : self_(std::move(s)),
          id_(id),
          slot_(std::move(slot)),
          observer_(detail::current_observer),
          thread_(static_cast<std::uint32_t>(thread)) {
      if (observer_ != nullptr) observer_->sessions_started.add(1);
    }
    connection_end(const connection_end&) = delete;
    connection_end& operator=(const connection_end&) = delete;
    // The frame was destroyed before the coroutine finished, or the handler threw first.
    ~connection_end() { finish(); }

    // The handler's coroutine has ended: what escaped it is logged, while the entry still
    // names the peer; then the connection is over, whoever still holds its counters.
    void ended(std::exception_ptr error) {
      if (error) log_handler_failure(*self_, thread_, id_, std::move(error));
      finish();
    }

    byte_counters counters;

   private:
    void finish() noexcept {
      if (finished_) return;
      finished_ = true;
      {
        auto& part = *self_->threads[thread_];
        std::lock_guard lock(part.mutex);
        const auto found = part.open.find(id_);
        self_->ended_received.fetch_add(counters.received(), std::memory_order_relaxed);
        self_->ended_sent.fetch_add(counters.sent(), std::memory_order_relaxed);
        part.open.erase(found);
      }
      slot_ = detail::connection_limit::slot();
      if (observer_ != nullptr) observer_->sessions_ended.add(1);
    }

    std::shared_ptr<state> self_;
    std::uint64_t id_;
    detail::connection_limit::slot slot_;
    detail::thread_observer* observer_;  // the connection's thread's, when it observes
    std::uint32_t thread_;               // beside finished_: one allocation size class less
    bool finished_ = false;
  };

  // Starts a connection's handler on its own thread's group; runs on that thread. A handler
  // that throws before its coroutine starts is logged, and the connection closed. `Stream` is
  // stream_type for an awaitable handler, lean_stream for a task handler.
  template <class Stream>
  static void start_session(const std::shared_ptr<state>& self, std::size_t thread, Stream stream,
                            detail::connection_limit::slot slot) {
    const auto id = self->next_id.fetch_add(1, std::memory_order_relaxed);
    auto end = std::make_shared<connection_end>(self, thread, id, std::move(slot));
    register_connection(*self, thread, id, stream, end);
    using work_type =
        std::conditional_t<std::is_same_v<Stream, lean_stream>, task<void>, asio::awaitable<void>>;
    std::optional<work_type> work;
    try {
      if constexpr (std::is_same_v<Stream, lean_stream>) {
        work.emplace(self->task_handler(std::move(stream)));
      } else {
        work.emplace(self->handler(std::move(stream)));
      }
    } catch (...) {
      log_handler_failure(*self, thread, id, std::current_exception(), "the handler threw");
      if (auto* observer = detail::current_observer) observer->refused.add(1);
      return;
    }
    self->threads[thread]->sessions.spawn(
        std::move(*work),
        [end = std::move(end)](std::exception_ptr error) { end->ended(std::move(error)); });
  }

  // Counts a connection accepted on `listener`; ends a pause's episode.
  static void count_accepted(state& self, Listener& listener, std::chrono::milliseconds& backoff,
                             const std::string& where) {
    if (backoff.count() > 0) log().info("accept on {}: accepting again", where);
    backoff = std::chrono::milliseconds{0};
    self.accepted.fetch_add(1, std::memory_order_relaxed);
    if (auto* observer = detail::current_observer) {
      observer->accepted.add(1);
      observer->accept_queue_high.raise_to(queued_connections(listener));
    }
  }

  // Gives the connection just accepted on thread `home` to the next thread in turn, which
  // makes its stream: each socket is registered with the reactor of the thread it lives on, by
  // that thread, never by another one while that reactor runs.
  static void hand_over_connection(const std::shared_ptr<state>& self, std::size_t home,
                                   owned_fd fd, detail::connection_limit::slot slot) {
    const std::size_t target = self->next_thread();
    if (target == home) {
      adopt_connection(self, home, target, std::move(fd), std::move(slot));
      return;
    }
    detail::thread_observer* there = self->owner.observer_of(target);
    if (there != nullptr) {
      const auto queued = there->handover_pending.fetch_add(1) + 1;
      if (queued > there->handover_high.load(std::memory_order_relaxed)) {
        there->handover_high.store(queued, std::memory_order_relaxed);
      }
    }
    asio::post(self->owner.executor(target),
               [self, home, target, there, fd = std::move(fd), l = std::move(slot)]() mutable {
                 if (there != nullptr) there->handover_pending.fetch_sub(1);
                 adopt_connection(self, home, target, std::move(fd), std::move(l));
               });
  }

  // On thread `thread`: the stream of a connection that `home`'s listener accepted, then its
  // session. A descriptor the reactor refuses (out of memory) is logged and closed.
  static void adopt_connection(const std::shared_ptr<state>& self, std::size_t home,
                               std::size_t thread, owned_fd fd,
                               detail::connection_limit::slot slot) {
    if (self->task_handler) {
      std::optional<lean_stream> stream;
      try {
        stream.emplace(self->owner.context(thread), fd.get());
        fd.release();
      } catch (const std::system_error& e) {
        log().warn("accept on {}: cannot serve the connection: {}", self->local.to_string(),
                   e.code().message());
        if (auto* observer = detail::current_observer) observer->refused.add(1);
        return;
      }
      start_session(self, thread, std::move(*stream), std::move(slot));
      return;
    }
    std::error_code ec;
    auto stream =
        adopt_stream(*self->threads[home]->listener, self->owner.executor(thread), fd, ec);
    if (!stream) {
      log().warn("accept on {}: cannot serve the connection: {}", self->local.to_string(),
                 ec.message());
      if (auto* observer = detail::current_observer) observer->refused.add(1);
      return;
    }
    start_session(self, thread, std::move(*stream), std::move(slot));
  }

  static asio::awaitable<void> pause(std::chrono::milliseconds how_long) {
    asio::steady_timer timer(co_await asio::this_coro::executor, how_long);
    (void)co_await timer.async_wait(detail::use_nothrow);
  }

  static asio::awaitable<void> accept_loop(std::shared_ptr<state> self, std::size_t home) {
    constexpr std::chrono::milliseconds first_pause{50};
    constexpr std::chrono::milliseconds longest_pause{1000};
    Listener& listener = *self->threads[home]->listener;
    const auto where = self->local.to_string();
    const bool hand_over = self->options.placement == placement::round_robin;
    // A lean_stream is made from a bare descriptor, on either placement.
    const bool bare = hand_over || static_cast<bool>(self->task_handler);
    if (bare) make_non_blocking(listening_fd(listener));
    // With a limit and several listeners, a listener waiting in accept() while holding a slot
    // would keep it from a busy one: each waits for a queued connection before taking a slot.
    const bool wait_first =
        self->options.max_connections.has_value() && !hand_over && self->owner.size() > 1;
    std::chrono::milliseconds backoff{0};
    for (;;) {
      if (wait_first) {
        auto queued = co_await listener.wait_for_connection();
        if (queued.error() == std::errc::operation_canceled) co_return;
      }
      // Taken before accept(): at the limit, clients wait in the kernel's backlog.
      auto slot = co_await self->limit->acquire();
      if (!slot) co_return;
      std::error_code ec;
      if (bare) {
        // A bare descriptor, registered by the thread that serves it (hand_over_connection()).
        auto fd = co_await accept_descriptor(listener);
        if (fd) {
          count_accepted(*self, listener, backoff, where);
          if (hand_over) {
            hand_over_connection(self, home, std::move(*fd), std::move(slot));
          } else {
            adopt_connection(self, home, home, std::move(*fd), std::move(slot));
          }
          continue;
        }
        ec = fd.error();
      } else {
        auto stream = co_await listener.accept();
        if (stream) {
          count_accepted(*self, listener, backoff, where);
          start_session(self, home, std::move(*stream), std::move(slot));
          continue;
        }
        ec = stream.error();
      }
      if (ec == std::errc::operation_canceled) co_return;
      if (is_transient(ec)) {
        log().debug("accept on {}: {}", where, ec.message());
        if (auto* observer = detail::current_observer) observer->refused.add(1);
        continue;
      }
      if (auto* observer = detail::current_observer; observer && is_resource_shortage(ec)) {
        observer->accept_exhausted.add(1);
      }
      // Out of descriptors (or worse): neither spin on the readable listener nor give up.
      // One line per episode: a warning for a shortage that clears on its own, else an error.
      if (backoff.count() == 0) {
        log().log(is_resource_shortage(ec) ? spdlog::level::warn : spdlog::level::err,
                  "accept on {}: {}; pausing accepts until it clears", where, ec.message());
        backoff = first_pause;
      } else {
        backoff = std::min(backoff * 2, longest_pause);
      }
      slot = detail::connection_limit::slot();  // not held while pausing
      co_await pause(backoff);
    }
  }

  static asio::awaitable<std::size_t> stop_accepting(std::shared_ptr<state> self,
                                                     std::size_t thread) {
    auto& part = *self->threads[thread];
    (void)co_await part.loops.stop(std::chrono::seconds(0));
    if (part.listener) part.listener->close();  // a Unix-domain listener removes its file
    co_return 0;
  }

  static asio::awaitable<std::size_t> stop_sessions(std::shared_ptr<state> self, std::size_t thread,
                                                    timeout grace) {
    co_return co_await self->threads[thread]->sessions.stop(grace);
  }

  // The destructor's stop, for a server never stopped: no grace.
  static asio::awaitable<void> stop_now(std::shared_ptr<state> self) {
    const auto cut = co_await stop(std::move(self), std::chrono::seconds(0));
    if (cut > 0) log().info("server destroyed: {} connection(s) cut off", cut);
  }

  static asio::awaitable<std::size_t> stop(std::shared_ptr<state> self, timeout grace) {
    if (self->stopping.exchange(true)) co_return 0;
    // Every accept loop first, everywhere: a connection handed over before its loop ended is
    // queued on its thread ahead of that thread's session stop, which then sees it.
    (void)co_await sum_on_every_thread(self->owner,
                                       [&self](std::size_t k) { return stop_accepting(self, k); });
    co_return co_await sum_on_every_thread(
        self->owner, [&self, grace](std::size_t k) { return stop_sessions(self, k, grace); });
  }
};

template <class Listener>
template <class L>
requires(!std::same_as<L, tls_listener>) basic_server<Listener> basic_server<Listener>::bind(
    runtime& on, const endpoint& local, handler_type handler, server_options options) {
  return bind_with(on, local, plain_listener<Listener>(options), std::move(handler), nullptr,
                   options);
}

template <class Listener>
template <class L>
requires(!std::same_as<L, tls_listener>) basic_server<Listener> basic_server<Listener>::bind(
    runtime& on, const endpoint& local, task_handler_type handler, server_options options) {
  return bind_with(on, local, plain_listener<Listener>(options), nullptr, std::move(handler),
                   options);
}

template <class Listener>
template <class L>
requires std::same_as<L, tls_listener> basic_server<Listener> basic_server<Listener>::bind(
    runtime& on, const endpoint& local, const tls_context& context, handler_type handler,
    server_options options) {
  if (!context.is_server()) {
    throw std::invalid_argument("cannot serve TLS on " + local.to_string() +
                                " with a client context: make it with tls_context::server()");
  }
  return bind_with(
      on, local,
      [options, context](const asio::any_io_executor& executor, const endpoint& where) {
        return tls_listener::bind(executor, where, context, listen_options_for(options));
      },
      std::move(handler), nullptr, options);
}

template <class Listener>
basic_server<Listener> basic_server<Listener>::bind_with(runtime& on, const endpoint& local,
                                                         const listener_factory& make_listener,
                                                         handler_type handler,
                                                         task_handler_type task_handler,
                                                         server_options options) {
  if (!handler && !task_handler) {
    throw std::invalid_argument("coronet server: the handler is empty");
  }
  auto s = std::make_shared<state>(on, std::move(handler), std::move(task_handler), options);
  if (s->task_handler) {
    // Every thread's readiness set (an epoll descriptor) now, not at its first connection,
    // when the process may be out of descriptors.
    for (std::size_t k = 0; k < on.size(); ++k) (void)detail::readiness::of(on.context(k));
  }
  s->threads[0]->listener.emplace(make_listener(on.executor(0), local));
  s->local = s->threads[0]->listener->local_endpoint();
  if (options.placement == placement::reuse_port) {
    // The others join the first one's port (the real one, when `local` asked for port 0).
    for (std::size_t k = 1; k < on.size(); ++k) {
      s->threads[k]->listener.emplace(make_listener(on.executor(k), s->local));
    }
  }
  for (std::size_t k = 0; k < on.size(); ++k) {
    if (!s->threads[k]->listener) continue;
    // The loop is spawned on its own thread: a task_group is only used from its executor.
    asio::post(on.executor(k), [s, k] {
      if (s->stopping) return;
      s->threads[k]->loops.spawn(state::accept_loop(s, k),
                                 "accept loop on " + s->local.to_string());
    });
  }
  return basic_server(std::move(s));
}

template <class Listener>
basic_server<Listener>::basic_server(std::shared_ptr<state> s) noexcept : state_(std::move(s)) {}

template <class Listener>
basic_server<Listener>::basic_server(basic_server&&) noexcept = default;

template <class Listener>
basic_server<Listener>& basic_server<Listener>::operator=(basic_server&& other) noexcept {
  if (this != &other) {
    abandon();
    state_ = std::move(other.state_);
  }
  return *this;
}

template <class Listener>
basic_server<Listener>::~basic_server() {
  abandon();
}

template <class Listener>
void basic_server<Listener>::abandon() noexcept {
  if (!state_ || state_->stopping.load()) return;
  coronet::spawn(state_->owner.executor(0), state::stop_now(state_), "server stop");
}

template <class Listener>
const endpoint& basic_server<Listener>::local_endpoint() const noexcept {
  return state_->local;
}

template <class Listener>
asio::awaitable<std::size_t> basic_server<Listener>::stop(timeout grace) {
  return state::stop(state_, grace);
}

template <class Listener>
std::size_t basic_server<Listener>::connection_count() const {
  std::size_t n = 0;
  for (const auto& part : state_->threads) {
    std::lock_guard lock(part->mutex);
    n += part->open.size();
  }
  return n;
}

template <class Listener>
server_stats basic_server<Listener>::stats() const {
  server_stats out;
  // Ended totals before the tables: a connection ending in between is counted at most once
  // short, never twice.
  out.accepted = state_->accepted.load(std::memory_order_relaxed);
  out.bytes_received = state_->ended_received.load(std::memory_order_relaxed);
  out.bytes_sent = state_->ended_sent.load(std::memory_order_relaxed);
  for (const auto& part : state_->threads) {
    std::lock_guard lock(part->mutex);
    out.open += part->open.size();
    for (const auto& [id, entry] : part->open) {
      out.bytes_received += entry.counters->received();
      out.bytes_sent += entry.counters->sent();
    }
  }
  return out;
}

template <class Listener>
std::vector<connection_info> basic_server<Listener>::connections() const {
  std::vector<connection_info> out;
  for (std::size_t k = 0; k < state_->threads.size(); ++k) {
    const auto& part = *state_->threads[k];
    std::lock_guard lock(part.mutex);
    for (const auto& [id, entry] : part.open) out.push_back(entry.info(id, k));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return out;
}

template class basic_server<tcp_listener>;
template class basic_server<unix_listener>;
template class basic_server<tls_listener>;

template basic_server<tcp_listener> basic_server<tcp_listener>::bind<tcp_listener>(
    runtime&, const endpoint&, basic_server<tcp_listener>::handler_type, server_options);
template basic_server<unix_listener> basic_server<unix_listener>::bind<unix_listener>(
    runtime&, const endpoint&, basic_server<unix_listener>::handler_type, server_options);
template basic_server<tcp_listener> basic_server<tcp_listener>::bind<tcp_listener>(
    runtime&, const endpoint&, basic_server<tcp_listener>::task_handler_type, server_options);
template basic_server<unix_listener> basic_server<unix_listener>::bind<unix_listener>(
    runtime&, const endpoint&, basic_server<unix_listener>::task_handler_type, server_options);
template basic_server<tls_listener> basic_server<tls_listener>::bind<tls_listener>(
    runtime&, const endpoint&, const tls_context&, basic_server<tls_listener>::handler_type,
    server_options);

}  // namespace coronet
