#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <memory>
#include <numeric>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <asio/experimental/awaitable_operators.hpp>

#include "support/run.hpp"

using namespace std::chrono_literals;
using coronet::errc;
using coronet::tcp_listener;
using coronet::tcp_stream;
namespace test = coronet::test;

namespace {

asio::awaitable<void> send_then_half_close(tcp_stream& stream, const std::vector<char>& data) {
  auto sent = co_await stream.send_all(asio::buffer(data));
  CHECK(sent);
  CHECK(sent.bytes() == data.size());
  CHECK(stream.shutdown(coronet::shutdown_type::send));
}

asio::awaitable<void> close_after(tcp_stream& stream, std::chrono::milliseconds delay) {
  co_await test::sleep_for(delay);
  stream.close();
}

asio::awaitable<void> accept_and_echo(tcp_listener& listener, std::size_t sessions) {
  const auto executor = co_await asio::this_coro::executor;
  for (std::size_t i = 0; i < sessions; ++i) {
    auto stream = co_await listener.accept();
    REQUIRE(stream);
    coronet::spawn(executor, test::echo_until_eof(std::move(*stream)), "test echo");
  }
}

// Sends this connection's own payload a few times and checks each reply is exactly it.
asio::awaitable<void> ping_own_payload(tcp_stream& stream, unsigned id, test::wait_group& group,
                                       std::size_t& good) {
  const auto payload = test::pattern(1000 + id, id);
  std::vector<char> reply(payload.size());
  bool all_good = true;
  for (int round = 0; round < 3; ++round) {
    auto sent = co_await stream.send_all(asio::buffer(payload));
    auto got = co_await stream.recv_exact(asio::buffer(reply));
    all_good = all_good && sent && got && reply == payload;
  }
  if (all_good) ++good;
  group.done();
}

void round_trip_on(const coronet::endpoint& where) {
  test::run([&]() -> asio::awaitable<void> {
    auto listener = tcp_listener::bind(co_await asio::this_coro::executor, where);
    auto client = co_await tcp_stream::connect(listener.local_endpoint());
    REQUIRE(client);
    auto server = co_await listener.accept();
    REQUIRE(server);

    CHECK(client->remote_endpoint() == listener.local_endpoint());
    CHECK(client->local_endpoint() == server->remote_endpoint());
    CHECK(server->local_endpoint() == listener.local_endpoint());

    constexpr std::string_view hello = "hello";
    auto sent = co_await client->send(asio::buffer(hello));
    REQUIRE(sent);
    CHECK(sent.bytes() == hello.size());
    std::array<char, 5> got{};
    auto received = co_await server->recv_exact(asio::buffer(got));
    REQUIRE(received);
    CHECK(std::string_view(got.data(), got.size()) == hello);

    CHECK(co_await server->send_all(asio::buffer(std::string_view("world!"))));
    std::array<char, 64> buffer{};
    auto some = co_await client->recv(asio::buffer(buffer));
    REQUIRE(some);
    CHECK(std::string_view(buffer.data(), some.bytes()) ==
          std::string_view("world!").substr(0, some.bytes()));
  });
}

}  // namespace

TEST_CASE("tcp_stream: accept - connect - send and recv over 127.0.0.1") {
  round_trip_on(test::any_v4());
}

TEST_CASE("tcp_stream: accept - connect - send and recv over [::1]") {
  if (!test::has_ipv6_loopback()) {
    MESSAGE("skipped: this machine has no IPv6 loopback");
    return;
  }
  round_trip_on(coronet::endpoint(asio::ip::address_v6::loopback(), 0));
}

TEST_CASE("tcp_stream: a 1 MiB round trip comes back intact and in order") {
  for (const auto& any : test::loopbacks()) {
    CAPTURE(any);
    test::run([&]() -> asio::awaitable<void> {
      const auto executor = co_await asio::this_coro::executor;
      auto [client, server] = co_await test::connected_pair(any);
      coronet::spawn(executor, test::echo_until_eof(std::move(server)), "echo");

      const auto data = test::pattern(1 << 20, 1);
      coronet::spawn(executor, send_then_half_close(client, data), "writer");
      std::vector<char> back(data.size());
      auto got = co_await client.recv_exact(asio::buffer(back));
      REQUIRE(got);
      CHECK(got.bytes() == data.size());
      CHECK(back == data);
      char extra = 0;
      auto end = co_await client.recv(asio::buffer(&extra, 1));
      CHECK(end.error() == errc::eof);
    });
  }
}

