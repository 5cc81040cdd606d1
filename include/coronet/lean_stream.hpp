#pragma once
// lean_stream: a connected TCP or Unix-domain stream whose operations are awaited from a
// coronet::task and wait in the thread's own epoll set, not in Asio's reactor.

#include <sys/socket.h>

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <system_error>
#include <utility>

#include <asio/buffer.hpp>
#include <asio/io_context.hpp>

#include "coronet/byte_counters.hpp"
#include "coronet/detail/io.hpp"
#include "coronet/detail/observer.hpp"
#include "coronet/detail/readiness.hpp"
#include "coronet/endpoint.hpp"
#include "coronet/result.hpp"
#include "coronet/shutdown_type.hpp"
#include "coronet/socket_option.hpp"
#include "coronet/source_location.hpp"
#include "coronet/task.hpp"
#include "coronet/timeout.hpp"

namespace coronet {

/// A connected byte stream (TCP or Unix-domain) for coronet::task: the lean counterpart of
/// tcp_stream and unix_stream, which servers hand to a task handler (basic_server::bind).
///
/// Each operation first tries its system call at once; only when the socket is not ready does
/// the task suspend, and then the thread's readiness set (one epoll set per io_context,
/// registered with Asio's reactor as one descriptor) resumes it directly once the socket is
/// ready: the operation lives in the awaiting frame, and a wait allocates nothing, posts no
/// completion handler and takes no trip through Asio's scheduler. The descriptor is
/// registered once, edge-triggered, and the stream remembers whether the last receive drained
/// the socket, so a receive that would find nothing does not make the system call.
///
/// Errors: each operation returns its outcome as a value (io_result), with the same error
/// values as tcp_stream: coronet::errc::eof when the peer has closed, std::errc::
/// connection_reset, std::errc::broken_pipe, std::errc::operation_canceled after close() or a
/// cancelled task, std::errc::timed_out when a limit passed. Call `.value()` for the throwing
/// form.
///
/// Timeouts: each operation takes an optional limit of its own; without one it gets the
/// stream's (set_timeout()), and without either it waits as long as it takes (and arms no
/// timer).
///
/// Observation: on a runtime that observes, each operation that waits is listed by
/// runtime::suspended_operations() with `where`, and its bytes are counted in metrics().
///
/// Cancellation: a cancelled task's pending operation ends with operation_canceled; receives
/// lose nothing, and a send reports in bytes() what it had sent.
///
/// Fairness: an operation that completes without waiting goes on at once, but every 32nd one
/// in a row resumes its task through the context's queue, so that a peer that keeps the socket
/// ready cannot keep the thread's other tasks from running.
///
/// Thread safety: a stream belongs to the thread of its io_context (which must be run by one
/// thread). One send-side and one receive-side operation may be pending at once (a reader and
/// a writer task); never two of one side. Do not move a stream while an operation is pending.
///
/// Example:
///
///     coronet::task<void> echo(coronet::lean_stream stream) {
///       std::array<char, 4096> buf;
///       while (auto got = co_await stream.recv(asio::buffer(buf)))
///         if (!co_await stream.send_all(asio::buffer(buf.data(), got.bytes()))) break;
///     }
class lean_stream {
  class operation;

 public:
  /// Takes over `fd`, a connected stream socket, on `context` (whose thread must be the
  /// calling one once it runs): makes it non-blocking and registers it with the context's
  /// readiness set. Throws std::system_error when the set refuses it (the descriptor is then
  /// still the caller's).
  lean_stream(asio::io_context& context, int fd);

  /// Connects to `peer` (an IP or a Unix-domain endpoint). Errors: connection_refused,
  /// timed_out (the limit, or the kernel's), network_unreachable, ...
  static task<result<lean_stream>> connect(asio::io_context& context, endpoint peer,
                                           call_timeout limit = {});

  lean_stream(lean_stream&& other) noexcept;
  lean_stream& operator=(lean_stream&& other) noexcept;
  lean_stream(const lean_stream&) = delete;
  lean_stream& operator=(const lean_stream&) = delete;
  /// Closes the stream.
  ~lean_stream();

