#include "coronet/log.hpp"

#include <array>
#include <mutex>
#include <utility>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace coronet {

spdlog::logger& log() {
  // The shared_ptr is kept here so that the reference stays valid even if the host drops the
  // logger from spdlog's registry.
  static const std::shared_ptr<spdlog::logger> logger = [] {
    if (auto existing = spdlog::get("coronet")) return existing;
    auto created = spdlog::stderr_color_mt("coronet");
    created->set_level(spdlog::level::info);
    return created;
  }();
  return *logger;
}

void set_log_level(spdlog::level::level_enum level) { log().set_level(level); }

result<spdlog::level::level_enum> parse_log_level(std::string_view text) {
  static constexpr std::array<std::pair<std::string_view, spdlog::level::level_enum>, 7> names{{
      {"trace", spdlog::level::trace},
      {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},
      {"warn", spdlog::level::warn},
      {"error", spdlog::level::err},
      {"critical", spdlog::level::critical},
      {"off", spdlog::level::off},
  }};
  for (const auto& [name, level] : names) {
    if (name == text) return level;
  }
  return std::make_error_code(std::errc::invalid_argument);
}

}  // namespace coronet