TEST_CASE("tcp_stream: half-close lets the peer finish sending - then reads eof") {
  for (const auto& any : test::loopbacks()) {
    CAPTURE(any);
    test::run([&]() -> asio::awaitable<void> {
      auto [client, server] = co_await test::connected_pair(any);
      CHECK(co_await client.send_all(asio::buffer(std::string_view("abc"))));
      REQUIRE(client.shutdown(coronet::shutdown_type::send));

      std::array<char, 3> got{};
      CHECK(co_await server.recv_exact(asio::buffer(got)));
      char more = 0;
      auto eof = co_await server.recv(asio::buffer(&more, 1));
      CHECK_FALSE(eof);
      CHECK(eof.error() == errc::eof);
      CHECK(eof.bytes() == 0);

      // The half-closed client still receives.
      CHECK(co_await server.send_all(asio::buffer(std::string_view("xyz"))));
      REQUIRE(server.shutdown(coronet::shutdown_type::send));
      std::array<char, 3> reply{};
      CHECK(co_await client.recv_exact(asio::buffer(reply)));
      CHECK(std::string_view(reply.data(), 3) == "xyz");
      auto client_eof = co_await client.recv(asio::buffer(&more, 1));
      CHECK(client_eof.error() == errc::eof);  // FIN, not a reset
    });
  }
}

TEST_CASE("tcp_stream: recv_exact reports the bytes that arrived before eof") {
  for (const auto& any : test::loopbacks()) {
    CAPTURE(any);
    test::run([&]() -> asio::awaitable<void> {
      auto [client, server] = co_await test::connected_pair(any);
      CHECK(co_await client.send_all(asio::buffer(std::string_view("12345"))));
      REQUIRE(client.shutdown(coronet::shutdown_type::send));
      std::array<char, 10> got{};
      auto partial = co_await server.recv_exact(asio::buffer(got));
      CHECK(partial.error() == errc::eof);
      CHECK(partial.bytes() == 5);
      CHECK(std::string_view(got.data(), 5) == "12345");
    });
  }
}

TEST_CASE(
    "tcp_stream: a peer's RST is a connection_reset value - and send after it does not kill the "
    "process") {
  for (const auto& any : test::loopbacks()) {
    CAPTURE(any);
    test::run([&]() -> asio::awaitable<void> {
      auto [client, server] = co_await test::connected_pair(any);
      const auto peer = server.remote_endpoint();
      // SO_LINGER with a zero timeout makes close() send RST instead of FIN.
      REQUIRE(server.set_option(coronet::option::linger{true, 0s}));
      server.close();

      std::array<char, 16> buffer{};
      auto got = co_await client.recv(asio::buffer(buffer));
      CHECK_FALSE(got);
      CHECK(got.error() == std::errc::connection_reset);
      CHECK_THROWS_AS((void)got.value(), std::system_error);

      // No SIGPIPE: the failure is a value (EPIPE once the reset was seen).
      auto sent = co_await client.send(asio::buffer(std::string_view("late")));
      CHECK_FALSE(sent);
      CHECK(
          (sent.error() == std::errc::broken_pipe || sent.error() == std::errc::connection_reset));
      // The endpoints were kept from the connect, so logs still have them.
      CHECK(client.remote_endpoint().port() != 0);
      CHECK(peer.port() == client.local_endpoint().port());
    });
  }
}

TEST_CASE("tcp_stream: connect refused is a value - the throwing form throws system_error") {
  for (const auto& any : test::loopbacks()) {
    CAPTURE(any);
    test::run([&]() -> asio::awaitable<void> {
      coronet::endpoint closed_port;
      {
        auto listener = tcp_listener::bind(co_await asio::this_coro::executor, any);
        closed_port = listener.local_endpoint();
      }
      auto refused = co_await tcp_stream::connect(closed_port);
      REQUIRE_FALSE(refused);
      CHECK(refused.error() == std::errc::connection_refused);

      bool threw = false;
      try {
        auto stream = (co_await tcp_stream::connect(closed_port)).value();
      } catch (const std::system_error& e) {
        threw = true;
        CHECK(e.code() == std::errc::connection_refused);
      }
      CHECK(threw);
    });
  }
}

