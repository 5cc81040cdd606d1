#include <doctest/doctest.h>

#include <string>

#include <net/if.h>

#include "support/run.hpp"

using coronet::endpoint;
using coronet::errc;

TEST_CASE("endpoint: parses and formats IPv4 and IPv6") {
  auto v4 = endpoint::parse("127.0.0.1:80");
  REQUIRE(v4);
  CHECK(v4->is_v4());
  CHECK(v4->address() == asio::ip::make_address("127.0.0.1"));
  CHECK(v4->port() == 80);
  CHECK(v4->to_string() == "127.0.0.1:80");

  auto v6 = endpoint::parse("[::1]:80");
  REQUIRE(v6);
  CHECK(v6->is_v6());
  CHECK(v6->address() == asio::ip::make_address("::1"));
  CHECK(v6->to_string() == "[::1]:80");

  CHECK(endpoint::parse("0.0.0.0:0")->port() == 0);
  CHECK(endpoint::parse("255.255.255.255:65535")->port() == 65535);
  CHECK(endpoint::parse("[2001:db8::1]:443")->to_string() == "[2001:db8::1]:443");
  CHECK(endpoint::parse("[::ffff:10.0.0.1]:1")->to_string() == "[::ffff:10.0.0.1]:1");
}

TEST_CASE("endpoint: to_string and parse round trip") {
  for (const char* text : {"10.1.2.3:7", "[fe80::1:2]:9", "[::]:0", "1.1.1.1:65535"}) {
    auto ep = endpoint::parse(text);
    REQUIRE_MESSAGE(ep, text);
    CHECK(ep->to_string() == text);
    CHECK(endpoint::parse(ep->to_string()).value() == *ep);
  }
}

TEST_CASE("endpoint: malformed input gives a clear error value") {
  struct bad {
    const char* text;
    errc expected;
  };
  const bad cases[] = {
      {"", errc::empty_address},
      {"127.0.0.1", errc::missing_port},
      {"127.0.0.1:", errc::missing_port},
      {"[::1]", errc::missing_port},
      {"[::1]:", errc::missing_port},
      {":80", errc::missing_host},
      {"[]:80", errc::missing_host},
      {"127.0.0.1:65536", errc::port_out_of_range},
      {"127.0.0.1:99999999999999999999999", errc::port_out_of_range},
      {"127.0.0.1:-1", errc::invalid_port},
      {"127.0.0.1:+80", errc::invalid_port},
      {"127.0.0.1:http", errc::invalid_port},
      {"127.0.0.1: 80", errc::invalid_port},
      {"[::1:80", errc::unbalanced_brackets},
      {"::1]:80", errc::unbalanced_brackets},
      {"[[::1]]:80", errc::unbalanced_brackets},
      {"[::1]]:80", errc::unbalanced_brackets},
      {"[::1]:80]", errc::unbalanced_brackets},
      {"127.0.0.1:80x", errc::trailing_garbage},
      {"127.0.0.1:80 ", errc::trailing_garbage},
      {"127.0.0.1:0x50", errc::trailing_garbage},
      {"[::1]x:80", errc::trailing_garbage},
      {"localhost:80", errc::invalid_host},
      {"256.0.0.1:80", errc::invalid_host},
      {"127.1:80", errc::invalid_host},
      {" 127.0.0.1:80", errc::invalid_host},
      {"[127.0.0.1]:80", errc::invalid_host},
      {"[not-v6]:80", errc::invalid_host},
      {"::1:80", errc::ipv6_needs_brackets},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    auto ep = endpoint::parse(c.text);
    REQUIRE_FALSE(ep);
    CHECK(ep.error() == c.expected);
    CHECK_FALSE(ep.error().message().empty());
    CHECK_THROWS_AS(ep.value(), std::system_error);
  }
}

TEST_CASE("endpoint: a text with a NUL byte or high bytes is rejected - not misread") {
  const std::string with_nul("127.0.0.1:80\0", 13);
  CHECK(endpoint::parse(with_nul).error() == errc::trailing_garbage);
  // In the host, where it would end the C string Asio parses: not 1.2.3.4:80.
  const std::string in_v4_host("1.2.3.4\0junk:80", 15);
  CHECK(endpoint::parse(in_v4_host).error() == errc::invalid_host);
  CHECK(endpoint::parse(std::string("[::1\0x]:80", 10)).error() == errc::invalid_host);
  CHECK(endpoint::parse(std::string("[fe80::1%lo\0x]:80", 17)).error() == errc::invalid_host);
  CHECK(coronet::host_port::parse(std::string("localhost\0.evil:80", 18)).error() ==
        errc::invalid_host);
  CHECK_FALSE(endpoint::parse("\xff\xfe:1"));
  CHECK_FALSE(endpoint::parse(std::string(100000, '[')));
}

