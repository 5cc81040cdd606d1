#include "coronet/tcp_stream.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <utility>

#include <asio/this_coro.hpp>

#include "coronet/detail/io.hpp"
#include "coronet/detail/timed.hpp"
#include "coronet/with_timeout.hpp"

namespace coronet {

tcp_stream::tcp_stream(asio::ip::tcp::socket socket) noexcept : basic_stream(std::move(socket)) {
  // Read once, here: after a reset getpeername() fails, yet logs still want the peer.
  std::error_code ignored;
  local_ = socket_.local_endpoint(ignored);
  remote_ = socket_.remote_endpoint(ignored);
}

asio::awaitable<result<tcp_stream>> tcp_stream::connect(endpoint remote, connect_options options,
                                                        source_location where) {
  if (!remote.is_ip() || (options.local && !options.local->is_ip())) {
    co_return make_error_code(errc::wrong_address_family);
  }
  asio::ip::tcp::socket socket(co_await asio::this_coro::executor);
  std::error_code ec;
  socket.open(remote.tcp().protocol(), ec);
  if (ec) co_return detail::to_coronet_error(ec);
  if (options.local) {
    if (options.local->port() == 0) {
      // The port is then picked by connect(), which needs only the whole (source, destination)
      // pair to be unused, rather than by bind(), which needs a port no other socket on that
      // address holds, TIME_WAIT ones included: with many connections from one address,
      // bind() scans its whole port range each time, and runs out sooner. Older kernels
      // without the option bind as before.
      const int on = 1;
      (void)::setsockopt(socket.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on,
                         sizeof on);
    }
    socket.bind(options.local->tcp(), ec);
    if (ec) co_return detail::to_coronet_error(ec);
  }
  const auto native = remote.tcp();
  detail::wait_slot waits;
  detail::wait_scope waiting(waits, detail::wait_side::send, detail::wait_kind::connect,
                             socket.native_handle(), where);
  std::tie(ec) = co_await detail::with_limit(
      [&](auto token) { return socket.async_connect(native, std::move(token)); }, options.limit);
  if (ec) co_return detail::to_coronet_error(ec);
  co_return tcp_stream(std::move(socket));
}

asio::awaitable<result<tcp_stream>> tcp_stream::connect(std::string host_port,
                                                        connect_options options,
                                                        source_location where) {
  const detail::deadline until(options.limit);
  auto addresses = co_await with_timeout(resolve(std::move(host_port)), until.remaining());
  if (!addresses) co_return addresses.error();
  std::error_code last_error;
  for (const auto& address : *addresses) {
    if (until.expired()) co_return std::make_error_code(std::errc::timed_out);
    connect_options attempt = options;
    attempt.limit = until.remaining();
    auto stream = co_await connect(address, attempt, where);
    if (stream) co_return stream;
    last_error = stream.error();
  }
  co_return last_error;
}

}  // namespace coronet
