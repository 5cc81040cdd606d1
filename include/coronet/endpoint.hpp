#pragma once
// endpoint: a socket address, written `127.0.0.1:80`, `[::1]:80`, `unix:/run/app.sock` or
// `unix:@name`; and resolve(), which turns a host name such as `localhost:80` into endpoints.

#include <array>
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

/// IPv4 or IPv6, for sockets opened before they have an address.
enum class ip_family { v4, v6 };

/// A socket address: an IPv4 or IPv6 address with a port, or a Unix-domain socket's path
/// (`@name` for a Linux abstract name, which lives in no filesystem).
///
/// Thread safety: a value type: the static factories are safe from any thread, and so are the
/// const methods on a shared object; modifying one (assignment) needs exclusive access.
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

  /// A Unix-domain address: a filesystem path, or `@name` for a Linux abstract name.
  /// Errors: coronet::errc::invalid_unix_path (empty, or a NUL byte),
  /// coronet::errc::unix_path_too_long (over 107 bytes, the room in sockaddr_un).
  static result<endpoint> unix_domain(std::string_view path);

  /// The address of a Unix-domain socket that has no name (a client that never bound):
  /// `unix:`, with an empty path().
  static endpoint unix_unnamed() noexcept;

  /// Parses a numeric endpoint: `127.0.0.1:80` or `[::1]:80` (an IPv6 scope is an interface
  /// name or index: `[fe80::1%lo]:80`, `[fe80::1%1]:80`), or a Unix-domain one: `unix:/path` or
  /// `unix:@abstract`. Port 0 means "any free port" when binding. No name lookup is done.
  ///
  /// Errors (coronet::errc): empty_address, missing_host, missing_port, invalid_port,
  /// port_out_of_range, unbalanced_brackets, trailing_garbage, invalid_host (also for a NUL byte
  /// in the host, an empty scope, an unknown interface or an index over 32 bits),
  /// ipv6_needs_brackets, and unix_domain()'s.
  static result<endpoint> parse(std::string_view text);

  /// The IP address and port; 0.0.0.0 and 0 for a Unix-domain endpoint.
  const asio::ip::address& address() const noexcept { return address_; }
  std::uint16_t port() const noexcept { return port_; }
  bool is_ip() const noexcept { return !is_unix_; }
  bool is_v4() const noexcept { return !is_unix_ && address_.is_v4(); }
  bool is_v6() const noexcept { return !is_unix_ && address_.is_v6(); }

  /// Whether this is a Unix-domain endpoint (`unix:...`).
  bool is_unix_domain() const noexcept { return is_unix_; }
  /// Whether this is a Linux abstract Unix-domain name (`unix:@name`).
  bool is_abstract() const noexcept { return is_unix_ && path_size_ > 0 && path_[0] == '@'; }
  /// The Unix-domain path, or `@name`; empty for an IP endpoint or an unnamed (unbound) socket.
  std::string_view path() const noexcept { return {path_.data(), path_size_}; }

  /// `127.0.0.1:80`, `[::1]:80`, `unix:/path` or `unix:@name` (`unix:` alone for an unnamed
  /// socket); parse(to_string()) gives back an equal endpoint.
  std::string to_string() const;

  /// The Asio endpoints (meaningful for IP endpoints only).
  asio::ip::tcp::endpoint tcp() const noexcept { return {address_, port_}; }
  asio::ip::udp::endpoint udp() const noexcept { return {address_, port_}; }

  friend bool operator==(const endpoint&, const endpoint&) noexcept = default;
  friend std::strong_ordering operator<=>(const endpoint& a, const endpoint& b) noexcept;

 private:
  asio::ip::address address_{asio::ip::address_v4::any()};
  std::uint16_t port_ = 0;
  bool is_unix_ = false;
  // Unix domain: the path, or "@name", held inline (sun_path's size) so that an endpoint never
  // allocates and stays trivially destructible (see the static_assert in endpoint.cpp).
  std::uint8_t path_size_ = 0;
  std::array<char, 108> path_{};
};

/// Writes `e.to_string()`. Thread safety: reads `e` as a const method does; `out` needs
/// exclusive access.
std::ostream& operator<<(std::ostream& out, const endpoint& e);

/// A `HOST:PORT` text split in two, where HOST may be a name: `localhost:80`, `[::1]:80`.
/// Thread safety: a value type, as endpoint; parse() is safe from any thread.
struct host_port {
  std::string host;  ///< without brackets
  std::uint16_t port = 0;

  /// Splits `text`; the same syntax errors as endpoint::parse, except that any non-empty host
  /// without a NUL byte is accepted (IPv6 still needs brackets).
  static result<host_port> parse(std::string_view text);
};

/// Resolves `HOST:PORT` (a name or a numeric address) to its endpoints, asynchronously, on the
/// calling coroutine's executor. Numeric addresses resolve without a lookup.
///
/// Returns at least one endpoint, in the resolver's order and without duplicates. Errors: the
/// syntax errors of host_port::parse, or the resolver's (asio::error::host_not_found, ...).
/// Cancellation: cancelling the awaiting coroutine cancels the lookup; nothing is lost.
/// Thread safety: safe from any coroutine, several at once: each call has its own resolver.
asio::awaitable<result<std::vector<endpoint>>> resolve(std::string host_port);

}  // namespace coronet