TEST_CASE("tcp_stream: the throwing form of recv throws at eof - the value form reports it") {
  for (const auto& any : test::loopbacks()) {
    CAPTURE(any);
    test::run([&]() -> asio::awaitable<void> {
      auto [client, server] = co_await test::connected_pair(any);
      REQUIRE(client.shutdown(coronet::shutdown_type::send));
      std::array<char, 4> buffer{};
      auto value_form = co_await server.recv(asio::buffer(buffer));
      CHECK(value_form.error() == errc::eof);
      bool threw = false;
      try {
        (void)(co_await server.recv(asio::buffer(buffer))).value();
      } catch (const std::system_error& e) {
        threw = e.code() == errc::eof;
      }
      CHECK(threw);
    });
  }
}

TEST_CASE("tcp_stream: connect by host name - and to a name that does not resolve") {
  test::run([]() -> asio::awaitable<void> {
    auto listener = tcp_listener::bind(co_await asio::this_coro::executor, test::any_v4());
    auto by_name = co_await tcp_stream::connect("localhost:" +
                                                std::to_string(listener.local_endpoint().port()));
    REQUIRE(by_name);
    CHECK(by_name->remote_endpoint() == listener.local_endpoint());
    auto accepted = co_await listener.accept();
    CHECK(accepted);

    auto unknown = co_await tcp_stream::connect(std::string("no-such-host.invalid:80"));
    CHECK_FALSE(unknown);
    auto malformed = co_await tcp_stream::connect(std::string("localhost"));
    CHECK(malformed.error() == errc::missing_port);
  });
}

TEST_CASE("tcp_stream: connect from a chosen source address") {
  test::run([]() -> asio::awaitable<void> {
    auto listener = tcp_listener::bind(co_await asio::this_coro::executor, test::any_v4());
    const auto source = coronet::endpoint::parse("127.0.0.2:0").value();
    auto client = co_await tcp_stream::connect(listener.local_endpoint(), {.local = source});
    REQUIRE(client);
    CHECK(client->local_endpoint().address() == source.address());
    auto server = co_await listener.accept();
    REQUIRE(server);
    CHECK(server->remote_endpoint().address() == source.address());

    // A source address this machine does not have is a bind error value.
    auto bad = co_await tcp_stream::connect(
        listener.local_endpoint(), {.local = coronet::endpoint::parse("192.0.2.1:0").value()});
    CHECK(bad.error() == std::errc::address_not_available);
  });
}

TEST_CASE("tcp_stream: a source address with port 0 leaves the port to connect()") {
  // IP_BIND_ADDRESS_NO_PORT: bind() would otherwise pick a port no other socket on that address
  // holds (TIME_WAIT ones included), scanning the whole range once many are taken.
  const auto deferred = [](const tcp_stream& s) {
    int value = -1;
    socklen_t size = sizeof value;
    REQUIRE(::getsockopt(s.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &value, &size) ==
            0);
    return value != 0;
  };
  test::run([&]() -> asio::awaitable<void> {
    auto listener = tcp_listener::bind(co_await asio::this_coro::executor, test::any_v4());
    auto any_port = co_await tcp_stream::connect(
        listener.local_endpoint(), {.local = coronet::endpoint::parse("127.0.0.3:0").value()});
    REQUIRE(any_port);
    CHECK(deferred(*any_port));
    CHECK(any_port->local_endpoint().port() != 0);  // picked by connect()
    // A port asked for is bound as asked, and no source at all leaves everything to connect().
    auto taken = tcp_listener::bind(co_await asio::this_coro::executor, test::any_v4());
    const auto port = taken.local_endpoint().port();
    taken.close();
    auto fixed = co_await tcp_stream::connect(
        listener.local_endpoint(),
        {.local = coronet::endpoint(asio::ip::make_address("127.0.0.3"), port)});
    REQUIRE(fixed);
    CHECK_FALSE(deferred(*fixed));
    CHECK(fixed->local_endpoint().port() == port);
    auto plain = co_await tcp_stream::connect(listener.local_endpoint());
    REQUIRE(plain);
    CHECK_FALSE(deferred(*plain));
  });
}