  /// Receives some bytes into `buffer` (at least one unless `buffer` is empty).
  /// Errors: coronet::errc::eof once the peer has closed and everything was read.
  /// Cancellation: safe, nothing is lost.
  [[nodiscard]] operation recv(asio::mutable_buffer buffer, call_timeout limit = {},
                               source_location where = source_location::current()) noexcept;

  /// Fills all of `buffer`; on failure bytes() says how many arrived first.
  [[nodiscard]] operation recv_exact(asio::mutable_buffer buffer, call_timeout limit = {},
                                     source_location where = source_location::current()) noexcept;

  /// Sends some of `data` (at least one byte unless it is empty); returns how many.
  [[nodiscard]] operation send(asio::const_buffer data, call_timeout limit = {},
                               source_location where = source_location::current()) noexcept;

  /// Sends all of `data`; on failure bytes() says how many were handed to the kernel first.
  [[nodiscard]] operation send_all(asio::const_buffer data, call_timeout limit = {},
                                   source_location where = source_location::current()) noexcept;

  /// One receive that never waits: the bytes already there, or std::errc::
  /// operation_would_block; coronet::errc::eof once the peer has closed.
  io_result try_recv(asio::mutable_buffer buffer) noexcept;

  /// One send that never waits: what the kernel takes at once, or operation_would_block.
  io_result try_send(asio::const_buffer data) noexcept;

  /// Shuts down one or both directions (`shutdown_type::send` is the half-close).
  result<void> shutdown(shutdown_type what = shutdown_type::send) noexcept;

  /// Closes the descriptor; a pending operation ends with std::errc::operation_canceled.
  /// Idempotent.
  void close() noexcept;

  bool is_open() const noexcept { return fd_ >= 0; }

  /// The descriptor (fileno), still owned by the stream; -1 once closed.
  int native_handle() const noexcept { return fd_; }

  /// The two ends (getsockname, getpeername), read from the kernel at each call. On a closed
  /// stream, or a connection reset before it was read, a default endpoint, as tcp_stream's.
  endpoint local_endpoint() const noexcept;
  endpoint remote_endpoint() const noexcept;

  /// Sets or reads a typed option from coronet::option (setsockopt, getsockopt).
  template <socket_option Option>
  result<void> set_option(const Option& option) noexcept {
    return detail::set_socket_option(fd_, option);
  }
  template <socket_option Option>
  result<Option> get_option() const {
    Option option{};
    if (auto ec = detail::get_socket_option(fd_, option)) return ec;
    return option;
  }

  /// The limit every operation gets unless the call passes its own (settimeout); no_timeout
  /// by default.
  void set_timeout(timeout limit) noexcept { timeout_ = compact(limit); }
  timeout get_timeout() const noexcept {
    return timeout_ == no_limit ? no_timeout : timeout(timeout_);
  }

  /// Adds the bytes every operation moves from now on to `counters` (nullptr: stop counting).
  void count_bytes(std::shared_ptr<byte_counters> counters) noexcept {
    counters_ = std::move(counters);
  }
  const std::shared_ptr<byte_counters>& counters() const noexcept { return counters_; }

  /// The io_context the stream belongs to.
  asio::io_context& context() const noexcept { return readiness_->context(); }

 private:
  enum class op_kind : std::uint8_t { recv_some, recv_all, send_some, send_all, connect };
  class deadline;

  lean_stream() noexcept = default;
  friend class detail::readiness;
  // The readiness set's report of `events` for the descriptor (EPOLLRDHUP, EPOLLHUP and
  // EPOLLERR are lasting states, which no later edge repeats): resumes the tasks it lets go
  // on, which may close and destroy this stream.
  void on_ready(std::uint32_t events) noexcept;
  // After a receive or send that found the socket drained or full: not ready until the next
  // edge, unless the peer's close or an error was seen, which stays (and no edge repeats).
  void drained() noexcept { readable_ = read_ended_; }
  void filled() noexcept { writable_ = write_ended_; }
  void forget_registration() noexcept;
  // Adds an operation's outcome to the stream's and the thread's counts: inline, and no more
  // than two tests when the stream has no counters and the thread does not observe.
  void count(bool received, std::size_t bytes, int error) noexcept {
    if (counters_) {
      if (received) {
        counters_->add_received(bytes);
      } else {
        counters_->add_sent(bytes);
      }
    }
    if (detail::current_observer != nullptr) count_observed(received, bytes, error);
  }
  void count_observed(bool received, std::size_t bytes, int error) noexcept;

