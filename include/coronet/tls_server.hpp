#pragma once
// tls_server: a TLS server on a runtime, a handler coroutine per connection.

#include "coronet/basic_server.hpp"
#include "coronet/tls_listener.hpp"
#include "coronet/tls_stream.hpp"

namespace coronet {

/// A TLS server: basic_server over tls_listener, bound with the server context every
/// connection shakes hands with: `tls_server::bind(runtime, where, context, handler)`.
/// Everything else is tcp_server's: placement, max_connections, stop, the connection table
/// (its byte counts are the decrypted bytes). Each handler gets its stream before the
/// handshake, which runs in the handler's first operation (or its handshake()): a client
/// that never completes one ties up only its own connection.
///
/// Thread safety: every method is safe from any thread (see basic_server).
using tls_server = basic_server<tls_listener>;

// Compiled once, in src/basic_server.cpp, with the other servers.
extern template class basic_server<tls_listener>;

}  // namespace coronet
