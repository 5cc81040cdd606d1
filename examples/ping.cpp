// ping: sends ICMP echo requests to a host and prints each reply, like the classic tool.
//
// Run:    build/bin/ping -c 3 127.0.0.1        (raw socket: root or CAP_NET_RAW)
//         build/bin/ping --mode datagram ::1   (unprivileged ping socket: your group must be
//                                               in net.ipv4.ping_group_range)
// Stop:   after -c COUNT requests, or Ctrl-C / SIGTERM; either way it prints the statistics.
//
// One request is out at a time: the next leaves once the previous got its reply or timed out
// (-W), and no sooner than -i after it.
//
// Exit codes: 0 when every request got its reply; 1 when some or all were lost; 2 for a
// command-line mistake (usage on stderr), a host that does not resolve or no permission to open
// an ICMP socket (one `ping: ...` line on stderr).

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <exception>
#include <iomanip>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <asio/co_spawn.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "coronet/coronet.hpp"

namespace {

using namespace asio::experimental::awaitable_operators;
using clock_type = std::chrono::steady_clock;
using reply_result = coronet::result<coronet::icmp_socket::echo_reply>;

struct options {
  std::optional<unsigned> count;  // nullopt: until a signal
  clock_type::duration interval{std::chrono::seconds(1)};
  clock_type::duration timeout{std::chrono::seconds(1)};
  std::size_t payload_size = 56;
  std::optional<coronet::ip_family> family;  // nullopt: the resolver's first address
  coronet::icmp_mode mode = coronet::icmp_mode::automatic;
  std::string host;
};

struct statistics {
  unsigned transmitted = 0;
  std::vector<double> rtt_ms;  // one per reply
};

// `||` needs results it can default-construct, which result<> is not.
asio::awaitable<std::optional<reply_result>> next_reply(coronet::icmp_socket& socket,
                                                        asio::mutable_buffer payload) {
  co_return co_await socket.recv_echo(payload);
}

// Waits for the reply to request `sequence` until `sent_at + timeout`, and prints it.
asio::awaitable<void> await_reply(coronet::icmp_socket& socket, unsigned sequence,
                                  clock_type::time_point sent_at, const options& opt,
                                  statistics& stats) {
  std::vector<char> payload(opt.payload_size);
  asio::steady_timer deadline(co_await asio::this_coro::executor, sent_at + opt.timeout);
  for (;;) {
    auto got = co_await (next_reply(socket, asio::buffer(payload)) ||
                         deadline.async_wait(asio::use_awaitable));
    if (got.index() == 1) {
      std::cout << "Request timeout for icmp_seq " << sequence << std::endl;
      co_return;
    }
    const auto& reply = *std::get<0>(got);
    if (!reply) {
      std::cerr << "ping: receive: " << reply.error().message() << std::endl;
      co_return;
    }
    // A late reply to an earlier request was already counted as lost.
    if (reply->sequence != static_cast<std::uint16_t>(sequence)) continue;
    const std::chrono::duration<double, std::milli> rtt = clock_type::now() - sent_at;
    stats.rtt_ms.push_back(rtt.count());
    std::cout << reply->payload_size + 8 << " bytes from " << reply->from.address().to_string()
              << ": icmp_seq=" << sequence << " time=" << std::fixed << std::setprecision(3)
              << rtt.count() << " ms" << std::endl;
    co_return;
  }
}

asio::awaitable<void> ping_loop(coronet::icmp_socket& socket, const coronet::endpoint& target,
                                const options& opt, statistics& stats) {
  std::vector<char> payload(opt.payload_size);
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i & 0xFFU);
  asio::steady_timer pause(co_await asio::this_coro::executor);
  for (unsigned sequence = 1; !opt.count || sequence <= *opt.count; ++sequence) {
    const auto sent_at = clock_type::now();
    auto sent = co_await socket.send_echo(target, static_cast<std::uint16_t>(sequence),
                                          asio::buffer(payload));
    ++stats.transmitted;
    if (sent) {
      co_await await_reply(socket, sequence, sent_at, opt, stats);
    } else {
      std::cerr << "ping: send: " << sent.error().message() << std::endl;
    }
    if (opt.count && sequence == *opt.count) break;
    pause.expires_at(sent_at + opt.interval);
    co_await pause.async_wait(asio::use_awaitable);
  }
}

void print_statistics(const options& opt, const statistics& stats, clock_type::duration elapsed) {
  const auto received = stats.rtt_ms.size();
  const double loss =
      stats.transmitted == 0
          ? 0.0
          : 100.0 * static_cast<double>(stats.transmitted - received) / stats.transmitted;
  std::cout << std::defaultfloat << "\n--- " << opt.host << " ping statistics ---\n"
            << stats.transmitted << " packets transmitted, " << received << " received, " << loss
            << "% packet loss, time "
            << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << "ms\n";
  if (received == 0) return;
  double sum = 0;
  double sum_of_squares = 0;
  for (const double rtt : stats.rtt_ms) {
    sum += rtt;
    sum_of_squares += rtt * rtt;
  }
  const double avg = sum / static_cast<double>(received);
  const double mdev =
      std::sqrt(std::max(0.0, sum_of_squares / static_cast<double>(received) - avg * avg));
  const auto [min, max] = std::minmax_element(stats.rtt_ms.begin(), stats.rtt_ms.end());
  std::cout << std::fixed << std::setprecision(3) << "rtt min/avg/max/mdev = " << *min << '/' << avg
            << '/' << *max << '/' << mdev << " ms\n";
}

