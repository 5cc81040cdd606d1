#include "coronet/basic_listener.hpp"

#include <utility>

#include "coronet/detail/io.hpp"
#include "coronet/detail/timed.hpp"
#include "coronet/tcp_listener.hpp"
#include "coronet/unix_listener.hpp"
#include "coronet/unix_seqpacket_listener.hpp"

namespace coronet {

template <class Protocol, class Stream>
asio::awaitable<result<Stream>> basic_listener<Protocol, Stream>::accept(call_timeout limit,
                                                                         source_location where) {
  detail::wait_scope waiting(this->waits_, detail::wait_side::receive, detail::wait_kind::accept,
                             this->native_handle(), where);
  auto [ec, socket] = co_await detail::with_limit(
      [&](auto token) { return this->socket_.async_accept(std::move(token)); },
      this->limit_for(limit));
  if (ec) co_return detail::to_coronet_error(ec);
  co_return Stream(std::move(socket));
}

template <class Protocol, class Stream>
asio::awaitable<result<Stream>> basic_listener<Protocol, Stream>::accept(
    const asio::any_io_executor& target, call_timeout limit, source_location where) {
  detail::wait_scope waiting(this->waits_, detail::wait_side::receive, detail::wait_kind::accept,
                             this->native_handle(), where);
  auto [ec, socket] = co_await detail::with_limit(
      [&](auto token) { return this->socket_.async_accept(target, std::move(token)); },
      this->limit_for(limit));
  if (ec) co_return detail::to_coronet_error(ec);
  co_return Stream(std::move(socket));
}

template <class Protocol, class Stream>
asio::awaitable<result<void>> basic_listener<Protocol, Stream>::wait_for_connection(
    call_timeout limit, source_location where) {
  detail::wait_scope waiting(this->waits_, detail::wait_side::receive, detail::wait_kind::accept,
                             this->native_handle(), where);
  auto [ec] = co_await detail::with_limit(
      [&](auto token) {
        return this->socket_.async_wait(asio::socket_base::wait_read, std::move(token));
      },
      this->limit_for(limit));
  co_return detail::to_coronet_error(ec);
}

template class basic_listener<asio::ip::tcp, tcp_stream>;
template class basic_listener<asio::local::stream_protocol, unix_stream>;
template class basic_listener<asio::generic::seq_packet_protocol, unix_seqpacket>;

}  // namespace coronet
