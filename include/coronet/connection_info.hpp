#pragma once
// connection_info: what a server knows of one of its live connections.

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "coronet/endpoint.hpp"

namespace coronet {

/// One live connection of a server, as basic_server::connections() lists it: enough to see
/// that every connection has its own socket, on which thread it runs and how much it moved.
///
/// Thread safety: a plain value, a snapshot taken at one moment; copy it freely.
struct connection_info {
  /// The server's number for it: 1, 2, 3... in accept order, never reused.
  std::uint64_t id = 0;
  /// Its descriptor (fileno) when it was accepted.
  int fd = -1;
  /// Its two ends (getsockname, getpeername).
  endpoint local;
  endpoint peer;
  /// The runtime thread (context index) that runs it.
  std::size_t thread = 0;
  /// Bytes received from and sent to the peer so far.
  std::uint64_t bytes_received = 0;
  std::uint64_t bytes_sent = 0;
  /// When it was accepted.
  std::chrono::system_clock::time_point started{};
};

}  // namespace coronet
