#pragma once
// unix_server: a Unix-domain stream server on a runtime, a handler coroutine per connection.

#include "coronet/basic_server.hpp"
#include "coronet/unix_listener.hpp"
#include "coronet/unix_stream.hpp"

namespace coronet {

/// A Unix-domain stream server: basic_server over unix_listener, placement::round_robin only
/// (the kernel does not spread Unix-domain connections over SO_REUSEPORT sockets). The socket
/// file follows unix_listener's rules and is removed by stop().
///
/// Thread safety: every method is safe from any thread (see basic_server).
using unix_server = basic_server<unix_listener>;

}  // namespace coronet
