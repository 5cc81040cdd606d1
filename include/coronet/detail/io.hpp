#pragma once
// Internals shared by the socket classes' implementations.

#include <fcntl.h>
#include <sys/types.h>

#include <cerrno>

#include <string>
#include <string_view>
#include <system_error>

#include <asio/error.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/socket_base.hpp>
#include <asio/use_awaitable.hpp>

#include "coronet/error.hpp"
#include "coronet/shutdown_type.hpp"

namespace coronet::detail {

// Completion token that hands back (error_code, results...) instead of throwing.
inline constexpr auto use_nothrow = asio::experimental::as_tuple(asio::use_awaitable);

// Maps Asio's error values to coronet's convention, at every place one leaves coronet: errno
// values move from Asio's own "asio.system" category (which Asio 1.22 does not make comparable
// with std::errc) to std::system_category(); eof becomes coronet::errc::eof; the rest (resolver
// errors) pass through.
inline std::error_code to_coronet_error(const std::error_code& ec) noexcept {
  if (!ec) return ec;
  if (ec.category() == asio::error::get_system_category())
    return {ec.value(), std::system_category()};
  if (ec == asio::error::eof) return make_error_code(errc::eof);
  return ec;
}

// Setup failures throw, naming the step and the endpoint: "cannot bind 127.0.0.1:80: Address
// already in use".
[[noreturn]] inline void throw_setup_error(const std::error_code& ec, std::string_view step,
                                           std::string_view where) {
  std::string what = "cannot ";
  what += step;
  what += ' ';
  what += where;
  throw std::system_error(to_coronet_error(ec), what);
}

inline asio::socket_base::shutdown_type to_asio(shutdown_type what) noexcept {
  switch (what) {
    case shutdown_type::receive: return asio::socket_base::shutdown_receive;
    case shutdown_type::send: return asio::socket_base::shutdown_send;
    case shutdown_type::both: break;
  }
  return asio::socket_base::shutdown_both;
}

// One call of `io`, a send(2) or recv(2) with MSG_DONTWAIT or on a non-blocking socket, again
// after EINTR: what it returned, or -1 with `error` set (EAGAIN, never EWOULDBLOCK, for a socket
// not ready). basic_stream and lean_stream make every such call through here.
template <class Io>
ssize_t nonblocking_call(Io io, int& error) noexcept {
  for (;;) {
    const ssize_t n = io();
    if (n >= 0) return n;
    if (errno != EINTR) {
      error = errno == EWOULDBLOCK ? EAGAIN : errno;
      return -1;
    }
  }
}

// Whether `fd` has O_NONBLOCK set; false for a closed descriptor.
inline bool fd_non_blocking(int fd) noexcept {
  const int flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && (flags & O_NONBLOCK) != 0;
}

}  // namespace coronet::detail
