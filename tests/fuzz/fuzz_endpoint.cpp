// fuzz_endpoint: endpoint::parse on any bytes. What it accepts must print back to a text that
// parses to an equal endpoint; what it refuses must be refused with a documented error, the
// same one host_port::parse gives for the same syntax mistake.
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include <net/if.h>

#include "coronet/endpoint.hpp"
#include "coronet/error.hpp"
#include "fuzz_check.hpp"

namespace {

using coronet::endpoint;
using coronet::errc;

bool is_parse_error(const std::error_code& error) {
  for (const errc e : {errc::empty_address, errc::missing_host, errc::missing_port,
                       errc::invalid_port, errc::port_out_of_range, errc::unbalanced_brackets,
                       errc::trailing_garbage, errc::invalid_host, errc::ipv6_needs_brackets,
                       errc::invalid_unix_path, errc::unix_path_too_long}) {
    if (error == e) return true;
  }
  return false;
}

void check_refused(std::string_view text, const std::error_code& error) {
  CORONET_FUZZ_REQUIRE(is_parse_error(error));
  if (text.starts_with("unix:")) {
    CORONET_FUZZ_REQUIRE(error == errc::invalid_unix_path || error == errc::unix_path_too_long);
    return;
  }
  // The same split as host_port: a syntax error is the same error; a good syntax leaves only
  // the host to blame.
  const auto split = coronet::host_port::parse(text);
  if (!split) {
    CORONET_FUZZ_REQUIRE(split.error() == error);
  } else {
    CORONET_FUZZ_REQUIRE(error == errc::invalid_host);
  }
}

// An IPv6 scope, `%NAME` or `%INDEX`, names an interface: no text after '%' is ignored.
void check_scope(std::string_view host, unsigned long scope_id) {
  const auto percent = host.find('%');
  if (percent == std::string_view::npos) {
    CORONET_FUZZ_REQUIRE(scope_id == 0);
    return;
  }
  const std::string_view scope = host.substr(percent + 1);
  CORONET_FUZZ_REQUIRE(!scope.empty());
  std::uint32_t index = 0;
  const auto [end, error] = std::from_chars(scope.data(), scope.data() + scope.size(), index);
  if (scope.front() >= '0' && scope.front() <= '9' && error == std::errc() &&
      end == scope.data() + scope.size()) {
    CORONET_FUZZ_REQUIRE(scope_id == index);
  } else {
    CORONET_FUZZ_REQUIRE(scope_id != 0);
    CORONET_FUZZ_REQUIRE(scope_id == if_nametoindex(std::string(scope).c_str()));
  }
}

void check_accepted(std::string_view text, const endpoint& ep) {
  // One kind, and the properties of that kind.
  CORONET_FUZZ_REQUIRE(int{ep.is_v4()} + int{ep.is_v6()} + int{ep.is_unix_domain()} == 1);
  CORONET_FUZZ_REQUIRE(ep.is_ip() == !ep.is_unix_domain());
  // No address holds a NUL byte: one in the text must not have been cut off unseen.
  CORONET_FUZZ_REQUIRE(text.find('\0') == std::string_view::npos);

  const std::string printed = ep.to_string();
  const auto again = endpoint::parse(printed);
  CORONET_FUZZ_REQUIRE(again.has_value());
  CORONET_FUZZ_REQUIRE(*again == ep);
  CORONET_FUZZ_REQUIRE((*again <=> ep) == 0);
  CORONET_FUZZ_REQUIRE(again->to_string() == printed);
  CORONET_FUZZ_REQUIRE((ep <=> ep) == 0);

  if (ep.is_unix_domain()) {
    // A Unix path is kept exactly as written.
    CORONET_FUZZ_REQUIRE(printed == text);
    CORONET_FUZZ_REQUIRE(ep.path() == text.substr(5));
    CORONET_FUZZ_REQUIRE(!ep.path().empty() && ep.path().size() <= 107);
    CORONET_FUZZ_REQUIRE(ep.is_abstract() == ep.path().starts_with('@'));
    CORONET_FUZZ_REQUIRE(ep.port() == 0);
    CORONET_FUZZ_REQUIRE(!ep.is_ip() && ep.path() != "@");
    const auto direct = endpoint::unix_domain(ep.path());
    CORONET_FUZZ_REQUIRE(direct.has_value() && *direct == ep);
    CORONET_FUZZ_REQUIRE(ep != endpoint::unix_unnamed());
    return;
  }

  CORONET_FUZZ_REQUIRE(ep.path().empty() && !ep.is_abstract());
  CORONET_FUZZ_REQUIRE(ep.address().is_v6() == ep.is_v6());
  CORONET_FUZZ_REQUIRE(printed.starts_with('[') == ep.is_v6());
  // The same HOST:PORT split as host_port, and through Asio's endpoint types unchanged.
  const auto split = coronet::host_port::parse(text);
  CORONET_FUZZ_REQUIRE(split.has_value());
  CORONET_FUZZ_REQUIRE(split->port == ep.port());
  if (ep.is_v4()) {
    // Dotted decimal has one spelling: the host prints back as written.
    CORONET_FUZZ_REQUIRE(split->host == ep.address().to_string());
  } else {
    check_scope(split->host, ep.address().to_v6().scope_id());
  }
  CORONET_FUZZ_REQUIRE(endpoint(ep.tcp()) == ep);
  CORONET_FUZZ_REQUIRE(endpoint(ep.udp()) == ep);
  CORONET_FUZZ_REQUIRE(endpoint(ep.address(), ep.port()) == ep);
  const auto printed_split = coronet::host_port::parse(printed);
  CORONET_FUZZ_REQUIRE(printed_split.has_value() && printed_split->port == ep.port());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto parsed = endpoint::parse(text);
  if (parsed) {
    check_accepted(text, *parsed);
  } else {
    check_refused(text, parsed.error());
  }
  return 0;
}
