#include "coronet/basic_datagram.hpp"

#include <sys/socket.h>

#include "coronet/detail/io.hpp"
#include "coronet/detail/native_endpoint.hpp"
#include "coronet/detail/timed.hpp"

namespace coronet {
namespace {

// MSG_TRUNC makes the kernel return a datagram's real length even when the buffer was shorter
// (UDP, Unix datagram and seqpacket sockets honour it), so that truncation is reported.
constexpr asio::socket_base::message_flags report_real_size = MSG_TRUNC;

datagram_result received(std::size_t real_size, std::size_t capacity, const endpoint& sender) {
  if (real_size > capacity) {
    return {capacity, real_size, sender, make_error_code(errc::datagram_truncated)};
  }
  return {real_size, real_size, sender};
}

// A send's outcome, counted for a runtime that observes.
io_result sent(const std::error_code& ec, std::size_t n) {
  auto error = detail::to_coronet_error(ec);
  detail::observe_sent(error, n);
  return io_result(n, error);
}

// A receive's failure, counted likewise.
datagram_result failed(const std::error_code& ec) {
  auto error = detail::to_coronet_error(ec);
  detail::observe_received(error, 0);
  return datagram_result(error);
}

// The address of "nobody" in this protocol's family: 0.0.0.0:0, or `unix:` (unnamed).
template <class Protocol>
endpoint no_address() {
  return detail::from_native(typename Protocol::endpoint());
}

}  // namespace

template <class Protocol>
basic_datagram<Protocol>::basic_datagram(typename Protocol::socket socket) noexcept
    : basic_socket<typename Protocol::socket>(std::move(socket)) {
  std::error_code not_connected;
  const auto peer = this->socket_.remote_endpoint(not_connected);
  if (!not_connected) remote_ = detail::from_native(peer);
}

template <class Protocol>
result<void> basic_datagram<Protocol>::connect(const endpoint& remote) {
  if (!detail::fits(remote, detail::protocol_tag<Protocol>{})) {
    return make_error_code(errc::wrong_address_family);
  }
  std::error_code ec;
  this->socket_.connect(detail::to_native(remote, detail::protocol_tag<Protocol>{}), ec);
  if (ec) return detail::to_coronet_error(ec);
  remote_ = remote;
  return {};
}

template <class Protocol>
asio::awaitable<io_result> basic_datagram<Protocol>::send_to(asio::const_buffer datagram,
                                                             const endpoint& to, call_timeout limit,
                                                             source_location where) {
  if (!detail::fits(to, detail::protocol_tag<Protocol>{})) {
    co_return io_result(0, make_error_code(errc::wrong_address_family));
  }
  const auto native = detail::to_native(to, detail::protocol_tag<Protocol>{});
  detail::wait_scope waiting(this->waits_, detail::wait_side::send, detail::wait_kind::send,
                             this->native_handle(), where);
  auto [ec, n] = co_await detail::with_limit(
      [&](auto token) { return this->socket_.async_send_to(datagram, native, std::move(token)); },
      this->limit_for(limit));
  co_return sent(ec, n);
}

template <class Protocol>
asio::awaitable<datagram_result> basic_datagram<Protocol>::recv_from(asio::mutable_buffer buffer,
                                                                     call_timeout limit,
                                                                     source_location where) {
  typename Protocol::endpoint sender;
  detail::wait_scope waiting(this->waits_, detail::wait_side::receive, detail::wait_kind::recv,
                             this->native_handle(), where);
  auto [ec, n] = co_await detail::with_limit(
      [&](auto token) {
        return this->socket_.async_receive_from(buffer, sender, report_real_size, std::move(token));
      },
      this->limit_for(limit));
  if (ec) co_return failed(ec);
  detail::observe_received({}, n);
  co_return received(n, buffer.size(), detail::from_native(sender));
}

template <class Protocol>
datagram_result basic_datagram<Protocol>::try_recv_from(asio::mutable_buffer buffer) noexcept {
  typename Protocol::endpoint sender;
  auto size = static_cast<socklen_t>(sender.capacity());
  int error = 0;
  const ssize_t n = detail::nonblocking_call(
      [&] {
        return ::recvfrom(this->native_handle(), buffer.data(), buffer.size(),
                          MSG_DONTWAIT | report_real_size, sender.data(), &size);
      },
      error);
  if (n < 0) {
    // Nothing queued is no failure of the socket's: not counted.
    const std::error_code ec(error, std::system_category());
    if (error == EAGAIN) return datagram_result(ec);
    return failed(ec);
  }
  sender.resize(size);
  detail::observe_received({}, static_cast<std::size_t>(n));
  return received(static_cast<std::size_t>(n), buffer.size(), detail::from_native(sender));
}

template <class Protocol>
io_result basic_datagram<Protocol>::try_send_to(asio::const_buffer datagram,
                                                const endpoint& to) noexcept {
  if (!detail::fits(to, detail::protocol_tag<Protocol>{})) {
    return io_result(0, make_error_code(errc::wrong_address_family));
  }
  const auto native = detail::to_native(to, detail::protocol_tag<Protocol>{});
  int error = 0;
  const ssize_t n = detail::nonblocking_call(
      [&] {
        return ::sendto(this->native_handle(), datagram.data(), datagram.size(),
                        MSG_DONTWAIT | MSG_NOSIGNAL, native.data(),
                        static_cast<socklen_t>(native.size()));
      },
      error);
  if (n < 0) {
    const std::error_code ec(error, std::system_category());
    if (error == EAGAIN) return io_result(0, ec);
    return sent(ec, 0);
  }
  return sent({}, static_cast<std::size_t>(n));
}

template <class Protocol>
asio::awaitable<io_result> basic_datagram<Protocol>::send(asio::const_buffer datagram,
                                                          call_timeout limit,
                                                          source_location where) {
  detail::wait_scope waiting(this->waits_, detail::wait_side::send, detail::wait_kind::send,
                             this->native_handle(), where);
  auto [ec, n] = co_await detail::with_limit(
      [&](auto token) { return this->socket_.async_send(datagram, std::move(token)); },
      this->limit_for(limit));
  co_return sent(ec, n);
}

template <class Protocol>
asio::awaitable<datagram_result> basic_datagram<Protocol>::recv(asio::mutable_buffer buffer,
                                                                call_timeout limit,
                                                                source_location where) {
  detail::wait_scope waiting(this->waits_, detail::wait_side::receive, detail::wait_kind::recv,
                             this->native_handle(), where);
  auto [ec, n] = co_await detail::with_limit(
      [&](auto token) {
        return this->socket_.async_receive(buffer, report_real_size, std::move(token));
      },
      this->limit_for(limit));
  if (ec) co_return failed(ec);
  detail::observe_received({}, n);
  co_return received(n, buffer.size(), remote_ ? *remote_ : no_address<Protocol>());
}

template <class Protocol>
endpoint basic_datagram<Protocol>::local_endpoint() const {
  std::error_code ec;
  const auto native = this->socket_.local_endpoint(ec);
  if (ec) return no_address<Protocol>();
  return detail::from_native(native);
}

template class basic_datagram<asio::ip::udp>;
template class basic_datagram<asio::local::datagram_protocol>;

}  // namespace coronet
