#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/log_capture.hpp"
#include "support/run.hpp"

using namespace std::chrono_literals;
using coronet::tcp_server;
using coronet::tcp_stream;
namespace test = coronet::test;

namespace {

// What the handlers saw: for each peer port, the runtime thread its handler ran on.
struct probe {
  explicit probe(coronet::runtime& r) : threads(r) {}
  coronet::runtime& threads;
  std::mutex mutex;
  std::map<std::uint16_t, std::size_t> thread_of_peer;
};

asio::awaitable<void> echo_noting_thread(std::shared_ptr<probe> seen, tcp_stream stream) {
  {
    std::lock_guard lock(seen->mutex);
    seen->thread_of_peer[stream.remote_endpoint().port()] = test::thread_index(seen->threads);
  }
  co_await test::echo_until_eof(std::move(stream));
}

tcp_server::handler_type noting_echo(const std::shared_ptr<probe>& seen) {
  return [seen](tcp_stream stream) { return echo_noting_thread(seen, std::move(stream)); };
}

// Connects `count` clients and has each one's "ping" echoed back.
asio::awaitable<std::vector<tcp_stream>> ping_clients(const coronet::endpoint& server,
                                                      std::size_t count) {
  std::vector<tcp_stream> clients;
  for (std::size_t i = 0; i < count; ++i) {
    auto client = co_await tcp_stream::connect(server);
    REQUIRE(client);
    clients.push_back(std::move(*client));
  }
  for (auto& client : clients) {
    REQUIRE(co_await client.send_all(asio::buffer("ping", 4)));
    std::array<char, 4> reply{};
    auto got = co_await client.recv_exact(asio::buffer(reply));
    REQUIRE_MESSAGE(got, got.error().message());
    CHECK(std::string(reply.data(), 4) == "ping");
  }
  co_return clients;
}

// Polls until `server` has `count` open connections (a close takes a moment to reach it).
asio::awaitable<void> wait_for_count(const tcp_server& server, std::size_t count) {
  while (server.connection_count() != count) co_await test::sleep_for(5ms);
}

// What connections() says must match what the handlers saw and what the clients hold.
void check_records(const std::vector<coronet::connection_info>& records,
                   const std::vector<tcp_stream>& clients, probe& seen) {
  REQUIRE(records.size() == clients.size());
  std::set<int> fds;
  std::set<std::uint16_t> client_ports;
  for (const auto& client : clients) client_ports.insert(client.local_endpoint().port());
  std::lock_guard lock(seen.mutex);
  for (const auto& record : records) {
    fds.insert(record.fd);
    CHECK(record.fd >= 0);
    CHECK(client_ports.count(record.peer.port()) == 1);
    CHECK(seen.thread_of_peer.at(record.peer.port()) == record.thread);
    CHECK(record.bytes_received == 4);
    CHECK(record.bytes_sent == 4);
    CHECK(record.started.time_since_epoch().count() > 0);
  }
  CHECK(fds.size() == records.size());  // every connection its own socket
}

}  // namespace

TEST_CASE("tcp_server: round_robin hands connections to every thread in turn") {
  coronet::runtime threads(4);
  auto seen = std::make_shared<probe>(threads);
  auto server = tcp_server::bind(threads, test::any_v4(), noting_echo(seen));
  test::running run(threads);
  test::run([&]() -> asio::awaitable<void> {
    auto clients = co_await ping_clients(server.local_endpoint(), 8);
    const auto records = server.connections();
    check_records(records, clients, *seen);
    std::map<std::size_t, int> per_thread;
    for (const auto& record : records) ++per_thread[record.thread];
    CHECK(per_thread == std::map<std::size_t, int>{{0, 2}, {1, 2}, {2, 2}, {3, 2}});

    clients.clear();
    co_await wait_for_count(server, 0);
    const auto totals = server.stats();
    CHECK(totals.accepted == 8);
    CHECK(totals.open == 0);
    CHECK(totals.bytes_received == 32);
    CHECK(totals.bytes_sent == 32);
    CHECK(co_await server.stop(1s) == 0);
  });
}

TEST_CASE("tcp_server: reuse_port gives every thread a listener of its own") {
  coronet::runtime threads(4);
  auto seen = std::make_shared<probe>(threads);
  auto server = tcp_server::bind(threads, test::any_v4(), noting_echo(seen),
                                 {.placement = coronet::placement::reuse_port});
  test::running run(threads);
  test::run([&]() -> asio::awaitable<void> {
    // The kernel spreads by a hash of the addresses: with 64 connections the chance that a
    // thread gets none is about 4 * (3/4)^64, 1e-7.
    auto clients = co_await ping_clients(server.local_endpoint(), 64);
    const auto records = server.connections();
    check_records(records, clients, *seen);
    std::set<std::size_t> used;
    for (const auto& record : records) used.insert(record.thread);
    CHECK(used == std::set<std::size_t>{0, 1, 2, 3});
    clients.clear();  // each session ends on its own at eof: nothing left to cut off
    CHECK(co_await server.stop(5s) == 0);
  });
}
