#include "coronet/tcp_listener.hpp"

#include <string>
#include <system_error>
#include <utility>

#include "coronet/detail/io.hpp"

namespace coronet {

tcp_listener::tcp_listener(asio::ip::tcp::acceptor acceptor, endpoint local) noexcept
    : basic_socket(std::move(acceptor)), local_(std::move(local)) {}

tcp_listener tcp_listener::bind(const asio::any_io_executor& executor, const endpoint& local,
                                listen_options options) {
  asio::ip::tcp::acceptor acceptor(executor);
  std::error_code ec;
  const auto fail = [&](const char* step) {
    throw std::system_error(detail::to_coronet_error(ec),
                            std::string("cannot ") + step + ' ' + local.to_string());
  };
  if (!local.is_ip()) {
    ec = make_error_code(errc::wrong_address_family);
    fail("listen for TCP on");
  }
  acceptor.open(local.tcp().protocol(), ec);
  if (ec) fail("open a socket for");
  const int fd = acceptor.native_handle();
  if (options.reuse_address) {
    ec = detail::set_socket_option(fd, option::reuse_address{true});
    if (ec) fail("set SO_REUSEADDR for");
  }
  if (options.reuse_port) {
    ec = detail::set_socket_option(fd, option::reuse_port{true});
    if (ec) fail("set SO_REUSEPORT for");
  }
  if (local.is_v6()) {
    ec = detail::set_socket_option(fd, option::v6_only{options.v6_only});
    if (ec) fail("set IPV6_V6ONLY for");
  }
  acceptor.bind(local.tcp(), ec);
  if (ec) fail("bind");
  acceptor.listen(options.backlog, ec);
  if (ec) fail("listen on");
  endpoint bound = acceptor.local_endpoint(ec);
  if (ec) fail("read the bound port of");
  return tcp_listener(std::move(acceptor), bound);
}

tcp_listener tcp_listener::bind(asio::io_context& context, const endpoint& local,
                                listen_options options) {
  return bind(context.get_executor(), local, options);
}

asio::awaitable<result<tcp_stream>> tcp_listener::accept() {
  auto [ec, socket] = co_await socket_.async_accept(detail::use_nothrow);
  if (ec) co_return detail::to_coronet_error(ec);
  co_return tcp_stream(std::move(socket));
}

asio::awaitable<result<tcp_stream>> tcp_listener::accept(const asio::any_io_executor& target) {
  auto [ec, socket] = co_await socket_.async_accept(target, detail::use_nothrow);
  if (ec) co_return detail::to_coronet_error(ec);
  co_return tcp_stream(std::move(socket));
}

}  // namespace coronet
