#pragma once
// tls_context: the certificates, keys and trust a TLS stream is made with, loaded from PEM files.

#include <memory>
#include <string>

#include <asio/ssl/context.hpp>

namespace coronet {

/// The oldest TLS version a context accepts.
enum class tls_version { tls1_2, tls1_3 };

/// How tls_context::client() sets up; fill with designated initialisers.
struct tls_client_options {
  /// PEM file of the certificate authorities to trust. Empty: the system's (/etc/ssl/certs).
  std::string ca_file{};
  /// Check that the server's certificate chains to a trusted authority and names the host
  /// connected to. Turning it off leaves the connection open to anyone in the middle: only for
  /// tests and benchmarks against a throwaway certificate.
  bool verify_peer = true;
  /// A certificate (PEM, the chain after it) and its key, for servers that ask clients for one.
  std::string cert_file{};
  std::string key_file{};
  /// The password of an encrypted key_file.
  std::string key_password{};
  tls_version min_version = tls_version::tls1_2;
};

/// How tls_context::server() sets up; cert_file and key_file are required.
struct tls_server_options {
  /// PEM: the server's certificate, then any intermediate certificates.
  std::string cert_file{};
  /// PEM: the certificate's private key.
  std::string key_file{};
  /// The password of an encrypted key_file.
  std::string key_password{};
  /// Ask clients for a certificate signed by an authority in ca_file, and refuse those without.
  bool require_client_certificate = false;
  /// PEM file of the authorities client certificates must chain to.
  std::string ca_file{};
  tls_version min_version = tls_version::tls1_2;
};

/// The shared settings of many TLS streams: one side (client or server), its certificate and
/// key, the authorities it trusts. Copies share one OpenSSL context; each stream keeps the one
/// it was made with alive.
///
/// Errors: client() and server() throw std::system_error with a message naming the file and
/// what is wrong with it ("cannot read the certificate file 'cert.pem': No such file or
/// directory", "the private key in 'key.pem' does not match the certificate in 'cert.pem'").
///
/// Thread safety: a context may be shared by streams on every thread; the factories are safe
/// from any thread. Changing the Asio context underneath while streams use it is not.
///
/// Example:
///
///     auto server = coronet::tls_context::server({.cert_file = "cert.pem",
///                                                 .key_file = "key.pem"});
///     auto client = coronet::tls_context::client({.ca_file = "ca.pem"});
class tls_context {
 public:
  /// A context for clients: verifies servers (against ca_file, or the system's authorities)
  /// unless verify_peer is off. Throws as said under Errors.
  static tls_context client(const tls_client_options& options = {});

  /// A context for servers, with their certificate and key. Throws as said under Errors.
  static tls_context server(const tls_server_options& options);

  /// Whether streams made with it take the server's side of the handshake.
  bool is_server() const noexcept { return server_; }

  /// Whether streams made with it check the peer's certificate.
  bool verifies_peer() const noexcept { return verify_peer_; }

  /// The Asio context underneath, for what coronet does not wrap (ciphers, ALPN, ...): set up
  /// before the first stream is made with it.
  asio::ssl::context& asio_context() const noexcept { return *context_; }

 private:
  tls_context(std::shared_ptr<asio::ssl::context> context, bool server, bool verify_peer) noexcept
      : context_(std::move(context)), server_(server), verify_peer_(verify_peer) {}

  std::shared_ptr<asio::ssl::context> context_;
  bool server_;
  bool verify_peer_;
};

}  // namespace coronet
