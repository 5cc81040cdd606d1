#include "coronet/reserved_port.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>

#include <asio/ip/tcp.hpp>

#include "coronet/detail/io.hpp"
#include "coronet/socket_option.hpp"

namespace coronet {
namespace {

std::error_code last_error() { return {errno, std::system_category()}; }

}  // namespace

reserved_port reserved_port::bind(const endpoint& local) {
  const auto where = local.to_string();
  if (!local.is_ip()) {
    detail::throw_setup_error(errc::wrong_address_family, "reserve a TCP port on", where);
  }
  auto address = local.tcp();
  const int fd = ::socket(address.protocol().family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) detail::throw_setup_error(last_error(), "open a socket for", where);
  reserved_port port(fd, local);  // closes fd if a step below throws
  if (auto ec = detail::set_socket_option(fd, option::reuse_address{true})) {
    detail::throw_setup_error(ec, "set SO_REUSEADDR for", where);
  }
  if (auto ec = detail::set_socket_option(fd, option::reuse_port{true})) {
    detail::throw_setup_error(ec, "set SO_REUSEPORT for", where);
  }
  if (::bind(fd, address.data(), static_cast<socklen_t>(address.size())) != 0) {
    detail::throw_setup_error(last_error(), "bind", where);
  }
  socklen_t size = static_cast<socklen_t>(address.capacity());
  if (::getsockname(fd, address.data(), &size) != 0) {
    detail::throw_setup_error(last_error(), "read the bound port of", where);
  }
  address.resize(size);
  port.local_ = address;
  return port;
}

reserved_port::reserved_port(reserved_port&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), local_(other.local_) {}

reserved_port& reserved_port::operator=(reserved_port&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    local_ = other.local_;
  }
  return *this;
}

reserved_port::~reserved_port() { close(); }

void reserved_port::close() noexcept {
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

}  // namespace coronet
