#pragma once
// endpoint: an IP address and a port, written `127.0.0.1:80` or `[::1]:80`; and resolve(),
// which turns a host name such as `localhost:80` into endpoints.

#include <compare>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>

#include "coronet/result.hpp"

namespace coronet {

/// An IPv4 or IPv6 address with a port: what the classic API calls a socket address.
///
/// Thread safety: a value type; distinct objects are safe from any thread, and one object is
/// safe from several threads as long as none of them modifies it.
///
/// Example:
///
///     auto ep = coronet::endpoint::parse("[::1]:8080").value();
///     assert(ep.is_v6() && ep.port() == 8080 && ep.to_string() == "[::1]:8080");
class endpoint {
 public:
  /// 0.0.0.0:0, the IPv4 wildcard address with "any free port".
  endpoint() noexcept = default;
  endpoint(asio::ip::address address, std::uint16_t port) noexcept;
  endpoint(const asio::ip::tcp::endpoint& ep) noexcept;  // NOLINT(google-explicit-constructor)
  endpoint(const asio::ip::udp::endpoint& ep) noexcept;  // NOLINT(google-explicit-constructor)

  /// Parses a numeric endpoint: `127.0.0.1:80` or `[::1]:80` (an IPv6 scope, `[fe80::1%lo]:80`,
  /// is accepted). Port 0 means "any free port" when binding. No name lookup is done.
  ///
  /// Errors (coronet::errc): empty_address, missing_host, missing_port, invalid_port,
  /// port_out_of_range, unbalanced_brackets, trailing_garbage, invalid_host, ipv6_needs_brackets.
  static result<endpoint> parse(std::string_view text);

  const asio::ip::address& address() const noexcept { return address_; }
  std::uint16_t port() const noexcept { return port_; }
  bool is_v4() const noexcept { return address_.is_v4(); }
  bool is_v6() const noexcept { return address_.is_v6(); }

  /// `127.0.0.1:80` or `[::1]:80`; parse(to_string()) gives back an equal endpoint.
  std::string to_string() const;

  asio::ip::tcp::endpoint tcp() const noexcept { return {address_, port_}; }
  asio::ip::udp::endpoint udp() const noexcept { return {address_, port_}; }

  friend bool operator==(const endpoint&, const endpoint&) noexcept = default;
  friend std::strong_ordering operator<=>(const endpoint& a, const endpoint& b) noexcept;

 private:
  asio::ip::address address_{asio::ip::address_v4::any()};
  std::uint16_t port_ = 0;
};

/// Writes `e.to_string()`.
std::ostream& operator<<(std::ostream& out, const endpoint& e);

/// A `HOST:PORT` text split in two, where HOST may be a name: `localhost:80`, `[::1]:80`.
struct host_port {
  std::string host;  ///< without brackets
  std::uint16_t port = 0;

  /// Splits `text`; the same syntax errors as endpoint::parse, except that any non-empty host is
  /// accepted (IPv6 still needs brackets).
  static result<host_port> parse(std::string_view text);
};

/// Resolves `HOST:PORT` (a name or a numeric address) to its endpoints, asynchronously, on the
/// calling coroutine's executor. Numeric addresses resolve without a lookup.
///
/// Returns at least one endpoint, in the resolver's order and without duplicates. Errors: the
/// syntax errors of host_port::parse, or the resolver's (asio::error::host_not_found, ...).
/// Cancellation: cancelling the awaiting coroutine cancels the lookup; nothing is lost.
asio::awaitable<result<std::vector<endpoint>>> resolve(std::string host_port);

}  // namespace coronet
