#pragma once
// connection_table: echo_server's connection table (what SIGUSR1 makes it write on stderr),
// read back row by row.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "coronet/endpoint.hpp"
#include "support/child_process.hpp"
#include "support/run.hpp"

namespace coronet::test {

/// One row of the connection table SIGUSR1 makes echo_server write on stderr.
struct table_row {
  std::uint64_t id = 0;
  int fd = -1;
  std::size_t thread = 0;
  endpoint local;
  endpoint peer;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  double age_seconds = 0;
};

/// A table row, or nullopt for any other line (a log line, the header).
inline std::optional<table_row> parse_row(const std::string& line) {
  std::istringstream in(line);
  table_row row;
  std::string local;
  std::string peer;
  if (!(in >> row.id >> row.fd >> row.thread >> local >> peer >> row.bytes_in >> row.bytes_out >>
        row.age_seconds)) {
    return std::nullopt;
  }
  std::string more;
  if (in >> more) return std::nullopt;
  auto local_ep = endpoint::parse(local);
  auto peer_ep = endpoint::parse(peer);
  if (!local_ep || !peer_ep) return std::nullopt;
  row.local = *local_ep;
  row.peer = *peer_ep;
  return row;
}

/// Reads stderr up to the connection table's header line, then its first `rows` rows.
inline std::vector<table_row> read_connection_table(child_process& server, std::size_t rows,
                                                    std::chrono::milliseconds limit) {
  static const std::regex header(
      R"(\s*id\s+fd\s+thread\s+local\s+peer\s+bytes_in\s+bytes_out\s+age_s\s*)");
  const auto deadline = std::chrono::steady_clock::now() + limit;
  bool seen_header = false;
  std::vector<table_row> table;
  while (!seen_header || table.size() < rows) {
    const auto line = server.read_stderr_line(left_until(deadline));
    REQUIRE_MESSAGE(line, "no full connection table on stderr in time: header "
                              << seen_header << ", " << table.size() << " row(s)");
    if (!seen_header) {
      seen_header = std::regex_match(*line, header);
    } else if (auto row = parse_row(*line)) {
      table.push_back(*row);
    }
  }
  return table;
}

}  // namespace coronet::test
