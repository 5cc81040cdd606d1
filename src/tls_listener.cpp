#include "coronet/tls_listener.hpp"

#include <stdexcept>
#include <utility>

namespace coronet {

tls_listener tls_listener::bind(const asio::any_io_executor& executor, const endpoint& local,
                                tls_context context, listen_options options) {
  if (!context.is_server()) {
    throw std::invalid_argument("cannot listen for TLS on " + local.to_string() +
                                " with a client context: make it with tls_context::server()");
  }
  return tls_listener(tcp_listener::bind(executor, local, options), std::move(context));
}

asio::awaitable<result<tls_stream>> tls_listener::accept(call_timeout limit,
                                                         source_location where) {
  auto tcp = co_await tcp_.accept(limit, where);
  if (!tcp) co_return tcp.error();
  co_return tls_stream(std::move(*tcp), context_);
}

asio::awaitable<result<tls_stream>> tls_listener::accept(const asio::any_io_executor& target,
                                                         call_timeout limit,
                                                         source_location where) {
  auto tcp = co_await tcp_.accept(target, limit, where);
  if (!tcp) co_return tcp.error();
  co_return tls_stream(std::move(*tcp), context_);
}

}  // namespace coronet
