#pragma once

#include <cstddef>
#include <system_error>
#include <utility>

#include "coronet/endpoint.hpp"
#include "coronet/result.hpp"

namespace coronet {

/// The outcome of receiving one datagram or message: the bytes placed in the buffer, the
/// datagram's real size, and who sent it.
///
/// A datagram larger than the buffer is never cut silently: the outcome is the error
/// coronet::errc::datagram_truncated, bytes() says how much of it is in the buffer (all the
/// buffer held) and size() its real size. The rest of that datagram is gone.
///
/// Thread safety: a value type: const methods are safe from any thread on a shared object;
/// assigning to one needs exclusive access.
class [[nodiscard]] datagram_result : public io_result {
 public:
  datagram_result(std::size_t bytes, std::size_t size, endpoint sender,
                  std::error_code error = {}) noexcept
      : io_result(bytes, error), size_(size), sender_(std::move(sender)) {}

  /// A failure before any datagram arrived.
  datagram_result(std::error_code error) noexcept  // NOLINT(google-explicit-constructor)
      : io_result(0, error) {}

  /// The datagram's size as sent, larger than bytes() when it was truncated.
  std::size_t size() const noexcept { return size_; }

  /// Whether the datagram was larger than the buffer.
  bool truncated() const noexcept { return size_ > bytes(); }

  /// Where the datagram came from (recvfrom's address); `unix:` for an unnamed Unix peer.
  const endpoint& sender() const noexcept { return sender_; }

 private:
  std::size_t size_ = 0;
  endpoint sender_;
};

}  // namespace coronet
