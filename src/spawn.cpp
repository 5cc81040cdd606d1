#include "coronet/spawn.hpp"

#include <exception>
#include <utility>

#include <asio/co_spawn.hpp>

#include "coronet/log.hpp"

namespace coronet {

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

}  // namespace coronet
