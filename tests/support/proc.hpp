#pragma once
// proc: what /proc says about another process (a child the test runs): its CPU time, how many
// descriptors it holds and its resident memory.

#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace coronet::test {

/// The CPU time `pid` has used so far, user plus system (utime + stime of /proc/PID/stat).
/// Throws std::runtime_error when the process is gone.
inline std::chrono::duration<double> cpu_time(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  const std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name, field 2, is in parentheses and may hold spaces: count from after it.
  const auto name_end = stat.rfind(')');
  if (name_end == std::string::npos) throw std::runtime_error("no /proc/PID/stat for that pid");
  std::istringstream fields(stat.substr(name_end + 1));
  std::vector<std::string> after_name{std::istream_iterator<std::string>(fields),
                                      std::istream_iterator<std::string>()};
  // Fields 3 (state) onwards: utime is field 14, stime field 15, both in clock ticks.
  if (after_name.size() < 13) throw std::runtime_error("short /proc/PID/stat");
  const double ticks = std::stod(after_name[11]) + std::stod(after_name[12]);
  return std::chrono::duration<double>(ticks / static_cast<double>(::sysconf(_SC_CLK_TCK)));
}

/// How many descriptors `pid` has open: the entries of /proc/PID/fd.
inline std::size_t open_descriptors(pid_t pid) {
  const std::filesystem::path fds = "/proc/" + std::to_string(pid) + "/fd";
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(fds)) ++n;
  return n;
}

/// How many sockets `pid` has open: the entries of /proc/PID/fd that link to "socket:[...]".
/// Unlike open_descriptors(), not moved by a pipe a sanitizer opens for a moment.
inline std::size_t open_sockets(pid_t pid) {
  const std::filesystem::path fds = "/proc/" + std::to_string(pid) + "/fd";
  std::size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(fds)) {
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(entry.path(), ec);
    if (!ec && target.string().rfind("socket:", 0) == 0) ++n;
  }
  return n;
}

/// The memory `pid` has resident now, in bytes (VmRSS of /proc/PID/status); 0 when the process
/// is gone.
inline std::size_t resident_bytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      std::size_t kib = 0;
      in >> kib;
      return kib * 1024;
    }
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return 0;
}

}  // namespace coronet::test
