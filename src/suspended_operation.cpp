#include "coronet/suspended_operation.hpp"

#include <spdlog/fmt/fmt.h>

#include <ctime>
#include <iterator>
#include <string_view>

namespace coronet {
namespace {

// A function's name without its return type and parameters, as far as they can be told apart:
// "asio::awaitable<void> ns::f(T) [with T = int]" gives "ns::f".
std::string_view short_function(std::string_view full) {
  if (const auto open = full.find('('); open != std::string_view::npos) full = full.substr(0, open);
  // The return type ends at the last space outside angle brackets.
  int depth = 0;
  for (std::size_t i = full.size(); i-- > 0;) {
    if (full[i] == '>') ++depth;
    if (full[i] == '<') --depth;
    if (full[i] == ' ' && depth == 0) return full.substr(i + 1);
  }
  return full;
}

// "2026-11-26 13:45:02.120", in UTC whatever the local time zone.
std::string utc_text(std::chrono::system_clock::time_point at) {
  const auto since_epoch = at.time_since_epoch();
  const auto seconds = std::chrono::floor<std::chrono::seconds>(since_epoch);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds);
  const std::time_t whole = seconds.count();
  std::tm parts{};
  ::gmtime_r(&whole, &parts);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}", parts.tm_year + 1900,
                     parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec,
                     millis.count());
}

}  // namespace

std::string format_suspended(const suspended_report& report) {
  std::string out;
  auto to = std::back_inserter(out);
  if (!report.observing) {
    fmt::format_to(to, "suspended operations: not recorded (the runtime does not observe)\n");
    return out;
  }
  fmt::format_to(to, "suspended operations: {} at {} UTC\n", report.operations.size(),
                 utc_text(report.at));
  constexpr auto row = "{:>8} {:>6} {:<10} {:>9}  {:<22} {:<22} {}\n";
  fmt::format_to(to, row, "thread", "fd", "kind", "waited_s", "local", "peer", "where");
  for (const auto& op : report.operations) {
    const auto where = fmt::format("{}:{} ({})", op.file, op.line, short_function(op.function));
    fmt::format_to(to, row, op.thread, op.fd, op.kind,
                   fmt::format("{:.3f}", static_cast<double>(op.waited.count()) / 1000.0),
                   op.local.empty() ? "-" : op.local, op.peer.empty() ? "-" : op.peer, where);
  }
  for (const auto k : report.unanswered) {
    fmt::format_to(to, "thread {} did not answer in time: it was busy running one handler\n", k);
  }
  return out;
}

}  // namespace coronet
