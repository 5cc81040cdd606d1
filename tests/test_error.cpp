#include <doctest/doctest.h>

#include <set>
#include <string>

#include "coronet/error.hpp"

TEST_CASE("errc: codes live in the coronet category with distinct messages") {
  const std::error_code eof = coronet::errc::eof;
  CHECK(eof.category() == coronet::error_category());
  CHECK(std::string(eof.category().name()) == "coronet");
  CHECK(eof.message().find("end of stream") != std::string::npos);
  CHECK(eof != std::errc::connection_reset);

  std::set<std::string> messages;
  for (int e = static_cast<int>(coronet::errc::eof);
       e <= static_cast<int>(coronet::errc::tls_send_interrupted); ++e) {
    messages.insert(coronet::make_error_code(static_cast<coronet::errc>(e)).message());
  }
  CHECK(messages.size() == static_cast<std::size_t>(coronet::errc::tls_send_interrupted));
  CHECK(coronet::error_category().message(999).find("999") != std::string::npos);
}
