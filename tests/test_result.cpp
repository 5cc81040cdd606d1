#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "coronet/error.hpp"
#include "coronet/result.hpp"

TEST_CASE("result: a value tests true and hands the value out") {
  coronet::result<std::string> r(std::string("hello"));
  CHECK(static_cast<bool>(r));
  CHECK(r.has_value());
  CHECK_FALSE(r.error());
  CHECK(*r == "hello");
  CHECK(r->size() == 5);
  CHECK(r.value() == "hello");
}

TEST_CASE("result: an error tests false - and value() throws system_error with that code") {
  coronet::result<int> r(make_error_code(std::errc::connection_refused));
  CHECK_FALSE(r);
  CHECK(r.error() == std::errc::connection_refused);
  try {
    (void)r.value();
    FAIL("value() did not throw");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::errc::connection_refused);
  }
}

TEST_CASE("result: holds move-only values") {
  coronet::result<std::unique_ptr<int>> r(std::make_unique<int>(7));
  auto owned = std::move(r).value();
  CHECK(*owned == 7);
}

TEST_CASE("result<void>: success and failure") {
  coronet::result<void> ok;
  CHECK(ok);
  CHECK_NOTHROW(ok.value());
  coronet::result<void> bad(make_error_code(std::errc::bad_file_descriptor));
  CHECK_FALSE(bad);
  CHECK_THROWS_AS(bad.value(), std::system_error);
}

TEST_CASE("io_result: bytes are reported on failure too") {
  coronet::io_result done(42);
  CHECK(done);
  CHECK(done.value() == 42);
  coronet::io_result cut(17, coronet::errc::eof);
  CHECK_FALSE(cut);
  CHECK(cut.bytes() == 17);
  CHECK(cut.error() == coronet::errc::eof);
  CHECK_THROWS_AS((void)cut.value(), std::system_error);
}
