#include "coronet/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <string_view>
#include <system_error>

namespace coronet {
namespace {

// `what` names the file and its role: "the certificate file 'cert.pem'".
std::string quoted(std::string_view role, const std::string& path) {
  return std::string(role) + " '" + path + "'";
}

// A file OpenSSL is about to read: one that is missing or unreadable is reported with the
// system's reason, which OpenSSL's own errors bury.
void check_readable(std::string_view role, const std::string& path) {
  if (::access(path.c_str(), R_OK) != 0) {
    const int error = errno;
    throw std::system_error(error, std::system_category(), "cannot read " + quoted(role, path));
  }
}

// OpenSSL's reason for the call that just failed: `ec` when Asio has taken it off OpenSSL's
// queue already, else the first error on the queue.
std::error_code openssl_error(std::error_code ec = {}) {
  if (!ec || ec.category() != asio::error::get_ssl_category()) {
    if (const unsigned long packed = ::ERR_get_error(); packed != 0) {
      ec = std::error_code(static_cast<int>(packed), asio::error::get_ssl_category());
    }
  }
  ::ERR_clear_error();
  return ec ? ec : std::make_error_code(std::errc::invalid_argument);
}

// Throws for a failed OpenSSL call: what was being done, then OpenSSL's reason, as in "the
// certificate file 'x.pem' holds no PEM certificate: no start line (PEM routines)".
[[noreturn]] void throw_openssl(const std::string& what, std::error_code ec = {}) {
  throw std::system_error(openssl_error(ec), what);
}

bool is_key_mismatch(const std::error_code& ec) {
  const auto packed = static_cast<unsigned long>(static_cast<unsigned int>(ec.value()));
  return ec.category() == asio::error::get_ssl_category() && ERR_GET_LIB(packed) == ERR_LIB_X509 &&
         ERR_GET_REASON(packed) == X509_R_KEY_VALUES_MISMATCH;
}

void set_min_version(asio::ssl::context& context, tls_version version) {
  const int min = version == tls_version::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
  if (::SSL_CTX_set_min_proto_version(context.native_handle(), min) != 1) {
    throw_openssl("cannot set the oldest TLS version");
  }
}

// An encrypted key is read with `password`, never by prompting on a terminal (OpenSSL's
// default, which would block a server): without one, the key fails to load, with a reason.
void use_password(asio::ssl::context& context, const std::string& password) {
  context.set_password_callback(
      [password](std::size_t, asio::ssl::context::password_purpose) { return password; });
}

void load_certificate_and_key(asio::ssl::context& context, const std::string& cert_file,
                              const std::string& key_file, const std::string& password) {
  check_readable("the certificate file", cert_file);
  check_readable("the key file", key_file);
  use_password(context, password);
  std::error_code ec;
  context.use_certificate_chain_file(cert_file, ec);
  if (ec)
    throw_openssl(quoted("the certificate file", cert_file) + " holds no PEM certificate", ec);
  const std::string mismatch =
      "the private key in '" + key_file + "' does not match the certificate in '" + cert_file + "'";
  context.use_private_key_file(key_file, asio::ssl::context::pem, ec);
  if (ec) {
    ec = openssl_error(ec);
    if (is_key_mismatch(ec)) throw std::system_error(ec, mismatch);
    throw std::system_error(ec, quoted("the key file", key_file) +
                                    " holds no usable PEM private key (an encrypted one needs "
                                    "key_password)");
  }
  if (::SSL_CTX_check_private_key(context.native_handle()) != 1) throw_openssl(mismatch);
}

void load_authorities(asio::ssl::context& context, const std::string& ca_file) {
  check_readable("the CA file", ca_file);
  std::error_code ec;
  context.load_verify_file(ca_file, ec);
  if (ec) throw_openssl(quoted("the CA file", ca_file) + " holds no PEM certificate", ec);
}

}  // namespace

tls_context tls_context::client(const tls_client_options& options) {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  set_min_version(*context, options.min_version);
  if (options.verify_peer) {
    if (options.ca_file.empty()) {
      std::error_code ec;
      context->set_default_verify_paths(ec);
      if (ec) throw_openssl("cannot load the system's certificate authorities", ec);
    } else {
      load_authorities(*context, options.ca_file);
    }
    context->set_verify_mode(asio::ssl::verify_peer);
  } else {
    context->set_verify_mode(asio::ssl::verify_none);
  }
  if (!options.cert_file.empty() || !options.key_file.empty()) {
    load_certificate_and_key(*context, options.cert_file, options.key_file, options.key_password);
  }
  return tls_context(std::move(context), false, options.verify_peer);
}

tls_context tls_context::server(const tls_server_options& options) {
  if (options.cert_file.empty() || options.key_file.empty()) {
    throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                            "a TLS server needs a certificate file and a key file");
  }
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  set_min_version(*context, options.min_version);
  load_certificate_and_key(*context, options.cert_file, options.key_file, options.key_password);
  // Sessions are resumed only within this id, which OpenSSL insists on once clients are
  // verified.
  static constexpr unsigned char session_id[] = "coronet";
  ::SSL_CTX_set_session_id_context(context->native_handle(), session_id, sizeof session_id - 1);
  if (options.require_client_certificate) {
    if (options.ca_file.empty()) {
      throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                              "require_client_certificate needs the CA file clients chain to");
    }
    load_authorities(*context, options.ca_file);
    context->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
  }
  return tls_context(std::move(context), true, options.require_client_certificate);
}

}  // namespace coronet
