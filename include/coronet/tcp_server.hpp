#pragma once
// tcp_server: a TCP server on a runtime, a handler coroutine per connection.

#include "coronet/basic_server.hpp"
#include "coronet/tcp_listener.hpp"
#include "coronet/tcp_stream.hpp"

namespace coronet {

/// A TCP server: basic_server over tcp_listener, in either placement. Its listeners set
/// SO_REUSEADDR, and accept IPv4 peers on `[::]`.
///
/// Thread safety: every method is safe from any thread (see basic_server).
using tcp_server = basic_server<tcp_listener>;

}  // namespace coronet
