// fuzz_stream_reader: stream_reader over an in-memory stream that hands out its bytes in chunk
// sizes the input picks, with a small max_line and buffer. Every read_line(), read_until() and
// read_exact() outcome is checked against the stream's bytes: what a success returns, where
// the reader stands afterwards (the bytes it received minus the ones it still holds), that
// line_too_long only comes for a piece that really is too long, how the stream ended, and that
// the buffer stays within max_line + buffer_size.
//
// The input: byte 0 picks max_line (0 to 255, or 16 times that with bit 6 of byte 2), byte 1
// buffer_size (0 to 255: the reader takes at least 64), byte 2 the reads (bits 0-1: lines,
// read_until, or a mix with read_exact), whether the stream ends with a reset instead of eof
// (bit 2) and the read_until delimiter: 1 to 4 bytes long (bits 3-4), or with bit 5 about as
// long as the buffer (buffer_size + 1 down to buffer_size - 2, by bits 3-4 of byte 7); bytes
// 3-6 that delimiter (repeated when long), byte 7 how many chunk sizes follow (1 to 8, bits
// 0-2), then the chunk sizes (each byte + 1), then the stream's bytes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include "coronet/error.hpp"
#include "coronet/result.hpp"
#include "coronet/stream_reader.hpp"
#include "coronet/timeout.hpp"
#include "fuzz_check.hpp"

namespace {

using coronet::errc;

// Hands out `data` in chunks of the sizes in `chunks` (in turn), each cut to the caller's
// buffer; after the last byte, `end` on every call.
struct chunked_stream {
  std::string_view data;
  std::vector<std::size_t> chunks;
  std::error_code end;
  std::size_t at = 0;
  std::size_t next_chunk = 0;
  std::size_t recvs = 0;

  asio::awaitable<coronet::io_result> recv(asio::mutable_buffer buffer, coronet::call_timeout) {
    ++recvs;
    CORONET_FUZZ_REQUIRE(buffer.size() > 0);  // a recv() into nothing would look like eof
    if (at == data.size()) co_return coronet::io_result(end);
    const std::size_t chunk = chunks[next_chunk++ % chunks.size()];
    const std::size_t n = std::min({chunk, buffer.size(), data.size() - at});
    std::memcpy(buffer.data(), data.data() + at, n);
    at += n;
    co_return coronet::io_result(n);
  }
};

// Reads the input's header, with 0 for the bytes past its end.
struct input {
  std::string_view bytes;
  std::uint8_t take() {
    if (bytes.empty()) return 0;
    const auto b = static_cast<std::uint8_t>(bytes.front());
    bytes.remove_prefix(1);
    return b;
  }
};

struct setup {
  std::size_t max_line = 0;
  std::size_t buffer_size = 0;
  unsigned reads = 0;  // 0: read_line, 1: read_until, 2 and 3: a mix with read_exact
  std::string delimiter;
  std::uint32_t seed = 0;  // picks the reads of a mix
};

// The number of bytes at the end of `held` that may still be the start of `delimiter`, or the
// "\r" before it: what the reader documents as not yet counting against max_line.
std::size_t undecided(std::string_view held, std::string_view delimiter, bool strip_cr) {
  std::size_t tail = 0;
  for (std::size_t n = std::min(held.size(), delimiter.size() - 1); n > 0; --n) {
    if (delimiter.starts_with(held.substr(held.size() - n))) {
      tail = n;
      break;
    }
  }
  if (strip_cr && held.size() > tail && held[held.size() - tail - 1] == '\r') ++tail;
  return tail;
}

class checker {
 public:
  checker(const setup& s, chunked_stream& stream)
      : setup_(s),
        stream_(stream),
        data_(stream.data),
        reader_(stream, {.max_line = s.max_line, .buffer_size = s.buffer_size}) {}

