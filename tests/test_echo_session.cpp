// examples/echo_session.hpp: the echo logic echo_server and coronet_bench's built-in server
// share, driven in-process over socket pairs: its echo policy (the thread's buffer, the
// session's own buffer for a streaming peer) and what it sets on a TCP connection.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "../examples/echo_session.hpp"
#include "support/run.hpp"

using namespace std::chrono_literals;
using coronet_examples::echo_now;
using coronet_examples::own_buffer_size;
using coronet_examples::streaming_bytes;
namespace test = coronet::test;

namespace {

// Reads exactly `size` bytes from `stream`, as a string.
asio::awaitable<std::string> read_exactly(coronet::unix_stream& stream, std::size_t size) {
  std::string back(size, '\0');
  REQUIRE(co_await stream.recv_exact(asio::buffer(back), 5s));
  co_return back;
}

// Waits a little, then reads `size` bytes into `into`.
asio::awaitable<void> read_late(coronet::unix_stream& from, std::string& into, std::size_t size,
                                test::wait_group& done) {
  co_await test::sleep_for(50ms);
  into = co_await read_exactly(from, size);
  done.done();
}

// echo_now() for `message` as if just received into a session's small buffer.
template <class Stream>
coronet_examples::echo_left echo_received(Stream& session, const std::string& message,
                                          std::unique_ptr<char[]>& own) {
  std::array<char, 128> small{};
  REQUIRE(message.size() <= small.size());
  std::memcpy(small.data(), message.data(), message.size());
  return echo_now(session, asio::buffer(small), message.size(), own);
}

}  // namespace

TEST_CASE("echo_session: a short message goes back from the session's small buffer - no own") {
  test::run([]() -> asio::awaitable<void> {
    auto [peer, session] = coronet::unix_stream::socket_pair(co_await asio::this_coro::executor);
    const auto message = test::pattern_text(64, 1);
    std::unique_ptr<char[]> own;
    const auto left = echo_received(session, message, own);
    CHECK(left.sent);
    CHECK(left.unsent.size() == 0);
    CHECK_FALSE(own);
    CHECK(co_await read_exactly(peer, message.size()) == message);
  });
}

TEST_CASE("echo_session: a full small buffer takes what else arrived - a stream of it makes own") {
  test::run([]() -> asio::awaitable<void> {
    auto [peer, session] = coronet::unix_stream::socket_pair(co_await asio::this_coro::executor);
    // 40 KiB waiting: the 128-byte receive fills the small buffer, try_recv() takes the rest.
    const auto message = test::pattern_text(40 * 1024, 2);
    REQUIRE(co_await peer.send_all(asio::buffer(message)));
    std::array<char, 128> small{};
    auto got = co_await session.recv(asio::buffer(small));
    REQUIRE(got.bytes() == small.size());
    std::unique_ptr<char[]> own;
    const auto left = echo_now(session, asio::buffer(small), got.bytes(), own);
    CHECK(left.sent);
    CHECK(left.unsent.size() == 0);
    // At least streaming_bytes echoed in one wake-up: the next receive goes into a buffer of
    // the session's own.
    CHECK(own != nullptr);
    CHECK(co_await read_exactly(peer, message.size()) == message);

    // A short message received into that buffer, all of it sent: the buffer goes back.
    const auto small_message = test::pattern_text(100, 3);
    REQUIRE(co_await peer.send_all(asio::buffer(small_message)));
    const auto into = asio::buffer(own.get(), own_buffer_size);
    got = co_await session.recv(into);
    REQUIRE(got.bytes() == small_message.size());
    const auto after = echo_now(session, into, got.bytes(), own);
    CHECK(after.sent);
    CHECK(after.unsent.size() == 0);
    CHECK_FALSE(own);
    CHECK(co_await read_exactly(peer, small_message.size()) == small_message);
  });
}

TEST_CASE("echo_session: what the peer does not take at once waits in the session's own buffer") {
  test::run([]() -> asio::awaitable<void> {
    auto [peer, session] = coronet::unix_stream::socket_pair(co_await asio::this_coro::executor);
    // Fill the session's send direction first, so that its next send falls short.
    const auto filler = test::pattern_text(64 * 1024, 4);
    std::size_t queued = 0;
    for (;;) {
      auto sent = session.try_send(asio::buffer(filler));
      if (!sent) break;
      queued += sent.bytes();
    }
    REQUIRE(queued > 0);
    const auto message = test::pattern_text(100, 5);
    std::unique_ptr<char[]> own;
    const auto left = echo_received(session, message, own);
    CHECK(left.sent);
    REQUIRE(own != nullptr);
    REQUIRE(left.unsent.size() == message.size());
    // A copy in the session's own buffer, not a view of the small one (or the thread's).
    CHECK(left.unsent.data() == own.get());
    CHECK(std::string(static_cast<const char*>(left.unsent.data()), left.unsent.size()) == message);
    (void)co_await read_exactly(peer, queued);
  });
}

