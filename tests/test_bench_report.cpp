// bench_report driven as a child process over runs each test writes itself (JSON objects as
// coronet_bench --json writes them): medians, ratios to epoll, nulls, errors, the README section
// between its markers, the charts, and bad input. Nothing here depends on timing.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "support/child_process.hpp"
#include "support/run.hpp"

using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace test = coronet::test;
using json = nlohmann::json;

namespace {

const std::string bench_report = CORONET_BENCH_REPORT_PATH;
constexpr auto report_limit = 30s;  // gnuplot included; each run is far shorter

// What a test varies in one run; everything else is filled in as coronet_bench writes it.
struct fixture_run {
  std::string proto = "tcp";
  std::string mode = "pingpong";
  std::uint64_t size = 64;
  std::uint64_t connections = 100;
  std::optional<double> msgs_per_sec = 100000.0;
  std::optional<double> p50_us = 500.0;
  std::optional<double> p99_us = 900.0;
  std::optional<double> server_cpu_s_per_msg = 5e-6;
  std::optional<double> client_cpu_s_per_msg = 6e-6;
  std::uint64_t errors = 0;
};

json or_null(std::optional<double> value) { return value ? json(*value) : json(nullptr); }

// A whole coronet_bench --json object, per the contract.
json contract_object(const fixture_run& r) {
  const double rate = r.msgs_per_sec.value_or(0.0);
  return {
      {"proto", r.proto},
      {"mode", r.mode},
      {"connections", r.connections},
      {"size", r.size},
      {"threads", 1},
      {"target", "127.0.0.1:40000"},
      {"server", "external"},
      {"warmup_s", 1.0},
      {"duration_s", 5.0},
      {"messages", static_cast<std::uint64_t>(rate * 5)},
      {"msgs_per_sec", or_null(r.msgs_per_sec)},
      {"bytes_per_sec", rate * static_cast<double>(r.size)},
      {"latency_us",
       {{"p50", or_null(r.p50_us)},
        {"p90", or_null(r.p50_us)},
        {"p99", or_null(r.p99_us)},
        {"p999", or_null(r.p99_us)},
        {"max", or_null(r.p99_us)},
        {"mean", or_null(r.p50_us)}}},
      {"sockets",
       {{"opened", r.connections},
        {"unique_local_endpoints", r.connections},
        {"unique_fds", r.connections},
        {"source_addresses", 1},
        {"per_thread", {r.connections}}}},
      {"errors", r.errors},
      {"error_detail", {{"connect", 0}, {"io", r.errors}, {"mismatch", 0}, {"timeout", 0}}},
      {"cpu",
       {{"client_user_s", 1.0},
        {"client_sys_s", 2.0},
        {"server_user_s", 0.5},
        {"server_sys_s", 2.5}}},
      {"client_cpu_s_per_msg", or_null(r.client_cpu_s_per_msg)},
      {"server_cpu_s_per_msg", or_null(r.server_cpu_s_per_msg)},
  };
}

void write_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  REQUIRE(out);
  out << text;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in, path.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A temp directory holding RUNS_DIR (runs/<server>/*.json) and whatever the report writes.
class workspace {
 public:
  fs::path runs() const { return dir_.path() / "runs"; }
  fs::path file(const std::string& name) const { return dir_.path() / name; }

  // Writes one run of `server` as runs/<server>/<cell>-run<k>.json; returns its path.
  fs::path add(const std::string& server, const fixture_run& r) {
    const int k = ++runs_of_[server];
    const fs::path path = runs() / server /
                          (r.proto + "-" + r.mode + "-" + std::to_string(r.size) + "-" +
                           std::to_string(r.connections) + "-run" + std::to_string(k) + ".json");
    write_file(path, contract_object(r).dump(2));
    return path;
  }

  // Runs bench_report on runs/ with `args` after it.
  test::run_outcome report(std::vector<std::string> args = {}) const {
    args.insert(args.begin(), runs().string());
    return test::run_to_exit(bench_report, args, report_limit);
  }

  // The --out-json summary of the runs written so far.
  json summary(std::vector<std::string> args = {}) const {
    const fs::path out = file("summary.json");
    args.insert(args.end(), {"--out-json", out.string()});
    const auto r = report(args);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    return json::parse(read_file(out));
  }

 private:
  test::temp_dir dir_;
  std::map<std::string, int> runs_of_;
};

// The servers object of the cell (proto, mode, size, connections) in a summary.
json servers_of(const json& summary, const std::string& proto, const std::string& mode,
                std::uint64_t size, std::uint64_t connections) {
  for (const auto& cell : summary.at("cells")) {
    if (cell.at("proto") == proto && cell.at("mode") == mode && cell.at("size") == size &&
        cell.at("connections") == connections)
      return cell.at("servers");
  }
  FAIL("no cell " << proto << " " << mode << " " << size << " " << connections);
  return {};
}

fixture_run with_rate(double rate) {
  fixture_run r;
  r.msgs_per_sec = rate;
  return r;
}

// bench_report's one line on stderr for bad input, checked to name what it must name.
void check_one_error_line(const test::run_outcome& r, const std::vector<std::string>& parts) {
  CHECK(r.exit_code == 1);
  const auto lines = test::lines_of(r.err);
  REQUIRE_MESSAGE(lines.size() == 1, r.err);
  CHECK(lines[0].rfind("bench_report: ", 0) == 0);
  for (const auto& part : parts) CHECK_MESSAGE(lines[0].find(part) != std::string::npos, lines[0]);
}

const std::string readme_before = "# Benchmarks\n\nIntro stays.\n\n<!-- bench-matrix:begin -->\n";
const std::string readme_after = "<!-- bench-matrix:end -->\n\n## Older tables\n\n| a | b |\n";

bool gnuplot_installed() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (!dir.empty() && ::access((fs::path(dir) / "gnuplot").c_str(), X_OK) == 0) return true;
  }
  return false;
}

void check_png(const fs::path& path) {
  REQUIRE_MESSAGE(fs::exists(path), path.string());
  const std::string bytes = read_file(path);
  CHECK(bytes.size() > 1000);
  CHECK(bytes.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
}

}  // namespace

TEST_CASE("bench_report: the median of an odd number of runs is the middle one") {
  workspace w;
  for (const double rate : {300.0, 100.0, 200.0}) {
    fixture_run r = with_rate(rate);
    r.p50_us = rate / 10;                  // 30 10 20
    r.p99_us = rate;                       // 300 100 200
    r.server_cpu_s_per_msg = rate * 1e-8;  // 3 1 2 µs
    r.client_cpu_s_per_msg = rate * 2e-8;  // 6 2 4 µs
    w.add("epoll", r);
  }
  const json epoll = servers_of(w.summary(), "tcp", "pingpong", 64, 100).at("epoll");
  CHECK(epoll.at("runs") == 3);
  CHECK(epoll.at("msgs_per_sec").at("median").get<double>() == doctest::Approx(200.0));
  CHECK(epoll.at("msgs_per_sec").at("all") == json({300.0, 100.0, 200.0}));  // file order
  CHECK(epoll.at("latency_us").at("p50").get<double>() == doctest::Approx(20.0));
  CHECK(epoll.at("latency_us").at("p99").get<double>() == doctest::Approx(200.0));
  CHECK(epoll.at("server_cpu_us_per_msg").get<double>() == doctest::Approx(2.0));
  CHECK(epoll.at("client_cpu_us_per_msg").get<double>() == doctest::Approx(4.0));
}

TEST_CASE("bench_report: the median of an even number of runs is the mean of the middle two") {
  workspace w;
  for (const double rate : {100.0, 400.0, 200.0, 300.0}) {
    fixture_run r = with_rate(rate);
    r.p99_us = rate == 400.0 ? 10000.0 : rate / 100;  // 1 2 3 10000: the outlier does not count
    w.add("coronet-1t", r);
  }
  const json ours = servers_of(w.summary(), "tcp", "pingpong", 64, 100).at("coronet-1t");
  CHECK(ours.at("runs") == 4);
  CHECK(ours.at("msgs_per_sec").at("median").get<double>() == doctest::Approx(250.0));
  CHECK(ours.at("latency_us").at("p99").get<double>() == doctest::Approx(2.5));
}

TEST_CASE(
    "bench_report: msg per second and server CPU per message are ratios to the epoll median") {
  workspace w;
  fixture_run ours = with_rate(90000);
  ours.server_cpu_s_per_msg = 6e-6;
  fixture_run baseline = with_rate(100000);
  baseline.server_cpu_s_per_msg = 5e-6;
  w.add("coronet-1t", ours);
  w.add("epoll", baseline);
  fixture_run alone = with_rate(50000);  // a cell epoll was not run in
  alone.connections = 1000;
  w.add("coronet-1t", alone);

  const json summary = w.summary();
  const json cell = servers_of(summary, "tcp", "pingpong", 64, 100);
  const json ratio = cell.at("coronet-1t").at("ratio_to_epoll");
  CHECK(ratio.at("msgs_per_sec").get<double>() == doctest::Approx(0.9));
  CHECK(ratio.at("server_cpu_per_msg").get<double>() == doctest::Approx(1.2));
  CHECK(cell.at("epoll").at("ratio_to_epoll").at("msgs_per_sec").get<double>() ==
        doctest::Approx(1.0));
  const json no_baseline =
      servers_of(summary, "tcp", "pingpong", 64, 1000).at("coronet-1t").at("ratio_to_epoll");
  CHECK(no_baseline.at("msgs_per_sec").is_null());
  CHECK(no_baseline.at("server_cpu_per_msg").is_null());
}

TEST_CASE("bench_report: null values are skipped and all null gives null") {
  workspace w;
  for (const std::optional<double> cpu : {std::optional<double>(), {4e-6}, {8e-6}}) {
    fixture_run r;
    r.server_cpu_s_per_msg = cpu;
    r.p99_us = std::nullopt;
    w.add("coronet-1t", r);
  }
  fixture_run unknown_cpu;
  unknown_cpu.server_cpu_s_per_msg = std::nullopt;
  w.add("epoll", unknown_cpu);

  const json cell = servers_of(w.summary(), "tcp", "pingpong", 64, 100);
  const json ours = cell.at("coronet-1t");
  CHECK(ours.at("runs") == 3);
  CHECK(ours.at("server_cpu_us_per_msg").get<double>() == doctest::Approx(6.0));  // of 4 and 8
  CHECK(ours.at("latency_us").at("p99").is_null());
  CHECK(ours.at("latency_us").at("p50").get<double>() == doctest::Approx(500.0));
  CHECK(cell.at("epoll").at("server_cpu_us_per_msg").is_null());
  CHECK(ours.at("ratio_to_epoll").at("server_cpu_per_msg").is_null());
  CHECK(ours.at("ratio_to_epoll").at("msgs_per_sec").get<double>() == doctest::Approx(1.0));
}

TEST_CASE("bench_report: errors are summed over the runs") {
  workspace w;
  for (const std::uint64_t errors : {1U, 0U, 4U}) {
    fixture_run r;
    r.errors = errors;
    w.add("asio", r);
  }
  const json asio = servers_of(w.summary(), "tcp", "pingpong", 64, 100).at("asio");
  CHECK(asio.at("errors") == 5);
  CHECK(asio.at("runs") == 3);
}

TEST_CASE("bench_report: cells come as tcp pingpong by size and connections then flood then udp") {
  workspace w;
  const auto cell = [](std::string proto, std::string mode, std::uint64_t size,
                       std::uint64_t connections) {
    fixture_run r;
    r.proto = std::move(proto);
    r.mode = std::move(mode);
    r.size = size;
    r.connections = connections;
    return r;
  };
  w.add("epoll", cell("udp", "pingpong", 64, 1));
  w.add("epoll", cell("tcp", "flood", 65536, 10));
  w.add("epoll", cell("tcp", "pingpong", 4096, 1));
  w.add("epoll", cell("tcp", "pingpong", 64, 10000));
  w.add("epoll", cell("tcp", "pingpong", 64, 100));
  w.add("epoll", cell("tcp", "flood", 65536, 1));

  const json summary = w.summary({"--date", "2026-01-02", "--command", "run it", "--machine", "m"});
  CHECK(summary.at("date") == "2026-01-02");
  CHECK(summary.at("command") == "run it");
  CHECK(summary.at("machine") == "m");
  std::vector<std::string> order;
  for (const auto& c : summary.at("cells")) {
    order.push_back(c.at("proto").get<std::string>() + " " + c.at("mode").get<std::string>() + " " +
                    std::to_string(c.at("size").get<int>()) + " " +
                    std::to_string(c.at("connections").get<int>()));
  }
  CHECK(order == std::vector<std::string>{"tcp pingpong 64 100", "tcp pingpong 64 10000",
                                          "tcp pingpong 4096 1", "tcp flood 65536 1",
                                          "tcp flood 65536 10", "udp pingpong 64 1"});
}

TEST_CASE("bench_report: the README section between the markers is replaced and nothing else") {
  workspace w;
  fixture_run ours = with_rate(123456.7);
  ours.server_cpu_s_per_msg = 6e-6;
  w.add("coronet-1t", ours);
  w.add("epoll", with_rate(137174.1));
  const fs::path readme = w.file("README.md");
  write_file(readme, readme_before + "old table\nold goals\n" + readme_after);
  const std::vector<std::string> args = {"--readme",  readme.string(),
                                         "--date",    "2026-01-02",
                                         "--command", "RUNS=3 benchmarks/run_bench.sh",
                                         "--machine", "2 cores, AMD EPYC, Linux 6.1"};

  const auto first = w.report(args);
  REQUIRE_MESSAGE(first.exit_code == 0, first.err);
  const std::string text = read_file(readme);
  CHECK(text.rfind(readme_before, 0) == 0);
  CHECK(text.substr(text.size() - readme_after.size()) == readme_after);
  CHECK(text.find("old table") == std::string::npos);
  CHECK(text.find("Measured 2026-01-02 with `RUNS=3 benchmarks/run_bench.sh` on 2 cores, AMD "
                  "EPYC, Linux 6.1") != std::string::npos);
  CHECK(text.find("| proto/mode | size | connections | server | msg/s | ratio to epoll | p50 µs "
                  "| p99 µs | server CPU µs/msg | CPU ratio to epoll | errors |") !=
        std::string::npos);
  const std::string ours_row =
      "| tcp pingpong | 64 B | 100 | coronet-1t | 123,457 | 0.90 | 500.0 | 900.0 | 6.0 | 1.20 | 0 "
      "|";
  const std::string epoll_row = "| | | | epoll | 137,174 | 1.00 | 500.0 | 900.0 | 5.0 | 1.00 | 0 |";
  CHECK_MESSAGE(text.find(ours_row) != std::string::npos, text);
  CHECK_MESSAGE(text.find(epoll_row) != std::string::npos, text);
  CHECK(text.find(ours_row) < text.find(epoll_row));

  const auto second = w.report(args);
  REQUIRE_MESSAGE(second.exit_code == 0, second.err);
  CHECK(read_file(readme) == text);  // idempotent

  // --servers sets the order of the rows.
  auto reordered = args;
  reordered.insert(reordered.end(), {"--servers", "epoll,coronet-1t"});
  REQUIRE(w.report(reordered).exit_code == 0);
  const std::string swapped = read_file(readme);
  CHECK(swapped.find("| tcp pingpong | 64 B | 100 | epoll | 137,174 |") <
        swapped.find("coronet-1t |"));
}

TEST_CASE("bench_report: the goal block says met or not met from the data") {
  workspace w;
  fixture_run ours = with_rate(96000);  // 0.96 of epoll: met
  ours.server_cpu_s_per_msg = 6.5e-6;   // 1.30 of epoll: not met
  w.add("coronet-1t", ours);
  w.add("asio", with_rate(97000));  // ahead of us: not met
  w.add("epoll", with_rate(100000));
  const fs::path readme = w.file("README.md");
  write_file(readme, readme_before + readme_after);

  const auto r = w.report({"--readme", readme.string()});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  const std::string text = read_file(readme);
  CHECK_MESSAGE(text.find("- 100 connections: msg/s 0.96 of epoll's (goal >= 0.95): **met**") !=
                    std::string::npos,
                text);
  CHECK(text.find("- 100 connections: ahead of asio (96,000 against 97,000 msg/s): **not met**") !=
        std::string::npos);
  CHECK(text.find("- 100 connections: server CPU per message 1.30 of epoll's (goal <= 1.2): "
                  "**not met**") != std::string::npos);
  CHECK(text.find("- 1,000 connections: coronet-1t not measured") != std::string::npos);
  CHECK(text.find("<!-- bench-matrix:end -->") > text.find("coronet-1t not measured"));
}

TEST_CASE("bench_report: a README without its markers is an error and stays as it was") {
  workspace w;
  w.add("epoll", fixture_run{});
  const fs::path readme = w.file("README.md");

  SUBCASE("no markers at all") { write_file(readme, "# Benchmarks\n\nNo markers.\n"); }
  SUBCASE("no end marker") { write_file(readme, readme_before + "text\n"); }

  const std::string before = read_file(readme);
  const auto r = w.report({"--readme", readme.string()});
  check_one_error_line(r, {readme.string(), "bench-matrix"});
  CHECK(read_file(readme) == before);
}

TEST_CASE("bench_report: a malformed JSON file is an error naming the file") {
  workspace w;
  w.add("epoll", fixture_run{});
  const fs::path broken = w.runs() / "asio" / "tcp-pingpong-64-100-run1.json";
  write_file(broken, "{\"proto\": \"tcp\", \"mode\": ");
  check_one_error_line(w.report(), {broken.string(), "not valid JSON"});
}

TEST_CASE("bench_report: a missing or mistyped field is an error naming the file and the field") {
  workspace w;
  const fs::path path = w.add("epoll", fixture_run{});
  json run = json::parse(read_file(path));

  SUBCASE("missing latency_us.p99") {
    run["latency_us"].erase("p99");
    write_file(path, run.dump());
    check_one_error_line(w.report(), {path.string(), "latency_us.p99"});
  }
  SUBCASE("missing msgs_per_sec") {
    run.erase("msgs_per_sec");
    write_file(path, run.dump());
    check_one_error_line(w.report(), {path.string(), "msgs_per_sec"});
  }
  SUBCASE("connections is a string") {
    run["connections"] = "100";
    write_file(path, run.dump());
    check_one_error_line(w.report(), {path.string(), "connections"});
  }
}

TEST_CASE("bench_report: a missing runs directory is an error") {
  test::temp_dir dir;
  const fs::path missing = dir.path() / "no-such-runs";
  const auto r = test::run_to_exit(bench_report, {missing.string()}, report_limit);
  check_one_error_line(r, {missing.string()});
}

TEST_CASE("bench_report: a command-line mistake exits 2") {
  workspace w;
  w.add("epoll", fixture_run{});
  CHECK(w.report({"--no-such-option"}).exit_code == 2);
  CHECK(test::run_to_exit(bench_report, {}, report_limit).exit_code == 2);  // no RUNS_DIR
}

TEST_CASE("bench_report: the charts are PNG files when gnuplot is installed") {
  workspace w;
  for (const std::uint64_t size : {64U, 4096U}) {
    for (const std::uint64_t connections : {1U, 100U, 1000U}) {
      fixture_run r = with_rate(1000.0 * static_cast<double>(connections + size));
      r.size = size;
      r.connections = connections;
      r.p99_us = 10.0 * static_cast<double>(connections);
      w.add("coronet-1t", r);
      w.add("epoll", r);
    }
  }
  const fs::path charts = w.file("charts");
  const auto r = w.report({"--charts", charts.string(), "--stem", "2026-01-02"});
  if (gnuplot_installed()) {
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    check_png(charts / "2026-01-02-throughput.png");
    check_png(charts / "2026-01-02-p99.png");
  } else {
    MESSAGE("gnuplot is not installed: only its absence is checked");
    check_one_error_line(r, {"gnuplot", "not installed"});
  }
}

TEST_CASE("bench_report: without gnuplot --charts fails clearly after writing the rest") {
  workspace w;
  w.add("epoll", fixture_run{});
  const fs::path empty_path = w.file("empty-path");
  fs::create_directories(empty_path);
  const fs::path out = w.file("summary.json");
  // env runs bench_report with a PATH where no gnuplot can be found.
  const std::vector<std::string> common = {"PATH=" + empty_path.string(), bench_report,
                                           w.runs().string(), "--out-json", out.string()};

  auto with_charts = common;
  with_charts.insert(with_charts.end(), {"--charts", w.file("charts").string()});
  const auto r = test::run_to_exit("/usr/bin/env", with_charts, report_limit);
  check_one_error_line(r, {"gnuplot", "not installed"});
  CHECK(fs::exists(out));

  fs::remove(out);
  const auto without_charts = test::run_to_exit("/usr/bin/env", common, report_limit);
  CHECK_MESSAGE(without_charts.exit_code == 0, without_charts.err);
  CHECK(fs::exists(out));
}
