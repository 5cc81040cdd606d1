// echo_client: opens many concurrent connections to an echo server, keeps one message in flight
// on each for a while, checks that every reply is exactly that connection's own bytes, and
// prints what happened.
//
// Run:    build/bin/echo_server --tcp 127.0.0.1:7000 &
//         build/bin/echo_client --target 127.0.0.1:7000 --connections 500 --duration 3
// Exit codes: 0 when every connection connected and every reply matched; 1 otherwise;
// 2 for a command-line mistake.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "coronet/coronet.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

struct totals {
  std::uint64_t opened = 0;
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
  std::uint64_t connect_errors = 0;
  std::uint64_t io_errors = 0;
  std::uint64_t mismatches = 0;
  std::set<coronet::endpoint> local_endpoints;
  std::set<int> fds;
};

// Fills `payload` with bytes that name connection `id` and message `sequence`, so that a reply
// carrying another connection's bytes, or a stale message, is caught.
void fill_payload(std::vector<char>& payload, std::uint32_t id, std::uint64_t sequence) {
  for (std::size_t i = 0; i < payload.size(); ++i) {
    payload[i] = static_cast<char>((id * 131U + sequence * 31U + i) & 0xFFU);
  }
}

asio::awaitable<void> run_connection(std::string target, std::uint32_t id, std::size_t size,
                                     clock_type::time_point until, totals& out) {
  auto stream = co_await coronet::tcp_stream::connect(target);
  if (!stream) {
    ++out.connect_errors;
    coronet::log().debug("connection {}: connect failed: {}", id, stream.error().message());
    co_return;
  }
  (void)stream->set_option(coronet::option::no_delay{true});
  // Recorded while every connection is open, so equal values would mean a shared socket.
  ++out.opened;
  out.local_endpoints.insert(stream->local_endpoint());
  out.fds.insert(stream->native_handle());

  std::vector<char> payload(size);
  std::vector<char> reply(size);
  for (std::uint64_t sequence = 0; clock_type::now() < until; ++sequence) {
    fill_payload(payload, id, sequence);
    auto sent = co_await stream->send_all(asio::buffer(payload));
    auto got = sent ? co_await stream->recv_exact(asio::buffer(reply))
                    : coronet::io_result(0, sent.error());
    if (!got) {
      ++out.io_errors;
      coronet::log().warn("connection {}: {}", id, got.error().message());
      co_return;
    }
    if (reply != payload) {
      ++out.mismatches;
      co_return;
    }
    ++out.messages;
    out.bytes += size;
  }
  (void)stream->shutdown(coronet::shutdown_type::send);
  char tail = 0;
  auto end = co_await stream->recv(asio::buffer(&tail, 1));
  if (end.error() != coronet::errc::eof) ++out.io_errors;  // the server must close with FIN
}

}  // namespace

int main(int argc, char** argv) {
  // Thousands of connections need more descriptors than a shell's default of 1024.
  const auto file_limit = coronet::raise_open_file_limit();

  CLI::App app("coronet echo client: many concurrent connections, every reply checked",
               "echo_client");
  std::string target;
  unsigned connections = 100;
  double duration = 3.0;
  std::size_t size = 64;
  app.add_option("--target", target, "server address, HOST:PORT")->required();
  app.add_option("--connections", connections, "concurrent connections")
      ->check(CLI::Range(1U, 15000U));
  app.add_option("--duration", duration, "seconds of traffic")->check(CLI::Range(0.0, 3600.0));
  app.add_option("--size", size, "bytes per message")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 24));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "echo_client: " << e.what() << "\n\n" << app.help();
    return 2;
  }

  if (!file_limit) {
    coronet::log().warn("cannot raise the open file limit: {}", file_limit.error().message());
  } else if (*file_limit < connections + 16) {
    coronet::log().warn("the open file limit ({}) is below --connections {}: expect failures",
                        *file_limit, connections);
  }

  asio::io_context context(1);
  totals out;
  const auto start = clock_type::now();
  const auto until = start + std::chrono::duration_cast<clock_type::duration>(
                                 std::chrono::duration<double>(duration));
  for (std::uint32_t id = 0; id < connections; ++id) {
    coronet::spawn(context.get_executor(), run_connection(target, id, size, until, out),
                   "echo client");
  }
  context.run();
  const std::chrono::duration<double> elapsed = clock_type::now() - start;

  std::printf("connections requested   %u\n", connections);
  std::printf("connections opened      %llu (unique local endpoints %zu, unique fds %zu)\n",
              static_cast<unsigned long long>(out.opened), out.local_endpoints.size(),
              out.fds.size());
  std::printf("messages echoed         %llu (%zu bytes each, %llu bytes)\n",
              static_cast<unsigned long long>(out.messages), size,
              static_cast<unsigned long long>(out.bytes));
  std::printf("throughput              %.0f msg/s over %.2f s\n",
              static_cast<double>(out.messages) / elapsed.count(), elapsed.count());
  std::printf("errors                  connect %llu, io %llu, mismatched replies %llu\n",
              static_cast<unsigned long long>(out.connect_errors),
              static_cast<unsigned long long>(out.io_errors),
              static_cast<unsigned long long>(out.mismatches));
  const bool ok = out.connect_errors == 0 && out.io_errors == 0 && out.mismatches == 0 &&
                  out.opened == connections && out.local_endpoints.size() == connections &&
                  out.fds.size() == connections;
  std::printf("result                  %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