int fail(const std::string& reason) {
  std::cerr << "ping: " << reason << std::endl;
  return 2;
}

// resolve() wants `HOST:PORT`, an IPv6 address bracketed.
asio::awaitable<coronet::result<std::vector<coronet::endpoint>>> resolve_host(
    const std::string& host) {
  const bool bare_v6 = host.find(':') != std::string::npos && host.front() != '[';
  // Named, not built inside the co_await: GCC 12 destroys such temporaries twice.
  std::string host_port = bare_v6 ? "[" + host + "]:0" : host + ":0";
  co_return co_await coronet::resolve(std::move(host_port));
}

asio::awaitable<int> ping(const options& opt) {
  const auto executor = co_await asio::this_coro::executor;
  auto addresses = co_await resolve_host(opt.host);
  if (!addresses) co_return fail(opt.host + ": " + addresses.error().message());
  const auto target =
      std::find_if(addresses->begin(), addresses->end(), [&](const coronet::endpoint& e) {
        return !opt.family || (*opt.family == coronet::ip_family::v6) == e.is_v6();
      });
  if (target == addresses->end()) {
    co_return fail(opt.host + ": no " + (opt.family == coronet::ip_family::v6 ? "IPv6" : "IPv4") +
                   " address");
  }
  const auto family = target->is_v6() ? coronet::ip_family::v6 : coronet::ip_family::v4;
  auto socket = coronet::icmp_socket::open(executor, family, opt.mode);
  if (!socket) co_return fail("cannot open an ICMP socket: " + socket.error().message());

  const std::size_t headers = (family == coronet::ip_family::v6 ? 40 : 20) + 8;
  std::cout << "PING " << opt.host << " (" << target->address().to_string() << ") "
            << opt.payload_size << '(' << opt.payload_size + headers << ") bytes of data, "
            << (socket->mode() == coronet::icmp_mode::raw ? "raw" : "datagram") << " ICMP socket."
            << std::endl;

  statistics stats;
  const auto start = clock_type::now();
  asio::signal_set signals(executor, SIGINT, SIGTERM);
  co_await (ping_loop(*socket, *target, opt, stats) || signals.async_wait(asio::use_awaitable));
  print_statistics(opt, stats, clock_type::now() - start);
  const bool all_replied = stats.transmitted > 0 && stats.rtt_ms.size() == stats.transmitted;
  co_return all_replied ? 0 : 1;
}

clock_type::duration seconds(double value) {
  return std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(value));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("coronet ping: sends ICMP echo requests and reports the replies", "ping");
  unsigned count = 0;
  double interval = 1.0;
  double timeout = 1.0;
  std::string mode = "automatic";
  options opt;
  auto* count_option =
      app.add_option("-c", count, "stop after COUNT requests (default: until Ctrl-C)")
          ->type_name("COUNT")
          ->check(CLI::Range(1U, std::numeric_limits<unsigned>::max()));
  app.add_option("-i", interval, "seconds between requests")
      ->type_name("INTERVAL_SECS")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("-s", opt.payload_size, "payload bytes per request")
      ->type_name("PAYLOAD_BYTES")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{0}, std::size_t{65507}));
  app.add_option("-W", timeout, "seconds to wait for each reply")
      ->type_name("TIMEOUT_SECS")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 3600.0));
  bool only_v4 = false;
  bool only_v6 = false;
  auto* v4_flag = app.add_flag("-4", only_v4, "IPv4 only");
  app.add_flag("-6", only_v6, "IPv6 only")->excludes(v4_flag);
  app.add_option("--mode", mode, "automatic (raw, else datagram), raw or datagram")
      ->capture_default_str()
      ->check(CLI::IsMember({"automatic", "raw", "datagram"}));
  app.add_option("HOST", opt.host, "host name or address")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "ping: " << e.what() << "\n\n" << app.help();
    return 2;
  }
  if (count_option->count() > 0) opt.count = count;
  opt.interval = seconds(interval);
  opt.timeout = seconds(timeout);
  if (only_v4) opt.family = coronet::ip_family::v4;
  if (only_v6) opt.family = coronet::ip_family::v6;
  if (mode == "raw") opt.mode = coronet::icmp_mode::raw;
  if (mode == "datagram") opt.mode = coronet::icmp_mode::datagram;

  asio::io_context context(1);
  int exit_code = 2;
  asio::co_spawn(context, ping(opt), [&](const std::exception_ptr& error, int code) {
    exit_code = code;
    if (!error) return;
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      exit_code = fail(e.what());
    }
  });
  context.run();
  return exit_code;
}
