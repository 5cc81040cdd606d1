#pragma once
// unix_listener: a listening Unix-domain stream socket that accepts unix_streams.

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/local/stream_protocol.hpp>

#include "coronet/basic_listener.hpp"
#include "coronet/detail/socket_file.hpp"
#include "coronet/endpoint.hpp"
#include "coronet/unix_stream.hpp"

namespace coronet {

/// How a Unix-domain listener is set up.
struct unix_listen_options {
  /// Length of the kernel's queue of connections not yet accepted.
  int backlog = asio::socket_base::max_listen_connections;
};

/// A listening Unix-domain stream socket, bound to a path or a Linux abstract name.
///
/// The socket file: a stale one at bind time (left by a process that is gone: nobody accepts on
/// it) is replaced; one that a live server listens on is std::errc::address_in_use; any other
/// existing file is coronet::errc::not_a_socket_file and is never deleted. The file this
/// listener created is removed by close() and by the destructor, unless something else has
/// replaced it since. Abstract names (`unix:@name`) have no file.
///
/// accept() comes from basic_listener; options and the descriptor from basic_socket.
///
/// Thread safety: bind() is safe from any thread; every other method, close() included, only
/// from the listener's own executor.
///
/// Example:
///
///     auto where = coronet::endpoint::parse("unix:/tmp/echo.sock").value();
///     auto listener = coronet::unix_listener::bind(ex, where);
///     while (auto stream = co_await listener.accept())
///       coronet::spawn(ex, echo(std::move(*stream)), "echo");
class unix_listener : public basic_listener<asio::local::stream_protocol, unix_stream> {
 public:
  /// Binds to `local` (`unix:/path` or `unix:@name`) by the socket-file rules, and listens.
  /// Throws std::system_error naming the step and the path on failure.
  /// Thread safety: safe from any thread; the listener belongs to `executor` (or `context`).
  static unix_listener bind(const asio::any_io_executor& executor, const endpoint& local,
                            unix_listen_options options = {});
  static unix_listener bind(asio::io_context& context, const endpoint& local,
                            unix_listen_options options = {});

  /// Stops listening and removes the socket file this listener created. Idempotent.
  void close() noexcept;

 private:
  unix_listener(asio::local::stream_protocol::acceptor acceptor, const endpoint& local,
                detail::socket_file file);

  detail::socket_file file_;
};

extern template class basic_listener<asio::local::stream_protocol, unix_stream>;

}  // namespace coronet
