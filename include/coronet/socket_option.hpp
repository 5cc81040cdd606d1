#pragma once
// Typed socket options: setsockopt/getsockopt with a type for each option instead of
// (level, name, void*, length).
//
//     stream.set_option(coronet::option::no_delay{true}).value();
//     bool on = stream.get_option<coronet::option::no_delay>().value().value;
//
// Thread safety: each option is a plain value (safe to read from several threads, written by
// one); set_option() and get_option() follow their socket's rule.

#include <chrono>
#include <system_error>

namespace coronet::option {

/// TCP_NODELAY: send small segments at once instead of coalescing them (Nagle's algorithm off).
struct no_delay {
  bool value = true;
  friend bool operator==(const no_delay&, const no_delay&) = default;
};

/// SO_KEEPALIVE: probe an idle connection so that a vanished peer is eventually noticed.
struct keep_alive {
  bool value = true;
  friend bool operator==(const keep_alive&, const keep_alive&) = default;
};

/// SO_REUSEADDR: allow binding a local address still in TIME_WAIT. Listeners turn it on.
struct reuse_address {
  bool value = true;
  friend bool operator==(const reuse_address&, const reuse_address&) = default;
};

/// SO_SNDBUF in bytes. Linux doubles the value it is given (the extra is its bookkeeping) and
/// clamps it to net.core.wmem_max, so reading it back gives a different number.
struct send_buffer_size {
  int value = 0;
  friend bool operator==(const send_buffer_size&, const send_buffer_size&) = default;
};

/// SO_RCVBUF in bytes; doubled and clamped like send_buffer_size (net.core.rmem_max).
struct receive_buffer_size {
  int value = 0;
  friend bool operator==(const receive_buffer_size&, const receive_buffer_size&) = default;
};

/// SO_LINGER. Enabled with a zero timeout, close() discards unsent data and sends a reset.
struct linger {
  bool enabled = false;
  std::chrono::seconds timeout{0};
  friend bool operator==(const linger&, const linger&) = default;
};

/// SO_REUSEPORT: several sockets may bind the same address and port; the kernel spreads
/// incoming connections or datagrams over them.
struct reuse_port {
  bool value = true;
  friend bool operator==(const reuse_port&, const reuse_port&) = default;
};

/// SO_BROADCAST: allow sending datagrams to a broadcast address.
struct broadcast {
  bool value = true;
  friend bool operator==(const broadcast&, const broadcast&) = default;
};

/// IPV6_V6ONLY: an IPv6 socket handles IPv6 only. Off, a socket bound to `[::]` also serves
/// IPv4 peers, seen as `[::ffff:a.b.c.d]` (dual stack). Only for IPv6 sockets, before bind.
struct v6_only {
  bool value = true;
  friend bool operator==(const v6_only&, const v6_only&) = default;
};

}  // namespace coronet::option

namespace coronet::detail {

// One overload pair per option; the socket classes' set_option/get_option templates forward here.
std::error_code set_socket_option(int fd, const option::no_delay& o) noexcept;
std::error_code set_socket_option(int fd, const option::keep_alive& o) noexcept;
std::error_code set_socket_option(int fd, const option::reuse_address& o) noexcept;
std::error_code set_socket_option(int fd, const option::send_buffer_size& o) noexcept;
std::error_code set_socket_option(int fd, const option::receive_buffer_size& o) noexcept;
std::error_code set_socket_option(int fd, const option::linger& o) noexcept;
std::error_code set_socket_option(int fd, const option::reuse_port& o) noexcept;
std::error_code set_socket_option(int fd, const option::broadcast& o) noexcept;
std::error_code set_socket_option(int fd, const option::v6_only& o) noexcept;

std::error_code get_socket_option(int fd, option::no_delay& o) noexcept;
std::error_code get_socket_option(int fd, option::keep_alive& o) noexcept;
std::error_code get_socket_option(int fd, option::reuse_address& o) noexcept;
std::error_code get_socket_option(int fd, option::send_buffer_size& o) noexcept;
std::error_code get_socket_option(int fd, option::receive_buffer_size& o) noexcept;
std::error_code get_socket_option(int fd, option::linger& o) noexcept;
std::error_code get_socket_option(int fd, option::reuse_port& o) noexcept;
std::error_code get_socket_option(int fd, option::broadcast& o) noexcept;
std::error_code get_socket_option(int fd, option::v6_only& o) noexcept;

}  // namespace coronet::detail

namespace coronet {

/// A type from coronet::option that set_option()/get_option() accept.
template <class Option>
concept socket_option = requires(int fd, Option& o, const Option& c) {
  detail::set_socket_option(fd, c);
  detail::get_socket_option(fd, o);
};

}  // namespace coronet
