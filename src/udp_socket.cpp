#include "coronet/udp_socket.hpp"

#include <utility>

#include "coronet/detail/io.hpp"

namespace coronet {

udp_socket udp_socket::open(const asio::any_io_executor& executor, ip_family family) {
  asio::ip::udp::socket socket(executor);
  std::error_code ec;
  socket.open(family == ip_family::v6 ? asio::ip::udp::v6() : asio::ip::udp::v4(), ec);
  if (ec)
    detail::throw_setup_error(
        ec, "open", family == ip_family::v6 ? "a UDP socket for IPv6" : "a UDP socket for IPv4");
  return udp_socket(std::move(socket));
}

udp_socket udp_socket::bind(const asio::any_io_executor& executor, const endpoint& local,
                            udp_options options) {
  const auto where = local.to_string();
  if (!local.is_ip()) detail::throw_setup_error(errc::wrong_address_family, "bind UDP to", where);
  asio::ip::udp::socket socket(executor);
  std::error_code ec;
  socket.open(local.udp().protocol(), ec);
  if (ec) detail::throw_setup_error(ec, "open a socket for", where);
  const int fd = socket.native_handle();
  const auto set = [&](const auto& option, const char* step) {
    if (auto failed = detail::set_socket_option(fd, option))
      detail::throw_setup_error(failed, step, where);
  };
  if (options.reuse_address) set(option::reuse_address{true}, "set SO_REUSEADDR for");
  if (options.reuse_port) set(option::reuse_port{true}, "set SO_REUSEPORT for");
  if (options.broadcast) set(option::broadcast{true}, "set SO_BROADCAST for");
  if (local.is_v6()) set(option::v6_only{options.v6_only}, "set IPV6_V6ONLY for");
  socket.bind(local.udp(), ec);
  if (ec) detail::throw_setup_error(ec, "bind", where);
  return udp_socket(std::move(socket));
}

udp_socket udp_socket::bind(asio::io_context& context, const endpoint& local, udp_options options) {
  return bind(context.get_executor(), local, options);
}

}  // namespace coronet
