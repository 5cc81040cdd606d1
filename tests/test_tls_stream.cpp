#include <doctest/doctest.h>

#include <array>
#include <memory>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

#include <asio/experimental/awaitable_operators.hpp>

#include "support/run.hpp"
#include "support/tls.hpp"

using namespace std::chrono_literals;
using coronet::errc;
using coronet::tls_context;
using coronet::tls_listener;
using coronet::tls_stream;
namespace test = coronet::test;

namespace {

// Echoes until the peer's close_notify, then sends its own.
asio::awaitable<void> tls_echo(tls_stream stream) {
  std::array<char, 8192> buffer;
  for (;;) {
    auto got = co_await stream.recv(asio::buffer(buffer));
    if (!got) break;
    if (!co_await stream.send_all(asio::buffer(buffer.data(), got.bytes()))) co_return;
  }
  (void)co_await stream.shutdown(2s);
}

// A TLS server of one connection whose handshake outcome the test reads afterwards.
struct one_server {
  std::shared_ptr<std::optional<tls_stream>> stream = std::make_shared<std::optional<tls_stream>>();
  std::shared_ptr<coronet::result<void>> shaken =
      std::make_shared<coronet::result<void>>(make_error_code(std::errc::operation_in_progress));
};

asio::awaitable<void> serve_one(tls_listener& listener, one_server server) {
  auto stream = co_await listener.accept();
  REQUIRE(stream);
  *server.shaken = co_await stream->handshake(5s);
  server.stream->emplace(std::move(*stream));
}

// A client's connect, run on its own while the test accepts.
asio::awaitable<void> connect_into(
    coronet::endpoint where, std::shared_ptr<std::optional<coronet::result<tls_stream>>> out) {
  out->emplace(co_await tls_stream::connect(where, test::client_tls(), {.limit = 5s}));
}

// The client of the reader-and-writer test: reads the server's greeting, answers it.
asio::awaitable<void> greet_back(coronet::endpoint where, std::shared_ptr<std::optional<bool>> ok) {
  auto client = co_await tls_stream::connect(where, test::client_tls(), {.limit = 5s});
  if (!client) {
    ok->emplace(false);
    co_return;
  }
  std::array<char, 5> greeting{};
  auto got = co_await client->recv_exact(asio::buffer(greeting), 5s);
  auto sent = co_await client->send_all(asio::buffer(std::string_view("world")));
  ok->emplace(got && sent && std::string_view(greeting.data(), 5) == "hello");
  // Held open until the server has read the answer.
  std::array<char, 1> end{};
  (void)co_await client->recv(asio::buffer(end), 5s);
}

asio::awaitable<void> wait_for(const one_server& server) {
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (!server.stream->has_value() && std::chrono::steady_clock::now() < until) {
    co_await test::sleep_for(1ms);
  }
  REQUIRE(server.stream->has_value());
}

// Connects a client with `client_context` and `options` to a fresh server whose certificate
// and key are `cert` and `key`; returns the client's outcome, and the server's in `server`.
asio::awaitable<coronet::result<tls_stream>> connect_to(const std::string& cert,
                                                        const std::string& key,
                                                        tls_context client_context,
                                                        coronet::tls_connect_options options,
                                                        one_server& server) {
  const auto executor = co_await asio::this_coro::executor;
  auto listener = tls_listener::bind(executor, test::any_v4(),
                                     tls_context::server({.cert_file = cert, .key_file = key}));
  coronet::spawn(executor, serve_one(listener, server), "tls server");
  options.limit = 5s;
  auto client = co_await tls_stream::connect(listener.local_endpoint(), std::move(client_context),
                                             std::move(options));
  co_await wait_for(server);
  co_return client;
}

}  // namespace

