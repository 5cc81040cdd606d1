#include <doctest/doctest.h>

#include <memory>
#include <sstream>
#include <stdexcept>

#include "support/log_capture.hpp"
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

}  // namespace

TEST_CASE("spawn: an exception escaping the task is logged with the task's name - not lost") {
  const coronet::test::log_capture captured;
  asio::io_context context;
  bool started = false;
  coronet::spawn(context.get_executor(), fails(started), "session 7");
  CHECK_NOTHROW(context.run_for(std::chrono::seconds(5)));
  CHECK(started);
  CHECK(captured.text().find("session 7: the session broke") != std::string::npos);
  CHECK(captured.text().find("[error]") != std::string::npos);
}

TEST_CASE("spawn: a task that ends normally logs nothing") {
  const coronet::test::log_capture captured;
  asio::io_context context;
  bool finished = false;
  coronet::spawn(context.get_executor(), succeeds(finished), "quiet");
  context.run_for(std::chrono::seconds(5));
  CHECK(finished);
  CHECK(captured.text().empty());
}
