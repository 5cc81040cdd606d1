#pragma once
// timeout: how long an operation may take, or no_timeout, the settimeout/gettimeout habit.

#include <chrono>
#include <optional>

namespace coronet {

/// A time limit for one operation, or none at all. "No limit" is spelled coronet::no_timeout,
/// never 0: a zero or negative duration is a limit that has already passed.
///
///     socket.set_timeout(std::chrono::seconds(5));       // every operation of socket
///     co_await socket.recv(buf, std::chrono::milliseconds(200));  // this call only
///     co_await socket.recv(buf, coronet::no_timeout);    // this call waits as long as it takes
///
/// Thread safety: a value type: const methods are safe from any thread on a shared object;
/// assigning to one needs exclusive access.
class timeout {
 public:
  using duration = std::chrono::steady_clock::duration;

  /// A limit of `limit` (any std::chrono duration).
  template <class Rep, class Period>
  constexpr timeout(
      std::chrono::duration<Rep, Period> limit) noexcept  // NOLINT(google-explicit-constructor)
      : limit_(std::chrono::duration_cast<duration>(limit)) {}

  /// No limit.
  static constexpr timeout none() noexcept { return timeout(); }

  constexpr bool is_none() const noexcept { return !limit_.has_value(); }

  /// The limit; only when !is_none().
  constexpr duration value() const noexcept { return *limit_; }

  friend constexpr bool operator==(const timeout&, const timeout&) noexcept = default;

 private:
  constexpr timeout() noexcept = default;
  std::optional<duration> limit_;
};

/// No time limit: wait as long as it takes.
inline constexpr timeout no_timeout = timeout::none();

/// A per-call limit: empty means "the socket's own timeout" (see basic_socket::set_timeout).
using call_timeout = std::optional<timeout>;

}  // namespace coronet