TEST_CASE("tls_stream round trip both ways over IPv4 and IPv6 with the peer verified") {
  for (const auto& where : test::loopbacks()) {
    CAPTURE(where);
    test::run([&]() -> asio::awaitable<void> {
      auto [client, server] = co_await test::tls_pair(where);
      CHECK(client.handshake_done());
      CHECK(server.handshake_done());
      CHECK(client.protocol() == "TLSv1.3");
      CHECK(!client.cipher().empty());
      CHECK(client.remote_endpoint() == server.local_endpoint());
      CHECK(client.local_endpoint() == server.remote_endpoint());
      CHECK(client.native_handle() >= 0);

      auto counters = std::make_shared<coronet::byte_counters>();
      server.count_bytes(counters);
      const auto request = test::pattern(100'000, 1);  // several TLS records
      std::vector<char> got(request.size());
      auto sent = co_await client.send_all(asio::buffer(request));
      REQUIRE(sent);
      CHECK(sent.bytes() == request.size());
      auto received = co_await server.recv_exact(asio::buffer(got), 5s);
      REQUIRE(received);
      CHECK(got == request);

      const auto reply = test::pattern(5000, 2);
      REQUIRE(co_await server.send_all(asio::buffer(reply)));
      std::vector<char> back(reply.size());
      REQUIRE(co_await client.recv_exact(asio::buffer(back), 5s));
      CHECK(back == reply);
      // The decrypted bytes, not the records on the wire.
      CHECK(counters->received() == request.size());
      CHECK(counters->sent() == reply.size());
    });
  }
}

TEST_CASE("tls_stream connect by host name sends SNI and checks the name") {
  test::run([]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    auto listener = tls_listener::bind(executor, test::any_v4(), test::server_tls());
    one_server server;
    coronet::spawn(executor, serve_one(listener, server), "tls server");
    const std::string by_name = "localhost:" + std::to_string(listener.local_endpoint().port());
    auto client = co_await tls_stream::connect(by_name, test::client_tls(), {.limit = 5s});
    REQUIRE_MESSAGE(client, client.error().message());
    co_await wait_for(server);
    REQUIRE(*server.shaken);
    const char* sni = ::SSL_get_servername((*server.stream)->asio_stream().native_handle(),
                                           TLSEXT_NAMETYPE_host_name);
    REQUIRE(sni != nullptr);
    CHECK(std::string_view(sni) == "localhost");
  });
}

TEST_CASE("tls_stream rejects a certificate from an untrusted authority with a clear error") {
  test::run([]() -> asio::awaitable<void> {
    one_server server;
    auto client = co_await connect_to(test::pki().other_server_cert, test::pki().other_server_key,
                                      test::client_tls(), {}, server);
    REQUIRE(!client);
    CHECK(client.error() == errc::tls_certificate_untrusted);
    // The server learns it from the client's alert.
    CHECK(server.shaken->error() == errc::tls_handshake_failed);
    CHECK((*server.stream)->failure_detail().find("unknown ca") != std::string::npos);
  });
}

TEST_CASE("tls_stream failure_detail says why verification failed") {
  test::run([]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    auto listener =
        tls_listener::bind(executor, test::any_v4(),
                           tls_context::server({.cert_file = test::pki().other_server_cert,
                                                .key_file = test::pki().other_server_key}));
    coronet::spawn(executor, serve_one(listener, one_server{}), "tls server");
    auto tcp = co_await coronet::tcp_stream::connect(listener.local_endpoint());
    REQUIRE(tcp);
    tls_stream client(std::move(*tcp), test::client_tls());
    CHECK(client.failure_detail().empty());
    auto shaken = co_await client.handshake(5s);
    CHECK(shaken.error() == errc::tls_certificate_untrusted);
    CHECK(client.failure_detail() ==
          "certificate verify failed: unable to get local issuer certificate");
    CHECK(!client.handshake_done());
    // A failed handshake fails every later operation the same way, without a new attempt.
    std::array<char, 16> buffer{};
    auto got = co_await client.recv(asio::buffer(buffer), 1s);
    CHECK(got.error() == errc::tls_certificate_untrusted);
  });
}

