#pragma once
// stream_reader: buffered reading over any coronet stream, the makefile() habit: lines,
// delimited pieces and exact sizes without a recv() per byte.

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <limits>
#include <string_view>
#include <system_error>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>

#include "coronet/detail/timed.hpp"
#include "coronet/error.hpp"
#include "coronet/result.hpp"
#include "coronet/source_location.hpp"
#include "coronet/timeout.hpp"

namespace coronet {

/// How a stream_reader buffers; fill with designated initialisers: `{.max_line = 1024}`.
struct reader_options {
  /// The longest line (or read_until() piece) accepted, its terminator not counted.
  std::size_t max_line = 64 * 1024;
  /// The room the reader starts with, and the most it holds beyond max_line (at least 64).
  std::size_t buffer_size = 16 * 1024;
};

/// Buffered reads over a stream: any type with
/// `recv(asio::mutable_buffer, call_timeout) -> asio::awaitable<io_result>` (tcp_stream,
/// unix_stream). The reader refers to the stream, which must outlive it.
///
/// Memory: one buffer, reused; it starts at buffer_size bytes and grows only for a line that
/// does not fit, never past `max_line + buffer_size` bytes (capacity() says what it holds).
///
/// Errors: those of the stream's recv() (std::errc::connection_reset, ...), plus
/// coronet::errc::eof when the stream ended at a boundary (nothing was pending),
/// coronet::errc::unexpected_eof when it ended in the middle of a line or piece (whatever was
/// pending stays readable through buffered()), coronet::errc::line_too_long (see read_line()).
///
/// Timeouts: a call's own limit covers the whole call, however many recv()s it takes. Without
/// one, each recv() gets the stream's own timeout (set_timeout()).
///
/// Cancellation: safe; bytes already received stay in the reader, so a timed-out or cancelled
/// read_line() or read_until() can be called again and loses nothing.
///
/// Thread safety: every method only from the stream's executor, one read at a time. A
/// stream_writer on the same stream may write meanwhile.
///
/// Example:
///
///     coronet::stream_reader reader(stream, {.max_line = 8192});
///     for (;;) {
///       auto line = co_await reader.read_line(std::chrono::seconds(30));
///       if (!line) break;  // errc::eof, timed_out, ...
///       handle(*line);
///     }
template <class Stream>
class stream_reader {
 public:
  explicit stream_reader(Stream& stream, reader_options options = {})
      : stream_(stream),
        max_line_(options.max_line),
        buffer_size_(std::max(options.buffer_size, std::size_t{64})),
        // Saturates, so that a huge max_line means "no limit" rather than a wrapped one.
        bound_(max_line_ > std::numeric_limits<std::size_t>::max() - buffer_size_
                   ? std::numeric_limits<std::size_t>::max()
                   : max_line_ + buffer_size_) {
    resize(buffer_size_);
  }

  /// The next line, without its "\n" and without one "\r" right before it. The view is valid
  /// until the next call on the reader.
  /// Errors: errc::line_too_long for a line longer than max_line: the reader drops the part of
  /// it that it holds (through its "\n" if that had arrived), so the next read may return the
  /// rest of it; usually the caller should close. errc::eof, errc::unexpected_eof as above.
  asio::awaitable<result<std::string_view>> read_line(
      call_timeout limit = {}, source_location where = source_location::current()) {
    return next_piece("\n", true, limit, where);
  }

  /// The bytes up to `delimiter`, which is consumed and not returned; any bytes, binary
  /// included. Errors as read_line(); std::errc::invalid_argument for an empty delimiter or
  /// one longer than buffer_size.
  asio::awaitable<result<std::string_view>> read_until(
      std::string_view delimiter, call_timeout limit = {},
      source_location where = source_location::current()) {
    return next_piece(delimiter, false, limit, where);
  }

  /// Fills all of `out`: first from the buffer, then by recv() straight into `out`.
  /// On failure, bytes() says how much of `out` was filled (those bytes are consumed).
  /// Errors: errc::eof when the stream ended before the first byte, errc::unexpected_eof when
  /// it ended part-way.
  /// Cancellation: continue with a read_exact() for the rest of `out`.
  asio::awaitable<io_result> read_exact(asio::mutable_buffer out, call_timeout limit = {},
                                        source_location where = source_location::current()) {
    auto* dest = static_cast<char*>(out.data());
    std::size_t done = std::min(out.size(), end_ - begin_);
    if (done > 0) std::memcpy(dest, buf_.data() + begin_, done);
    begin_ += done;
    detail::deadline deadline(limit.value_or(no_timeout));
    while (done < out.size()) {
      auto got = co_await recv(asio::buffer(dest + done, out.size() - done),
                               remaining(limit, deadline), where);
      done += got.bytes();
      if (!got) co_return io_result(done, ended(got.error(), done > 0));
    }
    co_return io_result(done);
  }

