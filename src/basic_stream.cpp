#include "coronet/basic_stream.hpp"

#include <sys/socket.h>

#include <cerrno>

#include <asio/read.hpp>
#include <asio/write.hpp>

#include "coronet/detail/io.hpp"
#include "coronet/detail/timed.hpp"
#include "detail/io_result_token.hpp"

namespace coronet {
namespace {

// One call of `io` (a send(2) or recv(2) with MSG_DONTWAIT): the bytes it moved, or 0 with ec
// set: would_block when the socket is not ready, bad_descriptor for a closed stream, in Asio's
// system category as Asio reports them.
template <class Io>
std::size_t without_waiting(Io io, std::error_code& ec) noexcept {
  int error = 0;
  const ssize_t n = detail::nonblocking_call(io, error);
  if (n < 0) {
    ec.assign(error, asio::error::get_system_category());
    return 0;
  }
  ec.clear();
  return static_cast<std::size_t>(n);
}

// How many bytes of `data` the kernel took at once.
//
// Most sends fit in the socket's buffer, so send() and send_all() try this first and go
// through Asio's reactor (a composed operation, a completion posted to the scheduler and a
// resumption) only for what the kernel did not take.
std::size_t send_now(int fd, asio::const_buffer data, std::error_code& ec) noexcept {
  return without_waiting(
      [&] { return ::send(fd, data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL); }, ec);
}

// The bytes already received, up to the buffer's size: 0 with no error is the peer's close
// (for a non-empty buffer).
std::size_t recv_now(int fd, asio::mutable_buffer buffer, std::error_code& ec) noexcept {
  return without_waiting([&] { return ::recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT); },
                         ec);
}

}  // namespace

// Like recv(): without a limit, Asio's wait itself, with its outcome converted on the way.
template <class AsioSocket>
asio::awaitable<result<void>> basic_stream<AsioSocket>::wait_readable(call_timeout limit,
                                                                      source_location where) {
  const timeout within = this->limit_for(limit);
  if (!within.is_none()) return wait_readable_within(within, where);
  // Ended by the completion handler (as_void_result), which holds the wait.
  auto wait = this->waits_.begin(detail::wait_side::receive, detail::wait_kind::readable,
                                 this->native_handle(), where);
  return this->socket_.async_wait(
      AsioSocket::wait_read,
      detail::as_void_result<asio::use_awaitable_t<>>{asio::use_awaitable, std::move(wait)});
}

template <class AsioSocket>
asio::awaitable<result<void>> basic_stream<AsioSocket>::wait_readable_within(
    timeout limit, source_location where) {
  detail::wait_scope waiting(this->waits_, detail::wait_side::receive, detail::wait_kind::readable,
                             this->native_handle(), where);
  auto [ec] = co_await detail::timed(
      [&](auto token) { return this->socket_.async_wait(AsioSocket::wait_read, std::move(token)); },
      limit);
  auto error = detail::to_coronet_error(ec);
  detail::observe_received(error, 0);
  co_return error;
}

template <class AsioSocket>
io_result basic_stream<AsioSocket>::try_recv(asio::mutable_buffer buffer) noexcept {
  std::error_code ec;
  const std::size_t n = recv_now(this->socket_.native_handle(), buffer, ec);
  if (!ec && n == 0 && buffer.size() > 0) ec = asio::error::eof;
  return counted_received(ec, n);
}

template <class AsioSocket>
io_result basic_stream<AsioSocket>::try_send(asio::const_buffer data) noexcept {
  std::error_code ec;
  const std::size_t n = send_now(this->socket_.native_handle(), data, ec);
  return counted_sent(ec, n);
}

template <class AsioSocket>
asio::awaitable<io_result> basic_stream<AsioSocket>::send(asio::const_buffer data,
                                                          call_timeout limit,
                                                          source_location where) {
  if (data.size() > 0 && may_send_now()) {
    std::error_code ec;
    const std::size_t n = send_now(this->socket_.native_handle(), data, ec);
    if (ec != asio::error::would_block) co_return counted_sent(ec, n);
  }
  detail::wait_scope waiting(this->waits_, detail::wait_side::send, detail::wait_kind::send,
                             this->native_handle(), where);
  auto [ec, n] = co_await detail::with_limit(
      [&](auto token) { return this->socket_.async_write_some(data, std::move(token)); },
      this->limit_for(limit));
  co_return counted_sent(ec, n);
}

template <class AsioSocket>
asio::awaitable<io_result> basic_stream<AsioSocket>::send_all(asio::const_buffer data,
                                                              call_timeout limit,
                                                              source_location where) {
  std::size_t sent_now = 0;
  if (data.size() > 0 && may_send_now()) {
    std::error_code ec;
    sent_now = send_now(this->socket_.native_handle(), data, ec);
    if (ec != asio::error::would_block && (ec || sent_now == data.size())) {
      co_return counted_sent(ec, sent_now);
    }
    data += sent_now;
  }
  detail::wait_scope waiting(this->waits_, detail::wait_side::send, detail::wait_kind::send,
                             this->native_handle(), where);
  auto [ec, n] = co_await detail::with_limit(
      [&](auto token) { return asio::async_write(this->socket_, data, std::move(token)); },
      this->limit_for(limit));
  co_return counted_sent(ec, sent_now + n);
}

// Without a limit, recv() is no coroutine of its own: the awaitable it returns is Asio's
// operation, whose completion is converted to io_result and counted on the way (as_io_result).
template <class AsioSocket>
asio::awaitable<io_result> basic_stream<AsioSocket>::recv(asio::mutable_buffer buffer,
                                                          call_timeout limit,
                                                          source_location where) {
  const timeout within = this->limit_for(limit);
  if (!within.is_none()) return recv_within(buffer, within, where);
  // Ended by the completion handler (as_io_result), which holds the wait.
  auto wait = this->waits_.begin(detail::wait_side::receive, detail::wait_kind::recv,
                                 this->native_handle(), where);
  return this->socket_.async_read_some(
      buffer, detail::as_io_result<asio::use_awaitable_t<>>{asio::use_awaitable, counters_.get(),
                                                            std::move(wait)});
}

template <class AsioSocket>
asio::awaitable<io_result> basic_stream<AsioSocket>::recv_within(asio::mutable_buffer buffer,
                                                                 timeout limit,
                                                                 source_location where) {
  detail::wait_scope waiting(this->waits_, detail::wait_side::receive, detail::wait_kind::recv,
                             this->native_handle(), where);
  auto [ec, n] = co_await detail::timed(
      [&](auto token) { return this->socket_.async_read_some(buffer, std::move(token)); }, limit);
  co_return counted_received(ec, n);
}

template <class AsioSocket>
asio::awaitable<io_result> basic_stream<AsioSocket>::recv_exact(asio::mutable_buffer buffer,
                                                                call_timeout limit,
                                                                source_location where) {
  detail::wait_scope waiting(this->waits_, detail::wait_side::receive, detail::wait_kind::recv,
                             this->native_handle(), where);
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
