// lean_stream: the operations over TCP and Unix-domain sockets, their errors, limits and
// cancellation, and the readiness set's edge cases (a stream closed within a batch, a peer
// that keeps a socket ready).
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "support/run.hpp"

using namespace std::chrono_literals;
using coronet::lean_stream;
namespace test = coronet::test;

namespace {

// A connected Unix-domain pair of lean streams on `context`.
std::pair<lean_stream, lean_stream> unix_pair(asio::io_context& context) {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
  return {lean_stream(context, fds[0]), lean_stream(context, fds[1])};
}

// A listening TCP socket on 127.0.0.1 with a port the kernel picked, closed with the object.
class tcp_listening {
 public:
  tcp_listening() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    REQUIRE(fd_ >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    socklen_t size = sizeof(address);
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size) == 0);
    port_ = ntohs(address.sin_port);
  }
  tcp_listening(const tcp_listening&) = delete;
  tcp_listening& operator=(const tcp_listening&) = delete;
  ~tcp_listening() { ::close(fd_); }

  coronet::endpoint where() const {
    return coronet::endpoint(asio::ip::address_v4::loopback(), port_);
  }
  // The next connection, blocking (the client's connect has completed in the kernel).
  lean_stream accept(asio::io_context& context) const {
    const int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    REQUIRE(fd >= 0);
    return lean_stream(context, fd);
  }

 private:
  int fd_;
  std::uint16_t port_ = 0;
};

// Reads from `from` until the peer closes; returns everything, slowly if `pause` is set.
coronet::task<std::string> read_to_end(lean_stream& from) {
  std::string all;
  std::array<char, 4096> chunk{};
  for (;;) {
    auto got = co_await from.recv(asio::buffer(chunk), 10s);
    all.append(chunk.data(), got.bytes());
    if (!got) {
      CHECK(got.error() == coronet::errc::eof);
      co_return all;
    }
  }
}

}  // namespace

TEST_CASE("lean_stream: connect, both ends, a round trip and eof over TCP") {
  test::run_task([](asio::io_context& context) -> coronet::task<void> {
    tcp_listening listener;
    auto client = co_await lean_stream::connect(context, listener.where(), 5s);
    REQUIRE_MESSAGE(client, client.error().message());
    auto server = listener.accept(context);
    CHECK(client->remote_endpoint() == listener.where());
    CHECK(server.remote_endpoint() == client->local_endpoint());
    CHECK(server.local_endpoint() == listener.where());

    REQUIRE(co_await client->send_all(asio::buffer("hello", 5)));
    std::array<char, 16> got{};
    auto n = co_await server.recv(asio::buffer(got));
    REQUIRE(n);
    CHECK(std::string(got.data(), n.bytes()) == "hello");

    REQUIRE(client->shutdown());  // the half-close: the server reads the end
    auto end = co_await server.recv(asio::buffer(got));
    CHECK(end.error() == coronet::errc::eof);
    CHECK(end.bytes() == 0);
  });
}

