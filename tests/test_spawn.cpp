#include <doctest/doctest.h>

#include <memory>
#include <sstream>
#include <stdexcept>

#include <spdlog/sinks/ostream_sink.h>

#include "support/run.hpp"

namespace {

asio::awaitable<void> fails(bool& started) {
  started = true;
  throw std::runtime_error("the session broke");
  co_return;
}

asio::awaitable<void> succeeds(bool& finished) {
  finished = true;
  co_return;
}

// Captures what the coronet logger writes while it lives.
class log_capture {
 public:
  log_capture() : sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(text_)) {
    coronet::log().sinks().push_back(sink_);
  }
  log_capture(const log_capture&) = delete;
  log_capture& operator=(const log_capture&) = delete;
  ~log_capture() { coronet::log().sinks().pop_back(); }
  std::string text() const { return text_.str(); }

 private:
  std::ostringstream text_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
};

}  // namespace

TEST_CASE("spawn: an exception escaping the task is logged with the task's name - not lost") {
  const log_capture captured;
  asio::io_context context;
  bool started = false;
  coronet::spawn(context.get_executor(), fails(started), "session 7");
  CHECK_NOTHROW(context.run_for(std::chrono::seconds(5)));
  CHECK(started);
  CHECK(captured.text().find("session 7: the session broke") != std::string::npos);
  CHECK(captured.text().find("[error]") != std::string::npos);
}

TEST_CASE("spawn: a task that ends normally logs nothing") {
  const log_capture captured;
  asio::io_context context;
  bool finished = false;
  coronet::spawn(context.get_executor(), succeeds(finished), "quiet");
  context.run_for(std::chrono::seconds(5));
  CHECK(finished);
  CHECK(captured.text().empty());
}