TEST_CASE("tls_stream rejects a certificate for another host name or address") {
  test::run([]() -> asio::awaitable<void> {
    one_server by_name;
    auto client = co_await connect_to(test::pki().server_cert, test::pki().server_key,
                                      test::client_tls(), {.server_name = "example.com"}, by_name);
    REQUIRE(!client);
    CHECK(client.error() == errc::tls_host_name_mismatch);

    one_server by_address;
    client = co_await connect_to(test::pki().server_cert, test::pki().server_key,
                                 test::client_tls(), {.server_name = "127.0.0.2"}, by_address);
    REQUIRE(!client);
    CHECK(client.error() == errc::tls_host_name_mismatch);

    // The same certificate with its own name passes: the check is the name, nothing else.
    one_server good;
    client = co_await connect_to(test::pki().server_cert, test::pki().server_key,
                                 test::client_tls(), {.server_name = "localhost"}, good);
    CHECK(client);
  });
}

TEST_CASE("tls_stream rejects an expired certificate") {
  test::run([]() -> asio::awaitable<void> {
    one_server server;
    auto client =
        co_await connect_to(test::pki().expired_server_cert, test::pki().expired_server_key,
                            test::client_tls(), {}, server);
    REQUIRE(!client);
    CHECK(client.error() == errc::tls_certificate_expired);
  });
}

TEST_CASE("tls_stream with verify_peer off accepts any certificate") {
  test::run([]() -> asio::awaitable<void> {
    one_server server;
    // Named: GCC 12 destroys an aggregate temporary with a string in a co_await twice.
    auto trusting = tls_context::client({.verify_peer = false});
    auto client = co_await connect_to(test::pki().other_server_cert, test::pki().other_server_key,
                                      trusting, {.server_name = "example.com"}, server);
    CHECK(client);
  });
}

TEST_CASE("tls_stream: a plain TCP peer on a TLS port gets a clear error on the TLS side") {
  test::run([]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    auto listener = tls_listener::bind(executor, test::any_v4(), test::server_tls());
    one_server server;
    coronet::spawn(executor, serve_one(listener, server), "tls server");
    auto plain = co_await coronet::tcp_stream::connect(listener.local_endpoint());
    REQUIRE(plain);
    REQUIRE(co_await plain->send_all(asio::buffer(std::string_view("GET / HTTP/1.0\r\n\r\n"))));
    co_await wait_for(server);
    CHECK(server.shaken->error() == errc::tls_handshake_failed);
    CHECK(!(*server.stream)->failure_detail().empty());

    // And a TLS client at a plain TCP server: the echo of its ClientHello is no ServerHello.
    auto tcp = coronet::tcp_listener::bind(executor, test::any_v4());
    auto client = std::make_shared<std::optional<coronet::result<tls_stream>>>();
    coronet::spawn(executor, connect_into(tcp.local_endpoint(), client), "tls client");
    auto accepted = co_await tcp.accept();
    REQUIRE(accepted);
    coronet::spawn(executor, test::echo_until_eof(std::move(*accepted)), "plain echo");
    while (!client->has_value()) co_await test::sleep_for(1ms);
    CHECK((*client)->error() == errc::tls_handshake_failed);
  });
}

