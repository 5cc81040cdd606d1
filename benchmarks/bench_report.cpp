// bench_report: turns the runs of `make bench` into medians and ratios to the epoll baseline,
// and writes them as a JSON summary, as the table in benchmarks/README.md and as two charts.
//
// Run:    build/bin/bench_report benchmarks/results/2026-11-26-runs      (prints the table)
//         build/bin/bench_report RUNS_DIR --out-json results/2026-11-26.json --readme
//             benchmarks/README.md --charts results --stem 2026-11-26
//         (benchmarks/run_bench.sh calls it that way at the end of the matrix)
// Input:  RUNS_DIR/<server>/<anything>.json, each file one run as `coronet_bench --json` writes
//         it; <server> is the name the report shows (coronet-1t, asio, epoll...).
//
// Runs are grouped into cells by (proto, mode, size, connections). For each cell and server it
// takes the median over the runs of msg/s, p50 and p99 latency and the server's and client's
// CPU time per message (a null is skipped; all null gives null); with an even number of runs
// the median is the mean of the two middle values. Errors are summed. Each server's msg/s and
// server CPU per message are also given as a ratio to the "epoll" server's median in the same
// cell (null when there is no epoll run or its median is null).
//
// Options:
//   RUNS_DIR             the runs (required).
//   --out-json FILE      the summary: {date, command, machine, cells: [{proto, mode, size,
//                        connections, servers: {name: {runs, msgs_per_sec: {median, all},
//                        latency_us: {p50, p99}, server_cpu_us_per_msg, client_cpu_us_per_msg,
//                        errors, ratio_to_epoll: {msgs_per_sec, server_cpu_per_msg}}}}]}.
//   --readme FILE        replaces what lies between the lines <!-- bench-matrix:begin --> and
//                        <!-- bench-matrix:end --> with the table and the goal block; the rest
//                        of the file is left as it is, byte for byte.
//   --print              writes that table and goal block to stdout (the default when no other
//                        output is asked for).
//   --charts DIR         writes DIR/STEM-tcp-pingpong.dat, DIR/STEM-throughput.gp and
//                        DIR/STEM-p99.gp, and runs gnuplot on them to draw
//                        DIR/STEM-throughput.png and DIR/STEM-p99.png (needs gnuplot; Debian:
//                        gnuplot-nox). --stem NAME names them (default "bench").
//   --servers LIST       the order of the servers in the table and charts, comma or space
//                        separated (default "coronet-1t,coronet-2t,asio,asio-coro,epoll"); servers
//                        found in RUNS_DIR but not listed come after, by name.
//   --date, --command, --machine   what the report says about when, how and where it was
//                        measured (default: today, "not recorded", "not recorded").
//
// Exit codes: 0 done; 1 bad input (one line on stderr naming the file and the field), a file
// that cannot be written, README markers missing, or charts asked for and not drawn; 2 for a
// command-line mistake.

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

constexpr std::string_view baseline = "epoll";
constexpr std::string_view begin_marker = "<!-- bench-matrix:begin -->";
constexpr std::string_view end_marker = "<!-- bench-matrix:end -->";

// Bad input or an output that cannot be written: main prints what() as one line and exits 1.
struct report_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---------------------------------------------------------------------------------------------
// Reading the runs

// One coronet_bench run: the fields the report uses.
struct run {
  std::string server;
  std::string proto;
  std::string mode;
  std::uint64_t size = 0;
  std::uint64_t connections = 0;
  std::optional<double> msgs_per_sec;
  std::optional<double> p50_us;
  std::optional<double> p99_us;
  std::optional<double> server_cpu_s_per_msg;
  std::optional<double> client_cpu_s_per_msg;
  std::uint64_t errors = 0;
};

// The member of `object` at the dotted `path` ("latency_us.p99"); throws naming file and field
// when it is not there.
const json& field(const json& object, const std::string& path, const std::string& file) {
  const json* at = &object;
  std::string_view rest = path;
  while (!rest.empty()) {
    const auto dot = rest.find('.');
    const std::string name(rest.substr(0, dot));
    rest = dot == std::string_view::npos ? std::string_view() : rest.substr(dot + 1);
    if (!at->is_object() || !at->contains(name))
      throw report_error(file + ": missing field " + path);
    at = &(*at)[name];
  }
  return *at;
}

[[noreturn]] void wrong_type(const std::string& file, const std::string& path, const json& value,
                             const char* expected) {
  throw report_error(file + ": field " + path + " is " + value.dump() + ", expected " + expected);
}

