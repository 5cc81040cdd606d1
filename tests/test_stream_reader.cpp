// stream_reader: lines, delimited pieces and exact reads over real streams and a scripted one.
#include <doctest/doctest.h>

#include <asio/experimental/awaitable_operators.hpp>

#include <algorithm>
#include <charconv>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "coronet/stream_reader.hpp"
#include "coronet/stream_writer.hpp"
#include "support/run.hpp"

using namespace std::chrono_literals;
using coronet::errc;
using coronet::stream_reader;
using coronet::tcp_stream;
using coronet::unix_stream;
namespace test = coronet::test;

namespace {

// A stream whose recv() hands out `script` at most `chunk` bytes at a time, then eof: the
// reader's view of the network, made exact.
struct script_stream {
  std::string script;
  std::size_t chunk = 1;
  std::size_t at = 0;
  std::size_t recvs = 0;

  asio::awaitable<coronet::io_result> recv(asio::mutable_buffer buffer, coronet::call_timeout) {
    ++recvs;
    if (at == script.size()) co_return coronet::io_result(make_error_code(errc::eof));
    const std::size_t n = std::min({chunk, buffer.size(), script.size() - at});
    std::copy_n(script.data() + at, n, static_cast<char*>(buffer.data()));
    at += n;
    co_return coronet::io_result(n);
  }
};

// Passes recv() through to a real stream and counts the calls.
template <class Stream>
struct counting_stream {
  Stream& stream;
  std::size_t recvs = 0;

