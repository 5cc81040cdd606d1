#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "support/child_process.hpp"
#include "support/tls.hpp"

using namespace std::chrono_literals;
using coronet::errc;
using coronet::tls_server;
using coronet::tls_stream;
namespace test = coronet::test;

namespace {

// Echoes until the peer's close_notify, answers with its own; records how the handshake went.
struct handshake_log {
  std::mutex mutex;
  std::vector<std::error_code> failures;
};

asio::awaitable<void> echo_session(std::shared_ptr<handshake_log> log, tls_stream stream) {
  if (auto shaken = co_await stream.handshake(5s); !shaken) {
    std::lock_guard lock(log->mutex);
    log->failures.push_back(shaken.error());
    co_return;
  }
  std::array<char, 4096> buffer;
  for (;;) {
    auto got = co_await stream.recv(asio::buffer(buffer));
    if (!got) break;
    if (!co_await stream.send_all(asio::buffer(buffer.data(), got.bytes()))) co_return;
  }
  (void)co_await stream.shutdown(2s);
}

tls_server::handler_type echo_handler(const std::shared_ptr<handshake_log>& log) {
  return [log](tls_stream stream) { return echo_session(log, std::move(stream)); };
}

// One TLS round trip of `text`, then a clean end; true when the echo came back whole.
asio::awaitable<bool> round_trip(coronet::endpoint where, std::string text) {
  auto client = co_await tls_stream::connect(where, test::client_tls(), {.limit = 5s});
  if (!client) co_return false;
  std::string back(text.size(), '\0');
  const bool echoed = co_await client->send_all(asio::buffer(text)) &&
                      co_await client->recv_exact(asio::buffer(back), 5s) && back == text;
  co_return echoed&& co_await client->shutdown(5s);
}

// The port in openssl s_server's "ACCEPT 127.0.0.1:PORT" line.
std::uint16_t accept_port(test::child_process& server) {
  for (int i = 0; i < 5; ++i) {
    auto line = server.read_stdout_line(5s);
    REQUIRE_MESSAGE(line.has_value(), "openssl s_server printed no ACCEPT line");
    if (line->rfind("ACCEPT ", 0) == 0) {
      return static_cast<std::uint16_t>(std::stoi(line->substr(line->rfind(':') + 1)));
    }
  }
  FAIL("openssl s_server printed no ACCEPT line");
  return 0;
}

}  // namespace

TEST_CASE("tls_server: connections on every thread, listed and counted as on TCP") {
  coronet::runtime threads(2);
  auto log = std::make_shared<handshake_log>();
  auto server = tls_server::bind(threads, test::any_v4(), test::server_tls(), echo_handler(log));
  test::running run(threads);
  test::run(
      [&]() -> asio::awaitable<void> {
        std::vector<tls_stream> clients;
        for (int i = 0; i < 6; ++i) {
          auto client = co_await tls_stream::connect(server.local_endpoint(), test::client_tls(),
                                                     {.limit = 5s});
          REQUIRE_MESSAGE(client, client.error().message());
          REQUIRE(co_await client->send_all(asio::buffer(std::string_view("ping"))));
          std::array<char, 4> reply{};
          REQUIRE(co_await client->recv_exact(asio::buffer(reply), 5s));
          clients.push_back(std::move(*client));
        }
        auto records = server.connections();
        while (!std::all_of(records.begin(), records.end(),
                            [](const auto& r) { return r.bytes_sent == 4; })) {
          co_await test::sleep_for(2ms);
          records = server.connections();
        }
        REQUIRE(records.size() == 6);
        std::map<std::size_t, int> per_thread;
        for (const auto& record : records) {
          ++per_thread[record.thread];
          CHECK(record.bytes_received == 4);  // decrypted bytes
          const auto owner = std::find_if(clients.begin(), clients.end(), [&](const auto& c) {
            return c.local_endpoint() == record.peer;
          });
          REQUIRE(owner != clients.end());
          CHECK(record.local == owner->remote_endpoint());
        }
        CHECK(per_thread == std::map<std::size_t, int>{{0, 3}, {1, 3}});
        for (auto& client : clients) REQUIRE(co_await client.shutdown(5s));
        clients.clear();
        while (server.connection_count() != 0) co_await test::sleep_for(5ms);
        CHECK(server.stats().bytes_sent == 24);
        CHECK(co_await server.stop(1s) == 0);
      },
      20s);
  CHECK(log->failures.empty());
}