std::string string_field(const json& object, const std::string& path, const std::string& file) {
  const json& value = field(object, path, file);
  if (!value.is_string()) wrong_type(file, path, value, "a string");
  return value.get<std::string>();
}

std::uint64_t count_field(const json& object, const std::string& path, const std::string& file) {
  const json& value = field(object, path, file);
  if (!value.is_number_unsigned()) wrong_type(file, path, value, "a whole number >= 0");
  return value.get<std::uint64_t>();
}

std::optional<double> number_or_null(const json& object, const std::string& path,
                                     const std::string& file) {
  const json& value = field(object, path, file);
  if (value.is_null()) return std::nullopt;
  if (!value.is_number()) wrong_type(file, path, value, "a number or null");
  return value.get<double>();
}

json parse_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw report_error(path.string() + ": cannot read: " + std::strerror(errno));
  try {
    json document = json::parse(in);
    if (!document.is_object()) throw report_error(path.string() + ": not a JSON object");
    return document;
  } catch (const json::exception& e) {
    throw report_error(path.string() + ": not valid JSON: " + e.what());
  }
}

run read_run(const fs::path& path, const std::string& server) {
  const json document = parse_file(path);
  const std::string file = path.string();
  run r;
  r.server = server;
  r.proto = string_field(document, "proto", file);
  r.mode = string_field(document, "mode", file);
  r.size = count_field(document, "size", file);
  r.connections = count_field(document, "connections", file);
  r.msgs_per_sec = number_or_null(document, "msgs_per_sec", file);
  r.p50_us = number_or_null(document, "latency_us.p50", file);
  r.p99_us = number_or_null(document, "latency_us.p99", file);
  r.server_cpu_s_per_msg = number_or_null(document, "server_cpu_s_per_msg", file);
  r.client_cpu_s_per_msg = number_or_null(document, "client_cpu_s_per_msg", file);
  r.errors = count_field(document, "errors", file);
  return r;
}