  /// The bytes received but not yet read, e.g. a partial line after errc::unexpected_eof.
  /// Valid until the next call on the reader.
  std::string_view buffered() const noexcept {
    return std::string_view(buf_.data() + begin_, end_ - begin_);
  }

  /// Bytes the reader's buffer holds now: at most max_line + buffer_size.
  std::size_t capacity() const noexcept { return buf_.capacity(); }

  /// The stream underneath.
  Stream& stream() noexcept { return stream_; }

 private:
  // The stream's recv(), given the caller's source location when it takes one (coronet's
  // streams do, for runtime::suspended_operations()).
  asio::awaitable<io_result> recv(asio::mutable_buffer into, call_timeout limit,
                                  source_location where) {
    if constexpr (requires { stream_.recv(into, limit, where); }) {
      return stream_.recv(into, limit, where);
    } else {
      return stream_.recv(into, limit);
    }
  }

  // `delimiter` is a view: read_line()'s literal, or read_until()'s argument, which lives
  // until the caller's co_await is done.
  asio::awaitable<result<std::string_view>> next_piece(std::string_view delimiter, bool strip_cr,
                                                       call_timeout limit, source_location where) {
    if (delimiter.empty() || delimiter.size() > buffer_size_) {
      co_return std::make_error_code(std::errc::invalid_argument);
    }
    detail::deadline deadline(limit.value_or(no_timeout));
    std::size_t searched = 0;  // unread bytes where the delimiter is known not to start
    for (;;) {
      const std::string_view unread = buffered();
      if (const auto at = unread.find(delimiter, searched); at != std::string_view::npos) {
        std::string_view piece = unread.substr(0, at);
        if (strip_cr && piece.ends_with('\r')) piece.remove_suffix(1);
        begin_ += at + delimiter.size();
        if (piece.size() > max_line_) co_return make_error_code(errc::line_too_long);
        co_return piece;
      }
      if (unread.size() - undecided_tail(unread, delimiter, strip_cr) > max_line_) {
        begin_ = end_ = 0;  // dropped, so the buffer stays within its bound
        co_return make_error_code(errc::line_too_long);
      }
      searched = unread.size() - std::min(unread.size(), delimiter.size() - 1);
      make_room();
      auto got = co_await recv(asio::buffer(buf_.data() + end_, buf_.size() - end_),
                               remaining(limit, deadline), where);
      end_ += got.bytes();
      if (!got) co_return ended(got.error(), begin_ != end_);
    }
  }

  // How many bytes at the end of `unread` may still turn out to be the start of `delimiter`, or
  // the "\r" before it: they do not count against max_line yet. Exact, so that a line is
  // known too long as soon as its max_line + 1st byte of content has arrived.
  static std::size_t undecided_tail(std::string_view unread, std::string_view delimiter,
                                    bool strip_cr) {
    std::size_t tail = 0;
    for (std::size_t n = std::min(unread.size(), delimiter.size() - 1); n > 0; --n) {
      if (delimiter.starts_with(unread.substr(unread.size() - n))) {
        tail = n;
        break;
      }
    }
    if (strip_cr && unread.size() > tail && unread[unread.size() - tail - 1] == '\r') ++tail;
    return tail;
  }

  // Moves the unread tail to the front, and grows the buffer only when that tail fills it.
  // The max_line check before each recv() keeps the tail below bound_, so there is room.
  void make_room() {
    if (begin_ > 0) {
      std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (end_ == buf_.size()) {
      resize(std::min(bound_, std::max(buf_.size() * 2, buffer_size_)));
    }
  }

  void resize(std::size_t size) {
    buf_.reserve(size);  // exactly `size`: resize() alone may double past the bound
    buf_.resize(size);
  }

  static std::error_code ended(std::error_code error, bool midway) {
    if (error == errc::eof && midway) return make_error_code(errc::unexpected_eof);
    return error;
  }

  // The stream's own timeout for each recv() when the call has no limit of its own.
  static call_timeout remaining(const call_timeout& limit, const detail::deadline& deadline) {
    if (!limit) return std::nullopt;
    return deadline.remaining();
  }

  Stream& stream_;
  std::size_t max_line_;
  std::size_t buffer_size_;
  std::size_t bound_;
  std::vector<char> buf_;
  std::size_t begin_ = 0;  // unread bytes are [begin_, end_)
  std::size_t end_ = 0;
};

}  // namespace coronet
