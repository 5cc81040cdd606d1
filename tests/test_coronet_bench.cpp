// coronet_bench: its latency histogram, and small real runs whose JSON and per-socket proof
// are checked, against the built-in server and against echo_server through --target.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../benchmarks/latency_histogram.hpp"
#include "support/child_process.hpp"
#include "support/run.hpp"
#include "support/tls.hpp"

namespace {

using coronet::test::child_process;
using coronet::test::run_to_exit;
using coronet_bench::latency_histogram;
using json = nlohmann::json;

const std::string bench_path = CORONET_BENCH_PATH;
const std::string echo_server_path = CORONET_ECHO_SERVER_PATH;

struct bench_run {
  std::optional<int> exit_code;
  std::string out;
  std::string err;
  json result;  // null when no JSON was written
};

// Runs coronet_bench with `args` plus --json into a temp dir; a deadline well past the run.
bench_run run_bench(std::vector<std::string> args,
                    std::chrono::seconds deadline = std::chrono::seconds(40)) {
  coronet::test::temp_dir dir;
  const auto path = (dir.path() / "run.json").string();
  args.insert(args.end(), {"--json", path});
  auto outcome = run_to_exit(bench_path, args, deadline);
  bench_run run{outcome.exit_code, outcome.out, outcome.err, nullptr};
  std::ifstream in(path);
  if (in) run.result = json::parse(in, nullptr, false);
  return run;
}

// What every successful run's JSON must say, whatever the protocol and server.
void check_contract(const json& r, const std::string& proto, std::size_t connections,
                    std::size_t size, double duration) {
  REQUIRE(r.is_object());
  CHECK(r.at("proto") == proto);
  CHECK(r.at("mode") == "pingpong");
  CHECK(r.at("connections") == connections);
  CHECK(r.at("size") == size);
  // The window is what was asked, measured on the clock.
  CHECK(r.at("duration_s").get<double>() == doctest::Approx(duration).epsilon(0.05));
  const auto messages = r.at("messages").get<std::uint64_t>();
  CHECK(messages > 0);
  const auto rate = r.at("msgs_per_sec").get<double>();
  CHECK(rate == doctest::Approx(static_cast<double>(messages) / r.at("duration_s").get<double>()));
  CHECK(r.at("bytes_per_sec").get<double>() == doctest::Approx(rate * static_cast<double>(size)));

  const auto& latency = r.at("latency_us");
  for (const char* key : {"p50", "p90", "p99", "p999", "max", "mean"}) {
    CAPTURE(key);
    REQUIRE(latency.at(key).is_number());
    CHECK(latency.at(key).get<double>() > 0);
  }
  CHECK(latency.at("p50").get<double>() <= latency.at("p99").get<double>());
  CHECK(latency.at("p99").get<double>() <= latency.at("p999").get<double>());
  CHECK(latency.at("p999").get<double>() <= latency.at("max").get<double>());
  // In ping-pong a connection completes at most one message per round trip, so the mean
  // latency bounds the rate: connections / mean >= msg/s (within the edges of the window).
  CHECK(static_cast<double>(connections) / (latency.at("mean").get<double>() / 1e6) >= rate * 0.9);

  // One socket per connection: as many distinct local endpoints and descriptors as connections.
  const auto& sockets = r.at("sockets");
  CHECK(sockets.at("opened") == connections);
  CHECK(sockets.at("unique_local_endpoints") == connections);
  CHECK(sockets.at("unique_fds") == connections);
  const auto per_thread = sockets.at("per_thread").get<std::vector<std::size_t>>();
  CHECK(std::accumulate(per_thread.begin(), per_thread.end(), std::size_t{0}) == connections);

  CHECK(r.at("errors") == 0);
  for (const char* key : {"connect", "io", "mismatch", "timeout"}) {
    CAPTURE(key);
    CHECK(r.at("error_detail").at(key) == 0);
  }
  REQUIRE(r.at("client_cpu_s_per_msg").is_number());
  CHECK(r.at("client_cpu_s_per_msg").get<double>() > 0);
  CHECK(r.at("cpu").at("client_user_s").is_number());
  CHECK(r.at("cpu").at("client_sys_s").is_number());
}

void check_server_cpu(const json& r) {
  REQUIRE(r.at("server_cpu_s_per_msg").is_number());
  const double per_message = r.at("server_cpu_s_per_msg").get<double>();
  // An echo costs at least a receive and a send: never zero; and far below a millisecond.
  CHECK(per_message > 0);
  CHECK(per_message < 1e-3);
  const double total =
      r.at("cpu").at("server_user_s").get<double>() + r.at("cpu").at("server_sys_s").get<double>();
  CHECK(total == doctest::Approx(per_message * r.at("messages").get<double>()));
}

std::vector<std::string> pingpong_args(const std::string& proto, std::size_t connections,
                                       const std::string& duration = "2",
                                       const std::string& warmup = "0.2") {
  return {"--proto", proto, "--mode",     "pingpong", "--connections", std::to_string(connections),
          "--size",  "64",  "--duration", duration,   "--warmup",      warmup};
}

}  // namespace

