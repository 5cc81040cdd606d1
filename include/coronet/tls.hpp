#pragma once
// coronet's TLS: tls_context, tls_stream, tls_listener and tls_server. Apart from coronet.hpp,
// as Asio keeps asio/ssl.hpp apart from asio.hpp: it brings in OpenSSL's headers, which code
// without TLS need not compile.

#include "coronet/tls_context.hpp"
#include "coronet/tls_listener.hpp"
#include "coronet/tls_server.hpp"
#include "coronet/tls_stream.hpp"
