#include "support/test_certificates.hpp"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

namespace coronet::test {
namespace {

template <auto free_function>
struct openssl_deleter {
  template <typename T>
  void operator()(T* object) const noexcept {
    free_function(object);
  }
};

using key_ptr = std::unique_ptr<EVP_PKEY, openssl_deleter<EVP_PKEY_free>>;
using certificate_ptr = std::unique_ptr<X509, openssl_deleter<X509_free>>;
using bignum_ptr = std::unique_ptr<BIGNUM, openssl_deleter<BN_free>>;
using extension_ptr = std::unique_ptr<X509_EXTENSION, openssl_deleter<X509_EXTENSION_free>>;

constexpr long hour = 60L * 60L;
constexpr long day = 24L * hour;

// OpenSSL reports why through its thread's error queue; draining it also keeps a stale reason
// from being blamed on a later, unrelated failure.
[[noreturn]] void throw_openssl(const std::string& step) {
  std::string reasons;
  while (const unsigned long code = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    if (!reasons.empty()) reasons += "; ";
    reasons += text;
  }
  if (reasons.empty()) reasons = "no reason given by OpenSSL";
  throw std::runtime_error("test_pki: " + step + ": " + reasons);
}

void check(bool ok, const std::string& step) {
  if (!ok) throw_openssl(step);
}

key_ptr generate_key() {
  key_ptr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  check(key != nullptr, "generating a P-256 key");
  return key;
}

struct certificate_spec {
  const char* common_name;
  bool is_ca;
  const char* extended_key_usage;  // leaves only
  const char* subject_alt_name;    // nullptr: none
  long not_before;                 // seconds from now
  long not_after;
};

void add_extension(X509* certificate, X509V3_CTX& context, int nid, const char* value) {
  extension_ptr extension(X509V3_EXT_conf_nid(nullptr, &context, nid, value));
  check(extension != nullptr, std::string("making extension ") + OBJ_nid2sn(nid) + "=" + value);
  check(X509_add_ext(certificate, extension.get(), -1) == 1,
        std::string("adding extension ") + OBJ_nid2sn(nid));
}

// Self-signed when `issuer` is nullptr (then `issuer_key` must be `key`).
certificate_ptr make_certificate(const certificate_spec& spec, EVP_PKEY* key, X509* issuer,
                                 EVP_PKEY* issuer_key) {
  const std::string step = std::string("certificate \"") + spec.common_name + "\": ";
  certificate_ptr certificate(X509_new());
  check(certificate != nullptr, step + "X509_new");
  X509* const cert = certificate.get();
  check(X509_set_version(cert, X509_VERSION_3) == 1, step + "setting the version");

  // Random: every run makes a CA of the same name, and RFC 5280 wants (issuer, serial) unique.
  bignum_ptr serial(BN_new());
  check(serial != nullptr && BN_rand(serial.get(), 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1,
        step + "drawing the serial");
  check(BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert)) != nullptr,
        step + "setting the serial");

  X509_NAME* const subject = X509_get_subject_name(cert);
  check(X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>(spec.common_name), -1, -1,
                                   0) == 1,
        step + "setting the subject");
  check(
      X509_set_issuer_name(cert, issuer != nullptr ? X509_get_subject_name(issuer) : subject) == 1,
      step + "setting the issuer");
  check(X509_gmtime_adj(X509_getm_notBefore(cert), spec.not_before) != nullptr &&
            X509_gmtime_adj(X509_getm_notAfter(cert), spec.not_after) != nullptr,
        step + "setting the validity");
  check(X509_set_pubkey(cert, key) == 1, step + "setting the public key");

  X509V3_CTX context;
  X509V3_set_ctx(&context, issuer != nullptr ? issuer : cert, cert, nullptr, nullptr, 0);
  add_extension(cert, context, NID_basic_constraints,
                spec.is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add_extension(cert, context, NID_key_usage,
                spec.is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
  if (spec.extended_key_usage != nullptr)
    add_extension(cert, context, NID_ext_key_usage, spec.extended_key_usage);
  if (spec.subject_alt_name != nullptr)
    add_extension(cert, context, NID_subject_alt_name, spec.subject_alt_name);
  // Before the authority key identifier: a self-signed certificate's is copied from it.
  add_extension(cert, context, NID_subject_key_identifier, "hash");
  add_extension(cert, context, NID_authority_key_identifier, "keyid:always");

  check(X509_sign(cert, issuer_key, EVP_sha256()) > 0, step + "signing");
  return certificate;
}

// Creates `path` (which must not exist) with `mode` before anything is written to it, so a key
// is never readable by others even for an instant, whatever the umask.
template <typename Write>
void write_pem(const std::string& path, mode_t mode, Write write) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "test_pki: creating " + path);
  std::FILE* const file = ::fdopen(fd, "w");
  if (file == nullptr) {
    const int error = errno;
    ::close(fd);
    throw std::system_error(error, std::generic_category(), "test_pki: opening " + path);
  }
  const bool written = write(file) == 1;
  // fclose flushes, so a full disk shows up here rather than in a test's handshake.
  const bool closed = std::fclose(file) == 0;
  check(written && closed, "writing " + path);
}

