#include "coronet/unix_datagram.hpp"

#include <sys/socket.h>

#include <asio/local/connect_pair.hpp>

#include "detail/unix_bind.hpp"

namespace coronet {

unix_datagram unix_datagram::open(const asio::any_io_executor& executor) {
  asio::local::datagram_protocol::socket socket(executor);
  std::error_code ec;
  socket.open(asio::local::datagram_protocol(), ec);
  if (ec) detail::throw_setup_error(ec, "open", "a Unix datagram socket");
  return unix_datagram(std::move(socket), {});
}

unix_datagram unix_datagram::bind(const asio::any_io_executor& executor, const endpoint& local) {
  asio::local::datagram_protocol::socket socket(executor);
  auto file =
      detail::open_and_bind_unix(socket, asio::local::datagram_protocol(), local, SOCK_DGRAM);
  return unix_datagram(std::move(socket), std::move(file));
}

unix_datagram unix_datagram::bind(asio::io_context& context, const endpoint& local) {
  return bind(context.get_executor(), local);
}

std::pair<unix_datagram, unix_datagram> unix_datagram::socket_pair(
    const asio::any_io_executor& executor) {
  asio::local::datagram_protocol::socket a(executor);
  asio::local::datagram_protocol::socket b(executor);
  std::error_code ec;
  asio::local::connect_pair(a, b, ec);
  if (ec) detail::throw_setup_error(ec, "create", "a Unix datagram socket pair");
  return {unix_datagram(std::move(a), {}), unix_datagram(std::move(b), {})};
}

void unix_datagram::close() noexcept {
  file_.remove();
  basic_datagram::close();
}

}  // namespace coronet
