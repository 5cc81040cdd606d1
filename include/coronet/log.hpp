#pragma once
// coronet's logger: a spdlog logger named "coronet", writing to stderr.
//
// coronet logs connection-level events (accept failures, sessions ending with an error) at
// debug or above and never logs above debug level on the per-message path. The host program
// sets the level, or replaces the logger with its own under the same name.

#include <memory>
#include <string_view>

#include <spdlog/logger.h>

#include "coronet/result.hpp"

namespace coronet {

/// The "coronet" logger. Created on first use (stderr, level info) and registered with spdlog,
/// so `spdlog::get("coronet")` finds it too; if the host registered a logger of that name
/// first, that one is used.
/// Thread safety: safe from any thread, and so is logging through it: coronet creates a
/// thread-safe (_mt) logger, and one the host registers must be thread-safe too.
spdlog::logger& log();

/// Sets the coronet logger's level. Thread safety: safe from any thread.
void set_log_level(spdlog::level::level_enum level);

/// Parses trace, debug, info, warn, error, critical or off.
/// Errors: std::errc::invalid_argument for any other text.
/// Thread safety: safe from any thread.
result<spdlog::level::level_enum> parse_log_level(std::string_view text);

}  // namespace coronet
