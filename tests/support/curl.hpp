#pragma once
// curl_get: an HTTP GET through the curl program, a client that is not coronet's own.

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "support/child_process.hpp"
#include "support/run.hpp"

namespace coronet::test {

/// What curl fetched: the status line and headers, and the body.
struct fetched {
  std::string head;
  std::string body;
};

/// GETs `path` from `server` with /usr/bin/curl (and `extra` arguments); the test fails unless
/// curl exits 0 within 10 s.
inline fetched curl_get(const endpoint& server, const std::string& path,
                        const std::vector<std::string>& extra = {}) {
  temp_dir dir;
  const auto head_file = (dir.path() / "head").string();
  const auto body_file = (dir.path() / "body").string();
  std::vector<std::string> args{"-s", "--max-time", "10", "-D", head_file, "-o", body_file};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back("http://" + server.to_string() + path);
  const auto outcome = run_to_exit("/usr/bin/curl", args, std::chrono::seconds(15));
  REQUIRE_MESSAGE(outcome.exit_code == 0, "curl: " << outcome.err);
  auto slurp = [](const std::string& file) {
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  };
  return {slurp(head_file), slurp(body_file)};
}

}  // namespace coronet::test
