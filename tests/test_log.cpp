#include <doctest/doctest.h>

#include <spdlog/spdlog.h>

#include "coronet/log.hpp"

TEST_CASE("log: one logger named coronet - registered with spdlog - level set by the host") {
  auto& logger = coronet::log();
  CHECK(logger.name() == "coronet");
  CHECK(spdlog::get("coronet").get() == &logger);
  const auto before = logger.level();
  coronet::set_log_level(spdlog::level::debug);
  CHECK(logger.level() == spdlog::level::debug);
  CHECK(logger.should_log(spdlog::level::debug));
  coronet::set_log_level(spdlog::level::off);
  CHECK_FALSE(logger.should_log(spdlog::level::critical));
  coronet::set_log_level(before);
}

TEST_CASE("log: level names parse - others are an error value") {
  CHECK(coronet::parse_log_level("trace").value() == spdlog::level::trace);
  CHECK(coronet::parse_log_level("warn").value() == spdlog::level::warn);
  CHECK(coronet::parse_log_level("error").value() == spdlog::level::err);
  CHECK(coronet::parse_log_level("off").value() == spdlog::level::off);
  CHECK(coronet::parse_log_level("loud").error() == std::errc::invalid_argument);
  CHECK_FALSE(coronet::parse_log_level(""));
}