TEST_CASE("tls_stream reports a close without close_notify apart from a clean end") {
  test::run([]() -> asio::awaitable<void> {
    auto [client, server] = co_await test::tls_pair();
    std::array<char, 64> buffer{};

    // Truncated: the data sent before is delivered, then the missing close_notify shows.
    REQUIRE(co_await server.send_all(asio::buffer(std::string_view("partial"))));
    server.close();
    auto got = co_await client.recv(asio::buffer(buffer), 5s);
    REQUIRE(got);
    CHECK(std::string_view(buffer.data(), got.bytes()) == "partial");
    got = co_await client.recv(asio::buffer(buffer), 5s);
    CHECK(got.error() == errc::tls_truncated);
    CHECK(got.error() != errc::eof);

    // Clean: shutdown() sends close_notify, and the peer reads eof.
    auto [client2, server2] = co_await test::tls_pair();
    REQUIRE(co_await server2.send_all(asio::buffer(std::string_view("whole"))));
    REQUIRE(co_await server2.shutdown(5s));
    server2.close();
    got = co_await client2.recv(asio::buffer(buffer), 5s);
    REQUIRE(got);
    CHECK(std::string_view(buffer.data(), got.bytes()) == "whole");
    got = co_await client2.recv(asio::buffer(buffer), 5s);
    CHECK(got.error() == errc::eof);
  });
}

