#pragma once
// log_capture: what the coronet logger writes while one lives, for tests that check logging.

#include <memory>
#include <mutex>
#include <string>

#include <spdlog/sinks/base_sink.h>

#include "coronet/log.hpp"

namespace coronet::test {

/// Adds a sink to the coronet logger for its lifetime. Create it before any other thread logs
/// (the logger's sink list is not itself thread-safe); text() is safe from any thread.
class log_capture {
 public:
  log_capture() : sink_(std::make_shared<sink>()) { coronet::log().sinks().push_back(sink_); }
  log_capture(const log_capture&) = delete;
  log_capture& operator=(const log_capture&) = delete;
  ~log_capture() { coronet::log().sinks().pop_back(); }
  std::string text() const { return sink_->text(); }

 private:
  // Keeps lines in a string under the sink's own lock, so that a test may read them while
  // runtime threads log.
  class sink : public spdlog::sinks::base_sink<std::mutex> {
   public:
    std::string text() {
      std::lock_guard lock(mutex_);
      return text_;
    }

   protected:
    void sink_it_(const spdlog::details::log_msg& message) override {
      spdlog::memory_buf_t line;
      formatter_->format(message, line);
      text_.append(line.data(), line.size());
    }
    void flush_() override {}

   private:
    std::string text_;
  };

  std::shared_ptr<sink> sink_;
};

}  // namespace coronet::test
