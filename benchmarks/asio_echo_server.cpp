// asio_echo_server: writes every byte it receives back to its sender, in order, until the peer
// closes; over UDP, sends every datagram back to its sender unchanged. Written with plain Asio
// 1.22 and no coronet, in one of two styles: completion handlers (the default), the way Asio's
// examples do it, or with --coroutines C++20 coroutines (asio::awaitable, one co_spawn per
// connection), the way Asio's cpp20 coroutine examples do it.
//
// Why it exists: it is the baseline that shows what coronet costs or saves compared with what a
// user writes with Asio alone. The hand-written epoll server (epoll_echo_server) shows what the
// kernel allows; this one shows where Asio's own machinery puts a callback server, and with
// --coroutines where it puts a coroutine server like coronet's (the benchmarks call the two
// asio and asio-coro).
//
// Run:    build/bin/asio_echo_server --tcp 127.0.0.1:7000 --unix /tmp/echo.sock
//         (add --udp 127.0.0.1:7000 for UDP, --threads 4 to choose the threads; port 0 picks a
//         free port, which the ready lines show)
// Pair:   build/bin/coronet_bench --proto tcp --target 127.0.0.1:7000 --connections 100
//         (or --proto udp --target 127.0.0.1:7000, --proto unix --target /tmp/echo.sock;
//         nc 127.0.0.1 7000, nc -u 127.0.0.1 7000, nc -U /tmp/echo.sock)
// Stop:   Ctrl-C or SIGTERM (an asio::signal_set): every io_context stops, open connections are
//         closed at once (no grace period), the socket files it created are removed, exit 0.
//
// Options:
//   --tcp ADDR, --udp ADDR, --unix PATH   what to serve (repeatable, at least one). ADDR is
//                        127.0.0.1:7000 or [::1]:7000 (numeric hosts only); PATH is /path,
//                        unix:/path or @name (Linux abstract name).
//   --threads N          io_contexts, one thread each (default: one per hardware thread).
//   --coroutines         sessions, accept loops and UDP sockets as coroutines, not callbacks.
// Each --tcp and --unix is one acceptor on context 0 that hands each new connection to the
// next context in turn (acceptor.async_accept(next_context, handler)), as muduo and the Asio
// "io_context per CPU" example do. Each --udp is one SO_REUSEPORT socket per context on the
// same port, the kernel spreading datagrams over them.
//
// Ready lines, on stdout once everything is bound, one per listener in command-line order:
//   listening tcp 127.0.0.1:41234
//   listening udp [::1]:41235
//   listening unix /tmp/echo.sock
//
// Exit codes: 0 after SIGINT/SIGTERM; 1 when an address cannot be bound (one line on stderr);
// 2 for a command-line mistake, a malformed ADDR included (usage on stderr).

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/post.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