  asio::awaitable<void> run() {
    std::uint32_t state = setup_.seed | 1;
    // Each read either consumes at least one byte or ends the run: a bound on the reads.
    for (std::size_t reads = 0;; ++reads) {
      CORONET_FUZZ_REQUIRE(reads <= data_.size() + 1);
      unsigned which = setup_.reads;
      if (which >= 2) {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        which = state % 3;
      }
      bool more = false;
      if (which == 0) {
        more = co_await piece("\n", true);
      } else if (which == 1) {
        more = co_await piece(setup_.delimiter, false);
      } else {
        more = co_await exact(1 + (state >> 8) % 24);
      }
      CORONET_FUZZ_REQUIRE(reader_.capacity() <= setup_.max_line + bound_extra());
      // Each recv() brings a byte, or the end that finishes the run.
      CORONET_FUZZ_REQUIRE(stream_.recvs <= stream_.at + 1);
      if (!more) break;
    }
  }

 private:
  std::size_t bound_extra() const { return std::max(setup_.buffer_size, std::size_t{64}); }

  // Where the reader stands in the stream: what it received minus what it still holds.
  std::size_t position() const {
    CORONET_FUZZ_REQUIRE(reader_.buffered().size() <= stream_.at);
    const std::size_t at = stream_.at - reader_.buffered().size();
    // What it holds is the stream's next bytes, unchanged.
    CORONET_FUZZ_REQUIRE(reader_.buffered() == data_.substr(at, stream_.at - at));
    return at;
  }

  bool ended_with_reset() const { return stream_.end == std::errc::connection_reset; }

  // GCC 12 mishandles the temporary awaitables of a conditional inside a co_await: one each.
  asio::awaitable<coronet::result<std::string_view>> next_piece(std::string_view delimiter,
                                                                bool strip_cr) {
    if (strip_cr) co_return co_await reader_.read_line();
    co_return co_await reader_.read_until(delimiter);
  }

  // One read_line() or read_until(); false when the stream has ended.
  asio::awaitable<bool> piece(std::string_view delimiter, bool strip_cr) {
    const std::size_t from = pos_;
    if (delimiter.size() > bound_extra()) {
      // Refused before anything is read: a delimiter the buffer could not hold whole.
      const std::size_t recvs = stream_.recvs;
      const auto got = co_await next_piece(delimiter, strip_cr);
      CORONET_FUZZ_REQUIRE(!got && got.error() == std::errc::invalid_argument);
      CORONET_FUZZ_REQUIRE(stream_.recvs == recvs && position() == from);
      co_return false;
    }
    const auto got = co_await next_piece(delimiter, strip_cr);
    pos_ = position();
    const auto found = data_.find(delimiter, from);

    if (got) {
      // A success: the piece as sent, then its delimiter (and one "\r" before it for a line).
      CORONET_FUZZ_REQUIRE(found != std::string_view::npos);
      std::string_view expected = data_.substr(from, found - from);
      if (strip_cr && expected.ends_with('\r')) expected.remove_suffix(1);
      CORONET_FUZZ_REQUIRE(*got == expected);
      CORONET_FUZZ_REQUIRE(got->size() <= setup_.max_line);
      CORONET_FUZZ_REQUIRE(pos_ == found + delimiter.size());
      co_return true;
    }

    const std::error_code error = got.error();
    if (error == errc::line_too_long) {
      CORONET_FUZZ_REQUIRE(pos_ > from);  // it dropped something
      const std::string_view dropped = data_.substr(from, pos_ - from);
      if (found != std::string_view::npos && pos_ == found + delimiter.size()) {
        // The whole piece had arrived: its content really is over max_line.
        std::string_view content = data_.substr(from, found - from);
        if (strip_cr && content.ends_with('\r')) content.remove_suffix(1);
        CORONET_FUZZ_REQUIRE(content.size() > setup_.max_line);
      } else {
        // Dropped before the whole delimiter came: all it held (the delimiter's first bytes
        // too, if they were in), and more than max_line of it was content for sure.
        CORONET_FUZZ_REQUIRE(found == std::string_view::npos || pos_ < found + delimiter.size());
        CORONET_FUZZ_REQUIRE(reader_.buffered().empty());
        CORONET_FUZZ_REQUIRE(dropped.size() - undecided(dropped, delimiter, strip_cr) >
                             setup_.max_line);
      }
      co_return true;
    }

    // The stream ended with no delimiter after `from`: nothing is lost, and nothing was held
    // back that already proved the piece too long.
    CORONET_FUZZ_REQUIRE(found == std::string_view::npos);
    CORONET_FUZZ_REQUIRE(stream_.at == data_.size());
    CORONET_FUZZ_REQUIRE(pos_ == from);
    const std::string_view pending = data_.substr(from);
    CORONET_FUZZ_REQUIRE(pending.size() - undecided(pending, delimiter, strip_cr) <=
                         setup_.max_line);
    expect_end(error, pending.size());
    co_return false;
  }

