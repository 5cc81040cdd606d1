#pragma once
// Helpers for the TLS tests: contexts over a throwaway PKI, and connected TLS pairs.

#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <utility>

#include "coronet/tls.hpp"
#include "support/run.hpp"
#include "support/test_certificates.hpp"

namespace coronet::test {

/// The path of the `openssl` program (PATH searched), for the tests that use it as a peer.
inline std::string openssl_program() {
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "/usr/bin:/bin";
  while (!dirs.empty()) {
    const auto end = dirs.find(':');
    const std::string candidate = std::string(dirs.substr(0, end)) + "/openssl";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (end == std::string_view::npos) break;
    dirs.remove_prefix(end + 1);
  }
  FAIL("openssl not found on PATH (Debian package openssl)");
  return {};
}

/// The PKI every TLS test of this process uses, generated on first use.
inline const test_pki& pki() {
  static const test_pki shared;
  return shared;
}

/// A server context with the test CA's server certificate ("localhost", 127.0.0.1, ::1).
inline tls_context server_tls() {
  return tls_context::server({.cert_file = pki().server_cert, .key_file = pki().server_key});
}

/// A client context that trusts the test CA.
inline tls_context client_tls() { return tls_context::client({.ca_file = pki().ca_cert}); }

/// The server's half of a pair: accepts one connection and shakes hands.
inline asio::awaitable<void> accept_and_shake(tls_listener& listener,
                                              std::shared_ptr<std::optional<tls_stream>> out,
                                              std::shared_ptr<result<void>> shaken) {
  auto stream = co_await listener.accept();
  REQUIRE(stream);
  *shaken = co_await stream->handshake(std::chrono::seconds(5));
  out->emplace(std::move(*stream));
}

/// A connected pair over loopback, both sides done shaking hands: {client, server}.
inline asio::awaitable<std::pair<tls_stream, tls_stream>> tls_pair(
    const endpoint& where = any_v4()) {
  const auto executor = co_await asio::this_coro::executor;
  auto listener = tls_listener::bind(executor, where, server_tls());
  auto server = std::make_shared<std::optional<tls_stream>>();
  auto shaken = std::make_shared<result<void>>(make_error_code(std::errc::operation_in_progress));
  spawn(executor, accept_and_shake(listener, server, shaken), "tls accept");
  auto client = co_await tls_stream::connect(listener.local_endpoint(), client_tls(),
                                             {.limit = std::chrono::seconds(5)});
  REQUIRE_MESSAGE(client, client.error().message());
  while (!server->has_value()) co_await sleep_for(std::chrono::milliseconds(1));
  REQUIRE_MESSAGE(*shaken, shaken->error().message());
  co_return std::pair<tls_stream, tls_stream>{std::move(*client), std::move(**server)};
}

}  // namespace coronet::test