  detail::readiness* readiness_ = nullptr;
  detail::readiness::token token_ = 0;
  operation* reader_ = nullptr;  // the pending receive-side operation
  operation* writer_ = nullptr;  // the pending send-side operation (or connect)
  std::shared_ptr<byte_counters> counters_;
  detail::wait_slot waits_;
  // Limits kept in 8 bytes rather than timeout's 16 (the stream and its operation are in every
  // idle connection's frame): no_limit stands for none.
  static constexpr timeout::duration no_limit = timeout::duration::max();
  static constexpr timeout::duration compact(timeout limit) noexcept {
    return limit.is_none() ? no_limit : limit.value();
  }
  timeout::duration timeout_ = no_limit;
  int fd_ = -1;
  // What the socket was at the last look: a receive that drained it (or would_block) clears
  // readable_, an edge from epoll sets it again; likewise writable_ for sends.
  bool readable_ = true;
  bool writable_ = true;
  bool read_ended_ = false;    // EPOLLRDHUP, EPOLLHUP or EPOLLERR seen: receives never wait
  bool write_ended_ = false;   // EPOLLHUP or EPOLLERR seen: sends never wait
  std::uint8_t in_a_row_ = 0;  // operations completed without waiting, for fairness
};

/// One operation of a lean_stream, awaited once: `co_await stream.recv(buf)`. Not to be
/// stored or awaited twice.
class lean_stream::operation final : public detail::cancellable_wait {
 public:
  operation(const operation&) = delete;
  operation& operator=(const operation&) = delete;
  ~operation() {
    // A task destroyed while it waits (its context shut down): the stream must not resume it.
    if (pending_) [[unlikely]]
      abandon();
  }

  bool await_ready() const noexcept { return false; }

  template <detail::task_promise_type Promise>
  bool await_suspend(std::coroutine_handle<Promise> waiter) noexcept {
    chain_ = waiter.promise().chain();
    if (step()) {
      settle();
      return completed_at_once(waiter);
    }
    wait(waiter);
    return true;
  }

  io_result await_resume() const noexcept { return outcome(done_, error_); }

 private:
  friend class lean_stream;
  // errno values, and this for coronet::errc::eof.
  static constexpr int eof = -1;
  // Operations in a row that may complete without waiting before one goes through the queue.
  static constexpr std::uint8_t immediate_limit = 32;

  operation(lean_stream& stream, op_kind kind, asio::mutable_buffer buffer, call_timeout limit,
            source_location where) noexcept
      : stream_(&stream),
        buffer_(buffer),
        limit_(limit ? compact(*limit) : stream.timeout_),
        where_(where),
        kind_(kind) {}
  // The buffer is only read: a send never writes through it.
  operation(lean_stream& stream, op_kind kind, asio::const_buffer data, call_timeout limit,
            source_location where) noexcept
      : operation(stream, kind, asio::mutable_buffer(const_cast<void*>(data.data()), data.size()),
                  limit, where) {}