TEST_CASE("latency_histogram is exact below 2048 ns and within 1 us up to 1 ms") {
  for (std::uint64_t v = 0; v < 2048; ++v) {
    CHECK(latency_histogram::bucket_of(v) == v);
    CHECK(latency_histogram::bucket_upper(latency_histogram::bucket_of(v)) == v);
  }
  // Every value lies in its bucket, and the buckets are at most 1 µs wide below 1 ms and at
  // most 0.1% of the value beyond.
  for (std::uint64_t v = 2048; v < (std::uint64_t{1} << 36); v = v * 3 / 2 + 7) {
    CAPTURE(v);
    const auto bucket = latency_histogram::bucket_of(v);
    const auto upper = latency_histogram::bucket_upper(bucket);
    const auto lower = bucket == 0 ? 0 : latency_histogram::bucket_upper(bucket - 1) + 1;
    CHECK(lower <= v);
    CHECK(v <= upper);
    if (v < 1'000'000) CHECK(upper - lower < 1000);
    CHECK(static_cast<double>(upper - lower) <= static_cast<double>(v) * 0.001);
  }
}

TEST_CASE("latency_histogram percentiles merge and max") {
  latency_histogram empty;
  CHECK(empty.count() == 0);
  CHECK(empty.percentile_ns(0.5) == 0);

  // 1..100,000 ns spread over two histograms, merged: the p-th percentile is p * 100,000.
  latency_histogram a, b;
  for (std::uint64_t v = 1; v <= 100'000; ++v) (v % 2 == 0 ? a : b).record(v);
  a.merge(b);
  CHECK(a.count() == 100'000);
  CHECK(a.max_ns() == 100'000);
  CHECK(a.mean_ns() == doctest::Approx(50'000.5));
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    CAPTURE(q);
    const auto p = static_cast<double>(a.percentile_ns(q));
    CHECK(p >= q * 100'000);
    CHECK(p <= q * 100'000 * 1.001);
  }
  CHECK(a.percentile_ns(1.0) == 100'000);

  latency_histogram one;
  one.record(123'456'789);
  CHECK(one.percentile_ns(0.5) == 123'456'789);  // never above the largest sample
  one.record(std::uint64_t{1} << 50);            // beyond the range: clamped, still counted
  CHECK(one.count() == 2);
  CHECK(one.max_ns() == latency_histogram::max_trackable_ns);
}

TEST_CASE("coronet_bench built-in tcp server with 1 connection") {
  auto run = run_bench(pingpong_args("tcp", 1));
  INFO(run.out, run.err);
  CHECK(run.exit_code == 0);
  check_contract(run.result, "tcp", 1, 64, 2.0);
  CHECK(run.result.at("server") == "built-in");
  check_server_cpu(run.result);
  // The table carries the same proof for people.
  CHECK(run.out.find("unique local endpoints 1, unique fds 1") != std::string::npos);
  CHECK(run.out.find("result                  ok") != std::string::npos);
}

TEST_CASE("coronet_bench built-in tcp server with 500 connections on 2 client threads") {
  auto args = pingpong_args("tcp", 500);
  args.insert(args.end(), {"--threads", "2"});
  auto run = run_bench(args);
  INFO(run.out, run.err);
  CHECK(run.exit_code == 0);
  check_contract(run.result, "tcp", 500, 64, 2.0);
  CHECK(run.result.at("threads") == 2);
  CHECK(run.result.at("sockets").at("per_thread") == json::array({250, 250}));
  check_server_cpu(run.result);
}

TEST_CASE("coronet_bench built-in udp server with 1 and 500 sockets") {
  for (const std::size_t sockets : {std::size_t{1}, std::size_t{500}}) {
    CAPTURE(sockets);
    auto run = run_bench(pingpong_args("udp", sockets));
    INFO(run.out, run.err);
    CHECK(run.exit_code == 0);
    check_contract(run.result, "udp", sockets, 64, 2.0);
    CHECK(run.result.at("udp_lost") == 0);
    CHECK(run.result.at("udp_sent").get<std::uint64_t>() >=
          run.result.at("messages").get<std::uint64_t>());
    check_server_cpu(run.result);
  }
}

TEST_CASE("coronet_bench measures echo_server through --target") {
  coronet::test::temp_dir dir;
  const auto socket_path = (dir.path() / "echo.sock").string();
  child_process server(echo_server_path, {"--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--unix",
                                          socket_path, "--threads", "1"});
  const auto tcp = server.read_stdout_line(std::chrono::seconds(5));
  const auto udp = server.read_stdout_line(std::chrono::seconds(5));
  const auto unix_line = server.read_stdout_line(std::chrono::seconds(5));
  REQUIRE(tcp);
  REQUIRE(udp);
  REQUIRE(unix_line);
  const auto pid = std::to_string(server.pid());

  struct target_case {
    std::string proto;
    std::size_t connections;
    std::string target;
  };
  const target_case cases[] = {{"tcp", 1, tcp->substr(std::string("listening tcp ").size())},
                               {"tcp", 500, tcp->substr(std::string("listening tcp ").size())},
                               {"udp", 1, udp->substr(std::string("listening udp ").size())},
                               {"udp", 500, udp->substr(std::string("listening udp ").size())},
                               {"unix", 20, socket_path}};
  for (const auto& c : cases) {
    CAPTURE(c.proto);
    CAPTURE(c.connections);
    auto args = pingpong_args(c.proto, c.connections);
    args.insert(args.end(), {"--target", c.target, "--server-pid", pid});
    auto run = run_bench(args);
    INFO(run.out, run.err);
    CHECK(run.exit_code == 0);
    check_contract(run.result, c.proto, c.connections, 64, 2.0);
    CHECK(run.result.at("server") == "external");
    CHECK(run.result.at("target").get<std::string>().find(
              c.proto == "unix" ? socket_path : c.target) != std::string::npos);
    check_server_cpu(run.result);
  }
  server.send_signal(SIGTERM);
  CHECK(server.wait(std::chrono::seconds(5)) == 0);
}

TEST_CASE("coronet_bench without --server-pid reports the server's CPU as unknown") {
  child_process server(echo_server_path, {"--tcp", "127.0.0.1:0", "--threads", "1"});
  const auto ready = server.read_stdout_line(std::chrono::seconds(5));
  REQUIRE(ready);
  auto args = pingpong_args("tcp", 3, "0.5", "0");
  args.insert(args.end(), {"--target", ready->substr(std::string("listening tcp ").size())});
  auto run = run_bench(args);
  INFO(run.out, run.err);
  CHECK(run.exit_code == 0);
  CHECK(run.result.at("server_cpu_s_per_msg").is_null());
  CHECK(run.result.at("cpu").at("server_user_s").is_null());
  CHECK(run.out.find("server unknown") != std::string::npos);
  server.send_signal(SIGTERM);
  CHECK(server.wait(std::chrono::seconds(5)) == 0);
}

TEST_CASE("coronet_bench idle mode makes one round trip per connection then holds it silent") {
  coronet::test::temp_dir dir;
  const auto socket_path = (dir.path() / "echo.sock").string();
  child_process server(echo_server_path,
                       {"--tcp", "127.0.0.1:0", "--unix", socket_path, "--threads", "1"});
  const auto tcp = server.read_stdout_line(std::chrono::seconds(5));
  REQUIRE(tcp);
  REQUIRE(server.read_stdout_line(std::chrono::seconds(5)));
  const std::string tcp_target = tcp->substr(std::string("listening tcp ").size());
  struct idle_case {
    std::string proto;
    std::string target;
    std::size_t connections;
  };
  // Not a structured binding: clang 14 cannot capture one, and CAPTURE() does.
  for (const auto& c : {idle_case{"tcp", tcp_target, 1000}, idle_case{"unix", socket_path, 50}}) {
    const auto& proto = c.proto;
    const auto& target = c.target;
    const auto connections = c.connections;
    CAPTURE(proto);
    auto run =
        run_bench({"--proto", proto, "--mode", "idle", "--connections", std::to_string(connections),
                   "--size", "100", "--duration", "1", "--warmup", "0.5", "--target", target,
                   "--server-pid", std::to_string(server.pid())});
    INFO(run.out, run.err);
    CHECK(run.exit_code == 0);
    const auto& r = run.result;
    REQUIRE(r.is_object());
    CHECK(r.at("mode") == "idle");
    // Exactly one round trip per connection, each checked, and every connection still open at
    // the end of the window (it then ends with the server's FIN, or it counts as an error).
    CHECK(r.at("messages") == connections);
    CHECK(r.at("errors") == 0);
    CHECK(r.at("sockets").at("unique_fds") == connections);
    CHECK(r.at("latency_us").at("p50").is_number());
    // The server's memory, read before connecting and in the window, and per connection.
    const auto& rss = r.at("server_rss_kib");
    REQUIRE(rss.at("before").is_number());
    REQUIRE(rss.at("window").is_number());
    const auto before = rss.at("before").get<double>();
    const auto window = rss.at("window").get<double>();
    CHECK(before > 0);
    REQUIRE(r.at("server_bytes_per_connection").is_number());
    CHECK(r.at("server_bytes_per_connection").get<double>() ==
          doctest::Approx((window - before) * 1024.0 / static_cast<double>(connections)));
    CHECK(run.out.find("bytes per idle connection") != std::string::npos);
  }
  server.send_signal(SIGTERM);
  CHECK(server.wait(std::chrono::seconds(5)) == 0);
}

TEST_CASE("coronet_bench unix and flood modes echo every byte") {
  for (const std::string proto : {"tcp", "unix"}) {
    CAPTURE(proto);
    auto run = run_bench({"--proto", proto, "--mode", "flood", "--connections", "3", "--size",
                          "65536", "--duration", "1", "--warmup", "0.2"});
    INFO(run.out, run.err);
    CHECK(run.exit_code == 0);
    REQUIRE(run.result.is_object());
    CHECK(run.result.at("mode") == "flood");
    CHECK(run.result.at("messages").get<std::uint64_t>() > 0);
    CHECK(run.result.at("errors") == 0);
    CHECK(run.result.at("sockets").at("unique_local_endpoints") == 3);
    CHECK(run.result.at("latency_us").at("p99").is_number());
  }
  auto udp = run_bench({"--proto", "udp", "--mode", "flood", "--connections", "2", "--size", "1000",
                        "--duration", "1", "--warmup", "0.2"});
  INFO(udp.out, udp.err);
  CHECK(udp.exit_code == 0);
  REQUIRE(udp.result.is_object());
  CHECK(udp.result.at("messages").get<std::uint64_t>() > 0);
  // A flood may overrun a UDP socket: losses are reported, and they are not errors.
  const auto sent = udp.result.at("udp_sent").get<std::uint64_t>();
  CHECK(sent >= udp.result.at("messages").get<std::uint64_t>());
  CHECK(udp.result.at("udp_lost").get<std::uint64_t>() < sent);
}

TEST_CASE("coronet_bench spreads connections over the source addresses asked for") {
  auto args = pingpong_args("tcp", 30, "0.5");
  args.insert(args.end(), {"--sources", "3"});
  auto run = run_bench(args);
  INFO(run.out, run.err);
  CHECK(run.exit_code == 0);
  REQUIRE(run.result.is_object());
  CHECK(run.result.at("sockets").at("source_addresses") == 3);
  CHECK(run.result.at("sockets").at("unique_local_endpoints") == 30);
  CHECK(run.out.find("source addresses 3") != std::string::npos);
}

TEST_CASE("coronet_bench --first-source starts its source addresses there") {
  auto args = pingpong_args("tcp", 20, "0.5");
  args.insert(args.end(), {"--sources", "2", "--first-source", "127.0.0.9"});
  auto run = run_bench(args);
  INFO(run.out, run.err);
  CHECK(run.exit_code == 0);
  REQUIRE(run.result.is_object());
  CHECK(run.result.at("sockets").at("source_addresses") == 2);
  CHECK(run.result.at("sockets").at("first_source") == "127.0.0.9");
  CHECK(run.out.find("source addresses 2 from 127.0.0.9") != std::string::npos);
  // One client of several, with no --sources: its one address is the one given.
  auto alone = pingpong_args("tcp", 5, "0.3");
  alone.insert(alone.end(), {"--first-source", "127.0.0.20"});
  auto one = run_bench(alone);
  INFO(one.out, one.err);
  CHECK(one.exit_code == 0);
  REQUIRE(one.result.is_object());
  CHECK(one.result.at("sockets").at("first_source") == "127.0.0.20");
  CHECK(one.result.at("sockets").at("source_addresses") == 1);

  for (const std::string bad : {"10.0.0.1", "127.0.0", "::1"}) {
    CAPTURE(bad);
    auto r = run_to_exit(bench_path, {"--first-source", bad});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("--first-source") != std::string::npos);
  }
  auto past_end = run_to_exit(
      bench_path, {"--first-source", "127.255.255.250", "--sources", "10", "--duration", "0.2"});
  CHECK(past_end.exit_code == 1);
  CHECK(past_end.err.find("leave 127.0.0.0/8") != std::string::npos);
}

TEST_CASE("coronet_bench rejects bad input with a clear message") {
  // Command-line mistakes: exit 2 with the reason.
  auto bad_proto = run_to_exit(bench_path, {"--proto", "sctp"});
  CHECK(bad_proto.exit_code == 2);
  CHECK(bad_proto.err.find("--proto") != std::string::npos);
  auto big_datagram = run_to_exit(bench_path, {"--proto", "udp", "--size", "70000"});
  CHECK(big_datagram.exit_code == 2);
  CHECK(big_datagram.err.find("more than a UDP datagram holds") != std::string::npos);
  auto zero = run_to_exit(bench_path, {"--connections", "0"});
  CHECK(zero.exit_code == 2);
  auto idle_udp = run_to_exit(bench_path, {"--proto", "udp", "--mode", "idle"});
  CHECK(idle_udp.exit_code == 2);
  CHECK(idle_udp.err.find("--mode idle is for tcp and unix") != std::string::npos);
  auto connect_udp = run_to_exit(bench_path, {"--proto", "udp", "--mode", "connect"});
  CHECK(connect_udp.exit_code == 2);
  CHECK(connect_udp.err.find("--mode connect is for tcp and unix") != std::string::npos);
  auto tls_builtin = run_to_exit(bench_path, {"--tls"});
  CHECK(tls_builtin.exit_code == 2);
  CHECK(tls_builtin.err.find("--tls is for --proto tcp with a --target") != std::string::npos);
  auto ca_alone = run_to_exit(bench_path, {"--tls-ca", "ca.pem", "--target", "127.0.0.1:9"});
  CHECK(ca_alone.exit_code == 2);
  CHECK(ca_alone.err.find("--tls-ca requires --tls") != std::string::npos);

  // Run-time failures: exit 1, a line naming what is wrong, no hang.
  auto garbage = run_to_exit(bench_path, {"--target", "not-an-address"});
  CHECK(garbage.exit_code == 1);
  CHECK(garbage.err.find("invalid --target 'not-an-address'") != std::string::npos);
  auto no_pid = run_to_exit(bench_path, {"--target", "127.0.0.1:9", "--server-pid", "999999999"});
  CHECK(no_pid.exit_code == 1);
  CHECK(no_pid.err.find("no such process") != std::string::npos);
}

TEST_CASE("coronet_bench counts every connection refused and exits 1") {
  // A port nobody listens on: bind one, read its number, close it.
  std::string closed;
  {
    asio::io_context context;
    asio::ip::tcp::acceptor probe(context, {asio::ip::address_v4::loopback(), 0});
    closed = "127.0.0.1:" + std::to_string(probe.local_endpoint().port());
  }
  auto run = run_bench({"--proto", "tcp", "--connections", "5", "--duration", "0.5", "--warmup",
                        "0", "--target", closed});
  INFO(run.out, run.err);
  CHECK(run.exit_code == 1);
  REQUIRE(run.result.is_object());
  CHECK(run.result.at("error_detail").at("connect") == 5);
  CHECK(run.result.at("sockets").at("opened") == 0);
  CHECK(run.result.at("ok") == false);
  CHECK(run.out.find("result                  FAILED") != std::string::npos);

  // UDP: the kernel answers with port unreachable; the socket reports it, the run ends.
  auto udp = run_bench({"--proto", "udp", "--connections", "2", "--duration", "0.5", "--warmup",
                        "0", "--target", closed});
  INFO(udp.out, udp.err);
  CHECK(udp.exit_code == 1);
  REQUIRE(udp.result.is_object());
  CHECK(udp.result.at("errors").get<std::uint64_t>() >= 2);
}

TEST_CASE("coronet_bench counts a UDP reply missing for 1 s as a timeout error") {
  // A UDP socket that takes datagrams and never answers: every message times out after 1 s,
  // is counted, and the next one goes out.
  asio::io_context context;
  asio::ip::udp::socket silent(context, {asio::ip::address_v4::loopback(), 0});
  const auto target = "127.0.0.1:" + std::to_string(silent.local_endpoint().port());
  auto run = run_bench({"--proto", "udp", "--connections", "2", "--duration", "2.5", "--warmup",
                        "0", "--target", target});
  INFO(run.out, run.err);
  CHECK(run.exit_code == 1);
  REQUIRE(run.result.is_object());
  CHECK(run.result.at("messages") == 0);
  // Each socket sends at t = 0, 1 and 2 s, and every one of those times out.
  CHECK(run.result.at("error_detail").at("timeout").get<std::uint64_t>() >= 4);
  CHECK(run.result.at("error_detail").at("io") == 0);
  CHECK(run.result.at("udp_sent").get<std::uint64_t>() >= 4);
  CHECK(run.result.at("latency_us").at("p50").is_null());
}

TEST_CASE("coronet_bench connect mode: a message is a whole connection, each one its own socket") {
  auto args = pingpong_args("tcp", 4, "1", "0.2");
  args[3] = "connect";
  auto run = run_bench(args);
  INFO(run.out, run.err);
  CHECK(run.exit_code == 0);
  REQUIRE(run.result.is_object());
  CHECK(run.result.at("mode") == "connect");
  CHECK(run.result.at("messages").get<std::uint64_t>() > 4);
  CHECK(run.result.at("errors") == 0);
  CHECK(run.result.at("sockets").at("unique_local_endpoints") == 4);
}

TEST_CASE("coronet_bench --tls measures echo_server --tls: ping-pong and handshakes") {
  const auto& pki = coronet::test::pki();
  child_process server(echo_server_path, {"--tls", "127.0.0.1:0", "--cert", pki.server_cert,
                                          "--key", pki.server_key, "--threads", "1"});
  const auto ready = server.read_stdout_line(std::chrono::seconds(5));
  REQUIRE(ready);
  const auto target = ready->substr(std::string("listening tls ").size());
  const auto pid = std::to_string(server.pid());

  auto args = pingpong_args("tcp", 20);
  args.insert(args.end(),
              {"--tls", "--tls-ca", pki.ca_cert, "--target", target, "--server-pid", pid});
  auto run = run_bench(args);
  INFO(run.out, run.err);
  CHECK(run.exit_code == 0);
  check_contract(run.result, "tcp", 20, 64, 2.0);
  CHECK(run.result.at("tls") == true);
  check_server_cpu(run.result);

  auto connects = pingpong_args("tcp", 4, "1", "0.2");
  connects[3] = "connect";
  connects.insert(connects.end(), {"--tls", "--tls-ca", pki.ca_cert, "--target", target});
  run = run_bench(connects);
  INFO(run.out, run.err);
  CHECK(run.exit_code == 0);
  CHECK(run.result.at("mode") == "connect");
  CHECK(run.result.at("messages").get<std::uint64_t>() > 4);
  CHECK(run.result.at("errors") == 0);

  // A CA that did not sign the server's certificate: every connect fails, and the run says so.
  auto wary = pingpong_args("tcp", 3, "0.5", "0");
  wary.insert(wary.end(), {"--tls", "--tls-ca", pki.other_ca_cert, "--target", target});
  run = run_bench(wary);
  CHECK(run.exit_code == 1);
  CHECK(run.result.at("error_detail").at("connect") == 3);
  CHECK_MESSAGE(run.err.find("unable to get local issuer certificate") != std::string::npos,
                run.err);

  server.send_signal(SIGTERM);
  CHECK(server.wait(std::chrono::seconds(5)) == 0);
}
