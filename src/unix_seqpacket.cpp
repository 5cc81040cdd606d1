#include "coronet/unix_seqpacket.hpp"

#include <sys/socket.h>

#include <asio/this_coro.hpp>

#include "coronet/detail/io.hpp"
#include "coronet/detail/native_endpoint.hpp"
#include "coronet/detail/timed.hpp"

namespace coronet {
namespace {

using seqpacket_protocol = asio::generic::seq_packet_protocol;

seqpacket_protocol unix_seqpacket_protocol() { return {AF_UNIX, 0}; }

}  // namespace

unix_seqpacket::unix_seqpacket(seqpacket_protocol::socket socket) noexcept
    : basic_socket(std::move(socket)) {
  std::error_code ignored;
  local_ = detail::from_native(socket_.local_endpoint(ignored));
  remote_ = detail::from_native(socket_.remote_endpoint(ignored));
}

asio::awaitable<result<unix_seqpacket>> unix_seqpacket::connect(endpoint remote, timeout limit,
                                                                source_location where) {
  if (!remote.is_unix_domain()) co_return make_error_code(errc::wrong_address_family);
  seqpacket_protocol::socket socket(co_await asio::this_coro::executor);
  std::error_code ec;
  socket.open(unix_seqpacket_protocol(), ec);
  if (ec) co_return detail::to_coronet_error(ec);
  const auto native = detail::to_native(remote, detail::protocol_tag<seqpacket_protocol>{});
  detail::wait_slot waits;
  detail::wait_scope waiting(waits, detail::wait_side::send, detail::wait_kind::connect,
                             socket.native_handle(), where);
  std::tie(ec) = co_await detail::with_limit(
      [&](auto token) { return socket.async_connect(native, std::move(token)); }, limit);
  if (ec) co_return detail::to_coronet_error(ec);
  co_return unix_seqpacket(std::move(socket));
}

std::pair<unix_seqpacket, unix_seqpacket> unix_seqpacket::socket_pair(
    const asio::any_io_executor& executor) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    detail::throw_setup_error({errno, std::system_category()}, "create",
                              "a Unix seqpacket socket pair");
  }
  seqpacket_protocol::socket a(executor, unix_seqpacket_protocol(), fds[0]);
  seqpacket_protocol::socket b(executor, unix_seqpacket_protocol(), fds[1]);
  return {unix_seqpacket(std::move(a)), unix_seqpacket(std::move(b))};
}

asio::awaitable<io_result> unix_seqpacket::send(asio::const_buffer message, call_timeout limit,
                                                source_location where) {
  if (message.size() == 0)
    co_return io_result(0, std::make_error_code(std::errc::invalid_argument));
  detail::wait_scope waiting(waits_, detail::wait_side::send, detail::wait_kind::send,
                             native_handle(), where);
  auto [ec, n] = co_await detail::with_limit(
      [&](auto token) { return socket_.async_send(message, 0, std::move(token)); },
      limit_for(limit));
  auto error = detail::to_coronet_error(ec);
  detail::observe_sent(error, n);
  co_return io_result(n, error);
}

asio::awaitable<datagram_result> unix_seqpacket::recv(asio::mutable_buffer buffer,
                                                      call_timeout limit, source_location where) {
  asio::socket_base::message_flags received_flags = 0;
  detail::wait_scope waiting(waits_, detail::wait_side::receive, detail::wait_kind::recv,
                             native_handle(), where);
  // MSG_TRUNC: the kernel returns the message's real length, so truncation is reported.
  auto [ec, n] = co_await detail::with_limit(
      [&](auto token) {
        return socket_.async_receive(buffer, MSG_TRUNC, received_flags, std::move(token));
      },
      limit_for(limit));
  const auto error = detail::to_coronet_error(ec);
  detail::observe_received(error, n);
  if (error) co_return datagram_result(error);
  if (n == 0) co_return datagram_result(make_error_code(errc::eof));  // send() refuses empty ones
  if (n > buffer.size()) {
    co_return datagram_result(buffer.size(), n, remote_, make_error_code(errc::datagram_truncated));
  }
  co_return datagram_result(n, n, remote_);
}

result<void> unix_seqpacket::shutdown(shutdown_type what) {
  std::error_code ec;
  socket_.shutdown(detail::to_asio(what), ec);
  return detail::to_coronet_error(ec);
}

}  // namespace coronet
