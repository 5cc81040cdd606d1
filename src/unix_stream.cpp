#include "coronet/unix_stream.hpp"

#include <asio/local/connect_pair.hpp>
#include <asio/this_coro.hpp>

#include "coronet/detail/io.hpp"
#include "coronet/detail/native_endpoint.hpp"
#include "coronet/detail/timed.hpp"

namespace coronet {

unix_stream::unix_stream(asio::local::stream_protocol::socket socket) noexcept
    : basic_stream(std::move(socket)) {
  std::error_code ignored;
  local_ = detail::from_native(socket_.local_endpoint(ignored));
  remote_ = detail::from_native(socket_.remote_endpoint(ignored));
}

asio::awaitable<result<unix_stream>> unix_stream::connect(endpoint remote, timeout limit,
                                                          source_location where) {
  using protocol = asio::local::stream_protocol;
  if (!remote.is_unix_domain()) co_return make_error_code(errc::wrong_address_family);
  protocol::socket socket(co_await asio::this_coro::executor);
  std::error_code opened;
  socket.open(protocol(), opened);  // now, so that the wait below names its descriptor
  if (opened) co_return detail::to_coronet_error(opened);
  const auto native = detail::to_native(remote, detail::protocol_tag<protocol>{});
  detail::wait_slot waits;
  detail::wait_scope waiting(waits, detail::wait_side::send, detail::wait_kind::connect,
                             socket.native_handle(), where);
  auto [ec] = co_await detail::with_limit(
      [&](auto token) { return socket.async_connect(native, std::move(token)); }, limit);
  if (ec) co_return detail::to_coronet_error(ec);
  co_return unix_stream(std::move(socket));
}

std::pair<unix_stream, unix_stream> unix_stream::socket_pair(
    const asio::any_io_executor& executor) {
  asio::local::stream_protocol::socket a(executor);
  asio::local::stream_protocol::socket b(executor);
  std::error_code ec;
  asio::local::connect_pair(a, b, ec);
  if (ec) detail::throw_setup_error(ec, "create", "a Unix stream socket pair");
  return {unix_stream(std::move(a)), unix_stream(std::move(b))};
}

}  // namespace coronet
