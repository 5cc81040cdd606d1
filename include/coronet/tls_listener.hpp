#pragma once
// tls_listener: a listening TCP socket whose connections are TLS streams.

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

#include "coronet/endpoint.hpp"
#include "coronet/result.hpp"
#include "coronet/source_location.hpp"
#include "coronet/tcp_listener.hpp"
#include "coronet/timeout.hpp"
#include "coronet/tls_context.hpp"
#include "coronet/tls_stream.hpp"

namespace coronet {

/// A TCP listener that hands out tls_streams made with its server context.
///
/// accept() takes the TCP connection only: each stream shakes hands in its own first
/// operation (or handshake()), so one client that never completes a handshake holds up only
/// its own coroutine, never the accept loop. That is what lets tls_server run the same accept
/// loop as tcp_server.
///
/// Errors: bind() throws std::system_error as tcp_listener::bind() does, and
/// std::invalid_argument for a client context; accept() returns tcp_listener's errors.
///
/// Thread safety: bind() is safe from any thread; every other method only from the
/// listener's own executor.
///
/// Example:
///
///     auto tls = coronet::tls_context::server({.cert_file = "cert.pem", .key_file = "key.pem"});
///     auto listener = coronet::tls_listener::bind(ex, where, tls);
///     while (auto stream = co_await listener.accept())
///       coronet::spawn(ex, serve(std::move(*stream)), "tls session");
class tls_listener {
 public:
  /// The stream type accept() returns.
  using stream_type = tls_stream;

  /// Opens, binds and listens as tcp_listener::bind(); throws as said under Errors.
  static tls_listener bind(const asio::any_io_executor& executor, const endpoint& local,
                           tls_context context, listen_options options = {});

  /// Waits for the next TCP connection; its stream lives on the listener's executor and has
  /// not shaken hands yet. Cancellation: safe, as tcp_listener's.
  asio::awaitable<result<tls_stream>> accept(call_timeout limit = {},
                                             source_location where = source_location::current());

  /// The same, placing the stream on `target` (see basic_listener::accept).
  asio::awaitable<result<tls_stream>> accept(const asio::any_io_executor& target,
                                             call_timeout limit = {},
                                             source_location where = source_location::current());

  /// Waits until a connection is queued, without taking it (see basic_listener).
  asio::awaitable<result<void>> wait_for_connection(
      call_timeout limit = {}, source_location where = source_location::current()) {
    return tcp_.wait_for_connection(limit, where);
  }

  /// The bound endpoint, with the real port when bound to port 0.
  const endpoint& local_endpoint() const noexcept { return tcp_.local_endpoint(); }

  /// Closes the listening socket; a pending accept() ends with std::errc::operation_canceled.
  void close() noexcept { tcp_.close(); }
  bool is_open() const noexcept { return tcp_.is_open(); }

  /// The TCP listener underneath: options, descriptor, timeout.
  tcp_listener& tcp() noexcept { return tcp_; }

  /// The server context every accepted stream is made with.
  const tls_context& context() const noexcept { return context_; }

 private:
  tls_listener(tcp_listener tcp, tls_context context) noexcept
      : tcp_(std::move(tcp)), context_(std::move(context)) {}

  tcp_listener tcp_;
  tls_context context_;
};

}  // namespace coronet