namespace {

constexpr const char* program_name = "asio_echo_server";

// A connection's buffer, in either style: the most a connection echoes at once (coronet's
// echo_server read this much when the baselines were written; it now reads up to 64 KiB).
constexpr std::size_t session_buffer_size = 16 * 1024;
// Holds the largest UDP payload whole.
constexpr std::size_t datagram_buffer_size = 64 * 1024;
// While accept() fails for want of descriptors, it is retried this often instead of spinning.
constexpr std::chrono::milliseconds starved_retry{100};

// Asio has no SO_REUSEPORT option of its own.
using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

// One line on stderr, written at once so that lines from two threads do not interleave.
void log_line(const std::string& text) {
  const std::string line = std::string(program_name) + ": " + text + "\n";
  if (::write(STDERR_FILENO, line.data(), line.size()) < 0) {
    // Nowhere left to report it.
  }
}

// A setup failure: the message names the address and the reason; main prints it, exits 1.
struct setup_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---- addresses ---------------------------------------------------------------------------

// HOST:PORT with a numeric IPv4 host, or [IPv6]:PORT. Returns nullopt and sets `why` otherwise.
std::optional<asio::ip::address> parse_host_port(const std::string& text, std::uint16_t& port,
                                                 std::string& why) {
  std::string host;
  std::string port_text;
  const bool v6 = !text.empty() && text.front() == '[';
  if (v6) {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      why = "expected [IPv6]:PORT";
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) {
      why = "no port (expected HOST:PORT)";
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  if (port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(),
                   [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoul(port_text) > 65535) {
    why = "bad port '" + port_text + "' (expected 0 to 65535)";
    return std::nullopt;
  }
  port = static_cast<std::uint16_t>(std::stoul(port_text));
  std::error_code ec;
  if (v6) {
    const auto address = asio::ip::make_address_v6(host, ec);
    if (!ec) return asio::ip::address(address);
    why = "'" + host + "' is not a numeric IPv6 address";
  } else {
    const auto address = asio::ip::make_address_v4(host, ec);
    if (!ec) return asio::ip::address(address);
    why = "'" + host + "' is not a numeric IPv4 address";
  }
  return std::nullopt;
}

// 127.0.0.1:7000 or [::1]:7000.
template <class Endpoint>
std::string to_string(const Endpoint& endpoint) {
  const auto host = endpoint.address().to_string();
  const auto port = std::to_string(endpoint.port());
  return endpoint.address().is_v6() ? "[" + host + "]:" + port : host + ":" + port;
}

// /path, unix:/path or @name, without the unix: prefix.
std::string unix_path(std::string text) {
  if (text.rfind("unix:", 0) == 0) text.erase(0, 5);
  return text;
}

// ---- connections -------------------------------------------------------------------------

// One TCP or Unix connection, kept alive by the handler of its one outstanding operation:
// read some, write them all, read again. On the peer's FIN it answers with its own.
template <class Protocol>
class session : public std::enable_shared_from_this<session<Protocol>> {
 public:
  using socket_type = typename Protocol::socket;

  explicit session(socket_type socket) : socket_(std::move(socket)) {}

  // Only on the socket's own context.
  void start() { read(); }
  asio::any_io_executor executor() { return socket_.get_executor(); }

 private:
  void read() {
    socket_.async_read_some(asio::buffer(buffer_),
                            [self = this->shared_from_this()](std::error_code ec, std::size_t n) {
                              self->on_read(ec, n);
                            });
  }

  void on_read(std::error_code ec, std::size_t n) {
    if (ec) {
      std::error_code ignored;
      // Everything received went back: answer the peer's FIN with ours. Anything else (a
      // reset, the server stopping) just closes.
      if (ec == asio::error::eof) socket_.shutdown(socket_type::shutdown_send, ignored);
      socket_.close(ignored);
      return;
    }
    asio::async_write(socket_, asio::buffer(buffer_.data(), n),
                      [self = this->shared_from_this()](std::error_code write_ec, std::size_t) {
                        if (write_ec) {
                          std::error_code ignored;
                          self->socket_.close(ignored);
                          return;
                        }
                        self->read();
                      });
  }

  socket_type socket_;
  std::array<char, session_buffer_size> buffer_;
};

// The contexts new connections are handed to, in turn. Used on context 0 only.
struct round_robin {
  std::vector<asio::io_context*> contexts;
  std::size_t next = 0;

  asio::io_context& pick() { return *contexts[next++ % contexts.size()]; }
};

// Logs one line when accept() first runs out of descriptors, and again only after a later
// accept() succeeded: one line per episode.
std::atomic<bool> starvation_reported{false};

bool out_of_resources(const std::error_code& ec) {
  return ec == asio::error::no_descriptors || ec == std::errc::too_many_files_open_in_system ||
         ec == asio::error::no_buffer_space || ec == asio::error::no_memory;
}

// An accept on `label` failed for want of resources: logged once per episode. The caller waits
// starved_retry before accepting again, since the listener stays readable and accepting again
// at once would spin; the connections wait in the kernel's backlog meanwhile.
void report_starvation(const std::string& label, const std::error_code& ec) {
  if (!starvation_reported.exchange(true)) {
    log_line("accept on " + label + ": " + ec.message() + "; retrying every " +
             std::to_string(starved_retry.count()) + " ms");
  }
}

// One TCP or Unix acceptor on context 0, handing each connection to the next context.
template <class Protocol>
class acceptor_loop {
 public:
  using acceptor_type = typename Protocol::acceptor;
  using socket_type = typename Protocol::socket;

  acceptor_loop(acceptor_type acceptor, round_robin& contexts, std::string label)
      : acceptor_(std::move(acceptor)),
        retry_(acceptor_.get_executor()),
        contexts_(contexts),
        label_(std::move(label)) {}

  void start() { accept(); }

 private:
  void accept() {
    acceptor_.async_accept(contexts_.pick(), [this](std::error_code ec, socket_type socket) {
      on_accept(ec, std::move(socket));
    });
  }

  void on_accept(std::error_code ec, socket_type socket) {
    if (ec == asio::error::operation_aborted) return;  // closed
    if (out_of_resources(ec)) {
      report_starvation(label_, ec);
      retry_.expires_after(starved_retry);
      retry_.async_wait([this](std::error_code wait_ec) {
        if (!wait_ec) accept();
      });
      return;
    }
    if (!ec) {
      starvation_reported.store(false);
      if constexpr (std::is_same_v<Protocol, asio::ip::tcp>) {
        std::error_code ignored;
        socket.set_option(asio::ip::tcp::no_delay(true), ignored);
      }
      auto s = std::make_shared<session<Protocol>>(std::move(socket));
      // The session's handlers all run on its own context; so does its first operation.
      asio::post(s->executor(), [s] { s->start(); });
    }
    // Otherwise an error of that one connection (aborted while waiting, ...): go on.
    accept();
  }

  acceptor_type acceptor_;
  asio::steady_timer retry_;
  round_robin& contexts_;
  std::string label_;
};

// One SO_REUSEPORT UDP socket: every datagram goes back to its sender unchanged, one at a time.
// Only on its own context.
class udp_echo {
 public:
  explicit udp_echo(asio::ip::udp::socket socket) : socket_(std::move(socket)) {}

  void start() { receive(); }
  asio::any_io_executor executor() { return socket_.get_executor(); }

 private:
  void receive() {
    socket_.async_receive_from(asio::buffer(buffer_), sender_,
                               [this](std::error_code ec, std::size_t n) {
                                 if (ec == asio::error::operation_aborted) return;
                                 // An ICMP error an earlier send caused: not this datagram's.
                                 if (ec) return receive();
                                 send(n);
                               });
  }

  void send(std::size_t n) {
    // A datagram the kernel cannot take is lost, as UDP allows: go on either way.
    socket_.async_send_to(asio::buffer(buffer_.data(), n), sender_,
                          [this](std::error_code ec, std::size_t) {
                            if (ec != asio::error::operation_aborted) receive();
                          });
  }

  asio::ip::udp::socket socket_;
  asio::ip::udp::endpoint sender_;
  std::array<char, datagram_buffer_size> buffer_;
};

// ---- the same with coroutines (--coroutines) ---------------------------------------------

// Operations that give their error as a value, as coronet's do, instead of throwing it.
constexpr auto as_values = asio::experimental::as_tuple(asio::use_awaitable);

// The completion handler of every co_spawn: a coroutine that throws (none should) is logged.
void log_if_thrown(const std::string& what, std::exception_ptr error) {
  if (!error) return;
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    log_line(what + " failed: " + e.what());
  } catch (...) {
    log_line(what + " failed");
  }
}

// One TCP or Unix connection: read some, write them all, read again. On the peer's FIN it
// answers with its own. Runs on the socket's own context.
template <class Protocol>
asio::awaitable<void> echo_session(typename Protocol::socket socket) {
  using socket_type = typename Protocol::socket;
  std::array<char, session_buffer_size> buffer;
  for (;;) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(buffer), as_values);
    if (ec) {
      std::error_code ignored;
      if (ec == asio::error::eof) socket.shutdown(socket_type::shutdown_send, ignored);
      socket.close(ignored);
      co_return;
    }
    auto [write_ec, written] =
        co_await asio::async_write(socket, asio::buffer(buffer.data(), n), as_values);
    if (write_ec) {
      std::error_code ignored;
      socket.close(ignored);
      co_return;
    }
  }
}

