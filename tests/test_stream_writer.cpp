// stream_writer: batching, flush, direct large writes, and what a failed flush leaves.
#include <doctest/doctest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coronet/stream_reader.hpp"
#include "coronet/stream_writer.hpp"
#include "support/run.hpp"

using namespace std::chrono_literals;
using coronet::stream_writer;
namespace test = coronet::test;

namespace {

// Records every send_all() the writer makes; can be told to fail the next one part-way.
struct recording_stream {
  std::vector<std::size_t> sends;
  std::string sent;
  std::optional<std::size_t> fail_after;  // the next send takes this many bytes, then resets

  asio::awaitable<coronet::io_result> send_all(asio::const_buffer data, coronet::call_timeout) {
    sends.push_back(data.size());
    const std::size_t n = std::min(data.size(), fail_after.value_or(data.size()));
    sent.append(static_cast<const char*>(data.data()), n);
    if (fail_after) {
      fail_after.reset();
      co_return coronet::io_result(n, std::make_error_code(std::errc::connection_reset));
    }
    co_return coronet::io_result(n);
  }
};

}  // namespace

TEST_CASE("stream_writer: many small writes make few sends") {
  recording_stream stream;
  std::string expected;
  test::run([&]() -> asio::awaitable<void> {
    stream_writer writer(stream, {.buffer_size = 4096});
    for (int i = 0; i < 10'000; ++i) {
      const std::string record = "record " + std::to_string(i) + "\n";
      expected += record;
      auto written = co_await writer.write(asio::buffer(record));
      REQUIRE(written);
      CHECK(written.bytes() == record.size());
    }
    CHECK(writer.pending() > 0);
    CHECK(co_await writer.flush());
  });
  CHECK(stream.sent == expected);
  CHECK(stream.sends.size() == (expected.size() + 4095) / 4096);
  // Every send but the last is a full buffer.
  CHECK(std::count(stream.sends.begin(), stream.sends.end() - 1, std::size_t{4096}) ==
        static_cast<std::ptrdiff_t>(stream.sends.size() - 1));
}

TEST_CASE("stream_writer: flush sends everything and nothing is sent before it") {
  recording_stream stream;
  test::run([&]() -> asio::awaitable<void> {
    stream_writer writer(stream);
    CHECK((co_await writer.flush()).bytes() == 0);  // nothing pending: no send at all
    CHECK(co_await writer.write(asio::buffer(std::string_view("hello "))));
    CHECK(co_await writer.write(asio::buffer(std::string_view("world"))));
    CHECK(stream.sends.empty());
    CHECK(writer.pending() == 11);
    auto flushed = co_await writer.flush();
    CHECK(flushed.bytes() == 11);
    CHECK(writer.pending() == 0);
  });
  CHECK(stream.sends == std::vector<std::size_t>{11});
  CHECK(stream.sent == "hello world");
}

TEST_CASE("stream_writer: a large write bypasses the buffer after flushing it") {
  recording_stream stream;
  const std::string big(100'000, 'b');
  test::run([&]() -> asio::awaitable<void> {
    stream_writer writer(stream, {.buffer_size = 1024});
    CHECK(co_await writer.write(asio::buffer(std::string_view("head"))));
    auto written = co_await writer.write(asio::buffer(big));
    CHECK(written.bytes() == big.size());
    CHECK(writer.pending() == 0);
    // A write that does not fit tops the buffer up to a full send.
    const std::string fill(1000, 'f');
    CHECK(co_await writer.write(asio::buffer(fill)));
    CHECK(co_await writer.write(asio::buffer(fill)));
    CHECK(writer.pending() == 2000 - 1024);
    CHECK(co_await writer.flush());
  });
  CHECK(stream.sends == std::vector<std::size_t>{4, big.size(), 1024, 2000 - 1024});
  CHECK(stream.sent == "head" + big + std::string(2000, 'f'));
}

TEST_CASE("stream_writer: a flush cut off part-way keeps the unsent bytes pending") {
  recording_stream stream;
  test::run([&]() -> asio::awaitable<void> {
    stream_writer writer(stream);
    CHECK(co_await writer.write(asio::buffer(std::string_view("0123456789"))));
    stream.fail_after = 3;
    auto flushed = co_await writer.flush();
    CHECK(flushed.error() == std::errc::connection_reset);
    CHECK(flushed.bytes() == 3);
    CHECK(writer.pending() == 7);
    // A later flush sends what is left, once.
    CHECK((co_await writer.flush()).bytes() == 7);
    CHECK(writer.pending() == 0);
  });
  CHECK(stream.sent == "0123456789");
}

TEST_CASE("stream_writer: flush to a reset peer fails and pending says what is left") {
  for (const auto& any : test::loopbacks()) {
    CAPTURE(any);
    test::run([&]() -> asio::awaitable<void> {
      auto [client, server] = co_await test::connected_pair(any);
      REQUIRE(server.set_option(coronet::option::linger{true, 0s}));
      server.close();  // a reset
      co_await test::sleep_for(50ms);
      stream_writer writer(client);
      CHECK(co_await writer.write(asio::buffer(std::string_view("lost"))));
      auto flushed = co_await writer.flush(5s);
      CHECK(!flushed);
      const bool reset = flushed.error() == std::errc::connection_reset ||
                         flushed.error() == std::errc::broken_pipe;
      CHECK(reset);
      CHECK(writer.pending() == 4 - flushed.bytes());
      CHECK(writer.pending() > 0);
    });
  }
  INFO("unix_stream::socket_pair");
  test::run([]() -> asio::awaitable<void> {
    auto [a, b] = coronet::unix_stream::socket_pair(co_await asio::this_coro::executor);
    b.close();
    stream_writer writer(a);
    CHECK(co_await writer.write(asio::buffer(std::string_view("lost"))));
    auto flushed = co_await writer.flush(5s);
    CHECK(flushed.error() == std::errc::broken_pipe);
    CHECK(writer.pending() == 4);
  });
}

TEST_CASE("stream_writer: a writer and a reader on one stream pair") {
  test::run([]() -> asio::awaitable<void> {
    auto [client, server] = co_await test::connected_pair();
    stream_writer writer(client, {.buffer_size = 256});
    for (int i = 0; i < 1000; ++i) {
      const std::string line = std::to_string(i) + (i % 2 ? "\r\n" : "\n");
      REQUIRE(co_await writer.write(asio::buffer(line)));
    }
    REQUIRE(co_await writer.flush());
    REQUIRE(client.shutdown());
    coronet::stream_reader reader(server);
    for (int i = 0; i < 1000; ++i) {
      CHECK((co_await reader.read_line(5s)).value() == std::to_string(i));
    }
    CHECK((co_await reader.read_line(5s)).error() == coronet::errc::eof);
  });
}
