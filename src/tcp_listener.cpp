#include "coronet/tcp_listener.hpp"

#include <system_error>
#include <utility>

#include "coronet/detail/io.hpp"

namespace coronet {

tcp_listener tcp_listener::bind(const asio::any_io_executor& executor, const endpoint& local,
                                listen_options options) {
  asio::ip::tcp::acceptor acceptor(executor);
  std::error_code ec;
  const auto where = local.to_string();
  if (!local.is_ip())
    detail::throw_setup_error(errc::wrong_address_family, "listen for TCP on", where);
  acceptor.open(local.tcp().protocol(), ec);
  if (ec) detail::throw_setup_error(ec, "open a socket for", where);
  const int fd = acceptor.native_handle();
  if (options.reuse_address) {
    ec = detail::set_socket_option(fd, option::reuse_address{true});
    if (ec) detail::throw_setup_error(ec, "set SO_REUSEADDR for", where);
  }
  if (options.reuse_port) {
    ec = detail::set_socket_option(fd, option::reuse_port{true});
    if (ec) detail::throw_setup_error(ec, "set SO_REUSEPORT for", where);
  }
  if (local.is_v6()) {
    ec = detail::set_socket_option(fd, option::v6_only{options.v6_only});
    if (ec) detail::throw_setup_error(ec, "set IPV6_V6ONLY for", where);
  }
  acceptor.bind(local.tcp(), ec);
  if (ec) detail::throw_setup_error(ec, "bind", where);
  acceptor.listen(options.backlog, ec);
  if (ec) detail::throw_setup_error(ec, "listen on", where);
  const endpoint bound = acceptor.local_endpoint(ec);
  if (ec) detail::throw_setup_error(ec, "read the bound port of", where);
  return tcp_listener(std::move(acceptor), bound);
}

tcp_listener tcp_listener::bind(asio::io_context& context, const endpoint& local,
                                listen_options options) {
  return bind(context.get_executor(), local, options);
}

}  // namespace coronet