TEST_CASE("lean_stream: connect over a Unix-domain socket, both ends and a round trip") {
  test::temp_dir dir;
  const auto path = (dir.path() / "lean.sock").string();
  const int listening = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(listening >= 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  REQUIRE(::bind(listening, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  REQUIRE(::listen(listening, 4) == 0);
  test::run_task([&](asio::io_context& context) -> coronet::task<void> {
    const auto where = coronet::endpoint::unix_domain(path).value();
    auto client = co_await lean_stream::connect(context, where, 5s);
    REQUIRE_MESSAGE(client, client.error().message());
    const int accepted = ::accept4(listening, nullptr, nullptr, SOCK_CLOEXEC);
    REQUIRE(accepted >= 0);
    lean_stream server(context, accepted);
    CHECK(client->remote_endpoint() == where);
    CHECK(server.local_endpoint() == where);
    CHECK(server.remote_endpoint() == coronet::endpoint::unix_unnamed());
    REQUIRE(co_await client->send_all(asio::buffer("unix", 4)));
    std::array<char, 4> got{};
    REQUIRE(co_await server.recv_exact(asio::buffer(got), 5s));
    CHECK(std::string(got.data(), got.size()) == "unix");
  });
  ::close(listening);
}

TEST_CASE("lean_stream: connect to a port nobody listens on is refused") {
  test::run_task([](asio::io_context& context) -> coronet::task<void> {
    coronet::endpoint nowhere;
    {
      tcp_listening closed_soon;
      nowhere = closed_soon.where();
    }
    auto refused = co_await lean_stream::connect(context, nowhere, 5s);
    CHECK(refused.error() == std::errc::connection_refused);
  });
}

TEST_CASE("lean_stream: recv_exact gathers several sends, send_all of 4 MiB waits for the reader") {
  test::run_task([](asio::io_context& context) -> coronet::task<void> {
    auto [a, b] = unix_pair(context);
    // 4 MiB is far more than a socket buffer: send_all must wait for b's reads in between.
    const auto big = test::pattern_text(4 << 20, 7);
    auto sent = std::make_shared<coronet::io_result>(0);
    coronet::task_group writers(context.get_executor());
    writers.spawn(
        [](lean_stream to, const std::string& data,
           std::shared_ptr<coronet::io_result> out) -> coronet::task<void> {
          *out = co_await to.send_all(asio::buffer(data));
        }(std::move(a), big, sent),
        "writer");
    const auto received = co_await read_to_end(b);  // eof once the writer's stream is gone
    REQUIRE_MESSAGE(*sent, sent->error().message());
    CHECK(sent->bytes() == big.size());
    CHECK(received == big);

    auto [x, y] = unix_pair(context);
    std::array<char, 10> whole{};
    REQUIRE(co_await x.send(asio::buffer("01234", 5)));
    REQUIRE(co_await x.send(asio::buffer("56789", 5)));
    auto exact = co_await y.recv_exact(asio::buffer(whole), 5s);
    REQUIRE(exact);
    CHECK(std::string(whole.data(), whole.size()) == "0123456789");
    x.close();
    auto short_end = co_await y.recv_exact(asio::buffer(whole), 5s);
    CHECK(short_end.error() == coronet::errc::eof);
    CHECK(short_end.bytes() == 0);
  });
}

namespace {

// A pause for a task: a receive nobody answers, ended by its limit.
coronet::task<void> pause(asio::io_context& context, std::chrono::milliseconds how_long) {
  auto [quiet, unused] = unix_pair(context);
  std::array<char, 1> byte{};
  auto got = co_await quiet.recv(asio::buffer(byte), how_long);
  REQUIRE(got.error() == std::errc::timed_out);
}

// Receives one byte from `from`: its outcome goes to `out`.
coronet::task<void> receive_one(lean_stream& from, std::shared_ptr<coronet::io_result> out) {
  std::array<char, 1> byte{};
  *out = co_await from.recv(asio::buffer(byte));
}

}  // namespace

TEST_CASE("lean_stream: a limit ends a receive with timed_out, and loses nothing") {
  test::run_task([](asio::io_context& context) -> coronet::task<void> {
    auto [a, b] = unix_pair(context);
    std::array<char, 4> buffer{};
    auto late = co_await b.recv(asio::buffer(buffer), 30ms);
    CHECK(late.error() == std::errc::timed_out);
    CHECK(late.bytes() == 0);
    b.set_timeout(20ms);  // the stream's own limit, for calls that pass none
    CHECK((co_await b.recv(asio::buffer(buffer))).error() == std::errc::timed_out);
    REQUIRE(co_await a.send_all(asio::buffer("abcd", 4)));
    auto got = co_await b.recv(asio::buffer(buffer), 5s);
    REQUIRE(got);
    CHECK(std::string(buffer.data(), got.bytes()) == "abcd");
  });
}

TEST_CASE(
    "lean_stream: closing a stream ends another task's pending receive with operation_canceled") {
  test::run_task([](asio::io_context& context) -> coronet::task<void> {
    auto [a, b] = unix_pair(context);
    auto outcome = std::make_shared<coronet::io_result>(0);
    coronet::task_group group(context.get_executor());
    group.spawn(receive_one(b, outcome), "reader");  // runs until it waits
    b.close();
    co_await pause(context, 10ms);
    CHECK(group.size() == 0);
    CHECK(outcome->error() == std::errc::operation_canceled);
  });
}

TEST_CASE(
    "lean_stream: a stream closed by a task resumed earlier in the same batch gets no event") {
  for (const bool closer_first : {true, false}) {
    CAPTURE(closer_first);
    test::run_task([closer_first](asio::io_context& context) -> coronet::task<void> {
      auto [a1, b1] = unix_pair(context);
      auto [a2, b2] = unix_pair(context);
      auto victim = std::make_shared<coronet::io_result>(0);
      auto closer = std::make_shared<coronet::io_result>(0);
      coronet::task_group group(context.get_executor());
      // The closer, once its byte arrives, closes the stream the victim waits on.
      group.spawn(
          [](lean_stream& mine, lean_stream& other,
             std::shared_ptr<coronet::io_result> out) -> coronet::task<void> {
            std::array<char, 1> byte{};
            *out = co_await mine.recv(asio::buffer(byte));
            other.close();
          }(b1, b2, closer),
          "closer");
      group.spawn(receive_one(b2, victim), "victim");
      co_await pause(context, 5ms);  // the streams' first events (writable) are taken
      // Both bytes are sent before the context looks again: one epoll batch has both events,
      // in the order they were sent.
      if (closer_first) {
        REQUIRE(::send(a1.native_handle(), "1", 1, 0) == 1);
        REQUIRE(::send(a2.native_handle(), "2", 1, 0) == 1);
      } else {
        REQUIRE(::send(a2.native_handle(), "2", 1, 0) == 1);
        REQUIRE(::send(a1.native_handle(), "1", 1, 0) == 1);
      }
      while (group.size() > 0) co_await pause(context, 5ms);
      CHECK(closer->bytes() == 1);
      if (closer_first) {
        // The victim's event came after its stream was closed: dropped, the wait cancelled.
        CHECK(victim->error() == std::errc::operation_canceled);
      } else {
        CHECK(victim->bytes() == 1);
      }
    });
  }
}

TEST_CASE("lean_stream: a peer that keeps a socket ready does not keep the thread's other tasks") {
  test::run_task([](asio::io_context& context) -> coronet::task<void> {
    auto [a, b] = unix_pair(context);
    auto [c, d] = unix_pair(context);
    constexpr std::size_t total = 64 * 1024;
    const auto data = test::pattern_text(total, 3);
    REQUIRE(co_await a.send_all(asio::buffer(data), 5s));  // all of it waits in b's buffer
    auto read_so_far = std::make_shared<std::size_t>(0);
    auto read_when_other_ran = std::make_shared<std::size_t>(0);
    coronet::task_group group(context.get_executor());
    // The other task waits for one byte, then notes how far the greedy reader had got.
    group.spawn(
        [](lean_stream& from, std::shared_ptr<std::size_t> so_far,
           std::shared_ptr<std::size_t> when) -> coronet::task<void> {
          std::array<char, 1> byte{};
          REQUIRE(co_await from.recv(asio::buffer(byte)));
          *when = *so_far;
        }(d, read_so_far, read_when_other_ran),
        "other");
    REQUIRE(co_await c.send_all(asio::buffer("x", 1)));
    // The greedy reader: 16 bytes per receive, each one ready at once, 4,096 of them.
    group.spawn(
        [](lean_stream& from, std::shared_ptr<std::size_t> so_far) -> coronet::task<void> {
          std::array<char, 16> chunk{};
          while (*so_far < total) {
            auto got = co_await from.recv(asio::buffer(chunk));
            REQUIRE(got);
            *so_far += got.bytes();
          }
        }(b, read_so_far),
        "greedy");
    while (group.size() > 0) co_await pause(context, 5ms);
    CHECK(*read_so_far == total);
    CHECK(*read_when_other_ran > 0);
    CHECK(*read_when_other_ran < total / 2);
  });
}

namespace {

// One side of two tasks that bounce a byte over a stream pair, each send waking the other at
// once, until `limit` messages or `stop`; then it closes its end, which ends the other side.
coronet::task<void> bounce(lean_stream& stream, bool serves_first, std::size_t limit,
                           std::shared_ptr<std::size_t> messages, std::shared_ptr<bool> stop) {
  std::array<char, 1> byte{'x'};
  if (serves_first) REQUIRE(co_await stream.send_all(asio::buffer(byte)));
  while (*messages < limit && !*stop) {
    if (!co_await stream.recv(asio::buffer(byte))) break;
    ++*messages;
    if (!co_await stream.send_all(asio::buffer(byte))) break;
  }
  stream.close();
}

}  // namespace

TEST_CASE("lean_stream: tasks that keep the readiness set busy leave Asio's handlers their turn") {
  test::run_task([](asio::io_context& context) -> coronet::task<void> {
    auto [a, b] = unix_pair(context);
    // Every message is a wait and a wake-up: the set always has the next event, so asking it
    // again would go on for ever without the 256-event turn.
    constexpr std::size_t limit = 20'000;
    auto messages = std::make_shared<std::size_t>(0);
    auto stop = std::make_shared<bool>(false);
    coronet::task_group group(context.get_executor());
    group.spawn(bounce(a, true, limit, messages, stop), "ping");
    group.spawn(bounce(b, false, limit, messages, stop), "pong");

    // This task's own pauses are Asio timers too: the bouncing is well under way once one ends.
    co_await pause(context, 1ms);
    REQUIRE(*messages > 0);
    std::size_t messages_when_fired = 0;
    bool fired = false;
    asio::steady_timer timer(context, 1ms);
    timer.async_wait([&](std::error_code) {
      fired = true;
      messages_when_fired = *messages;
      *stop = true;
    });
    while (group.size() > 0) co_await pause(context, 5ms);
    CHECK(fired);
    // Both timers ran while the tasks still bounced, not after they had done all they would.
    CHECK(messages_when_fired < limit);
  });
}