TEST_CASE("tcp_stream: close() from another coroutine cancels a pending recv") {
  for (const auto& any : test::loopbacks()) {
    CAPTURE(any);
    test::run([&]() -> asio::awaitable<void> {
      auto [client, server] = co_await test::connected_pair(any);
      coronet::spawn(co_await asio::this_coro::executor, close_after(server, 50ms), "closer");
      std::array<char, 8> buffer{};
      auto got = co_await server.recv(asio::buffer(buffer));
      CHECK(got.error() == std::errc::operation_canceled);
      CHECK_FALSE(server.is_open());
      server.close();  // idempotent
      // The peer sees the close as eof.
      auto at_client = co_await client.recv(asio::buffer(buffer));
      CHECK(at_client.error() == errc::eof);
    });
  }
}

TEST_CASE(
    "tcp_stream: 200 concurrent connections - each its own socket - each echoed only its own "
    "bytes") {
  for (const auto& any : test::loopbacks()) {
    CAPTURE(any);
    test::run(
        [&]() -> asio::awaitable<void> {
          constexpr unsigned count = 200;
          const auto executor = co_await asio::this_coro::executor;
          auto listener = tcp_listener::bind(executor, any);
          coronet::spawn(executor, accept_and_echo(listener, count), "acceptor");

          std::vector<tcp_stream> clients;
          for (unsigned i = 0; i < count; ++i) {
            auto stream = co_await tcp_stream::connect(listener.local_endpoint());
            REQUIRE(stream);
            clients.push_back(std::move(*stream));
          }
          std::set<int> fds;
          std::set<coronet::endpoint> locals;
          for (const auto& c : clients) {
            fds.insert(c.native_handle());
            locals.insert(c.local_endpoint());
          }
          CHECK(fds.size() == count);
          CHECK(locals.size() == count);

          test::wait_group group(executor);
          std::size_t good = 0;
          group.add(count);
          for (unsigned i = 0; i < count; ++i) {
            coronet::spawn(executor, ping_own_payload(clients[i], i, group, good), "pinger");
          }
          co_await group.wait();
          CHECK(good == count);
        },
        30s);
  }
}

// send() and send_all() hand what fits in the socket buffer to the kernel at once instead of
// going through the reactor: a handler posted before them is still queued when they return.
TEST_CASE(
    "tcp_stream: a send that fits in the socket buffer completes without a trip through "
    "the scheduler") {
  test::run([]() -> asio::awaitable<void> {
    auto [client, server] = co_await test::connected_pair();
    const auto data = test::pattern(1000, 3);
    bool posted_ran = false;
    asio::post(co_await asio::this_coro::executor, [&] { posted_ran = true; });

    auto all = co_await client.send_all(asio::buffer(data.data(), 600));
    CHECK(all.bytes() == 600);
    auto some = co_await client.send(asio::buffer(data.data() + 600, 400));
    CHECK(some.bytes() == 400);
    CHECK_FALSE(posted_ran);

    std::vector<char> got(data.size());
    auto received = co_await server.recv_exact(asio::buffer(got));
    CHECK(received);
    CHECK(got == data);
    CHECK(posted_ran);
  });
}

// ...but not forever: a sender whose peer keeps up waits once in a while, so the other
// coroutines of its thread still run.
TEST_CASE("tcp_stream: back-to-back sends that all fit still let the thread's other work run") {
  test::run([]() -> asio::awaitable<void> {
    auto [client, server] = co_await test::connected_pair();
    const auto data = test::pattern(64 * 100, 4);
    bool posted_ran = false;
    asio::post(co_await asio::this_coro::executor, [&] { posted_ran = true; });
    for (std::size_t i = 0; i < 64; ++i) {
      auto sent = co_await client.send_all(asio::buffer(data.data() + i * 100, 100));
      REQUIRE(sent.bytes() == 100);
    }
    CHECK(posted_ran);

    std::vector<char> got(data.size());
    CHECK(co_await server.recv_exact(asio::buffer(got)));
    CHECK(got == data);
  });
}

