#pragma once
// Completion token adapters that convert an operation's outcome to coronet's before the inner
// token sees it:
// - as_io_result: a receive's (error_code, bytes) to io_result, counting the bytes received;
// - as_void_result: a wait's (error_code) to result<void>.
// Both end the receive-side wait the operation's caller began (a detail::wait_ref they hold).
// With use_awaitable inside, `socket.async_read_some(buffer, as_io_result{...})` is already the
// awaitable<io_result> that recv() returns: no coroutine of coronet's own in between, so no
// frame to allocate, resume and destroy per operation, nor to hold while a connection waits.

#include <cstddef>
#include <system_error>
#include <type_traits>
#include <utility>

#include <asio/associator.hpp>
#include <asio/async_result.hpp>
#include <asio/detail/handler_cont_helpers.hpp>

#include "coronet/byte_counters.hpp"
#include "coronet/detail/io.hpp"
#include "coronet/detail/observer.hpp"
#include "coronet/result.hpp"

namespace coronet::detail {

// The token: the inner token, and where the bytes are counted: the address of the stream's
// counters when the operation starts. The handler reads nothing of the stream, so a stream
// closed and destroyed under a receive is not read after it is gone: the receive the close
// cancelled carries no bytes and counts nothing. (One that completed before the close counts
// into counters that must outlive it, as a server's table does.) A shared_ptr here would keep
// the counters alive too, but its copy and Asio's moves of the handler cost about 65
// instructions per message, 3.6% of an echo (benchmarks/instructions.sh, 11 runs each).
template <class Token>
struct as_io_result {
  Token token;
  byte_counters* counters;
  wait_ref wait;
};

// The handler the operation completes: counts, converts, and hands on.
template <class Handler>
struct io_result_handler {
  Handler handler;
  byte_counters* counters;
  wait_ref wait;

  void operator()(const std::error_code& ec, std::size_t bytes) {
    wait.reset();
    if (bytes != 0 && counters != nullptr) counters->add_received(bytes);
    auto error = to_coronet_error(ec);
    observe_received(error, bytes);
    std::move(handler)(io_result(bytes, error));
  }
};

template <class Token>
struct as_void_result {
  Token token;
  wait_ref wait;
};

template <class Handler>
struct void_result_handler {
  Handler handler;
  wait_ref wait;

  void operator()(const std::error_code& ec) {
    wait.reset();
    auto error = to_coronet_error(ec);
    observe_received(error, 0);
    std::move(handler)(result<void>(error));
  }
};

// A continuation of the inner handler's coroutine stays one (Asio schedules it accordingly).
template <class Handler>
bool asio_handler_is_continuation(io_result_handler<Handler>* h) {
  return asio_handler_cont_helpers::is_continuation(h->handler);
}
template <class Handler>
bool asio_handler_is_continuation(void_result_handler<Handler>* h) {
  return asio_handler_cont_helpers::is_continuation(h->handler);
}

}  // namespace coronet::detail

namespace asio {

template <class Token>
struct async_result<coronet::detail::as_io_result<Token>, void(std::error_code, std::size_t)>
    : async_result<Token, void(coronet::io_result)> {
  template <class Initiation, class RawToken, class... Args>
  static auto initiate(Initiation&& initiation, RawToken&& token, Args&&... args) {
    return async_initiate<Token, void(coronet::io_result)>(
        [initiation = std::forward<Initiation>(initiation), counters = token.counters,
         wait = std::move(token.wait)](auto&& handler, auto&&... rest) mutable {
          using handler_type = std::decay_t<decltype(handler)>;
          std::move(initiation)(
              coronet::detail::io_result_handler<handler_type>{
                  std::forward<decltype(handler)>(handler), counters, std::move(wait)},
              std::forward<decltype(rest)>(rest)...);
        },
        token.token, std::forward<Args>(args)...);
  }
};

template <class Token>
struct async_result<coronet::detail::as_void_result<Token>, void(std::error_code)>
    : async_result<Token, void(coronet::result<void>)> {
  template <class Initiation, class RawToken, class... Args>
  static auto initiate(Initiation&& initiation, RawToken&& token, Args&&... args) {
    return async_initiate<Token, void(coronet::result<void>)>(
        [initiation = std::forward<Initiation>(initiation), wait = std::move(token.wait)](
            auto&& handler, auto&&... rest) mutable {
          using handler_type = std::decay_t<decltype(handler)>;
          std::move(initiation)(
              coronet::detail::void_result_handler<handler_type>{
                  std::forward<decltype(handler)>(handler), std::move(wait)},
              std::forward<decltype(rest)>(rest)...);
        },
        token.token, std::forward<Args>(args)...);
  }
};

// The inner handler's executor, allocator and cancellation slot are the adapter's.
template <template <class, class> class Associator, class Handler, class Default>
struct associator<Associator, coronet::detail::io_result_handler<Handler>, Default>
    : Associator<Handler, Default> {
  static typename Associator<Handler, Default>::type get(
      const coronet::detail::io_result_handler<Handler>& h, const Default& d = Default()) noexcept {
    return Associator<Handler, Default>::get(h.handler, d);
  }
};
template <template <class, class> class Associator, class Handler, class Default>
struct associator<Associator, coronet::detail::void_result_handler<Handler>, Default>
    : Associator<Handler, Default> {
  static typename Associator<Handler, Default>::type get(
      const coronet::detail::void_result_handler<Handler>& h,
      const Default& d = Default()) noexcept {
    return Associator<Handler, Default>::get(h.handler, d);
  }
};

}  // namespace asio
