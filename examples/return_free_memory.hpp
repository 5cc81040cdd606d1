#pragma once
// return_free_memory(): the servers' periodic malloc_trim, shared by chat_server and
// echo_server.

#include <malloc.h>

#include <chrono>

#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

namespace coronet_examples {

// Every few seconds, hands the heap's free pages back to the system. A burst (a flood of long
// lines, a client dropped with megabytes queued, thousands of connections come and gone)
// leaves free memory scattered between live blocks, which glibc's malloc keeps mapped; without
// this a server's resident size would stay near its highest point rather than follow what it
// holds. Runs until its executor stops.
inline asio::awaitable<void> return_free_memory() {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(std::chrono::seconds(2));
    co_await timer.async_wait(asio::use_awaitable);
    (void)::malloc_trim(0);
  }
}

}  // namespace coronet_examples