  // One read_exact() of `size` bytes; false when the stream has ended.
  asio::awaitable<bool> exact(std::size_t size) {
    const std::size_t from = pos_;
    std::string out(size, '\0');
    // With a limit, to take the deadline's path as well: the stream never waits.
    const auto got = co_await reader_.read_exact(asio::buffer(out), coronet::no_timeout);
    pos_ = position();
    CORONET_FUZZ_REQUIRE(got.bytes() <= size);
    CORONET_FUZZ_REQUIRE(std::string_view(out).substr(0, got.bytes()) ==
                         data_.substr(from, got.bytes()));
    CORONET_FUZZ_REQUIRE(pos_ == from + got.bytes());
    if (got) {
      CORONET_FUZZ_REQUIRE(got.bytes() == size);
      co_return true;
    }
    // Short: only because the stream ended, after all it had.
    CORONET_FUZZ_REQUIRE(from + got.bytes() == data_.size());
    CORONET_FUZZ_REQUIRE(reader_.buffered().empty());
    expect_end(got.error(), got.bytes());
    co_return false;
  }

  // The error a read ends with when the stream ended, `midway` bytes into the read.
  void expect_end(const std::error_code& error, std::size_t midway) const {
    if (ended_with_reset()) {
      CORONET_FUZZ_REQUIRE(error == std::errc::connection_reset);
    } else if (midway > 0) {
      CORONET_FUZZ_REQUIRE(error == errc::unexpected_eof);
    } else {
      CORONET_FUZZ_REQUIRE(error == errc::eof);
    }
  }

  setup setup_;
  chunked_stream& stream_;
  std::string_view data_;
  coronet::stream_reader<chunked_stream> reader_;
  std::size_t pos_ = 0;  // the stream's bytes the reader has consumed
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  input in{std::string_view(reinterpret_cast<const char*>(data), size)};
  setup s;
  s.max_line = in.take();
  s.buffer_size = in.take();
  const std::uint8_t flags = in.take();
  s.reads = flags & 3U;
  const bool reset = (flags & 4U) != 0;
  const bool long_delimiter = (flags & 32U) != 0;
  if ((flags & 64U) != 0) s.max_line *= 16;
  std::string pattern;
  for (std::size_t k = 0; k < 4; ++k) pattern += static_cast<char>(in.take());
  const std::uint8_t chunking = in.take();
  std::size_t delimiter_size = 1 + ((flags >> 3U) & 3U);
  if (long_delimiter) {
    delimiter_size = std::max(s.buffer_size, std::size_t{64}) + 1 - ((chunking >> 3U) & 3U);
  }
  while (s.delimiter.size() < delimiter_size) s.delimiter += pattern[s.delimiter.size() % 4];
  chunked_stream stream;
  const std::size_t chunk_count = 1 + chunking % 8U;
  for (std::size_t k = 0; k < chunk_count; ++k) {
    const std::uint8_t b = in.take();
    s.seed = s.seed * 31 + b;
    stream.chunks.push_back(std::size_t{b} + 1);
  }
  stream.data = in.bytes;
  stream.end =
      reset ? std::make_error_code(std::errc::connection_reset) : make_error_code(errc::eof);

  static asio::io_context context;
  checker check(s, stream);
  asio::co_spawn(context, check.run(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  context.restart();
  context.run();
  return 0;
}
