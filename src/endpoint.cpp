#include "coronet/endpoint.hpp"

#include <net/if.h>

#include <algorithm>
#include <charconv>
#include <ostream>
#include <type_traits>

#include <asio/this_coro.hpp>

#include "coronet/detail/io.hpp"
#include "coronet/error.hpp"

namespace coronet {

// GCC 12 destroys an aggregate temporary twice when it has a non-trivial destructor and is
// built inside a co_await expression, as in `co_await connect(ep, {.local = source})`. Keeping
// endpoint (and so connect_options) trivially destructible keeps that call safe.
static_assert(std::is_trivially_destructible_v<endpoint>);

namespace {

// The pieces of `HOST:PORT` before the host is interpreted.
struct split_text {
  std::string_view host;
  bool bracketed = false;
  std::uint16_t port = 0;
};

result<std::uint16_t> parse_port(std::string_view text) {
  if (text.empty()) return make_error_code(errc::missing_port);
  if (text.front() < '0' || text.front() > '9') return make_error_code(errc::invalid_port);
  unsigned long value = 0;  // wider than a port, so that 70000 is out of range, not garbage
  const char* end = text.data() + text.size();
  auto [stop, ec] = std::from_chars(text.data(), end, value);
  if (ec == std::errc::result_out_of_range) return make_error_code(errc::port_out_of_range);
  if (stop != end) return make_error_code(errc::trailing_garbage);
  if (value > 65535) return make_error_code(errc::port_out_of_range);
  return static_cast<std::uint16_t>(value);
}

// An IPv6 scope, the text after '%': an interface index (`2`) or name (`lo`). Asio reads it
// as atoi() would when no interface has that name, so an unknown name, or any text, became no
// scope at all, and a number past 32 bits wrapped: those are refused here instead.
result<std::uint32_t> parse_scope(std::string_view text) {
  if (text.empty()) return make_error_code(errc::invalid_host);
  if (text.front() >= '0' && text.front() <= '9') {
    std::uint32_t index = 0;  // sin6_scope_id's width
    const char* end = text.data() + text.size();
    auto [stop, ec] = std::from_chars(text.data(), end, index);
    if (ec != std::errc() || stop != end) return make_error_code(errc::invalid_host);
    return index;
  }
  const unsigned index = if_nametoindex(std::string(text).c_str());
  if (index == 0) return make_error_code(errc::invalid_host);
  return index;
}

result<split_text> split(std::string_view text) {
  if (text.empty()) return make_error_code(errc::empty_address);
  split_text out;
  std::string_view rest;
  if (text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return make_error_code(errc::unbalanced_brackets);
    out.host = text.substr(1, close - 1);
    out.bracketed = true;
    if (out.host.find_first_of("[]") != std::string_view::npos) {
      return make_error_code(errc::unbalanced_brackets);
    }
    rest = text.substr(close + 1);
    if (rest.empty()) return make_error_code(errc::missing_port);
    if (rest.find_first_of("[]") != std::string_view::npos) {
      return make_error_code(errc::unbalanced_brackets);
    }
    if (rest.front() != ':') return make_error_code(errc::trailing_garbage);
    rest.remove_prefix(1);
  } else {
    if (text.find_first_of("[]") != std::string_view::npos) {
      return make_error_code(errc::unbalanced_brackets);
    }
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return make_error_code(errc::missing_port);
    out.host = text.substr(0, colon);
    if (out.host.find(':') != std::string_view::npos) {
      return make_error_code(errc::ipv6_needs_brackets);
    }
    rest = text.substr(colon + 1);
  }
  if (out.host.empty()) return make_error_code(errc::missing_host);
  // The host goes on as a C string (to inet_pton, if_nametoindex or the resolver), which would
  // end at a NUL: `1.2.3.4\0junk:80` must not read as 1.2.3.4.
  if (out.host.find('\0') != std::string_view::npos) return make_error_code(errc::invalid_host);
  auto port = parse_port(rest);
  if (!port) return port.error();
  out.port = *port;
  return out;
}

}  // namespace

endpoint::endpoint(asio::ip::address address, std::uint16_t port) noexcept
    : address_(std::move(address)), port_(port) {}

endpoint::endpoint(const asio::ip::tcp::endpoint& ep) noexcept
    : address_(ep.address()), port_(ep.port()) {}

endpoint::endpoint(const asio::ip::udp::endpoint& ep) noexcept
    : address_(ep.address()), port_(ep.port()) {}

result<endpoint> endpoint::unix_domain(std::string_view path) {
  if (path.empty() || path == "@" || path.find('\0') != std::string_view::npos) {
    return make_error_code(errc::invalid_unix_path);
  }
  // sun_path holds 108 bytes: a path needs its terminating NUL; an abstract name takes the
  // leading NUL in place of the '@'.
  if (path.size() > 107) return make_error_code(errc::unix_path_too_long);
  endpoint out;
  out.is_unix_ = true;
  out.path_size_ = static_cast<std::uint8_t>(path.size());
  std::copy(path.begin(), path.end(), out.path_.begin());
  return out;
}

endpoint endpoint::unix_unnamed() noexcept {
  endpoint out;
  out.is_unix_ = true;
  return out;
}

result<endpoint> endpoint::parse(std::string_view text) {
  constexpr std::string_view unix_prefix = "unix:";
  if (text.substr(0, unix_prefix.size()) == unix_prefix) {
    return unix_domain(text.substr(unix_prefix.size()));
  }
  auto parts = split(text);
  if (!parts) return parts.error();
  std::error_code ec;
  if (parts->bracketed) {
    std::string_view address = parts->host;
    std::uint32_t scope = 0;
    if (const auto percent = address.find('%'); percent != std::string_view::npos) {
      auto index = parse_scope(address.substr(percent + 1));
      if (!index) return index.error();
      scope = *index;
      address = address.substr(0, percent);
    }
    auto v6 = asio::ip::make_address_v6(std::string(address), ec);
    if (ec) return make_error_code(errc::invalid_host);
    v6.scope_id(scope);
    return endpoint(v6, parts->port);
  }
  const std::string host(parts->host);
  auto v4 = asio::ip::make_address_v4(host, ec);
  if (ec) return make_error_code(errc::invalid_host);
  return endpoint(v4, parts->port);
}

std::string endpoint::to_string() const {
  if (is_unix_) return "unix:" + std::string(path());
  std::string out;
  if (address_.is_v6()) {
    out = '[' + address_.to_string() + ']';
  } else {
    out = address_.to_string();
  }
  out += ':';
  out += std::to_string(port_);
  return out;
}

std::strong_ordering operator<=>(const endpoint& a, const endpoint& b) noexcept {
  if (a.is_unix_ != b.is_unix_) return a.is_unix_ <=> b.is_unix_;  // IP endpoints first
  if (a.is_unix_) return a.path().compare(b.path()) <=> 0;
  if (a.address_ < b.address_) return std::strong_ordering::less;
  if (b.address_ < a.address_) return std::strong_ordering::greater;
  return a.port_ <=> b.port_;
}

std::ostream& operator<<(std::ostream& out, const endpoint& e) { return out << e.to_string(); }

result<host_port> host_port::parse(std::string_view text) {
  auto parts = split(text);
  if (!parts) return parts.error();
  return host_port{std::string(parts->host), parts->port};
}

asio::awaitable<result<std::vector<endpoint>>> resolve(std::string text) {
  auto target = host_port::parse(text);
  if (!target) co_return target.error();

  asio::ip::tcp::resolver resolver(co_await asio::this_coro::executor);
  const auto [ec, entries] = co_await resolver.async_resolve(
      target->host, std::to_string(target->port), asio::ip::resolver_base::numeric_service,
      detail::use_nothrow);
  if (ec) co_return detail::to_coronet_error(ec);

  std::vector<endpoint> out;
  for (const auto& entry : entries) {
    endpoint ep(entry.endpoint());
    if (std::find(out.begin(), out.end(), ep) == out.end()) out.push_back(ep);
  }
  if (out.empty()) co_return make_error_code(asio::error::host_not_found);
  co_return out;
}

}  // namespace coronet