void write_certificate(const std::string& path, X509* certificate) {
  write_pem(path, 0644, [&](std::FILE* file) { return PEM_write_X509(file, certificate); });
}

void write_key(const std::string& path, EVP_PKEY* key) {
  write_pem(path, 0600, [&](std::FILE* file) {
    return PEM_write_PrivateKey(file, key, nullptr, nullptr, 0, nullptr, nullptr);
  });
}

std::filesystem::path make_temporary_directory() {
  std::string pattern = (std::filesystem::temp_directory_path() / "coronet-pki-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr)
    throw std::system_error(errno, std::generic_category(), "test_pki: mkdtemp " + pattern);
  // Absolute even when TMPDIR is relative, since the paths outlive any change of directory.
  return std::filesystem::absolute(pattern);
}

}  // namespace

test_pki::test_pki() : dir_(make_temporary_directory()) {
  const auto file = [&](const char* name) { return (dir_.path() / name).string(); };
  ca_cert = file("ca.pem");
  server_cert = file("server.pem");
  server_key = file("server-key.pem");
  client_cert = file("client.pem");
  client_key = file("client-key.pem");
  other_ca_cert = file("other-ca.pem");
  other_server_cert = file("other-server.pem");
  other_server_key = file("other-server-key.pem");
  expired_server_cert = file("expired-server.pem");
  expired_server_key = file("expired-server-key.pem");

  constexpr const char* server_names = "DNS:localhost,IP:127.0.0.1,IP:::1";
  const certificate_spec ca_spec{"coronet test CA", true, nullptr, nullptr, -hour, day};
  const certificate_spec other_ca_spec{"coronet other CA", true, nullptr, nullptr, -hour, day};
  const certificate_spec server_spec{"localhost", false, "serverAuth", server_names, -hour, day};
  const certificate_spec client_spec{
      "coronet test client", false, "clientAuth", nullptr, -hour, day};
  certificate_spec expired_spec = server_spec;
  expired_spec.not_before = -30 * day;
  expired_spec.not_after = -day;

  const key_ptr ca_key = generate_key();
  const certificate_ptr ca = make_certificate(ca_spec, ca_key.get(), nullptr, ca_key.get());
  write_certificate(ca_cert, ca.get());

  // A key per leaf: were they shared, a test handing over the wrong key file would still pass.
  const auto leaf = [&](const certificate_spec& spec, X509* issuer, EVP_PKEY* issuer_key,
                        const std::string& cert_path, const std::string& key_path) {
    const key_ptr key = generate_key();
    const certificate_ptr certificate = make_certificate(spec, key.get(), issuer, issuer_key);
    write_certificate(cert_path, certificate.get());
    write_key(key_path, key.get());
  };
  leaf(server_spec, ca.get(), ca_key.get(), server_cert, server_key);
  leaf(client_spec, ca.get(), ca_key.get(), client_cert, client_key);
  leaf(expired_spec, ca.get(), ca_key.get(), expired_server_cert, expired_server_key);

  const key_ptr other_ca_key = generate_key();
  const certificate_ptr other_ca =
      make_certificate(other_ca_spec, other_ca_key.get(), nullptr, other_ca_key.get());
  write_certificate(other_ca_cert, other_ca.get());
  leaf(server_spec, other_ca.get(), other_ca_key.get(), other_server_cert, other_server_key);
}

test_pki::test_pki(test_pki&&) noexcept = default;
test_pki& test_pki::operator=(test_pki&&) noexcept = default;
test_pki::~test_pki() = default;

test_pki::owned_directory::owned_directory(owned_directory&& other) noexcept
    : path_(std::exchange(other.path_, {})) {}

test_pki::owned_directory& test_pki::owned_directory::operator=(owned_directory&& other) noexcept {
  if (this != &other) {
    owned_directory old(std::move(*this));
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

test_pki::owned_directory::~owned_directory() {
  // A destructor must not throw; a leftover directory in /tmp is the lesser harm.
  std::error_code ignored;
  if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
}

}  // namespace coronet::test
