#include "coronet/spawn.hpp"

#include <exception>
#include <utility>

#include <asio/co_spawn.hpp>
#include <asio/post.hpp>

#include "coronet/detail/readiness.hpp"
#include "coronet/log.hpp"
#include "detail/log_task_end.hpp"

namespace coronet {
namespace {

// A task spawned on its own: logs what escaped it, and goes with it.
struct named_task final : detail::spawned_task {
  named_task(std::string n, detail::readiness& r) : name(std::move(n)), readiness(r) {}

  void task_ended(std::exception_ptr error) noexcept override {
    readiness.forget(*this);
    detail::log_task_end(name, std::move(error));
    delete this;
  }
  void abandoned() noexcept override { delete this; }

  std::string name;
  detail::readiness& readiness;
};

// The start on its way to the context's thread: the frame is destroyed if it never gets there.
class pending_start {
 public:
  pending_start(coronet::task<void> t, std::string n) : task_(std::move(t)), name_(std::move(n)) {}

  void operator()(asio::io_context& context) {
    auto& readiness = detail::readiness::of(context);
    auto* spawned = new named_task(std::move(name_), readiness);
    spawned->frame = task_.release();
    readiness.start(*spawned);
  }

 private:
  coronet::task<void> task_;
  std::string name_;
};

}  // namespace

void spawn(const asio::any_io_executor& executor, asio::awaitable<void> task, std::string name) {
  asio::co_spawn(executor, std::move(task), [name = std::move(name)](std::exception_ptr error) {
    if (!error) return;
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      log().error("{}: {}", name, e.what());
    } catch (...) {
      log().error("{}: unknown exception", name);
    }
  });
}

void spawn(asio::io_context& context, coronet::task<void> task, std::string name) {
  asio::post(context,
             [&context, start = pending_start(std::move(task), std::move(name))]() mutable {
               start(context);
             });
}

}  // namespace coronet