TEST_CASE("tls_stream shutdown is a half-close: the other direction keeps flowing") {
  test::run([]() -> asio::awaitable<void> {
    auto [client, server] = co_await test::tls_pair();
    REQUIRE(co_await client.send_all(asio::buffer(std::string_view("question"))));
    REQUIRE(co_await client.shutdown(5s));
    REQUIRE(co_await client.shutdown(5s));  // once sent, again is a no-op

    std::array<char, 64> buffer{};
    auto got = co_await server.recv_exact(asio::buffer(buffer.data(), 8), 5s);
    REQUIRE(got);
    got = co_await server.recv(asio::buffer(buffer), 5s);
    CHECK(got.error() == errc::eof);
    // The server answers after the client's close_notify, then ends its side too.
    const auto answer = test::pattern(40'000, 3);
    REQUIRE(co_await server.send_all(asio::buffer(answer)));
    REQUIRE(co_await server.shutdown(5s));

    std::vector<char> back(answer.size());
    got = co_await client.recv_exact(asio::buffer(back), 5s);
    REQUIRE_MESSAGE(got, got.error().message());
    CHECK(back == answer);
    got = co_await client.recv(asio::buffer(buffer), 5s);
    CHECK(got.error() == errc::eof);
  });
}

TEST_CASE(
    "tls_stream timeouts: a recv times out and loses nothing, a silent server fails the "
    "connect") {
  test::run([]() -> asio::awaitable<void> {
    auto [client, server] = co_await test::tls_pair();
    std::array<char, 64> buffer{};
    auto got = co_await client.recv(asio::buffer(buffer), 50ms);
    CHECK(got.error() == std::errc::timed_out);
    client.set_timeout(50ms);
    CHECK(client.get_timeout() == coronet::timeout(50ms));
    got = co_await client.recv(asio::buffer(buffer));
    CHECK(got.error() == std::errc::timed_out);
    REQUIRE(co_await server.send_all(asio::buffer(std::string_view("late"))));
    got = co_await client.recv(asio::buffer(buffer), 5s);
    REQUIRE(got);
    CHECK(std::string_view(buffer.data(), got.bytes()) == "late");

    // A TCP listener that accepts and never answers the ClientHello.
    const auto executor = co_await asio::this_coro::executor;
    auto silent = coronet::tcp_listener::bind(executor, test::any_v4());
    const auto start = std::chrono::steady_clock::now();
    auto connected =
        co_await tls_stream::connect(silent.local_endpoint(), test::client_tls(), {.limit = 200ms});
    CHECK(connected.error() == std::errc::timed_out);
    CHECK(std::chrono::steady_clock::now() - start < 3s);
  });
}

TEST_CASE("tls_stream: a recv cancelled by a parallel group or by close() loses nothing") {
  test::run([]() -> asio::awaitable<void> {
    using namespace asio::experimental::awaitable_operators;
    // Named, not a structured binding: clang 14 cannot capture one in a lambda.
    auto pair = co_await test::tls_pair();
    auto& client = pair.first;
    auto& server = pair.second;
    std::array<char, 64> buffer{};
    // The recv loses the race to a timer: cancelled through its coroutine's slot.
    auto first = co_await (client.recv(asio::buffer(buffer)) || test::sleep_for(50ms));
    CHECK(first.index() == 1);
    REQUIRE(co_await server.send_all(asio::buffer(std::string_view("after"))));
    auto got = co_await client.recv(asio::buffer(buffer), 5s);
    REQUIRE(got);
    CHECK(std::string_view(buffer.data(), got.bytes()) == "after");

    // close() ends a pending recv with operation_canceled.
    const auto executor = co_await asio::this_coro::executor;
    asio::steady_timer later(executor, 50ms);
    later.async_wait([&client](std::error_code) { client.close(); });
    got = co_await client.recv(asio::buffer(buffer), 5s);
    CHECK(got.error() == std::errc::operation_canceled);
    CHECK(!client.is_open());
  });
}

TEST_CASE("tls_stream: a send cut off part-way leaves the stream unable to send") {
  test::run([]() -> asio::awaitable<void> {
    auto [client, server] = co_await test::tls_pair();
    // The server reads nothing, so the socket buffers fill and the send waits, then times out.
    const auto big = test::pattern(32 << 20, 4);
    auto sent = co_await client.send_all(asio::buffer(big), 200ms);
    REQUIRE(sent.error() == std::errc::timed_out);
    CHECK(sent.bytes() < big.size());
    auto again = co_await client.send(asio::buffer(std::string_view("x")));
    CHECK(again.error() == errc::tls_send_interrupted);
    CHECK((co_await client.shutdown()).error() == errc::tls_send_interrupted);
    // Receiving still works.
    REQUIRE(co_await server.send_all(asio::buffer(std::string_view("still"))));
    std::array<char, 16> buffer{};
    auto got = co_await client.recv(asio::buffer(buffer), 5s);
    CHECK(got);
  });
}

TEST_CASE("tls_stream: a reader and a writer that start together share one handshake") {
  test::run([]() -> asio::awaitable<void> {
    using namespace asio::experimental::awaitable_operators;
    const auto executor = co_await asio::this_coro::executor;
    auto listener = tls_listener::bind(executor, test::any_v4(), test::server_tls());
    auto client_ok = std::make_shared<std::optional<bool>>();
    coronet::spawn(executor, greet_back(listener.local_endpoint(), client_ok), "tls client");
    auto accepted = co_await listener.accept();
    REQUIRE(accepted);
    tls_stream server = std::move(*accepted);
    CHECK(!server.handshake_done());
    CHECK(server.protocol().empty());

    // Server: a reader and a writer, both before any handshake.
    std::array<char, 5> heard{};
    auto reader = [&]() -> asio::awaitable<coronet::io_result> {
      co_return co_await server.recv_exact(asio::buffer(heard), 5s);
    };
    auto writer = [&]() -> asio::awaitable<coronet::io_result> {
      co_return co_await server.send_all(asio::buffer(std::string_view("hello")), 5s);
    };
    auto [read, written] = co_await (reader() && writer());
    CHECK(read);
    CHECK(written);
    while (!client_ok->has_value()) co_await test::sleep_for(1ms);
    CHECK(**client_ok);
    CHECK(std::string_view(heard.data(), heard.size()) == "world");
    CHECK(server.handshake_done());
  });
}

TEST_CASE("tls_stream: stream_reader reads lines over TLS unchanged") {
  test::run([]() -> asio::awaitable<void> {
    auto [client, server] = co_await test::tls_pair();
    REQUIRE(co_await client.send_all(asio::buffer(std::string_view("first\r\nsecond\nthird"))));
    REQUIRE(co_await client.shutdown(5s));
    coronet::stream_reader reader(server, {.max_line = 64});
    auto line = co_await reader.read_line(5s);
    REQUIRE(line);
    CHECK(*line == "first");
    line = co_await reader.read_line(5s);
    REQUIRE(line);
    CHECK(*line == "second");
    line = co_await reader.read_line(5s);
    CHECK(line.error() == errc::unexpected_eof);
    CHECK(reader.buffered() == "third");
  });
}

TEST_CASE("tls_stream: a server that requires client certificates refuses a client without") {
  test::run([]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    auto strict = tls_context::server({.cert_file = test::pki().server_cert,
                                       .key_file = test::pki().server_key,
                                       .require_client_certificate = true,
                                       .ca_file = test::pki().ca_cert});
    CHECK(strict.verifies_peer());
    auto listener = tls_listener::bind(executor, test::any_v4(), strict);

    one_server with_cert;
    coronet::spawn(executor, serve_one(listener, with_cert), "tls server");
    auto with_certificate = tls_context::client({.ca_file = test::pki().ca_cert,
                                                 .cert_file = test::pki().client_cert,
                                                 .key_file = test::pki().client_key});
    auto good =
        co_await tls_stream::connect(listener.local_endpoint(), with_certificate, {.limit = 5s});
    REQUIRE_MESSAGE(good, good.error().message());
    co_await wait_for(with_cert);
    CHECK(*with_cert.shaken);

    one_server without;
    coronet::spawn(executor, serve_one(listener, without), "tls server");
    auto bad =
        co_await tls_stream::connect(listener.local_endpoint(), test::client_tls(), {.limit = 5s});
    co_await wait_for(without);
    CHECK(without.shaken->error() == errc::tls_handshake_failed);
    // In TLS 1.3 the client finishes first and hears of the refusal on its first read.
    if (bad) {
      std::array<char, 8> buffer{};
      auto got = co_await bad->recv(asio::buffer(buffer), 5s);
      CHECK(got.error() == errc::tls_protocol_error);
      CHECK(bad->failure_detail().find("certificate required") != std::string::npos);
    }
  });
}

