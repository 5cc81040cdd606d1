#pragma once
// stream_writer: batched writing over any coronet stream, the makefile() habit: many small
// writes become few send()s.

#include <cstddef>
#include <optional>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>

#include "coronet/detail/timed.hpp"
#include "coronet/result.hpp"
#include "coronet/source_location.hpp"
#include "coronet/timeout.hpp"

namespace coronet {

/// How a stream_writer buffers; fill with designated initialisers: `{.buffer_size = 4096}`.
struct writer_options {
  /// Writes smaller than this are gathered; larger ones go straight to the stream.
  std::size_t buffer_size = 16 * 1024;
};

/// Batched writes over a stream: any type with
/// `send_all(asio::const_buffer, call_timeout) -> asio::awaitable<io_result>` (tcp_stream,
/// unix_stream). The writer refers to the stream, which must outlive it.
///
/// Data written but not flushed is not sent: flush() before closing the stream or destroying
/// the writer (a destructor cannot co_await).
///
/// Errors: those of the stream's send_all() (std::errc::connection_reset,
/// std::errc::broken_pipe, std::errc::timed_out, ...). After a failed flush the bytes that
/// went are dropped from the buffer and the rest stay: pending() says how many, and a later
/// flush() tries them again (worth it after a timeout, not after a reset).
///
/// Timeouts: a call's own limit covers the whole call; without one, each send_all() gets the
/// stream's own timeout (set_timeout()).
///
/// Cancellation: as a failure: bytes() says what the cancelled call moved.
///
/// Thread safety: every method only from the stream's executor, one write() or flush() at a
/// time. A stream_reader on the same stream may read meanwhile.
///
/// Example:
///
///     coronet::stream_writer writer(stream);
///     for (const auto& row : rows) co_await writer.write(asio::buffer(row));  // few syscalls
///     (co_await writer.flush()).value();
template <class Stream>
class stream_writer {
 public:
  explicit stream_writer(Stream& stream, writer_options options = {})
      : stream_(stream), size_(options.buffer_size) {
    buf_.reserve(size_);
  }

  /// Takes all of `data`: a write that fits is copied into the buffer (no syscall); one that
  /// does not fills the buffer and flushes it; one of buffer_size or more is sent directly,
  /// after the buffer is flushed so the order holds.
  /// On failure, bytes() says how much of `data` the writer took (sent, or buffered and
  /// counted in pending()); the rest of `data` was not taken.
  asio::awaitable<io_result> write(asio::const_buffer data, call_timeout limit = {},
                                   source_location where = source_location::current()) {
    const auto* bytes = static_cast<const char*>(data.data());
    if (data.size() <= size_ - buf_.size()) {
      append(bytes, data.size());
      co_return io_result(data.size());
    }
    detail::deadline deadline(limit.value_or(no_timeout));
    // A small write tops the buffer up, so that every send is a full buffer.
    const bool small = data.size() < size_;
    const std::size_t taken = small ? size_ - buf_.size() : 0;
    append(bytes, taken);
    if (auto flushed = co_await flush(remaining(limit, deadline), where); !flushed) {
      co_return io_result(taken, flushed.error());
    }
    if (small) {
      append(bytes + taken, data.size() - taken);
      co_return io_result(data.size());
    }
    co_return co_await send_all(data, remaining(limit, deadline), where);
  }

  /// Sends everything pending; returns how many bytes went.
  asio::awaitable<io_result> flush(call_timeout limit = {},
                                   source_location where = source_location::current()) {
    if (buf_.empty()) co_return io_result(0);
    auto sent = co_await send_all(asio::buffer(buf_), limit, where);
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(sent.bytes()));
    co_return sent;
  }

  /// Bytes written but not yet sent.
  std::size_t pending() const noexcept { return buf_.size(); }

  /// The stream underneath.
  Stream& stream() noexcept { return stream_; }

 private:
  // The stream's send_all(), given the caller's source location when it takes one.
  asio::awaitable<io_result> send_all(asio::const_buffer data, call_timeout limit,
                                      source_location where) {
    if constexpr (requires { stream_.send_all(data, limit, where); }) {
      return stream_.send_all(data, limit, where);
    } else {
      return stream_.send_all(data, limit);
    }
  }

  void append(const char* bytes, std::size_t n) { buf_.insert(buf_.end(), bytes, bytes + n); }

  static call_timeout remaining(const call_timeout& limit, const detail::deadline& deadline) {
    if (!limit) return std::nullopt;
    return deadline.remaining();
  }

  Stream& stream_;
  std::size_t size_;
  std::vector<char> buf_;  // never past size_: reserved once, appended to only when it fits
};

}  // namespace coronet
