#pragma once
// test_certificates: a throwaway PKI generated when a test runs (EC P-256 keys, SHA-256), so that
// no private key is ever committed: a CA, a server and a client certificate it signed, and an
// unrelated CA with its own server certificate, for the tests that must fail verification.

#include <filesystem>
#include <string>
#include <utility>

namespace coronet::test {

/// PEM files in a fresh temporary directory, which the destructor removes. Every certificate
/// except the other CA's two is signed by ca_cert. Move-only: a moved-from test_pki owns no
/// directory and removes nothing.
class test_pki {
 public:
  /// Generates every file below. Throws std::runtime_error naming the step and OpenSSL's reason.
  test_pki();
  test_pki(const test_pki&) = delete;
  test_pki& operator=(const test_pki&) = delete;
  test_pki(test_pki&&) noexcept;
  test_pki& operator=(test_pki&&) noexcept;
  ~test_pki();

  const std::filesystem::path& dir() const noexcept { return dir_.path(); }

  // Absolute paths of PEM files in dir(); the keys are unencrypted PKCS#8, mode 0600.
  std::string ca_cert;      ///< "coronet test CA": self-signed, CA:TRUE
  std::string server_cert;  ///< CN=localhost, SAN DNS:localhost, IP:127.0.0.1, IP:::1; serverAuth
  std::string server_key;
  std::string client_cert;  ///< CN=coronet test client; clientAuth
  std::string client_key;
  std::string other_ca_cert;      ///< "coronet other CA": an unrelated self-signed CA
  std::string other_server_cert;  ///< the names of server_cert, but signed by other_ca_cert
  std::string other_server_key;
  std::string expired_server_cert;  ///< the names of server_cert; valid from 30 to 1 day ago
  std::string expired_server_key;

 private:
  // Owning the directory apart lets the moves be memberwise, and removes the directory when the
  // constructor throws half-way (the already-built member is destroyed).
  class owned_directory {
   public:
    owned_directory() = default;
    explicit owned_directory(std::filesystem::path path) noexcept : path_(std::move(path)) {}
    owned_directory(owned_directory&& other) noexcept;
    owned_directory& operator=(owned_directory&& other) noexcept;
    ~owned_directory();

    const std::filesystem::path& path() const noexcept { return path_; }

   private:
    std::filesystem::path path_;
  };

  owned_directory dir_;
};

}  // namespace coronet::test