TEST_CASE("tls_stream::connect refuses a server context, and errors of the TCP connect pass") {
  test::run([]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    auto tcp = coronet::tcp_listener::bind(executor, test::any_v4());
    const auto port = tcp.local_endpoint();
    CHECK((co_await tls_stream::connect(port, test::server_tls())).error() ==
          std::errc::invalid_argument);
    tcp.close();
    CHECK((co_await tls_stream::connect(port, test::client_tls())).error() ==
          std::errc::connection_refused);
    CHECK((co_await tls_stream::connect("no-port", test::client_tls())).error() ==
          errc::missing_port);
  });
}

TEST_CASE("tls_stream echo: 20 clients at once each get their own bytes back") {
  test::run(
      []() -> asio::awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        auto listener = tls_listener::bind(executor, test::any_v4(), test::server_tls());
        auto accept_all = [&]() -> asio::awaitable<void> {
          for (int i = 0; i < 20; ++i) {
            auto stream = co_await listener.accept();
            REQUIRE(stream);
            coronet::spawn(executor, tls_echo(std::move(*stream)), "tls echo");
          }
        };
        coronet::spawn(executor, accept_all(), "accept");
        std::size_t good = 0;
        test::wait_group group(executor);
        group.add(20);
        for (unsigned id = 0; id < 20; ++id) {
          coronet::spawn(
              executor,
              [](coronet::endpoint where, unsigned me, std::size_t& count,
                 test::wait_group& done) -> asio::awaitable<void> {
                auto client =
                    co_await tls_stream::connect(where, test::client_tls(), {.limit = 5s});
                const auto payload = test::pattern(3000 + me, me);
                std::vector<char> reply(payload.size());
                if (client && co_await client->send_all(asio::buffer(payload)) &&
                    co_await client->recv_exact(asio::buffer(reply), 5s) && reply == payload) {
                  ++count;
                }
                done.done();
              }(listener.local_endpoint(), id, good, group),
              "client");
        }
        co_await group.wait();
        CHECK(good == 20);
      },
      20s);
}
