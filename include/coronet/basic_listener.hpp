#pragma once
// basic_listener: accept() for the listeners of every connection-oriented protocol.

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/basic_socket_acceptor.hpp>

#include "coronet/basic_socket.hpp"
#include "coronet/endpoint.hpp"
#include "coronet/result.hpp"
#include "coronet/source_location.hpp"
#include "coronet/timeout.hpp"

namespace coronet {

/// A listening socket that accepts connections as `Stream`s (tcp_stream, unix_stream,
/// unix_seqpacket).
///
/// Errors: accept() returns its failures as values: std::errc::too_many_files_open (EMFILE)
/// and std::errc::connection_aborted are transient; std::errc::operation_canceled follows
/// close().
///
/// Thread safety: every method only from the listener's own executor (see basic_socket); at
/// most one accept() may be pending at a time. The streams it accepts live on the executor
/// accept() was given.
template <class Protocol, class Stream>
class basic_listener : public basic_socket<asio::basic_socket_acceptor<Protocol>> {
 public:
  /// The stream type accept() returns.
  using stream_type = Stream;

  /// Waits for the next connection; the stream lives on the listener's executor.
  /// Cancellation: safe; a connection completed by the kernel stays queued for the next accept().
  asio::awaitable<result<Stream>> accept(call_timeout limit = {},
                                         source_location where = source_location::current());

  /// Waits for the next connection and places its stream on `target`, another thread's
  /// executor for instance.
  /// Thread safety: await it on the listener's executor, like accept(); the stream it returns
  /// there belongs to `target`: hand it over (spawn(target, ...)) before using it. The socket
  /// is registered with `target`'s reactor from this thread, so `target` must not be a running
  /// context of a runtime with runtime_options::unlocked_io (coronet's servers hand over the
  /// descriptor instead, and `target`'s thread makes the socket).
  asio::awaitable<result<Stream>> accept(const asio::any_io_executor& target,
                                         call_timeout limit = {},
                                         source_location where = source_location::current());

  /// Waits until a connection is queued, without taking it: the next accept() returns at
  /// once. A server with several listeners waits so before taking a connection slot, so that
  /// an idle listener holds none.
  /// Errors: std::errc::operation_canceled after close(); std::errc::timed_out.
  /// Cancellation: safe; nothing is taken.
  asio::awaitable<result<void>> wait_for_connection(
      call_timeout limit = {}, source_location where = source_location::current());

  /// The bound endpoint (getsockname), with the real port when bound to port 0.
  const endpoint& local_endpoint() const noexcept { return local_; }

 protected:
  basic_listener(asio::basic_socket_acceptor<Protocol> acceptor, const endpoint& local) noexcept
      : basic_socket<asio::basic_socket_acceptor<Protocol>>(std::move(acceptor)), local_(local) {}

 private:
  endpoint local_;
};

}  // namespace coronet