// What the kernel does not take at once goes through the reactor, after the part it took.
namespace {
asio::awaitable<void> read_all(tcp_stream& stream, std::vector<char>& into, std::size_t& received,
                               test::wait_group& group) {
  auto got = co_await stream.recv_exact(asio::buffer(into));
  received = got.bytes();
  group.done();
}
}  // namespace

TEST_CASE(
    "tcp_stream: send_all of more than the socket buffer holds sends the rest once the "
    "peer reads") {
  test::run([]() -> asio::awaitable<void> {
    auto [client, server] = co_await test::connected_pair();
    REQUIRE(client.set_option(coronet::option::send_buffer_size{16 * 1024}));
    const auto data = test::pattern(8 << 20, 5);
    std::vector<char> got(data.size());
    std::size_t received = 0;
    test::wait_group group(co_await asio::this_coro::executor);
    group.add();
    coronet::spawn(co_await asio::this_coro::executor, read_all(server, got, received, group),
                   "test reader");

    auto sent = co_await client.send_all(asio::buffer(data));
    CHECK(sent);
    CHECK(sent.bytes() == data.size());
    co_await group.wait();
    CHECK(received == data.size());
    CHECK(got == data);
  });
}

// recv() without a limit is Asio's operation with coronet's conversion on its completion: the
// awaiting coroutine's cancellation still reaches it, nothing is lost, and bytes are counted.
TEST_CASE("tcp_stream: recv cancelled by a parallel timer loses nothing - and counts bytes") {
  test::run([]() -> asio::awaitable<void> {
    using namespace asio::experimental::awaitable_operators;
    auto [client, server] = co_await test::connected_pair();
    auto counters = std::make_shared<coronet::byte_counters>();
    server.count_bytes(counters);
    std::array<char, 16> buffer{};

    auto first = co_await (server.recv(asio::buffer(buffer)) || test::sleep_for(50ms));
    CHECK(first.index() == 1);  // the timer won; the recv was cancelled

    const std::string_view hello = "hello";
    CHECK(co_await client.send_all(asio::buffer(hello)));
    auto got = co_await server.recv(asio::buffer(buffer));
    REQUIRE(got);
    CHECK(std::string_view(buffer.data(), got.bytes()) == hello);
    CHECK(counters->received() == hello.size());
  });
}

namespace {

// Receives once on a stream it does not own, stores the outcome, and touches nothing of the
// stream afterwards.
asio::awaitable<void> receive_once(tcp_stream& stream, std::shared_ptr<coronet::io_result> out) {
  std::array<char, 16> buffer{};
  *out = co_await stream.recv(asio::buffer(buffer));
}

}  // namespace

// The receive's completion reads nothing of the stream, which is gone when it runs.
TEST_CASE(
    "tcp_stream: a stream that counts bytes destroyed under a pending recv - its end is safe") {
  test::run([]() -> asio::awaitable<void> {
    auto [client, server] = co_await test::connected_pair();
    auto counters = std::make_shared<coronet::byte_counters>();
    auto stream = std::make_unique<tcp_stream>(std::move(server));
    stream->count_bytes(counters);
    auto outcome = std::make_shared<coronet::io_result>(0, std::error_code());
    coronet::spawn(co_await asio::this_coro::executor, receive_once(*stream, outcome), "receiver");
    co_await test::sleep_for(20ms);  // it waits now
    // Closed and destroyed in one handler: the receive's completion is still queued, and runs
    // after the stream's memory is freed (AddressSanitizer checks that it stays out of it).
    stream.reset();
    co_await test::sleep_for(20ms);
    CHECK(outcome->error() == std::errc::operation_canceled);
    CHECK(counters->received() == 0);
    CHECK(counters.use_count() == 1);  // the completion let go of them
  });
}

