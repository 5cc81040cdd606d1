#pragma once
// reserved_port: a TCP port held for the SO_REUSEPORT listeners of worker processes.

#include "coronet/endpoint.hpp"

namespace coronet {

/// A TCP socket bound with SO_REUSEADDR and SO_REUSEPORT that never listens. A supervisor
/// process holds one per address its workers serve: port 0 is resolved once, so every worker
/// binds the same port, and the port stays the program's while a worker restarts. The kernel
/// spreads connections over listening sockets only, so this one never receives any.
///
/// Workers bind tcp_listeners with listen_options::reuse_port (server_options placement
/// reuse_port) on local_endpoint(), as the same user.
///
/// Errors: bind() throws std::system_error naming the step and the address ("cannot bind
/// 127.0.0.1:80: Address already in use"; coronet::errc::wrong_address_family for a
/// Unix-domain endpoint).
///
/// Thread safety: bind() is safe from any thread; one object is used by one thread at a time.
///
/// Example:
///
///     auto port = coronet::reserved_port::bind(coronet::endpoint::parse("0.0.0.0:0").value());
///     // in each worker: tcp_server::bind(rt, port.local_endpoint(), handler,
///     //                                  {.placement = coronet::placement::reuse_port});
class reserved_port {
 public:
  /// Opens and binds a TCP socket on `local` (port 0: any free port). Throws
  /// std::system_error when a step fails.
  static reserved_port bind(const endpoint& local);

  reserved_port(reserved_port&& other) noexcept;
  reserved_port& operator=(reserved_port&& other) noexcept;
  reserved_port(const reserved_port&) = delete;
  reserved_port& operator=(const reserved_port&) = delete;
  ~reserved_port();

  /// The address and the port bound (the one picked, when bind() asked for port 0).
  const endpoint& local_endpoint() const noexcept { return local_; }
  /// Closes the socket: a worker process closes the copy it inherited, which it has no use
  /// for. Idempotent.
  void close() noexcept;
  /// The descriptor; -1 once closed.
  int native_handle() const noexcept { return fd_; }

 private:
  reserved_port(int fd, const endpoint& local) noexcept : fd_(fd), local_(local) {}

  int fd_ = -1;
  endpoint local_;
};

}  // namespace coronet