// The entries of `dir` that `keep` accepts, sorted by name so that the report never depends
// on the order the file system lists them in.
template <typename Keep>
std::vector<fs::path> sorted_entries(const fs::path& dir, Keep keep) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().rfind(".", 0) == 0) continue;
    if (keep(entry)) out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Every RUNS_DIR/<server>/*.json, in the order server name, file name.
std::vector<run> read_runs(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw report_error(dir.string() + ": no such directory (expected RUNS_DIR/<server>/*.json)");
  std::vector<run> runs;
  const auto servers = sorted_entries(dir, [](const auto& e) { return e.is_directory(); });
  for (const auto& server_dir : servers) {
    const auto files = sorted_entries(server_dir, [](const auto& e) {
      return e.is_regular_file() && e.path().extension() == ".json";
    });
    for (const auto& file : files) runs.push_back(read_run(file, server_dir.filename().string()));
  }
  if (runs.empty()) throw report_error(dir.string() + ": no runs in it (expected <server>/*.json)");
  return runs;
}

// ---------------------------------------------------------------------------------------------
// Aggregating

// The median of `values`; with an even count, the mean of the two middle values.
std::optional<double> median(std::vector<double> values) {
  if (values.empty()) return std::nullopt;
  std::sort(values.begin(), values.end());
  const std::size_t middle = values.size() / 2;
  if (values.size() % 2 == 1) return values[middle];
  return (values[middle - 1] + values[middle]) / 2.0;
}

// The median of one field over `runs`, nulls skipped.
template <typename Field>
std::optional<double> median_of(const std::vector<const run*>& runs, Field field_of) {
  std::vector<double> values;
  for (const run* r : runs) {
    if (const std::optional<double> v = field_of(*r)) values.push_back(*v);
  }
  return median(std::move(values));
}

std::optional<double> ratio(std::optional<double> value, std::optional<double> reference) {
  if (!value || !reference || *reference == 0.0) return std::nullopt;
  return *value / *reference;
}

std::optional<double> scaled(std::optional<double> value, double factor) {
  if (!value) return std::nullopt;
  return *value * factor;
}

// What the report says about one server in one cell.
struct server_summary {
  std::string server;
  std::size_t runs = 0;
  std::vector<double> all_msgs_per_sec;  // in file order, nulls skipped
  std::optional<double> msgs_per_sec;
  std::optional<double> p50_us;
  std::optional<double> p99_us;
  std::optional<double> server_cpu_us_per_msg;
  std::optional<double> client_cpu_us_per_msg;
  std::uint64_t errors = 0;
  std::optional<double> msgs_per_sec_ratio;  // to epoll's median in the same cell
  std::optional<double> server_cpu_ratio;
};

server_summary summarise(const std::string& server, const std::vector<const run*>& runs) {
  server_summary s;
  s.server = server;
  s.runs = runs.size();
  for (const run* r : runs) {
    if (r->msgs_per_sec) s.all_msgs_per_sec.push_back(*r->msgs_per_sec);
    s.errors += r->errors;
  }
  s.msgs_per_sec = median(s.all_msgs_per_sec);
  s.p50_us = median_of(runs, [](const run& r) { return r.p50_us; });
  s.p99_us = median_of(runs, [](const run& r) { return r.p99_us; });
  s.server_cpu_us_per_msg =
      scaled(median_of(runs, [](const run& r) { return r.server_cpu_s_per_msg; }), 1e6);
  s.client_cpu_us_per_msg =
      scaled(median_of(runs, [](const run& r) { return r.client_cpu_s_per_msg; }), 1e6);
  return s;
}

// A cell of the matrix, ordered as the README lists them: tcp before udp before unix, ping-pong
// before flood, then by size and by connections.
struct cell_key {
  std::string proto;
  std::string mode;
  std::uint64_t size = 0;
  std::uint64_t connections = 0;

  static int rank(std::string_view value, std::initializer_list<std::string_view> order) {
    const auto at = std::find(order.begin(), order.end(), value);
    return static_cast<int>(at - order.begin());
  }
  auto sort_key() const {
    return std::tuple(rank(proto, {"tcp", "udp", "unix"}), proto, rank(mode, {"pingpong", "flood"}),
                      mode, size, connections);
  }
  bool operator<(const cell_key& other) const { return sort_key() < other.sort_key(); }
};

struct cell {
  cell_key key;
  std::vector<server_summary> servers;  // in report order

  const server_summary* find(std::string_view name) const {
    for (const auto& s : servers) {
      if (s.server == name) return &s;
    }
    return nullptr;
  }
};

// `listed` first, in that order, then any other server of `runs` by name.
std::vector<std::string> server_order(const std::vector<std::string>& listed,
                                      const std::vector<run>& runs) {
  std::vector<std::string> order = listed;
  std::vector<std::string> others;
  for (const auto& r : runs) {
    const bool known = std::find(order.begin(), order.end(), r.server) != order.end() ||
                       std::find(others.begin(), others.end(), r.server) != others.end();
    if (!known) others.push_back(r.server);
  }
  std::sort(others.begin(), others.end());
  order.insert(order.end(), others.begin(), others.end());
  return order;
}

void add_ratios_to_baseline(cell& c) {
  const server_summary* reference = c.find(baseline);
  if (reference == nullptr) return;
  const auto reference_rate = reference->msgs_per_sec;
  const auto reference_cpu = reference->server_cpu_us_per_msg;
  for (auto& s : c.servers) {
    s.msgs_per_sec_ratio = ratio(s.msgs_per_sec, reference_rate);
    s.server_cpu_ratio = ratio(s.server_cpu_us_per_msg, reference_cpu);
  }
}

std::vector<cell> aggregate(const std::vector<run>& runs, const std::vector<std::string>& order) {
  std::map<cell_key, std::map<std::string, std::vector<const run*>>> grouped;
  for (const auto& r : runs)
    grouped[{r.proto, r.mode, r.size, r.connections}][r.server].push_back(&r);

  std::vector<cell> cells;
  for (const auto& [key, by_server] : grouped) {
    cell c{key, {}};
    for (const auto& server : order) {
      const auto found = by_server.find(server);
      if (found != by_server.end()) c.servers.push_back(summarise(server, found->second));
    }
    add_ratios_to_baseline(c);
    cells.push_back(std::move(c));
  }
  return cells;
}

// ---------------------------------------------------------------------------------------------
// The JSON summary

struct metadata {
  std::string date;
  std::string command;
  std::string machine;
};

ordered_json or_null(std::optional<double> value) {
  return value ? ordered_json(*value) : ordered_json(nullptr);
}

ordered_json to_json(const server_summary& s) {
  ordered_json out;
  out["runs"] = s.runs;
  out["msgs_per_sec"] = {{"median", or_null(s.msgs_per_sec)}, {"all", s.all_msgs_per_sec}};
  out["latency_us"] = {{"p50", or_null(s.p50_us)}, {"p99", or_null(s.p99_us)}};
  out["server_cpu_us_per_msg"] = or_null(s.server_cpu_us_per_msg);
  out["client_cpu_us_per_msg"] = or_null(s.client_cpu_us_per_msg);
  out["errors"] = s.errors;
  out["ratio_to_epoll"] = {{"msgs_per_sec", or_null(s.msgs_per_sec_ratio)},
                           {"server_cpu_per_msg", or_null(s.server_cpu_ratio)}};
  return out;
}

ordered_json to_json(const std::vector<cell>& cells, const metadata& meta) {
  ordered_json out;
  out["date"] = meta.date;
  out["command"] = meta.command;
  out["machine"] = meta.machine;
  out["cells"] = ordered_json::array();
  for (const auto& c : cells) {
    ordered_json entry;
    entry["proto"] = c.key.proto;
    entry["mode"] = c.key.mode;
    entry["size"] = c.key.size;
    entry["connections"] = c.key.connections;
    entry["servers"] = ordered_json::object();
    for (const auto& s : c.servers) entry["servers"][s.server] = to_json(s);
    out["cells"].push_back(std::move(entry));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The README table

// `value` with `decimals` decimals, for a program to read.
std::string plain(double value, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

// `value` with `decimals` decimals and its whole part grouped by thousands: 162450.44 with 1
// decimal -> "162,450.4".
std::string grouped(double value, int decimals) {
  const std::string text = plain(value, decimals);
  const std::size_t first_digit = text[0] == '-' ? 1 : 0;
  const std::size_t point = std::min(text.find('.'), text.size());
  // Appended rather than inserted: g++ 12 at -O3 sees a bogus overlap in string::insert
  // (-Wrestrict), and the optimised uring preset treats warnings as errors.
  std::string out(text, 0, first_digit);
  for (std::size_t i = first_digit; i < point; ++i) {
    if (i > first_digit && (point - i) % 3 == 0) out += ',';
    out += text[i];
  }
  out.append(text, point);
  return out;
}

std::string with_thousands(double value) { return grouped(value, 0); }
std::string with_thousands(std::uint64_t value) { return grouped(static_cast<double>(value), 0); }
std::string fixed(double value, int decimals) { return grouped(value, decimals); }

constexpr std::string_view not_available = "n/a";

std::string count_or_na(std::optional<double> v) {
  return v ? with_thousands(*v) : std::string(not_available);
}
std::string fixed_or_na(std::optional<double> v, int decimals) {
  return v ? fixed(*v, decimals) : std::string(not_available);
}

// `text` as a Markdown code span, even when it holds backquotes.
std::string code_span(const std::string& text) {
  if (text.find('`') == std::string::npos) return "`" + text + "`";
  return "`` " + text + " ``";
}

std::string runs_phrase(const std::vector<cell>& cells) {
  std::size_t fewest = SIZE_MAX, most = 0;
  for (const auto& c : cells) {
    for (const auto& s : c.servers) {
      fewest = std::min(fewest, s.runs);
      most = std::max(most, s.runs);
    }
  }
  const std::string runs = fewest == most ? std::to_string(most)
                                          : std::to_string(fewest) + " to " + std::to_string(most);
  return "median of " + runs + (most == 1 ? " run" : " runs");
}

std::string table(const std::vector<cell>& cells) {
  std::ostringstream out;
  out << "| proto/mode | size | connections | server | msg/s | ratio to epoll | p50 µs | p99 µs "
         "| server CPU µs/msg | CPU ratio to epoll | errors |\n"
      << "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& c : cells) {
    bool first = true;
    for (const auto& s : c.servers) {
      // The cell's columns are written once, on its first row, as the other tables here do.
      if (first) {
        out << "| " << c.key.proto << " " << c.key.mode << " | " << with_thousands(c.key.size)
            << " B | " << with_thousands(c.key.connections) << " ";
      } else {
        out << "| | | ";
      }
      first = false;
      out << "| " << s.server << " | " << count_or_na(s.msgs_per_sec) << " | "
          << fixed_or_na(s.msgs_per_sec_ratio, 2) << " | " << fixed_or_na(s.p50_us, 1) << " | "
          << fixed_or_na(s.p99_us, 1) << " | " << fixed_or_na(s.server_cpu_us_per_msg, 1) << " | "
          << fixed_or_na(s.server_cpu_ratio, 2) << " | " << with_thousands(s.errors) << " |\n";
    }
  }
  return out.str();
}

// A goal is judged on the figure the table shows (two decimals), so that "0.95 (goal >= 0.95)"
// never reads "not met".
std::string verdict(bool met) { return met ? "**met**" : "**not met**"; }

std::string goal_lines(const cell* c, std::uint64_t connections) {
  const std::string where = "- " + with_thousands(connections) + " connections: ";
  const server_summary* ours = c ? c->find("coronet-1t") : nullptr;
  if (ours == nullptr) return where + "coronet-1t not measured\n";
  const server_summary* asio = c->find("asio");
  std::string out;

  if (ours->msgs_per_sec_ratio) {
    const auto r = std::llround(*ours->msgs_per_sec_ratio * 100);
    out += where + "msg/s " + fixed(*ours->msgs_per_sec_ratio, 2) +
           " of epoll's (goal >= 0.95): " + verdict(r >= 95) + "\n";
  } else {
    out += where + "msg/s ratio to epoll: not measured\n";
  }

  if (ours->msgs_per_sec && asio && asio->msgs_per_sec) {
    out += where + "ahead of asio (" + with_thousands(*ours->msgs_per_sec) + " against " +
           with_thousands(*asio->msgs_per_sec) +
           " msg/s): " + verdict(*ours->msgs_per_sec > *asio->msgs_per_sec) + "\n";
  } else {
    out += where + "ahead of asio: not measured\n";
  }

  if (ours->server_cpu_ratio) {
    const auto r = std::llround(*ours->server_cpu_ratio * 100);
    out += where + "server CPU per message " + fixed(*ours->server_cpu_ratio, 2) +
           " of epoll's (goal <= 1.2): " + verdict(r <= 120) + "\n";
  } else {
    out += where + "server CPU per message ratio to epoll: not measured\n";
  }
  return out;
}

std::string goals(const std::vector<cell>& cells) {
  std::string out = "Goals for coronet-1t, tcp pingpong 64 B:\n\n";
  for (const std::uint64_t connections : {std::uint64_t{100}, std::uint64_t{1000}}) {
    const cell* found = nullptr;
    for (const auto& c : cells) {
      const auto& k = c.key;
      if (k.proto == "tcp" && k.mode == "pingpong" && k.size == 64 && k.connections == connections)
        found = &c;
    }
    out += goal_lines(found, connections);
  }
  return out;
}

// What goes between the README's markers (and to stdout with --print).
std::string markdown(const std::vector<cell>& cells, const metadata& meta) {
  return "Measured " + meta.date + " with " + code_span(meta.command) + " on " + meta.machine +
         "; " + runs_phrase(cells) + " per cell, ratios to epoll's median in the same cell.\n\n" +
         table(cells) + "\n" + goals(cells);
}

// ---------------------------------------------------------------------------------------------
// Files

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw report_error(path.string() + ": cannot read: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Writes through a temporary file renamed over `path`, so a reader never sees half a file.
void write_text(const fs::path& path, const std::string& text) {
  const fs::path temporary = path.string() + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) throw report_error(path.string() + ": cannot write: " + std::strerror(errno));
    out << text;
    out.close();
    if (!out) throw report_error(path.string() + ": cannot write: " + std::strerror(errno));
  }
  std::error_code ec;
  fs::rename(temporary, path, ec);
  if (ec) throw report_error(path.string() + ": cannot write: " + ec.message());
}

// Where the line that is exactly `marker` (a "\r" before its "\n" allowed) starts and where
// the next line starts; throws when there is none or more than one.
std::pair<std::size_t, std::size_t> marker_line(const std::string& text, std::string_view marker,
                                                const std::string& file) {
  std::optional<std::pair<std::size_t, std::size_t>> found;
  for (std::size_t start = 0; start < text.size();) {
    const std::size_t newline = text.find('\n', start);
    const std::size_t next = newline == std::string::npos ? text.size() : newline + 1;
    std::string_view line(text.data() + start, next - start);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    if (line == marker) {
      if (found) throw report_error(file + ": the line " + std::string(marker) + " is there twice");
      found = {start, next};
    }
    start = next;
  }
  if (!found)
    throw report_error(file + ": no line " + std::string(marker) + " to put the table at");
  return *found;
}

// The README with `block` between its markers in place of what was there.
std::string with_section(const std::string& text, const std::string& block,
                         const std::string& file) {
  const auto [begin_start, begin_next] = marker_line(text, begin_marker, file);
  const auto [end_start, end_next] = marker_line(text, end_marker, file);
  (void)end_next;
  if (end_start < begin_start)
    throw report_error(file + ": " + std::string(end_marker) + " comes before " +
                       std::string(begin_marker));
  std::string prefix = text.substr(0, begin_next);
  if (prefix.back() != '\n') prefix += "\n";  // the begin marker ended the file
  return prefix + block + text.substr(end_start);
}

void update_readme(const fs::path& path, const std::string& block) {
  const std::string text = read_text(path);
  const std::string updated = with_section(text, block, path.string());
  if (updated != text) write_text(path, updated);
}

// ---------------------------------------------------------------------------------------------
// Charts

// `text` as a gnuplot single-quoted string.
std::string gp_quote(const std::string& text) {
  std::string out = "'";
  for (const char ch : text) {
    out += ch;
    if (ch == '\'') out += '\'';
  }
  return out + "'";
}

// `text` as a gnuplot double-quoted string, in which "\n" is a line break.
std::string gp_double_quote(const std::string& text) {
  std::string out = "\"";
  for (const char ch : text) {
    if (ch == '\n') {
      out += "\\n";
    } else {
      if (ch == '"' || ch == '\\') out += '\\';
      out += ch;
    }
  }
  return out + "\"";
}

std::optional<fs::path> find_in_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return std::nullopt;
  std::stringstream dirs(path);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) continue;
    const fs::path candidate = fs::path(dir) / program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

// Runs `program script` in `dir`; its exit code, or -1 when it could not run.
int run_in(const fs::path& dir, const fs::path& program, const std::string& script) {
  std::cout.flush();
  const pid_t child = ::fork();
  if (child < 0) return -1;
  if (child == 0) {
    if (::chdir(dir.c_str()) != 0) ::_exit(127);
    const std::string name = program.string();
    char* argv[] = {const_cast<char*>(name.c_str()), const_cast<char*>(script.c_str()), nullptr};
    ::execv(name.c_str(), argv);
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// One line of a chart: a server's tcp ping-pong medians at one message size, by connections.
struct series {
  std::uint64_t size = 0;
  std::string server;
  std::size_t place = 0;                                 // in the report order: its colour
  std::vector<std::pair<std::uint64_t, double>> points;  // (connections, value)
};

using metric = std::optional<double> (*)(const server_summary&);

// The lines of one chart, by size then server, in report order; a median that is null is left
// out, and so is a line left with no point.
std::vector<series> pingpong_series(const std::vector<cell>& cells,
                                    const std::vector<std::string>& order, metric value_of) {
  std::vector<series> out;
  std::vector<std::uint64_t> sizes;
  for (const auto& c : cells) {
    if (c.key.proto == "tcp" && c.key.mode == "pingpong" &&
        std::find(sizes.begin(), sizes.end(), c.key.size) == sizes.end())
      sizes.push_back(c.key.size);
  }
  for (const auto size : sizes) {
    for (std::size_t place = 0; place < order.size(); ++place) {
      series line{size, order[place], place, {}};
      for (const auto& c : cells) {
        if (c.key.proto != "tcp" || c.key.mode != "pingpong" || c.key.size != size) continue;
        const server_summary* s = c.find(order[place]);
        if (s == nullptr) continue;
        if (const auto value = value_of(*s)) line.points.emplace_back(c.key.connections, *value);
      }
      if (!line.points.empty()) out.push_back(std::move(line));
    }
  }
  return out;
}

// gnuplot data: one block per line, blocks separated by two blank lines (gnuplot's `index`).
std::string data_file(const std::vector<series>& lines, const std::string& what) {
  std::ostringstream out;
  out << "# tcp pingpong, written by bench_report: connections and median " << what
      << ", one block per message size and server\n";
  for (const auto& line : lines) {
    out << "# " << line.size << " B " << line.server << "\n";
    for (const auto& [connections, value] : line.points)
      out << connections << " " << plain(value, 3) << "\n";
    out << "\n\n";
  }
  return out.str();
}

// The x tics: the connection counts measured, as the table writes them.
std::string connection_axis(const std::vector<series>& lines) {
  std::vector<std::uint64_t> counts;
  for (const auto& line : lines) {
    for (const auto& point : line.points) counts.push_back(point.first);
  }
  std::sort(counts.begin(), counts.end());
  counts.erase(std::unique(counts.begin(), counts.end()), counts.end());
  std::string tics;
  for (const auto n : counts)
    tics += (tics.empty() ? "" : ", ") + gp_quote(with_thousands(n)) + " " + std::to_string(n);
  return "set logscale x 10\nset xrange [" + plain(static_cast<double>(counts.front()) / 1.6, 3) +
         ":" + plain(static_cast<double>(counts.back()) * 1.6, 3) + "]\nset xtics (" + tics +
         ")\nset xlabel 'concurrent connections'\n";
}

// A log y axis in whole decades of microseconds, labelled "100 µs", "1 ms", "10 s".
std::string latency_axis(const std::vector<series>& lines) {
  double low = HUGE_VAL, high = 0;
  for (const auto& line : lines) {
    for (const auto& point : line.points) {
      if (point.second <= 0) continue;
      low = std::min(low, point.second);
      high = std::max(high, point.second);
    }
  }
  if (high == 0) return "set logscale y 10\n";  // nothing above zero: gnuplot's own choice
  const int first = static_cast<int>(std::floor(std::log10(low)));
  const int last = std::max(first + 1, static_cast<int>(std::ceil(std::log10(high))));
  std::string tics;
  for (int decade = first; decade <= last; ++decade) {
    const double us = std::pow(10.0, decade);
    const std::string label = us < 1e3   ? plain(us, us < 1 ? -decade : 0) + " µs"
                              : us < 1e6 ? plain(us / 1e3, 0) + " ms"
                                         : plain(us / 1e6, 0) + " s";
    tics += (tics.empty() ? "" : ", ") + gp_quote(label) + " " + plain(us, std::max(0, -decade));
  }
  // A little margin past the end decades, so that gnuplot keeps their tics.
  return "set logscale y 10\nset yrange [" +
         plain(std::pow(10.0, first) * 0.8, std::max(0, 1 - first)) + ":" +
         plain(std::pow(10.0, last) * 1.25, 0) + "]\nset ytics (" + tics + ")\n";
}

// One chart: a panel per message size, a line per server, the same colour for a server in
// every panel.
struct chart {
  std::string name;     // file names: STEM-<name>.dat, .gp, .png
  std::string title;    // with the number of runs after it
  std::string y_label;  // of the value
  metric value_of;
  bool latency;  // log y axis in decades of µs; otherwise linear from 0, as "150k"
};

std::string chart_script(const chart& spec, const std::vector<series>& lines,
                         const std::string& stem, const std::string& runs, const metadata& meta) {
  static constexpr const char* colours[] = {"#1f77b4", "#2ca02c", "#ff7f0e", "#444444",
                                            "#9467bd", "#8c564b", "#e377c2", "#17becf"};
  std::vector<std::uint64_t> sizes;
  for (const auto& line : lines) {
    if (std::find(sizes.begin(), sizes.end(), line.size) == sizes.end()) sizes.push_back(line.size);
  }
  std::ostringstream out;
  out << "# Written by bench_report; redraw with `gnuplot " << stem << "-" << spec.name
      << ".gp` in this directory.\n"
      << "set terminal pngcairo size " << 160 + 520 * sizes.size()
      << ",640 font 'sans,11' noenhanced\n"
      << "set output " << gp_quote(stem + "-" + spec.name + ".png") << "\n"
      << connection_axis(lines) << "set ylabel " << gp_quote(spec.y_label) << "\n"
      << (spec.latency ? latency_axis(lines) : "set yrange [0:*]\nset format y '%.0s%c'\n")
      << "set grid\nset key below horizontal maxrows 1\n"
      << "set multiplot layout 1," << sizes.size() << " title "
      << gp_double_quote(spec.title + " (" + runs + ")\n" + meta.date + ", " + meta.machine)
      << "\n";
  for (const auto size : sizes) {
    out << "set title " << gp_quote(with_thousands(size) + " B messages") << "\nplot ";
    bool first = true;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (lines[i].size != size) continue;
      out << (first ? "" : ", \\\n     ") << gp_quote(stem + "-" + spec.name + ".dat") << " index "
          << i << " using 1:2 with linespoints lw 2 pt 7 ps 1.2 lc rgb '"
          << colours[lines[i].place % std::size(colours)] << "' title "
          << gp_quote(lines[i].server);
      first = false;
    }
    out << "\n";
  }
  out << "unset multiplot\n";
  return out.str();
}

void draw_chart(const chart& spec, const std::vector<cell>& cells,
                const std::vector<std::string>& order, const fs::path& dir, const std::string& stem,
                const metadata& meta, const fs::path& gnuplot) {
  const auto lines = pingpong_series(cells, order, spec.value_of);
  if (lines.empty()) {
    std::cerr << "bench_report: no tcp pingpong " << spec.y_label << " to draw: no "
              << (dir / (stem + "-" + spec.name + ".png")).string() << "\n";
    return;
  }
  const std::string base = stem + "-" + spec.name;
  write_text(dir / (base + ".dat"), data_file(lines, spec.y_label));
  write_text(dir / (base + ".gp"), chart_script(spec, lines, stem, runs_phrase(cells), meta));
  const int status = run_in(dir, gnuplot, base + ".gp");
  if (status != 0)
    throw report_error((dir / (base + ".gp")).string() + ": gnuplot failed (exit " +
                       std::to_string(status) + ")");
}

void draw_charts(const std::vector<cell>& cells, const std::vector<std::string>& order,
                 const fs::path& dir, const std::string& stem, const metadata& meta) {
  const auto gnuplot = find_in_path("gnuplot");
  if (!gnuplot)
    throw report_error(
        "--charts needs gnuplot, which is not installed (Debian: apt-get install "
        "gnuplot-nox)");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw report_error(dir.string() + ": cannot create: " + ec.message());

  const chart throughput{"throughput", "TCP ping-pong throughput", "round trips per second",
                         [](const server_summary& s) { return s.msgs_per_sec; }, false};
  const chart p99{"p99", "TCP ping-pong p99 latency", "p99 round-trip latency",
                  [](const server_summary& s) { return s.p99_us; }, true};
  for (const chart& spec : {throughput, p99})
    draw_chart(spec, cells, order, dir, stem, meta, *gnuplot);
}

// ---------------------------------------------------------------------------------------------

std::string today() {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  ::localtime_r(&now, &local);
  char buffer[16];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%d", &local);
  return buffer;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::string item;
  for (const char ch : text + ",") {
    if (ch == ',' || ch == ' ' || ch == '\t') {
      if (!item.empty()) out.push_back(item);
      item.clear();
    } else {
      item += ch;
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("bench_report: medians, ratios to epoll, README table and charts of make bench",
               "bench_report");
  std::string runs_dir, out_json, readme, charts_dir, stem = "bench";
  std::string servers = "coronet-1t,coronet-2t,asio,asio-coro,epoll";
  metadata meta{today(), "not recorded", "not recorded"};
  bool print = false;
  app.add_option("runs_dir", runs_dir, "RUNS_DIR/<server>/*.json, one coronet_bench run each")
      ->required();
  app.add_option("--out-json", out_json, "write the summary JSON here");
  app.add_option("--readme", readme, "put the table between this file's bench-matrix markers");
  app.add_flag("--print", print, "print the table to stdout");
  app.add_option("--charts", charts_dir, "draw the charts (gnuplot) into this directory");
  app.add_option("--stem", stem, "file name stem of the charts")->capture_default_str();
  app.add_option("--servers", servers, "order of the servers")->capture_default_str();
  app.add_option("--date", meta.date, "when it was measured (default: today)");
  app.add_option("--command", meta.command, "the command that measured it");
  app.add_option("--machine", meta.machine, "what it was measured on");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "bench_report: " << e.what() << "\n\n" << app.help();
    return 2;
  }
  if (stem.empty() || stem.find('/') != std::string::npos) {
    std::cerr << "bench_report: --stem must be a file name (no '/'), got \"" << stem << "\"\n";
    return 2;
  }

  try {
    const auto runs = read_runs(runs_dir);
    const auto order = server_order(split_list(servers), runs);
    const auto cells = aggregate(runs, order);
    const std::string block = markdown(cells, meta);
    if (!out_json.empty()) write_text(out_json, to_json(cells, meta).dump(2) + "\n");
    if (!readme.empty()) update_readme(readme, block);
    if (print || (out_json.empty() && readme.empty() && charts_dir.empty())) std::cout << block;
    if (!charts_dir.empty()) draw_charts(cells, order, charts_dir, stem, meta);
  } catch (const report_error& e) {
    std::cerr << "bench_report: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "bench_report: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
