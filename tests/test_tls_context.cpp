#include <doctest/doctest.h>

#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>

#include "support/child_process.hpp"
#include "support/tls.hpp"

using coronet::tls_context;
namespace test = coronet::test;

namespace {

// The message of the std::system_error `make()` throws; fails the test if it throws nothing.
template <class Make>
std::string setup_error(Make make) {
  try {
    (void)make();
  } catch (const std::system_error& e) {
    return e.what();
  }
  FAIL("no std::system_error was thrown");
  return {};
}

bool mentions(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("tls_context: server and client contexts load the files they are given") {
  const auto server = test::server_tls();
  CHECK(server.is_server());
  CHECK(!server.verifies_peer());
  const auto client = test::client_tls();
  CHECK(!client.is_server());
  CHECK(client.verifies_peer());
  CHECK(!tls_context::client({.verify_peer = false}).verifies_peer());
  // The system's authorities, when no CA file is named.
  CHECK(tls_context::client().verifies_peer());
  // Copies share one OpenSSL context.
  const auto copy = server;
  CHECK(&copy.asio_context() == &server.asio_context());
}

TEST_CASE("tls_context: a missing or unreadable file is named with the system's reason") {
  const test::temp_dir dir;
  const std::string missing = (dir.path() / "missing.pem").string();
  auto what = setup_error([&] {
    return tls_context::server({.cert_file = missing, .key_file = test::pki().server_key});
  });
  CHECK_MESSAGE(mentions(what, "cannot read the certificate file '" + missing + "'"), what);
  CHECK_MESSAGE(mentions(what, "No such file or directory"), what);

  what = setup_error([&] {
    return tls_context::server({.cert_file = test::pki().server_cert, .key_file = missing});
  });
  CHECK_MESSAGE(mentions(what, "cannot read the key file '" + missing + "'"), what);

  what = setup_error([&] { return tls_context::client({.ca_file = missing}); });
  CHECK_MESSAGE(mentions(what, "cannot read the CA file '" + missing + "'"), what);
}

TEST_CASE("tls_context: a file that is not PEM, and a key of another certificate, are refused") {
  const test::temp_dir dir;
  const std::string junk = (dir.path() / "junk.pem").string();
  std::ofstream(junk) << "not a certificate\n";
  auto what = setup_error(
      [&] { return tls_context::server({.cert_file = junk, .key_file = test::pki().server_key}); });
  // Then OpenSSL's reason, after a colon.
  CHECK_MESSAGE(mentions(what, "the certificate file '" + junk + "' holds no PEM certificate: "),
                what);

  what = setup_error([&] {
    return tls_context::server({.cert_file = test::pki().server_cert, .key_file = junk});
  });
  CHECK_MESSAGE(mentions(what, "the key file '" + junk + "' holds no usable PEM private key"),
                what);

  what = setup_error([&] { return tls_context::client({.ca_file = junk}); });
  CHECK_MESSAGE(mentions(what, "the CA file '" + junk + "' holds no PEM certificate"), what);

  what = setup_error([&] {
    return tls_context::server(
        {.cert_file = test::pki().server_cert, .key_file = test::pki().client_key});
  });
  CHECK_MESSAGE(
      mentions(what, "the private key in '" + test::pki().client_key +
                         "' does not match the certificate in '" + test::pki().server_cert + "'"),
      what);
}

TEST_CASE("tls_context: a server needs its files, and client certificates need a CA") {
  auto what = setup_error([] { return tls_context::server({}); });
  CHECK_MESSAGE(mentions(what, "needs a certificate file and a key file"), what);
  what = setup_error([] {
    return tls_context::server({.cert_file = test::pki().server_cert,
                                .key_file = test::pki().server_key,
                                .require_client_certificate = true});
  });
  CHECK_MESSAGE(mentions(what, "needs the CA file"), what);
}

TEST_CASE("tls_context: listeners and servers refuse a client context") {
  coronet::runtime runtime(1);
  CHECK_THROWS_AS(
      coronet::tls_server::bind(runtime, test::any_v4(), test::client_tls(),
                                [](coronet::tls_stream) -> asio::awaitable<void> { co_return; }),
      std::invalid_argument);
  asio::io_context context;
  CHECK_THROWS_AS(
      coronet::tls_listener::bind(context.get_executor(), test::any_v4(), test::client_tls()),
      std::invalid_argument);
}

TEST_CASE("tls_context: an encrypted key loads with key_password, and says so without") {
  const test::temp_dir dir;
  const std::string encrypted = (dir.path() / "encrypted-key.pem").string();
  const auto made = coronet::test::run_to_exit(
      test::openssl_program(), {"pkey", "-in", test::pki().server_key, "-aes256", "-passout",
                                "pass:open sesame", "-out", encrypted});
  REQUIRE_MESSAGE(made.exit_code == 0, made.err);

  const auto server = tls_context::server(
      {.cert_file = test::pki().server_cert, .key_file = encrypted, .key_password = "open sesame"});
  CHECK(server.is_server());
  // Without the password (or with a wrong one) the key does not load, and no terminal is asked.
  auto what = setup_error([&] {
    return tls_context::server({.cert_file = test::pki().server_cert, .key_file = encrypted});
  });
  CHECK_MESSAGE(mentions(what, "an encrypted one needs key_password"), what);
  what = setup_error([&] {
    return tls_context::server(
        {.cert_file = test::pki().server_cert, .key_file = encrypted, .key_password = "wrong"});
  });
  CHECK_MESSAGE(mentions(what, "the key file '" + encrypted + "'"), what);
}