TEST_CASE("echo_session: 4 MiB from a peer that reads late comes back exact - then short ones") {
  test::run(
      []() -> asio::awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        auto [peer, session] = coronet::unix_stream::socket_pair(executor);
        coronet::spawn(executor, coronet_examples::echo_session(std::move(session)),
                       "echo session");
        const auto payload = test::pattern_text(4 * 1024 * 1024, 6);
        // Everything is sent before anything is read: the session's sends fall short and it
        // stops receiving until the peer reads, so this send waits too; read meanwhile.
        std::string back;
        test::wait_group done(executor);
        done.add(1);
        coronet::spawn(executor, read_late(peer, back, payload.size(), done), "reader");
        REQUIRE(co_await peer.send_all(asio::buffer(payload), 10s));
        co_await done.wait();
        CHECK(back == payload);
        // Then short messages, across the small buffer's size.
        for (std::size_t size : {1U, 64U, 127U, 128U, 129U, 300U, 5000U}) {
          CAPTURE(size);
          const auto message = test::pattern_text(size, static_cast<unsigned>(size));
          REQUIRE(co_await peer.send_all(asio::buffer(message)));
          CHECK(co_await read_exactly(peer, size) == message);
        }
        REQUIRE(peer.shutdown(coronet::shutdown_type::send));
        char extra = 0;
        CHECK((co_await peer.recv(asio::buffer(&extra, 1), 5s)).error() == coronet::errc::eof);
      },
      30s);
}

TEST_CASE("echo_session: a TCP session turns Nagle off on its connection") {
  test::run([]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    auto [client, server] = co_await test::connected_pair();
    const int fd = static_cast<int>(server.native_handle());
    auto nodelay = [fd] {
      int on = 0;
      socklen_t size = sizeof on;
      REQUIRE(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &size) == 0);
      return on != 0;
    };
    CHECK_FALSE(nodelay());  // the kernel's default
    coronet::spawn(executor, coronet_examples::echo_session(std::move(server)), "echo session");
    const auto message = test::pattern_text(64, 7);
    REQUIRE(co_await client.send_all(asio::buffer(message)));
    std::string back(message.size(), '\0');
    REQUIRE(co_await client.recv_exact(asio::buffer(back), 5s));
    CHECK(back == message);
    CHECK(nodelay());
  });
}

TEST_CASE("udp_echo: a burst of 3 batches' worth, queued at once, comes back whole") {
  test::run([]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    const auto loopback = coronet::endpoint(asio::ip::address_v4::loopback(), 0);
    auto echo =
        std::make_shared<coronet::udp_socket>(coronet::udp_socket::bind(executor, loopback));
    auto client = coronet::udp_socket::bind(executor, loopback);
    // Room for every reply while the client is not reading yet.
    (void)client.set_option(coronet::option::receive_buffer_size{1 << 20});
    coronet::spawn(executor, coronet_examples::udp_echo(echo), "udp echo");

    // More than udp_batch datagrams, all sent before the echo runs: after its first awaited
    // receive it finds the rest queued, takes them in batches, and waits its turn in between.
    const int count = 3 * coronet_examples::udp_batch + 7;
    std::set<std::string> expected;
    for (int i = 0; i < count; ++i) {
      const std::string datagram = "datagram " + std::to_string(i);
      expected.insert(datagram);
      REQUIRE(co_await client.send_to(asio::buffer(datagram), echo->local_endpoint(), 5s));
    }
    std::set<std::string> echoed;
    std::array<char, 64> buffer{};
    for (int i = 0; i < count; ++i) {
      auto got = co_await client.recv_from(asio::buffer(buffer), 5s);
      REQUIRE(got);
      CHECK(got.sender() == echo->local_endpoint());
      echoed.insert(std::string(buffer.data(), got.bytes()));
    }
    CHECK(echoed == expected);
    co_await coronet_examples::close_udp(echo);
  });
}