TEST_CASE("endpoint: an IPv6 scope is an interface name or index and nothing else") {
  const auto by_name = endpoint::parse("[fe80::1%lo]:80");
  REQUIRE(by_name);
  CHECK(by_name->address().to_v6().scope_id() == if_nametoindex("lo"));
  CHECK(by_name->to_string() == "[fe80::1%lo]:80");
  const auto by_index = endpoint::parse("[fe80::1%4294967295]:80");
  REQUIRE(by_index);
  CHECK(by_index->address().to_v6().scope_id() == 4294967295U);
  CHECK(endpoint::parse(by_index->to_string()).value() == *by_index);
  CHECK(endpoint::parse("[ff02::1%7]:80")->address().to_v6().scope_id() == 7);
  CHECK(endpoint::parse("[2001:db8::1%3]:80")->to_string() == "[2001:db8::1%3]:80");
  // Each of these was read as no scope, or a wrapped one, instead of refused.
  for (const char* text :
       {"[fe80::1%]:80", "[fe80::1%no-such-if0]:80", "[fe80::1%loE]:80", "[fe80::1%4294967296]:80",
        "[::1%-5]:80", "[fe80::1%1x]:80", "[fe80::1% 1]:80", "[fe80::1%%lo]:80"}) {
    CAPTURE(text);
    CHECK(endpoint::parse(text).error() == errc::invalid_host);
  }
}

TEST_CASE("endpoint: converts to and from Asio endpoints and orders by address then port") {
  const asio::ip::tcp::endpoint tcp(asio::ip::make_address("10.0.0.1"), 5);
  const endpoint ep(tcp);
  CHECK(ep.tcp() == tcp);
  CHECK(ep.udp().port() == 5);
  CHECK(endpoint() == endpoint::parse("0.0.0.0:0").value());
  CHECK(endpoint::parse("10.0.0.1:5").value() < endpoint::parse("10.0.0.1:6").value());
  CHECK(endpoint::parse("10.0.0.1:9").value() < endpoint::parse("10.0.0.2:1").value());
}

TEST_CASE("host_port: splits names as well as numeric hosts") {
  auto named = coronet::host_port::parse("localhost:8080");
  REQUIRE(named);
  CHECK(named->host == "localhost");
  CHECK(named->port == 8080);
  CHECK(coronet::host_port::parse("[::1]:1")->host == "::1");
  CHECK(coronet::host_port::parse("example.com").error() == errc::missing_port);
  CHECK(coronet::host_port::parse("example.com:70000").error() == errc::port_out_of_range);
}

TEST_CASE("resolve: a host name resolves asynchronously to loopback endpoints") {
  coronet::test::run([]() -> asio::awaitable<void> {
    auto found = co_await coronet::resolve("localhost:80");
    REQUIRE(found);
    REQUIRE_FALSE(found->empty());
    for (const auto& ep : *found) {
      CHECK(ep.address().is_loopback());
      CHECK(ep.port() == 80);
    }
    auto numeric = co_await coronet::resolve("[::1]:9");
    REQUIRE(numeric);
    CHECK(numeric->size() == 1);
    CHECK(numeric->front().to_string() == "[::1]:9");
  });
}

TEST_CASE("resolve: bad syntax and unknown names are error values") {
  coronet::test::run([]() -> asio::awaitable<void> {
    auto no_port = co_await coronet::resolve("localhost");
    CHECK(no_port.error() == errc::missing_port);
    // .invalid is reserved (RFC 2606): it never resolves, and is answered locally.
    auto unknown = co_await coronet::resolve("no-such-host.invalid:80");
    CHECK_FALSE(unknown);
    CHECK_FALSE(unknown.error().message().empty());
  });
}

TEST_CASE("endpoint: unix:/path and unix:@abstract parse and format") {
  auto path = endpoint::parse("unix:/tmp/echo.sock");
  REQUIRE(path);
  CHECK(path->is_unix_domain());
  CHECK_FALSE(path->is_ip());
  CHECK_FALSE(path->is_v4());
  CHECK_FALSE(path->is_abstract());
  CHECK(path->path() == "/tmp/echo.sock");
  CHECK(path->to_string() == "unix:/tmp/echo.sock");

  auto abstract = endpoint::parse("unix:@coronet-test");
  REQUIRE(abstract);
  CHECK(abstract->is_abstract());
  CHECK(abstract->path() == "@coronet-test");
  CHECK(abstract->to_string() == "unix:@coronet-test");
  CHECK(endpoint::parse(abstract->to_string()).value() == *abstract);

  CHECK(endpoint::parse("unix:relative/name.sock")->path() == "relative/name.sock");
  CHECK(endpoint::unix_domain("/a").value() == endpoint::parse("unix:/a").value());
  CHECK(endpoint::unix_unnamed().to_string() == "unix:");
  CHECK(endpoint::unix_unnamed().path().empty());
  // IP endpoints order before Unix-domain ones, paths by bytes.
  CHECK(endpoint::parse("1.2.3.4:5").value() < *path);
  CHECK(endpoint::parse("unix:/a").value() < endpoint::parse("unix:/b").value());
}

TEST_CASE("endpoint: bad unix paths are error values") {
  CHECK(endpoint::parse("unix:").error() == errc::invalid_unix_path);
  CHECK(endpoint::parse("unix:@").error() == errc::invalid_unix_path);
  CHECK(endpoint::parse(std::string("unix:/a\0b", 9)).error() == errc::invalid_unix_path);
  // sun_path has room for 107 bytes and a terminating NUL.
  CHECK(endpoint::parse("unix:/" + std::string(106, 'p')));
  CHECK(endpoint::parse("unix:/" + std::string(107, 'p')).error() == errc::unix_path_too_long);
  CHECK(endpoint::parse("unix:@" + std::string(106, 'n')));
  CHECK(endpoint::parse("unix:@" + std::string(107, 'n')).error() == errc::unix_path_too_long);
  CHECK(endpoint::parse("UNIX:/x").error() == errc::invalid_port);  // the prefix is lower case
}