  asio::awaitable<coronet::io_result> recv(asio::mutable_buffer buffer,
                                           coronet::call_timeout limit) {
    ++recvs;
    return stream.recv(buffer, limit);
  }
};

template <class Stream>
void no_delay(Stream& stream) {
  if constexpr (std::is_same_v<Stream, tcp_stream>) {
    REQUIRE(stream.set_option(coronet::option::no_delay{true}));
  }
}

// Writes the lines "0" .. "count-1" through a stream_writer, every third ending in "\r\n",
// then half-closes.
template <class Stream>
asio::awaitable<void> write_numbered_lines(Stream& stream, int count) {
  coronet::stream_writer writer(stream, {.buffer_size = 64 * 1024});
  char line[16];
  for (int i = 0; i < count; ++i) {
    char* end = std::to_chars(line, line + 12, i).ptr;
    if (i % 3 == 0) *end++ = '\r';
    *end++ = '\n';
    const auto written =
        co_await writer.write(asio::buffer(line, static_cast<std::size_t>(end - line)));
    if (!written) {
      FAIL_CHECK("write failed: " << written.error().message());
      co_return;
    }
  }
  CHECK(co_await writer.flush());
  CHECK(stream.shutdown());
}

// Sends each piece with a pause before it, then half-closes when asked to.
template <class Stream>
asio::awaitable<void> send_pieces(Stream& stream, std::vector<std::string> pieces,
                                  std::chrono::milliseconds gap, bool close_after) {
  for (const auto& piece : pieces) {
    co_await test::sleep_for(gap);
    if (!co_await stream.send_all(asio::buffer(piece))) co_return;
  }
  if (close_after) CHECK(stream.shutdown());
}

// GCC 12 cannot take a member of a parenthesised co_await in a template: these take the result.
std::string_view line_of(const coronet::result<std::string_view>& line) { return line.value(); }

template <class Result>
std::error_code error_of(const Result& outcome) {
  return outcome.error();
}

std::vector<std::string> one_byte_each(std::string_view text) {
  std::vector<std::string> out;
  for (char c : text) out.emplace_back(1, c);
  return out;
}

// Runs `check(client, server)` over a TCP pair on each loopback and over a Unix socket pair.
template <class Check>
void on_every_stream(Check check, std::chrono::milliseconds deadline = 10s) {
  for (const auto& any : test::loopbacks()) {
    CAPTURE(any);
    test::run(
        [&]() -> asio::awaitable<void> {
          auto [client, server] = co_await test::connected_pair(any);
          co_await check(client, server);
        },
        deadline);
  }
  INFO("unix_stream::socket_pair");
  test::run(
      [&]() -> asio::awaitable<void> {
        auto [a, b] = unix_stream::socket_pair(co_await asio::this_coro::executor);
        co_await check(a, b);
      },
      deadline);
}

asio::awaitable<void> read_million_lines(auto& client, auto& server) {
  constexpr int count = 1'000'000;
  coronet::spawn(co_await asio::this_coro::executor, write_numbered_lines(client, count), "writer");
  stream_reader reader(server);
  int wrong = 0;
  int read = 0;
  char expected[16];
  for (;; ++read) {
    auto line = co_await reader.read_line(5s);
    if (!line) {
      CHECK(line.error() == errc::eof);
      break;
    }
    const auto n =
        static_cast<std::size_t>(std::to_chars(expected, expected + 12, read).ptr - expected);
    if (*line != std::string_view(expected, n)) ++wrong;
  }
  CHECK(read == count);
  CHECK(wrong == 0);
  CHECK(reader.capacity() <= 64 * 1024 + 16 * 1024);
}

asio::awaitable<void> read_tiny_recvs(auto& client, auto& server) {
  no_delay(client);
  const std::string_view text = "ab\r\nc\n\nline three\r\n";
  coronet::spawn(co_await asio::this_coro::executor,
                 send_pieces(client, one_byte_each(text), 1ms, true), "trickle");
  counting_stream<std::remove_reference_t<decltype(server)>> counted{server};
  stream_reader reader(counted);
  CHECK(line_of(co_await reader.read_line(5s)) == "ab");
  CHECK(line_of(co_await reader.read_line(5s)) == "c");
  CHECK(line_of(co_await reader.read_line(5s)) == "");
  CHECK(line_of(co_await reader.read_line(5s)) == "line three");
  CHECK(error_of(co_await reader.read_line(5s)) == errc::eof);
  // The lines really did arrive in pieces.
  CHECK(counted.recvs > 5);
}

asio::awaitable<void> read_long_lines(auto& client, auto& server) {
  const std::string longest(100, 'x');
  const std::string payload =
      longest + "\n" + longest + "\r\n" + std::string(10'000, 'y') + "\nnext\n";
  CHECK(co_await client.send_all(asio::buffer(payload)));
  CHECK(client.shutdown());
  stream_reader reader(server, {.max_line = 100, .buffer_size = 64});
  const std::size_t bound = 100 + 64;
  CHECK(line_of(co_await reader.read_line(5s)) == longest);
  CHECK(line_of(co_await reader.read_line(5s)) == longest);
  // The 10,000-byte line: refused, maybe several times (its tail may come as a line of its
  // own), and never held whole.
  int refused = 0;
  for (;;) {
    auto line = co_await reader.read_line(5s);
    CHECK(reader.capacity() <= bound);
    if (line && *line == "next") break;
    if (!line) {
      REQUIRE(line.error() == errc::line_too_long);
      ++refused;
    } else {
      CHECK(line->size() <= 100);
      CHECK(line->find_first_not_of('y') == std::string_view::npos);
    }
  }
  CHECK(refused >= 1);
  CHECK(error_of(co_await reader.read_line(5s)) == errc::eof);
}

asio::awaitable<void> read_timeout_then_line(auto& client, auto& server) {
  stream_reader reader(server);
  CHECK(error_of(co_await reader.read_line(100ms)) == std::errc::timed_out);
  CHECK(co_await client.send_all(asio::buffer(std::string_view("par"))));
  CHECK(error_of(co_await reader.read_line(100ms)) == std::errc::timed_out);
  CHECK(reader.buffered() == "par");
  // Cancelled from another coroutine: the same.
  using namespace asio::experimental::awaitable_operators;
  auto raced = co_await (test::sleep_for(50ms) || reader.read_line());
  CHECK(raced.index() == 0);
  CHECK(co_await client.send_all(asio::buffer(std::string_view("tial\r\nmore\n"))));
  CHECK(line_of(co_await reader.read_line(5s)) == "partial");
  CHECK(line_of(co_await reader.read_line(5s)) == "more");
}

asio::awaitable<void> read_under_one_limit(auto& client, auto& server) {
  no_delay(client);
  // A byte every 10 ms: each recv() is quick, the line as a whole is not.
  coronet::spawn(co_await asio::this_coro::executor,
                 send_pieces(client, one_byte_each(std::string(40, 'z') + "\n"), 10ms, false),
                 "trickle");
  stream_reader reader(server);
  CHECK(error_of(co_await reader.read_line(100ms)) == std::errc::timed_out);
  CHECK(line_of(co_await reader.read_line(5s)) == std::string(40, 'z'));
}

asio::awaitable<void> read_split_delimiter(auto& client, auto& server) {
  no_delay(client);
  std::vector<std::string> pieces{"alpha--E", "ND-", "-beta--EN--E", "ND--"};
  coronet::spawn(co_await asio::this_coro::executor,
                 send_pieces(client, std::move(pieces), 20ms, true), "pieces");
  stream_reader reader(server);
  CHECK(line_of(co_await reader.read_until("--END--", 5s)) == "alpha");
  CHECK(line_of(co_await reader.read_until("--END--", 5s)) == "beta--EN");
  CHECK(error_of(co_await reader.read_until("--END--", 5s)) == errc::eof);
}

std::string binary_blob(std::size_t size) {
  std::string out(size, '\0');
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<char>((i * 7 + i / 256) % 256);
  return out;
}

asio::awaitable<void> read_binary(auto& client, auto& server) {
  const std::string blob = binary_blob(200'000);
  std::string piece;  // every byte value but 0xff, so "\xff\xff" cannot occur in it
  for (int i = 0; i < 1000; ++i) piece += static_cast<char>(i % 255);
  const std::string payload = "hdr\n" + blob + piece + "\xff\xff" + "tail\n";
  CHECK(co_await client.send_all(asio::buffer(payload)));
  CHECK(client.shutdown());

  stream_reader reader(server);
  CHECK(line_of(co_await reader.read_line(5s)) == "hdr");
  std::string got(blob.size(), '\0');
  auto exact = co_await reader.read_exact(asio::buffer(got), 5s);
  CHECK(exact);
  CHECK(exact.bytes() == blob.size());
  CHECK(got == blob);
  auto until = co_await reader.read_until("\xff\xff", 5s);
  REQUIRE(until);
  CHECK(*until == piece);
  CHECK(line_of(co_await reader.read_line(5s)) == "tail");
  CHECK(error_of(co_await reader.read_line(5s)) == errc::eof);
}

}  // namespace

TEST_CASE("stream_reader: a million lines batched by a stream_writer over every stream") {
  on_every_stream([](auto& a, auto& b) { return read_million_lines(a, b); }, 30s);
}

TEST_CASE("stream_reader: lines split across one-byte recvs") {
  on_every_stream([](auto& a, auto& b) { return read_tiny_recvs(a, b); });

  script_stream stream{.script = "one\r\ntwo\n", .chunk = 1};
  test::run([&]() -> asio::awaitable<void> {
    stream_reader reader(stream);
    CHECK(line_of(co_await reader.read_line()) == "one");
    CHECK(line_of(co_await reader.read_line()) == "two");
    CHECK(error_of(co_await reader.read_line()) == errc::eof);
  });
  CHECK(stream.recvs == 10);  // one per byte, and the eof
}

TEST_CASE("stream_reader: LF and CRLF mixed with empty lines and a lone CR kept") {
  script_stream stream{.script = "one\r\ntwo\n\n\r\na\rb\n\r\r\nend\r", .chunk = 4};
  test::run([&]() -> asio::awaitable<void> {
    stream_reader reader(stream);
    CHECK(line_of(co_await reader.read_line()) == "one");
    CHECK(line_of(co_await reader.read_line()) == "two");
    CHECK(line_of(co_await reader.read_line()) == "");
    CHECK(line_of(co_await reader.read_line()) == "");
    CHECK(line_of(co_await reader.read_line()) == "a\rb");
    CHECK(line_of(co_await reader.read_line()) == "\r");  // only the one "\r" before "\n" goes
    CHECK(error_of(co_await reader.read_line()) == errc::unexpected_eof);
    CHECK(reader.buffered() == "end\r");
  });
}

TEST_CASE("stream_reader: a line longer than max_line is line_too_long within the memory bound") {
  on_every_stream([](auto& a, auto& b) { return read_long_lines(a, b); });

  // Exactly: a line that arrived whole is dropped through its end, and the next one is read.
  const std::string longest(100, 'x');
  script_stream stream{.script = longest + "\n" + longest + "\r\n" + std::string(101, 'w') +
                                 "\nafter\n" + std::string(5000, 'v'),
                       .chunk = 1000};
  test::run([&]() -> asio::awaitable<void> {
    stream_reader reader(stream, {.max_line = 100, .buffer_size = 128});
    CHECK(line_of(co_await reader.read_line()) == longest);
    CHECK(line_of(co_await reader.read_line()) == longest);
    CHECK(error_of(co_await reader.read_line()) == errc::line_too_long);
    CHECK(line_of(co_await reader.read_line()) == "after");
    CHECK(error_of(co_await reader.read_line()) == errc::line_too_long);
    CHECK(reader.capacity() <= 100 + 128);
    CHECK(reader.buffered().size() <= 100 + 128);
  });
}

TEST_CASE("stream_reader: an unterminated line is too long at its max_line + 1st byte") {
  // Its max_line + 1st content byte decides at once, with no further recv() (here: eof).
  script_stream over{.script = std::string(101, 'x'), .chunk = 1000};
  // A "\r" there may be the one before "\n": not content yet, so the reader waits for more.
  script_stream at_cr{.script = std::string(100, 'x') + "\r", .chunk = 1000};
  test::run([&]() -> asio::awaitable<void> {
    stream_reader too_long(over, {.max_line = 100, .buffer_size = 128});
    CHECK(error_of(co_await too_long.read_line()) == errc::line_too_long);
    stream_reader undecided(at_cr, {.max_line = 100, .buffer_size = 128});
    CHECK(error_of(co_await undecided.read_line()) == errc::unexpected_eof);
  });
}

TEST_CASE("stream_reader: eof in the middle of a line is unexpected_eof and keeps the bytes") {
  on_every_stream([](auto& client, auto& server) -> asio::awaitable<void> {
    CHECK(co_await client.send_all(asio::buffer(std::string_view("abc\npartial"))));
    CHECK(client.shutdown());
    stream_reader reader(server);
    CHECK(line_of(co_await reader.read_line(5s)) == "abc");
    CHECK(error_of(co_await reader.read_line(5s)) == errc::unexpected_eof);
    CHECK(reader.buffered() == "partial");
    CHECK(error_of(co_await reader.read_line(5s)) == errc::unexpected_eof);
    CHECK(reader.buffered() == "partial");
  });
}

TEST_CASE("stream_reader: eof at a line boundary is eof") {
  on_every_stream([](auto& client, auto& server) -> asio::awaitable<void> {
    CHECK(co_await client.send_all(asio::buffer(std::string_view("abc\r\n"))));
    CHECK(client.shutdown());
    stream_reader reader(server);
    CHECK(line_of(co_await reader.read_line(5s)) == "abc");
    CHECK(error_of(co_await reader.read_line(5s)) == errc::eof);
    CHECK(reader.buffered().empty());
  });
}

TEST_CASE("stream_reader: read_until with a multi-byte delimiter split across recvs") {
  on_every_stream([](auto& a, auto& b) { return read_split_delimiter(a, b); });

  script_stream stream{.script = "GET / HTTP/1.1\r\nHost: x\r\n\r\n\r\r\n\r\nbody", .chunk = 1};
  test::run([&]() -> asio::awaitable<void> {
    stream_reader reader(stream, {.buffer_size = 64});
    CHECK(line_of(co_await reader.read_until("\r\n\r\n")) == "GET / HTTP/1.1\r\nHost: x");
    CHECK(line_of(co_await reader.read_until("\r\n\r\n")) == "\r");
    CHECK(error_of(co_await reader.read_until("\r\n\r\n")) == errc::unexpected_eof);
    CHECK(reader.buffered() == "body");
    CHECK(error_of(co_await reader.read_until("")) == std::errc::invalid_argument);
    CHECK(error_of(co_await reader.read_until(std::string(65, '-'))) ==
          std::errc::invalid_argument);
  });
}

TEST_CASE("stream_reader: read_exact mixes buffered and direct bytes of binary data") {
  on_every_stream([](auto& a, auto& b) { return read_binary(a, b); });

  // Exactly: 1000 bytes buffered by the read_line, the rest straight into the caller's buffer.
  const std::string blob = binary_blob(50'000);
  script_stream stream{.script = "hdr\n" + blob, .chunk = 1004};
  test::run([&]() -> asio::awaitable<void> {
    stream_reader reader(stream);
    CHECK(line_of(co_await reader.read_line()) == "hdr");
    CHECK(reader.buffered().size() == 1000);
    std::string got(blob.size(), '\0');
    auto exact = co_await reader.read_exact(asio::buffer(got));
    CHECK(exact.bytes() == blob.size());
    CHECK(got == blob);
    CHECK(reader.buffered().empty());
    CHECK(reader.capacity() == 16 * 1024);  // the direct bytes never went through it
  });
}

TEST_CASE("stream_reader: read_exact cut by eof") {
  on_every_stream([](auto& client, auto& server) -> asio::awaitable<void> {
    CHECK(co_await client.send_all(asio::buffer(std::string_view("line\n0123456789"))));
    CHECK(client.shutdown());
    stream_reader reader(server);
    CHECK(line_of(co_await reader.read_line(5s)) == "line");
    std::string got(20, '\0');
    auto cut = co_await reader.read_exact(asio::buffer(got), 5s);
    CHECK(cut.error() == errc::unexpected_eof);
    CHECK(cut.bytes() == 10);
    CHECK(got.substr(0, 10) == "0123456789");
    auto none = co_await reader.read_exact(asio::buffer(got), 5s);
    CHECK(none.error() == errc::eof);
    CHECK(none.bytes() == 0);
  });
}

TEST_CASE("stream_reader: a timed-out or cancelled read_line loses nothing") {
  on_every_stream([](auto& a, auto& b) { return read_timeout_then_line(a, b); });
}

TEST_CASE("stream_reader: the limit covers the whole call and not each recv") {
  on_every_stream([](auto& a, auto& b) { return read_under_one_limit(a, b); });
}