  static std::error_code error_code(int error) noexcept;
  // The result of an operation that moved `bytes` and ended with `error` (0: none).
  static io_result outcome(std::size_t bytes, int error) noexcept {
    if (error == 0) return io_result(bytes);
    return io_result(bytes, error_code(error));
  }
  // Over without waiting: the task goes on at once, but not for ever (see Fairness).
  bool completed_at_once(std::coroutine_handle<> waiter) noexcept {
    if (++stream_->in_a_row_ < immediate_limit) return false;
    stream_->in_a_row_ = 0;
    stream_->readiness_->resume_later(waiter);
    return true;
  }
  // Registers the waiting task with the stream, its chain, a timer and the observer.
  void wait(std::coroutine_handle<> waiter) noexcept {
    waiter_ = waiter;
    pending_ = true;
    stream_->in_a_row_ = 0;
    (is_receive() ? stream_->reader_ : stream_->writer_) = this;
    if (chain_ != nullptr) chain_->waiting = this;
    if (limit_ != no_limit) start_deadline();
    if (detail::current_observer != nullptr) observe_wait();
  }
  void start_deadline() noexcept;
  void observe_wait() noexcept;
  // The system calls: true once the operation is over (done, failed or cancelled).
  bool step() noexcept {
    if (stream_->fd_ < 0 || (chain_ != nullptr && chain_->cancelled)) [[unlikely]] {
      error_ = ECANCELED;
      return true;
    }
    // Without a system call while the socket is known not to be ready (an empty buffer is
    // done at once all the same).
    const bool nothing_left = buffer_.size() == done_;
    if (is_receive()) return (stream_->readable_ || nothing_left) && receive_step();
    if (kind_ == op_kind::connect) return connect_step();
    return (stream_->writable_ || nothing_left) && send_step();
  }
  bool receive_step() noexcept;
  bool send_step() noexcept;
  bool connect_step() noexcept;
  // Over, with the stream still there: its bytes and error go to the stream's counts.
  void settle() noexcept {
    if (kind_ != op_kind::connect) stream_->count(is_receive(), done_, error_);
  }
  bool is_receive() const noexcept {
    return kind_ == op_kind::recv_some || kind_ == op_kind::recv_all;
  }
  // The stream's socket turned ready for this side: try again; resumes the task when over.
  void ready() noexcept;
  void cancel() noexcept override;
  // Its stream was closed (by another task): cancelled, and the stream, perhaps about to be
  // destroyed, is not touched again.
  void orphan() noexcept;
  void expire() noexcept;
  // Over: no longer the stream's, the chain's, the timer's or the observer's.
  void finish() noexcept {
    pending_ = false;
    (is_receive() ? stream_->reader_ : stream_->writer_) = nullptr;  // it was this
    if (chain_ != nullptr && chain_->waiting == this) chain_->waiting = nullptr;
    if (deadline_) stop_deadline();
    wait_.reset();
  }
  void stop_deadline() noexcept;
  // finish(), out of line: for the destructor of an operation still pending.
  void abandon() noexcept;

  lean_stream* stream_;  // null once orphaned
  asio::mutable_buffer buffer_;
  std::size_t done_ = 0;
  timeout::duration limit_;
  source_location where_;
  std::coroutine_handle<> waiter_;
  detail::task_chain* chain_ = nullptr;
  deadline* deadline_ = nullptr;  // owned by the timer's handler
  // The members after it sit in its tail padding: 8 bytes less in every session's frame.
  [[no_unique_address]] detail::wait_ref wait_;
  op_kind kind_;
  bool pending_ = false;  // registered with the stream, the task suspended
  int error_ = 0;
};

inline lean_stream::operation lean_stream::recv(asio::mutable_buffer buffer, call_timeout limit,
                                                source_location where) noexcept {
  return {*this, op_kind::recv_some, buffer, limit, where};
}

inline lean_stream::operation lean_stream::recv_exact(asio::mutable_buffer buffer,
                                                      call_timeout limit,
                                                      source_location where) noexcept {
  return {*this, op_kind::recv_all, buffer, limit, where};
}

inline lean_stream::operation lean_stream::send(asio::const_buffer data, call_timeout limit,
                                                source_location where) noexcept {
  return {*this, op_kind::send_some, data, limit, where};
}

inline lean_stream::operation lean_stream::send_all(asio::const_buffer data, call_timeout limit,
                                                    source_location where) noexcept {
  return {*this, op_kind::send_all, data, limit, where};
}

inline io_result lean_stream::try_recv(asio::mutable_buffer buffer) noexcept {
  int error = 0;
  const ssize_t n = detail::nonblocking_call(
      [&] { return ::recv(fd_, buffer.data(), buffer.size(), MSG_DONTWAIT); }, error);
  if (n < 0 && error == EAGAIN) drained();
  if (n == 0 && buffer.size() > 0) error = operation::eof;
  const std::size_t bytes = n > 0 ? static_cast<std::size_t>(n) : 0;
  count(true, bytes, error);
  return operation::outcome(bytes, error);
}

inline io_result lean_stream::try_send(asio::const_buffer data) noexcept {
  int error = 0;
  const ssize_t n = detail::nonblocking_call(
      [&] { return ::send(fd_, data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL); }, error);
  if (n < 0 && error == EAGAIN) filled();
  const std::size_t bytes = n > 0 ? static_cast<std::size_t>(n) : 0;
  count(false, bytes, error);
  return operation::outcome(bytes, error);
}

}  // namespace coronet
