#include "coronet/tcp_stream.hpp"

#include <utility>

#include <asio/read.hpp>
#include <asio/this_coro.hpp>
#include <asio/write.hpp>

#include "coronet/detail/io.hpp"

namespace coronet {
namespace {

asio::socket_base::shutdown_type to_asio(shutdown_type what) noexcept {
  switch (what) {
    case shutdown_type::receive: return asio::socket_base::shutdown_receive;
    case shutdown_type::send: return asio::socket_base::shutdown_send;
    case shutdown_type::both: break;
  }
  return asio::socket_base::shutdown_both;
}

}  // namespace

tcp_stream::tcp_stream(asio::ip::tcp::socket socket) noexcept : basic_socket(std::move(socket)) {
  // Read once, here: after a reset getpeername() fails, yet logs still want the peer.
  std::error_code ignored;
  local_ = socket_.local_endpoint(ignored);
  remote_ = socket_.remote_endpoint(ignored);
}

asio::awaitable<result<tcp_stream>> tcp_stream::connect(endpoint remote, connect_options options) {
  asio::ip::tcp::socket socket(co_await asio::this_coro::executor);
  std::error_code ec;
  socket.open(remote.tcp().protocol(), ec);
  if (ec) co_return detail::to_coronet_error(ec);
  if (options.local) {
    socket.bind(options.local->tcp(), ec);
    if (ec) co_return detail::to_coronet_error(ec);
  }
  std::tie(ec) = co_await socket.async_connect(remote.tcp(), detail::use_nothrow);
  if (ec) co_return detail::to_coronet_error(ec);
  co_return tcp_stream(std::move(socket));
}

asio::awaitable<result<tcp_stream>> tcp_stream::connect(std::string host_port,
                                                        connect_options options) {
  auto addresses = co_await resolve(std::move(host_port));
  if (!addresses) co_return addresses.error();
  std::error_code last_error;
  for (const auto& address : *addresses) {
    auto stream = co_await connect(address, options);
    if (stream) co_return stream;
    last_error = stream.error();
  }
  co_return last_error;
}

asio::awaitable<io_result> tcp_stream::send(asio::const_buffer data) {
  auto [ec, n] = co_await socket_.async_write_some(data, detail::use_nothrow);
  co_return io_result(n, detail::to_coronet_error(ec));
}

asio::awaitable<io_result> tcp_stream::send_all(asio::const_buffer data) {
  auto [ec, n] = co_await asio::async_write(socket_, data, detail::use_nothrow);
  co_return io_result(n, detail::to_coronet_error(ec));
}

asio::awaitable<io_result> tcp_stream::recv(asio::mutable_buffer buffer) {
  auto [ec, n] = co_await socket_.async_read_some(buffer, detail::use_nothrow);
  co_return io_result(n, detail::to_coronet_error(ec));
}

asio::awaitable<io_result> tcp_stream::recv_exact(asio::mutable_buffer buffer) {
  auto [ec, n] = co_await asio::async_read(socket_, buffer, detail::use_nothrow);
  co_return io_result(n, detail::to_coronet_error(ec));
}

result<void> tcp_stream::shutdown(shutdown_type what) {
  std::error_code ec;
  socket_.shutdown(to_asio(what), ec);
  return detail::to_coronet_error(ec);
}

}  // namespace coronet