// One TCP or Unix acceptor on context 0, handing each connection to the next context, where
// its session is spawned.
template <class Protocol>
asio::awaitable<void> accept_loop(typename Protocol::acceptor acceptor, round_robin& contexts,
                                  std::string label) {
  asio::steady_timer retry(acceptor.get_executor());
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(contexts.pick(), as_values);
    if (ec == asio::error::operation_aborted) co_return;  // closed
    if (out_of_resources(ec)) {
      report_starvation(label, ec);
      retry.expires_after(starved_retry);
      auto [wait_ec] = co_await retry.async_wait(as_values);
      if (wait_ec) co_return;
      continue;
    }
    if (ec) continue;  // an error of that one connection
    starvation_reported.store(false);
    if constexpr (std::is_same_v<Protocol, asio::ip::tcp>) {
      std::error_code ignored;
      socket.set_option(asio::ip::tcp::no_delay(true), ignored);
    }
    const auto executor = socket.get_executor();
    asio::co_spawn(executor, echo_session<Protocol>(std::move(socket)),
                   [](std::exception_ptr e) { log_if_thrown("a session", e); });
  }
}

// One SO_REUSEPORT UDP socket: every datagram goes back to its sender unchanged, one at a time.
asio::awaitable<void> udp_echo_loop(asio::ip::udp::socket socket) {
  std::vector<char> buffer(datagram_buffer_size);
  asio::ip::udp::endpoint sender;
  for (;;) {
    auto [ec, n] = co_await socket.async_receive_from(asio::buffer(buffer), sender, as_values);
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) continue;  // an ICMP error an earlier send caused: not this datagram's
    // A datagram the kernel cannot take is lost, as UDP allows: go on either way.
    auto [send_ec, sent] =
        co_await socket.async_send_to(asio::buffer(buffer.data(), n), sender, as_values);
    if (send_ec == asio::error::operation_aborted) co_return;
  }
}

