#include "coronet/sleep.hpp"

#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>

#include "coronet/detail/io.hpp"
#include "coronet/detail/observer.hpp"

namespace coronet {

asio::awaitable<result<void>> sleep(timeout::duration how_long, source_location where) {
  asio::steady_timer timer(co_await asio::this_coro::executor, how_long);
  detail::wait_slot waits;
  detail::wait_scope waiting(waits, detail::wait_side::receive, detail::wait_kind::timer, -1,
                             where);
  auto [ec] = co_await timer.async_wait(detail::use_nothrow);
  co_return detail::to_coronet_error(ec);
}

}  // namespace coronet
