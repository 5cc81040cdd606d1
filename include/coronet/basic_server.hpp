#pragma once
// basic_server: accept connections on a runtime's threads and run a handler coroutine for each:
// the muduo TcpServer of coronet, behind tcp_server, tls_server and unix_server.

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/socket_base.hpp>

#include "coronet/connection_info.hpp"
#include "coronet/endpoint.hpp"
#include "coronet/lean_stream.hpp"
#include "coronet/runtime.hpp"
#include "coronet/task.hpp"
#include "coronet/tcp_listener.hpp"
#include "coronet/timeout.hpp"
#include "coronet/unix_listener.hpp"

namespace coronet {

class tls_context;
class tls_listener;

/// Where a server accepts and where its connections run.
enum class placement {
  /// One listener; its accept loop runs on context 0 and hands each new connection to the
  /// next context in turn (muduo), each server keeping its own turn. The spread is even
  /// whatever the clients' addresses; one thread does every accept.
  round_robin,
  /// One SO_REUSEPORT listener per context, each accepting for its own thread (Seastar,
  /// libcoro); the kernel picks the listener by a hash of the connection's addresses. No
  /// hand-over between threads and accepts on every core; the spread is only as even as the
  /// hash, and a busy thread's queue waits for it. TCP only.
  reuse_port,
};

/// How a server accepts.
struct server_options {
  coronet::placement placement = coronet::placement::round_robin;
  /// The most connections open at once. When reached, the server stops calling accept():
  /// further clients wait in the kernel's backlog until a connection ends. nullopt: no limit
  /// but the descriptors the process may open.
  std::optional<std::size_t> max_connections = std::nullopt;
  /// Length of each listener's kernel backlog (clamped by net.core.somaxconn).
  int backlog = asio::socket_base::max_listen_connections;
};

/// A server's running totals, as basic_server::stats() reports them.
///
/// Thread safety: a plain value, a snapshot; copy it freely.
struct server_stats {
  /// Connections accepted since bind().
  std::uint64_t accepted = 0;
  /// Connections open now.
  std::size_t open = 0;
  /// Bytes received from and sent to peers, over every connection, open or ended.
  std::uint64_t bytes_received = 0;
  std::uint64_t bytes_sent = 0;
};

/// A server: listens on one endpoint and runs `handler(stream)` for every connection, on the
/// runtime's threads as `options.placement` says. Each connection is its own socket, its own
/// coroutine, on one thread for its whole life; connections() lists them.
///
/// Descriptor exhaustion: when accept() fails with EMFILE/ENFILE (or ENOBUFS/ENOMEM), the
/// accept loop logs one warning, pauses (50 ms, doubling up to 1 s) and tries again: it neither
/// spins nor stops, and serves again as soon as descriptors free up. Clients meanwhile wait in
/// the kernel backlog. max_connections is the way to stay below the limit.
///
/// Errors: bind() throws std::system_error as the listener's bind() does ("cannot bind
/// 127.0.0.1:80: Address already in use"), and std::invalid_argument for placement::reuse_port
/// on a Unix-domain server. An exception escaping the handler is logged with the connection's
/// number and peer, and that connection closed; the server goes on.
///
/// Stopping: stop(grace) closes the listeners, gives live connections `grace` to end on their
/// own, then cancels the rest (the operation each awaits ends with
/// std::errc::operation_canceled) and returns once all have ended.
///
/// Thread safety: every method is safe from any thread. The handler runs on every runtime
/// thread at once, so it must be safe to call concurrently (a function, or a lambda that only
/// reads what it captured). Destroy a server only once stop() has finished or the runtime has
/// stopped; a server must not outlive its runtime.
///
/// Example:
///
///     asio::awaitable<void> echo(coronet::tcp_stream stream);
///     coronet::runtime runtime(4);
///     auto where = coronet::endpoint::parse("[::]:7000").value();
///     auto server = coronet::tcp_server::bind(runtime, where, echo,
///                                             {.max_connections = 10'000});
///     runtime.handle_signals([&] { return server.stop(std::chrono::seconds(5)); });
///     runtime.run();
template <class Listener>
class basic_server {
 public:
  using stream_type = typename Listener::stream_type;
  using handler_type = std::function<asio::awaitable<void>(stream_type)>;
  /// A handler that is a coronet::task over a lean_stream: the lean path (TCP and Unix).
  using task_handler_type = std::function<task<void>(lean_stream)>;

  // The two bind()s are member templates rather than constrained members: clang 14 instantiates
  // a constrained member whose constraint fails when the class is explicitly instantiated.

  /// Binds the listener(s) and starts accepting: at once if the runtime runs, else when it
  /// starts. Port 0 picks a free port (every reuse_port listener shares it): read it back with
  /// local_endpoint(). Throws as said under Errors. Safe from any thread.
  template <class L = Listener>
  requires(!std::same_as<L, tls_listener>) static basic_server
      bind(runtime& on, const endpoint& local, handler_type handler, server_options options = {});

  /// The same with a task handler: every connection a lean_stream, served by a coronet::task
  /// that the thread's readiness set resumes directly (no Asio operation per wait: fewer
  /// instructions per message, less memory per idle connection; benchmarks/README.md). All
  /// else is as above: placement, limits, the connection table, stats, the graceful stop
  /// (which cancels the operation each task waits on), observation. TCP and Unix only.
  template <class L = Listener>
  requires(!std::same_as<L, tls_listener>) static basic_server
      bind(runtime& on, const endpoint& local, task_handler_type handler,
           server_options options = {});

  /// A TLS server's bind (tls_server): as above, every connection shaking hands with
  /// `context`, which must be a server context (else std::invalid_argument).
  template <class L = Listener>
  requires std::same_as<L, tls_listener>
  static basic_server bind(runtime& on, const endpoint& local, const tls_context& context,
                           handler_type handler, server_options options = {});

  basic_server(basic_server&&) noexcept;
  basic_server& operator=(basic_server&&) noexcept;
  basic_server(const basic_server&) = delete;
  basic_server& operator=(const basic_server&) = delete;

  /// If stop() was never called, starts a stop with no grace period, which runs on its own.
  ~basic_server();

  /// The bound endpoint, with the real port. Safe from any thread.
  const endpoint& local_endpoint() const noexcept;

  /// The graceful stop, as said under Stopping; returns how many connections had to be cut
  /// off. Await it from a coroutine on any executor while the runtime runs. Only the first
  /// call stops; a later one returns 0 at once. Safe from any thread.
  asio::awaitable<std::size_t> stop(timeout grace);

  /// Connections open now. Safe from any thread.
  std::size_t connection_count() const;

  /// Totals since bind(). Safe from any thread.
  server_stats stats() const;

  /// A snapshot of every open connection, by id. Safe from any thread; it locks each thread's
  /// table in turn, never the connections themselves.
  std::vector<connection_info> connections() const;

 private:
  struct state;
  explicit basic_server(std::shared_ptr<state> s) noexcept;
  // Makes one listener: on `executor`, bound to `local`.
  using listener_factory =
      std::function<Listener(const asio::any_io_executor& executor, const endpoint& local)>;
  static basic_server bind_with(runtime& on, const endpoint& local,
                                const listener_factory& make_listener, handler_type handler,
                                task_handler_type task_handler, server_options options);
  // Starts a stop with no grace unless one has begun; the state lives on in its coroutines.
  void abandon() noexcept;
  std::shared_ptr<state> state_;
};

extern template class basic_server<tcp_listener>;
extern template class basic_server<unix_listener>;

}  // namespace coronet