// ---- binding -----------------------------------------------------------------------------

// Unix socket files created, removed when this goes away: at exit, and when a later bind fails.
struct created_files {
  std::vector<std::string> paths;

  created_files() = default;
  created_files(const created_files&) = delete;
  created_files& operator=(const created_files&) = delete;
  ~created_files() {
    for (const auto& path : paths) ::unlink(path.c_str());
  }
};

asio::ip::tcp::acceptor bind_tcp(asio::io_context& context, const asio::ip::tcp::endpoint& where) {
  asio::ip::tcp::acceptor acceptor(context);
  std::error_code ec;
  acceptor.open(where.protocol(), ec);
  // TIME_WAIT connections of an earlier run must not keep a restarted server from its port.
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(where, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw setup_error("cannot bind tcp " + to_string(where) + ": " + ec.message());
  return acceptor;
}

// One SO_REUSEPORT socket per context on `where`: the first binds what was asked (perhaps port
// 0), the others the port it got.
std::vector<asio::ip::udp::socket> bind_udp(const round_robin& contexts,
                                            asio::ip::udp::endpoint where) {
  std::vector<asio::ip::udp::socket> out;
  for (asio::io_context* context : contexts.contexts) {
    asio::ip::udp::socket socket(*context);
    std::error_code ec;
    socket.open(where.protocol(), ec);
    if (!ec) socket.set_option(reuse_port(true), ec);
    // The same 4 MiB receive buffer echo_server asks for, so that all drop alike (or not).
    if (!ec) socket.set_option(asio::socket_base::receive_buffer_size(4 << 20), ec);
    if (!ec) socket.bind(where, ec);
    if (ec) throw setup_error("cannot bind udp " + to_string(where) + ": " + ec.message());
    if (out.empty()) where = socket.local_endpoint();
    out.push_back(std::move(socket));
  }
  return out;
}

// A listening Unix stream socket at `path` (@name: abstract). A socket file nobody listens on
// any more (left by a server that crashed) is replaced; any other file is an error, left alone.
asio::local::stream_protocol::acceptor bind_unix(asio::io_context& context, const std::string& path,
                                                 created_files& files) {
  using asio::local::stream_protocol;
  const std::string label = "unix " + path;
  constexpr std::size_t longest = sizeof(sockaddr_un::sun_path) - 1;
  if (path.size() > longest) {
    throw setup_error("cannot bind " + label + ": longer than " + std::to_string(longest) +
                      " bytes");
  }
  const bool abstract = path.front() == '@';
  const stream_protocol::endpoint where(abstract ? std::string(1, '\0') + path.substr(1) : path);

  struct stat status {};
  if (!abstract && ::lstat(path.c_str(), &status) == 0) {
    if (!S_ISSOCK(status.st_mode)) {
      throw setup_error("cannot bind " + label + ": the file exists and is not a socket");
    }
    stream_protocol::socket probe(context);
    std::error_code ec;
    probe.open(stream_protocol(), ec);
    if (!ec) probe.non_blocking(true, ec);
    if (!ec) probe.connect(where, ec);
    // would_block: it listens, its backlog is full.
    if (!ec || ec == asio::error::would_block) {
      throw setup_error("cannot bind " + label + ": " +
                        std::make_error_code(std::errc::address_in_use).message() +
                        " (a server listens on it)");
    }
    if (ec == asio::error::connection_refused) ::unlink(path.c_str());  // stale
  }
  stream_protocol::acceptor acceptor(context);
  std::error_code ec;
  acceptor.open(stream_protocol(), ec);
  if (!ec) acceptor.bind(where, ec);
  if (!ec && !abstract) files.paths.push_back(path);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw setup_error("cannot bind " + label + ": " + ec.message());
  return acceptor;
}

// What the command line asked to listen on, in its order.
struct listen_request {
  enum class kind { tcp, udp, unix_stream } what;
  std::string text;
};

// Runs `context` until it is stopped. A handler that throws (none should) is logged and the
// context goes on, rather than the exception ending the thread.
void run_context(asio::io_context& context) {
  for (;;) {
    try {
      context.run();
      return;
    } catch (const std::exception& e) {
      log_line(std::string("handler failed: ") + e.what());
    }
  }
}

// Binds every request, prints the ready lines and serves until SIGINT or SIGTERM, in the style
// asked for. Returns the exit code. Everything made here goes before the contexts, which
// outlive the call; coroutines are destroyed with their context.
int serve(std::vector<std::unique_ptr<asio::io_context>>& contexts,
          const std::vector<listen_request>& requests, bool coroutines, created_files& files) {
  round_robin pool;
  for (auto& context : contexts) pool.contexts.push_back(context.get());
  asio::io_context& home = *contexts.front();  // the acceptors' and the signals' context
  std::vector<std::pair<asio::ip::tcp::acceptor, std::string>> tcp_acceptors;
  std::vector<std::pair<asio::local::stream_protocol::acceptor, std::string>> unix_acceptors;
  std::vector<asio::ip::udp::socket> udp_sockets;
  std::vector<std::string> ready_lines;
  try {
    for (const auto& request : requests) {
      using kind = listen_request::kind;
      if (request.what == kind::unix_stream) {
        unix_acceptors.emplace_back(bind_unix(home, request.text, files), "unix " + request.text);
        ready_lines.push_back("listening unix " + request.text);
        continue;
      }
      std::uint16_t port = 0;
      std::string why;
      const auto address = parse_host_port(request.text, port, why).value();  // checked
      if (request.what == kind::tcp) {
        auto acceptor = bind_tcp(home, {address, port});
        std::string label = "tcp " + to_string(acceptor.local_endpoint());
        ready_lines.push_back("listening " + label);
        tcp_acceptors.emplace_back(std::move(acceptor), std::move(label));
      } else {
        auto sockets = bind_udp(pool, {address, port});
        ready_lines.push_back("listening udp " + to_string(sockets.front().local_endpoint()));
        for (auto& socket : sockets) udp_sockets.push_back(std::move(socket));
      }
    }
  } catch (const setup_error& e) {
    log_line(e.what());
    return 1;  // the acceptors close, and main's `files` removes the socket files
  }

  std::vector<std::unique_ptr<acceptor_loop<asio::ip::tcp>>> tcp_servers;
  std::vector<std::unique_ptr<acceptor_loop<asio::local::stream_protocol>>> unix_servers;
  std::vector<std::unique_ptr<udp_echo>> udp_servers;
  const auto log_loop = [](std::exception_ptr e) { log_if_thrown("an accept loop", e); };
  for (auto& [acceptor, label] : tcp_acceptors) {
    if (coroutines) {
      asio::co_spawn(home, accept_loop<asio::ip::tcp>(std::move(acceptor), pool, label), log_loop);
    } else {
      tcp_servers.push_back(
          std::make_unique<acceptor_loop<asio::ip::tcp>>(std::move(acceptor), pool, label));
    }
  }
  for (auto& [acceptor, label] : unix_acceptors) {
    if (coroutines) {
      asio::co_spawn(home,
                     accept_loop<asio::local::stream_protocol>(std::move(acceptor), pool, label),
                     log_loop);
    } else {
      unix_servers.push_back(std::make_unique<acceptor_loop<asio::local::stream_protocol>>(
          std::move(acceptor), pool, label));
    }
  }
  for (auto& socket : udp_sockets) {
    if (coroutines) {
      const auto executor = socket.get_executor();
      asio::co_spawn(executor, udp_echo_loop(std::move(socket)),
                     [](std::exception_ptr e) { log_if_thrown("a UDP socket", e); });
    } else {
      udp_servers.push_back(std::make_unique<udp_echo>(std::move(socket)));
    }
  }

  // Registered before the ready lines, so that a signal sent once they are read is handled.
  asio::signal_set signals(home, SIGINT, SIGTERM);
  signals.async_wait([&contexts](std::error_code, int) {
    for (auto& context : contexts) context->stop();
  });
  for (auto& server : tcp_servers) server->start();
  for (auto& server : unix_servers) server->start();
  for (auto& socket : udp_servers) {
    asio::post(socket->executor(), [s = socket.get()] { s->start(); });
  }

  // Only once everything is bound, so that a failure prints nothing on stdout.
  for (const auto& line : ready_lines) std::cout << line << '\n';
  std::cout.flush();

  // The other contexts may have nothing to do until a connection comes: keep them running.
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  for (auto& context : contexts) guards.push_back(asio::make_work_guard(*context));
  std::vector<std::thread> running;
  for (std::size_t k = 1; k < contexts.size(); ++k) {
    running.emplace_back([&context = *contexts[k]] { run_context(context); });
  }
  run_context(home);  // until a signal stops every context
  for (auto& t : running) t.join();
  return 0;
}

// Before any socket is opened: a server holds one descriptor per connection.
void raise_open_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
}

}  // namespace

