#pragma once
// basic_stream: the byte-stream operations shared by tcp_stream and unix_stream: send, send_all,
// recv, recv_exact, the half-close, and the readiness wait with the sends and receives that never
// wait (wait_readable, try_recv, try_send).

#include <memory>
#include <utility>

#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>

#include "coronet/basic_socket.hpp"
#include "coronet/byte_counters.hpp"
#include "coronet/result.hpp"
#include "coronet/shutdown_type.hpp"
#include "coronet/source_location.hpp"
#include "coronet/timeout.hpp"

namespace coronet {

/// A connected byte stream over an Asio stream socket.
///
/// Errors: each operation returns its outcome as a value whose expected failures are
/// error_codes: coronet::errc::eof when the peer has closed, std::errc::connection_reset,
/// std::errc::broken_pipe (sending after a reset), std::errc::operation_canceled after close().
/// Call `.value()` on the outcome for the throwing form.
///
/// Timeouts: each operation takes an optional limit of its own; without one it gets the
/// socket's (set_timeout()). A limit that passes ends the operation with std::errc::timed_out,
/// and bytes() still says how much it moved first.
///
/// Observation: on a runtime that observes, each operation that waits is listed by
/// runtime::suspended_operations() with `where`, the source location of the call (left to its
/// default), and counted in runtime::metrics().
///
/// Cancellation: any operation can be cancelled from another coroutine, through the awaiting
/// coroutine's cancellation slot (a parallel group, `||`, a cancelled parent), or by close().
/// What each one loses is said on it.
///
/// Speed: send() and send_all() hand what fits in the socket buffer to the kernel at once and
/// return without suspending; only the rest waits for the socket. Every 32nd send waits its
/// turn anyway, so a fast sender still lets the other coroutines of its thread run.
///
/// Thread safety: use a stream only from its own executor. One send-side operation and one
/// receive-side operation may be in flight at once (a reader and a writer coroutine); two sends
/// or two receives at once are not allowed.
template <class AsioSocket>
class basic_stream : public basic_socket<AsioSocket> {
 public:
  /// Sends some of `data` (at least one byte unless `data` is empty); returns how many.
  /// Cancellation: bytes reported are sent; on cancellation none were.
  asio::awaitable<io_result> send(asio::const_buffer data, call_timeout limit = {},
                                  source_location where = source_location::current());

  /// Sends all of `data`. On failure, bytes() says how many were handed to the kernel first;
  /// the limit covers the whole of `data`.
  /// Cancellation: part of `data` may have been sent; bytes() says how much. Send the rest, or
  /// give up on the stream: the peer may have a partial message.
  asio::awaitable<io_result> send_all(asio::const_buffer data, call_timeout limit = {},
                                      source_location where = source_location::current());

  /// Receives some bytes into `buffer` (at least one unless `buffer` is empty).
  /// Errors: coronet::errc::eof once the peer has closed and everything was read.
  /// Cancellation: safe, no data is lost; the next recv() gets it.
  asio::awaitable<io_result> recv(asio::mutable_buffer buffer, call_timeout limit = {},
                                  source_location where = source_location::current());

  /// Fills all of `buffer`. On failure, bytes() says how many arrived first (eof mid-way gives
  /// coronet::errc::eof with bytes() < buffer.size()); the limit covers the whole buffer.
  /// Cancellation: bytes received before it are in `buffer`, and bytes() says how many; nothing
  /// else is lost. Continue with a recv_exact() for the rest.
  asio::awaitable<io_result> recv_exact(asio::mutable_buffer buffer, call_timeout limit = {},
                                        source_location where = source_location::current());

  /// Waits until a receive would not wait: bytes have arrived, the peer has closed, or the
  /// stream has failed. Nothing is read. With try_recv() and try_send(), a server can hold an
  /// idle connection without a buffer of its own: wait, then receive into a buffer borrowed
  /// for the moment and send from it without suspending. Each wait re-arms the socket with the
  /// reactor (one epoll_ctl(2)), so a session that echoes small messages at a high rate does
  /// better with recv() into a small buffer of its own (examples/echo_session.hpp).
  /// Errors: std::errc::timed_out; std::errc::operation_canceled after close().
  /// Cancellation: safe, nothing is lost.
  asio::awaitable<result<void>> wait_readable(call_timeout limit = {},
                                              source_location where = source_location::current());

  /// One receive that never waits: the bytes already there (at least one unless `buffer` is
  /// empty), or std::errc::operation_would_block when there are none yet;
  /// coronet::errc::eof once the peer has closed and everything was read.
  io_result try_recv(asio::mutable_buffer buffer) noexcept;

  /// One send that never waits: what the kernel takes of `data` at once (maybe less than all),
  /// or std::errc::operation_would_block with 0 bytes when the socket buffer is full.
  io_result try_send(asio::const_buffer data) noexcept;

  /// Shuts down one or both directions. `shutdown_type::send` is the half-close: the peer reads
  /// eof after everything sent so far, and this side can still receive.
  result<void> shutdown(shutdown_type what = shutdown_type::send);

  /// Adds the bytes every operation of this stream started from now on moves to `counters`
  /// (nullptr: stop counting). A server does this for each connection it lists.
  /// Thread safety: only from the stream's own executor, like its operations.
  void count_bytes(std::shared_ptr<byte_counters> counters) noexcept {
    counters_ = std::move(counters);
  }

  /// The counters given to count_bytes(), or nullptr.
  /// Thread safety: only from the stream's own executor; the counters themselves are readable
  /// from any thread.
  const std::shared_ptr<byte_counters>& counters() const noexcept { return counters_; }

 protected:
  using basic_socket<AsioSocket>::basic_socket;

 private:
  // recv() and wait_readable() under a time limit (without one each is Asio's operation itself).
  asio::awaitable<io_result> recv_within(asio::mutable_buffer buffer, timeout limit,
                                         source_location where);
  asio::awaitable<result<void>> wait_readable_within(timeout limit, source_location where);

  io_result counted_received(const std::error_code& ec, std::size_t n) noexcept {
    if (counters_) counters_->add_received(n);
    auto error = detail::to_coronet_error(ec);
    detail::observe_received(error, n);
    return io_result(n, error);
  }
  io_result counted_sent(const std::error_code& ec, std::size_t n) noexcept {
    if (counters_) counters_->add_sent(n);
    auto error = detail::to_coronet_error(ec);
    detail::observe_sent(error, n);
    return io_result(n, error);
  }
  // Whether the next send may go straight to the kernel (see send_now() in basic_stream.cpp):
  // true but once every `sends_between_waits` sends, so that a sender whose peer keeps up
  // still lets the other coroutines of its thread run.
  bool may_send_now() noexcept {
    if (++sends_since_wait_ < sends_between_waits) return true;
    sends_since_wait_ = 0;
    return false;
  }

  static constexpr unsigned sends_between_waits = 32;
  std::shared_ptr<byte_counters> counters_;
  unsigned sends_since_wait_ = 0;
};

// Compiled once, in src/basic_stream.cpp, for the two stream sockets coronet has.
extern template class basic_stream<asio::ip::tcp::socket>;
extern template class basic_stream<asio::local::stream_protocol::socket>;

}  // namespace coronet