TEST_CASE("tls_server: plain TCP clients and silent clients do not stop it serving") {
  coronet::runtime threads(1);
  auto log = std::make_shared<handshake_log>();
  auto server = tls_server::bind(threads, test::any_v4(), test::server_tls(), echo_handler(log),
                                 {.max_connections = 4});
  test::running run(threads);
  test::run(
      [&]() -> asio::awaitable<void> {
        // One client that never speaks: its handshake waits in its own coroutine.
        auto silent = co_await coronet::tcp_stream::connect(server.local_endpoint());
        REQUIRE(silent);
        // One that speaks plain text to the TLS port.
        auto plain = co_await coronet::tcp_stream::connect(server.local_endpoint());
        REQUIRE(plain);
        REQUIRE(co_await plain->send_all(asio::buffer(std::string_view("hello\n"))));
        // The server gives up on it: an alert record, then the close.
        std::array<char, 64> buffer{};
        coronet::io_result answer(0);
        do {
          answer = co_await plain->recv(asio::buffer(buffer), 5s);
        } while (answer);
        CHECK(answer.error() != std::errc::timed_out);
        // TLS clients are served meanwhile, one after another past max_connections' worth.
        for (int i = 0; i < 6; ++i) {
          const std::string text = "client " + std::to_string(i);
          CHECK(co_await round_trip(server.local_endpoint(), text));
        }
        CHECK(co_await server.stop(200ms) == 1);  // the silent one
      },
      20s);
  std::lock_guard lock(log->mutex);
  REQUIRE(log->failures.size() == 2);
  CHECK(log->failures[0] == errc::tls_handshake_failed);
  CHECK(log->failures[1] == std::errc::operation_canceled);
}

TEST_CASE("tls interop: openssl s_client talks to a tls_server") {
  coronet::runtime threads(1);
  auto log = std::make_shared<handshake_log>();
  auto server = tls_server::bind(threads, test::any_v4(), test::server_tls(), echo_handler(log));
  test::running run(threads);
  test::child_process client(
      test::openssl_program(),
      {"s_client", "-connect", "127.0.0.1:" + std::to_string(server.local_endpoint().port()),
       "-CAfile", test::pki().ca_cert, "-verify_return_error", "-verify_hostname", "localhost",
       "-quiet", "-no_ign_eof"},
      test::stdin_source::pipe());
  REQUIRE(client.write_stdin("hello from s_client\n"));
  const auto line = client.read_stdout_line(10s);
  REQUIRE(line.has_value());
  CHECK(*line == "hello from s_client");
  client.close_stdin();  // s_client then sends close_notify; the echo answers with its own
  CHECK(client.wait(10s) == 0);
  CHECK(log->failures.empty());
}

TEST_CASE("tls interop: tls_stream talks to openssl s_server, and checks its certificate") {
  test::child_process server(
      test::openssl_program(),
      {"s_server", "-accept", "127.0.0.1:0", "-cert", test::pki().server_cert, "-key",
       test::pki().server_key, "-rev", "-naccept", "2"});
  const auto port = accept_port(server);
  const coronet::endpoint where(asio::ip::address_v4::loopback(), port);
  test::run(
      [&]() -> asio::awaitable<void> {
        auto client = co_await tls_stream::connect(where, test::client_tls(), {.limit = 5s});
        REQUIRE_MESSAGE(client, client.error().message());
        // -rev answers each line reversed.
        REQUIRE(co_await client->send_all(asio::buffer(std::string_view("coronet\n"))));
        coronet::stream_reader reader(*client);
        std::string line;
        for (int i = 0; i < 10 && line != "tenoroc"; ++i) {
          auto got = co_await reader.read_line(5s);
          REQUIRE_MESSAGE(got, got.error().message());
          line = std::string(*got);
        }
        CHECK(line == "tenoroc");
        CHECK(co_await client->shutdown(5s));

        // The same server, through a client that trusts only another authority.
        auto other_ca = coronet::tls_context::client({.ca_file = test::pki().other_ca_cert});
        auto wary = co_await tls_stream::connect(where, other_ca, {.limit = 5s});
        CHECK(wary.error() == errc::tls_certificate_untrusted);
      },
      20s);
}