int main(int argc, char** argv) {
  raise_open_file_limit();

  CLI::App app(
      "plain Asio echo server (callbacks, or coroutines): a baseline coronet is measured against",
      program_name);
  std::vector<std::string> tcp_addresses;
  std::vector<std::string> udp_addresses;
  std::vector<std::string> unix_paths;
  const unsigned hardware = std::thread::hardware_concurrency();
  unsigned threads = hardware == 0 ? 1 : hardware;
  const CLI::Validator ip_check(
      [](std::string& text) {
        std::uint16_t port = 0;
        std::string why;
        return parse_host_port(text, port, why) ? std::string() : "'" + text + "': " + why;
      },
      "ADDR");
  const CLI::Validator path_check(
      [](std::string& text) {
        return unix_path(text).empty() ? std::string("an empty path") : std::string();
      },
      "PATH");
  // One value per occurrence, so that a stray word is an error rather than another address.
  auto* tcp_option =
      app.add_option("--tcp", tcp_addresses, "TCP on ADDR (127.0.0.1:0, [::1]:7000); repeatable")
          ->type_name("ADDR")
          ->allow_extra_args(false)
          ->check(ip_check);
  auto* udp_option = app.add_option("--udp", udp_addresses, "UDP on ADDR; repeatable")
                         ->type_name("ADDR")
                         ->allow_extra_args(false)
                         ->check(ip_check);
  auto* unix_option =
      app.add_option("--unix", unix_paths,
                     "Unix stream socket at PATH (unix:PATH, @NAME: abstract); repeatable")
          ->type_name("PATH")
          ->allow_extra_args(false)
          ->check(path_check);
  app.add_option("--threads", threads,
                 "io_contexts, one thread each (default: one per hardware "
                 "thread)")
      ->check(CLI::Range(1U, 1024U));
  bool coroutines = false;
  app.add_flag("--coroutines", coroutines,
               "sessions, accept loops and UDP sockets as C++20 coroutines (asio::awaitable), "
               "not completion handlers");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << program_name << ": " << e.what() << "\n\n" << app.help();
    return 2;
  }
  std::vector<listen_request> requests;
  std::size_t next_tcp = 0, next_udp = 0, next_unix = 0;
  for (const CLI::Option* option : app.parse_order()) {
    using kind = listen_request::kind;
    if (option == tcp_option) requests.push_back({kind::tcp, tcp_addresses.at(next_tcp++)});
    if (option == udp_option) requests.push_back({kind::udp, udp_addresses.at(next_udp++)});
    if (option == unix_option) {
      requests.push_back({kind::unix_stream, unix_path(unix_paths.at(next_unix++))});
    }
  }
  if (requests.empty()) {
    std::cerr << program_name << ": no listener: give at least one --tcp, --udp or --unix\n\n"
              << app.help();
    return 2;
  }

  std::vector<std::unique_ptr<asio::io_context>> contexts;
  for (unsigned k = 0; k < threads; ++k) {
    contexts.push_back(std::make_unique<asio::io_context>(1));  // one thread each
  }
  created_files files;
  const int status = serve(contexts, requests, coroutines, files);
  // Context 0 goes first: the accepts still queued there hold sockets of the other contexts.
  // Destroying a context destroys the handlers it holds, and with them their sessions.
  contexts.front().reset();
  contexts.clear();
  return status;  // and `files` removes the socket files
}
