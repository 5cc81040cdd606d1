#include "coronet/basic_stream.hpp"

#include <asio/read.hpp>
#include <asio/write.hpp>

#include "coronet/detail/io.hpp"
#include "coronet/detail/timed.hpp"

namespace coronet {
template <class AsioSocket>
asio::awaitable<io_result> basic_stream<AsioSocket>::send(asio::const_buffer data,
                                                          call_timeout limit) {
  auto [ec, n] = co_await detail::with_limit(
      [&](auto token) { return this->socket_.async_write_some(data, std::move(token)); },
      this->limit_for(limit));
  co_return counted_sent(ec, n);
}

template <class AsioSocket>
asio::awaitable<io_result> basic_stream<AsioSocket>::send_all(asio::const_buffer data,
                                                              call_timeout limit) {
  auto [ec, n] = co_await detail::with_limit(
      [&](auto token) { return asio::async_write(this->socket_, data, std::move(token)); },
      this->limit_for(limit));
  co_return counted_sent(ec, n);
}

template <class AsioSocket>
asio::awaitable<io_result> basic_stream<AsioSocket>::recv(asio::mutable_buffer buffer,
                                                          call_timeout limit) {
  auto [ec, n] = co_await detail::with_limit(
      [&](auto token) { return this->socket_.async_read_some(buffer, std::move(token)); },
      this->limit_for(limit));
  co_return counted_received(ec, n);
}

template <class AsioSocket>
asio::awaitable<io_result> basic_stream<AsioSocket>::recv_exact(asio::mutable_buffer buffer,
                                                                call_timeout limit) {
  auto [ec, n] = co_await detail::with_limit(
      [&](auto token) { return asio::async_read(this->socket_, buffer, std::move(token)); },
      this->limit_for(limit));
  co_return counted_received(ec, n);
}

template <class AsioSocket>
result<void> basic_stream<AsioSocket>::shutdown(shutdown_type what) {
  std::error_code ec;
  this->socket_.shutdown(detail::to_asio(what), ec);
  return detail::to_coronet_error(ec);
}

template class basic_stream<asio::ip::tcp::socket>;
template class basic_stream<asio::local::stream_protocol::socket>;

}  // namespace coronet