// A server can hold a connection without a buffer: wait until bytes are there, then take them
// with a receive that never waits.
TEST_CASE("tcp_stream: wait_readable waits for bytes without reading them - try_recv takes them") {
  test::run([]() -> asio::awaitable<void> {
    auto [client, server] = co_await test::connected_pair();
    auto counters = std::make_shared<coronet::byte_counters>();
    server.count_bytes(counters);
    std::array<char, 16> buffer{};

    auto nothing = server.try_recv(asio::buffer(buffer));
    CHECK(nothing.error() == std::errc::operation_would_block);
    CHECK(nothing.bytes() == 0);
    CHECK((co_await server.wait_readable(50ms)).error() == std::errc::timed_out);

    const std::string_view hello = "hello";
    coronet::spawn(co_await asio::this_coro::executor,
                   test::send_after(client, 50ms, std::string(hello)), "sender");
    CHECK(co_await server.wait_readable(5s));
    CHECK(counters->received() == 0);  // the wait read nothing
    auto got = server.try_recv(asio::buffer(buffer));
    REQUIRE(got);
    CHECK(std::string_view(buffer.data(), got.bytes()) == hello);
    CHECK(counters->received() == hello.size());
    CHECK(server.try_recv(asio::buffer(buffer)).error() == std::errc::operation_would_block);

    // The peer's close makes the stream readable too, and try_recv then reports eof.
    CHECK(client.shutdown(coronet::shutdown_type::send));
    CHECK(co_await server.wait_readable(5s));
    CHECK(server.try_recv(asio::buffer(buffer)).error() == errc::eof);
  });
}

// Bytes that arrived before the wait, and were partly read, still make it return: the readiness
// is asked of the socket as it is now, not only of what arrives next.
TEST_CASE("tcp_stream: wait_readable returns for bytes left from an earlier receive") {
  test::run([]() -> asio::awaitable<void> {
    auto [client, server] = co_await test::connected_pair();
    const auto data = test::pattern(4096, 3);
    CHECK(co_await client.send_all(asio::buffer(data)));
    std::vector<char> got;
    std::array<char, 100> piece{};
    while (got.size() < data.size()) {
      REQUIRE(co_await server.wait_readable(5s));
      auto some = server.try_recv(asio::buffer(piece));
      REQUIRE(some);
      got.insert(got.end(), piece.begin(),
                 piece.begin() + static_cast<std::ptrdiff_t>(some.bytes()));
    }
    CHECK(got == data);
  });
}

TEST_CASE("tcp_stream: close() cancels a pending wait_readable") {
  test::run([]() -> asio::awaitable<void> {
    auto [client, server] = co_await test::connected_pair();
    coronet::spawn(co_await asio::this_coro::executor, close_after(server, 50ms), "closer");
    CHECK((co_await server.wait_readable()).error() == std::errc::operation_canceled);
    std::array<char, 4> buffer{};
    CHECK_FALSE(server.try_recv(asio::buffer(buffer)));
  });
}

TEST_CASE("tcp_stream: try_send takes what fits at once - then would_block until the peer reads") {
  test::run([]() -> asio::awaitable<void> {
    auto [client, server] = co_await test::connected_pair();
    REQUIRE(client.set_option(coronet::option::send_buffer_size{16 * 1024}));
    REQUIRE(server.set_option(coronet::option::receive_buffer_size{16 * 1024}));
    auto counters = std::make_shared<coronet::byte_counters>();
    client.count_bytes(counters);
    const auto chunk = test::pattern(64 * 1024, 9);
    std::size_t taken = 0;
    coronet::io_result last(0);
    for (int i = 0; i < 1000; ++i) {
      // Each send goes on from where the kernel stopped taking the last one.
      last = client.try_send(asio::buffer(chunk) + taken % chunk.size());
      if (!last) break;
      CHECK(last.bytes() > 0);
      taken += last.bytes();
    }
    CHECK(last.error() == std::errc::operation_would_block);
    CHECK(last.bytes() == 0);
    CHECK(taken > 0);
    CHECK(counters->sent() == taken);

    // Everything taken arrives, in order; then the socket takes bytes again.
    std::vector<char> got(taken);
    CHECK(co_await server.recv_exact(asio::buffer(got), 5s));
    for (std::size_t i = 0; i < taken; ++i) {
      if (got[i] != chunk[i % chunk.size()]) {
        FAIL("byte " << i << " differs");
        break;
      }
    }
    CHECK(client.try_send(asio::buffer(chunk)).bytes() > 0);
  });
}
