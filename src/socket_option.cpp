#include "coronet/socket_option.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>

namespace coronet::detail {
namespace {

std::error_code last_error() noexcept { return {errno, std::system_category()}; }

template <class Native>
std::error_code set_native(int fd, int level, int name, const Native& value) noexcept {
  if (::setsockopt(fd, level, name, &value, sizeof value) != 0) return last_error();
  return {};
}

template <class Native>
std::error_code get_native(int fd, int level, int name, Native& value) noexcept {
  socklen_t size = sizeof value;
  if (::getsockopt(fd, level, name, &value, &size) != 0) return last_error();
  return {};
}

std::error_code set_flag(int fd, int level, int name, bool on) noexcept {
  return set_native(fd, level, name, on ? 1 : 0);
}

std::error_code get_flag(int fd, int level, int name, bool& on) noexcept {
  int value = 0;
  auto ec = get_native(fd, level, name, value);
  on = value != 0;
  return ec;
}

}  // namespace

std::error_code set_socket_option(int fd, const option::no_delay& o) noexcept {
  return set_flag(fd, IPPROTO_TCP, TCP_NODELAY, o.value);
}
std::error_code get_socket_option(int fd, option::no_delay& o) noexcept {
  return get_flag(fd, IPPROTO_TCP, TCP_NODELAY, o.value);
}

std::error_code set_socket_option(int fd, const option::keep_alive& o) noexcept {
  return set_flag(fd, SOL_SOCKET, SO_KEEPALIVE, o.value);
}
std::error_code get_socket_option(int fd, option::keep_alive& o) noexcept {
  return get_flag(fd, SOL_SOCKET, SO_KEEPALIVE, o.value);
}

std::error_code set_socket_option(int fd, const option::reuse_address& o) noexcept {
  return set_flag(fd, SOL_SOCKET, SO_REUSEADDR, o.value);
}
std::error_code get_socket_option(int fd, option::reuse_address& o) noexcept {
  return get_flag(fd, SOL_SOCKET, SO_REUSEADDR, o.value);
}

std::error_code set_socket_option(int fd, const option::send_buffer_size& o) noexcept {
  return set_native(fd, SOL_SOCKET, SO_SNDBUF, o.value);
}
std::error_code get_socket_option(int fd, option::send_buffer_size& o) noexcept {
  return get_native(fd, SOL_SOCKET, SO_SNDBUF, o.value);
}

std::error_code set_socket_option(int fd, const option::receive_buffer_size& o) noexcept {
  return set_native(fd, SOL_SOCKET, SO_RCVBUF, o.value);
}
std::error_code get_socket_option(int fd, option::receive_buffer_size& o) noexcept {
  return get_native(fd, SOL_SOCKET, SO_RCVBUF, o.value);
}

std::error_code set_socket_option(int fd, const option::linger& o) noexcept {
  if (o.timeout.count() < 0 || o.timeout.count() > INT32_MAX) {
    return std::make_error_code(std::errc::invalid_argument);
  }
  const ::linger native{o.enabled ? 1 : 0, static_cast<int>(o.timeout.count())};
  return set_native(fd, SOL_SOCKET, SO_LINGER, native);
}
std::error_code get_socket_option(int fd, option::linger& o) noexcept {
  ::linger native{};
  auto ec = get_native(fd, SOL_SOCKET, SO_LINGER, native);
  o.enabled = native.l_onoff != 0;
  o.timeout = std::chrono::seconds(native.l_linger);
  return ec;
}

std::error_code set_socket_option(int fd, const option::reuse_port& o) noexcept {
  return set_flag(fd, SOL_SOCKET, SO_REUSEPORT, o.value);
}
std::error_code get_socket_option(int fd, option::reuse_port& o) noexcept {
  return get_flag(fd, SOL_SOCKET, SO_REUSEPORT, o.value);
}

std::error_code set_socket_option(int fd, const option::broadcast& o) noexcept {
  return set_flag(fd, SOL_SOCKET, SO_BROADCAST, o.value);
}
std::error_code get_socket_option(int fd, option::broadcast& o) noexcept {
  return get_flag(fd, SOL_SOCKET, SO_BROADCAST, o.value);
}

std::error_code set_socket_option(int fd, const option::v6_only& o) noexcept {
  return set_flag(fd, IPPROTO_IPV6, IPV6_V6ONLY, o.value);
}
std::error_code get_socket_option(int fd, option::v6_only& o) noexcept {
  return get_flag(fd, IPPROTO_IPV6, IPV6_V6ONLY, o.value);
}

}  // namespace coronet::detail
