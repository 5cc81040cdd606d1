#pragma once
// basic_socket: what every coronet socket has whatever its protocol: the descriptor, typed
// options, blocking mode and close. tcp_stream and tcp_listener derive from it.

#include <system_error>
#include <utility>

#include <asio/any_io_executor.hpp>

#include "coronet/detail/io.hpp"
#include "coronet/detail/observer.hpp"
#include "coronet/result.hpp"
#include "coronet/socket_option.hpp"
#include "coronet/timeout.hpp"

namespace coronet {

/// The operations shared by all coronet sockets, over the Asio socket or acceptor they own.
///
/// Thread safety: every method, close() and the destructor included, only from the socket's
/// own executor, which must run one handler at a time (an io_context run by one thread, or a
/// strand). Asio sockets are not safe for concurrent use: close() from another thread is a data
/// race, so post it to the socket's executor instead.
template <class AsioSocket>
class basic_socket {
 public:
  using native_handle_type = typename AsioSocket::native_handle_type;

  /// Closes the socket; pending operations complete with std::errc::operation_canceled.
  /// Idempotent; never fails.
  void close() noexcept {
    std::error_code ignored;
    socket_.close(ignored);
  }

  bool is_open() const noexcept { return socket_.is_open(); }

  /// Sets a typed option from coronet::option (setsockopt).
  /// Errors: the kernel's (std::errc::bad_file_descriptor once closed, invalid_argument, ...).
  template <socket_option Option>
  result<void> set_option(const Option& option) {
    return detail::set_socket_option(native_handle(), option);
  }

  /// Reads a typed option from coronet::option (getsockopt).
  template <socket_option Option>
  result<Option> get_option() const {
    Option option{};
    if (auto ec = detail::get_socket_option(native_handle(), option)) return ec;
    return option;
  }

  /// The descriptor (fileno); it stays owned by this object. -1 once closed.
  native_handle_type native_handle() const noexcept {
    // Asio's native_handle() is not const, though it only reads the descriptor.
    return const_cast<AsioSocket&>(socket_).native_handle();
  }

  /// Whether the descriptor is in non-blocking mode (O_NONBLOCK). Asio switches it on when the
  /// first asynchronous operation starts.
  bool non_blocking() const noexcept { return detail::fd_non_blocking(native_handle()); }

  /// Puts the descriptor in blocking or non-blocking mode, for code given native_handle().
  /// coronet's own operations work in both: each switches it back to non-blocking as it starts.
  result<void> set_non_blocking(bool mode) {
    std::error_code ec;
    socket_.native_non_blocking(mode, ec);
    return detail::to_coronet_error(ec);
  }

  asio::any_io_executor get_executor() noexcept { return socket_.get_executor(); }

  /// The time limit each operation of this socket gets unless the call passes its own
  /// (settimeout). An operation that runs out reports std::errc::timed_out. The default is
  /// no_timeout.
  void set_timeout(timeout limit) noexcept { timeout_ = limit; }

  /// The limit set_timeout() set (gettimeout).
  timeout get_timeout() const noexcept { return timeout_; }

 protected:
  // The limit for one call: its own, else the socket's.
  timeout limit_for(call_timeout limit) const noexcept { return limit.value_or(timeout_); }

  explicit basic_socket(AsioSocket socket) noexcept : socket_(std::move(socket)) {}
  basic_socket(basic_socket&&) noexcept = default;
  basic_socket& operator=(basic_socket&&) noexcept = default;
  ~basic_socket() = default;

  AsioSocket socket_;
  // What its operations wait on, for a runtime that observes (runtime::suspended_operations).
  detail::wait_slot waits_;

 private:
  timeout timeout_ = no_timeout;
};

}  // namespace coronet
