#pragma once
// The echo logic itself, shared by echo_server and coronet_bench's in-process server, so that
// the built-in server the harness measures is exactly the one echo_server runs.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>

#include "coronet/coronet.hpp"
#include "coronet/tls.hpp"

namespace coronet_examples {

// The buffer a thread's stream sessions echo longer messages through, one session at a time:
// a session borrows it only between waking up and suspending again. 64 KiB, as much as one
// receive of the epoll baseline takes: fewer system calls per byte for a flooding peer.
inline std::array<char, 64 * 1024>& thread_buffer() {
  thread_local std::array<char, 64 * 1024> buffer;
  return buffer;
}

// A session's debug line, "PEER: WHAT[ERROR]", formatted only when debug logging is on: a peer
// name kept in the session's frame would cost every idle connection its bytes.
template <class Stream>
void debug_line(const Stream& stream, std::string_view what, std::error_code error = {}) {
  if (!coronet::log().should_log(spdlog::level::debug)) return;
  coronet::log().debug("{}: {}{}", stream.remote_endpoint().to_string(), what,
                       error ? error.message() : std::string());
}

// The debug line of a session whose receive ended with `error`.
template <class Stream>
void debug_end(const Stream& stream, std::error_code error) {
  if (error == coronet::errc::eof) {
    debug_line(stream, "closed by peer");
  } else if (error == std::errc::timed_out) {
    debug_line(stream, "idle, closing");
  } else {
    debug_line(stream, "receive failed: ", error);
  }
}

// A session's own buffer, for a peer that streams: as much as the thread's buffer holds.
constexpr std::size_t own_buffer_size = 64 * 1024;
// One wake-up that echoes at least this much makes the session receive into a buffer of its own
// from then on, one receive per up to 64 KiB instead of a small one and then the rest; one that
// echoes less (and leaves nothing unsent) gives that buffer back.
constexpr std::size_t streaming_bytes = 16 * 1024;

// What echo_now() left for send_all(): the bytes the peer did not take at once, in the
// session's own buffer; or, in `sent`, the error that ends the session (an io_result rather
// than an error_code: a success is made and tested without reading the error category).
struct echo_left {
  asio::const_buffer unsent;
  coronet::io_result sent;
};

// Echoes the `n` bytes just received into `into` (the session's small buffer or its own) at
// once, with no step suspending, so that the thread's buffer is not lent to another session in
// between:
// - when they fill the small buffer, they move to the thread's buffer and try_recv() adds what
//   else has arrived;
// - try_send() sends what the socket takes now; the rest goes to the session's own buffer
//   (made on first need), since the thread's buffer is lent to others while this one waits;
// - the session's own buffer is kept for a peer that streams, and given back otherwise.
// A plain function, so that its locals live on the stack rather than in the session's frame,
// which an idle connection holds.
template <class Stream>
echo_left echo_now(Stream& stream, asio::mutable_buffer into, std::size_t n,
                   std::unique_ptr<char[]>& own) {
  asio::const_buffer echo(into.data(), n);
  if (!own && n == into.size()) {
    // Whatever else try_recv() meets (none yet, the peer's close, an error) leaves `more` with
    // 0 bytes, and the next recv() reports an end again.
    auto& buffer = thread_buffer();
    std::memcpy(buffer.data(), into.data(), n);
    auto more = stream.try_recv(asio::buffer(buffer) + n);
    echo = asio::buffer(buffer.data(), n + more.bytes());
  }
  auto sent = stream.try_send(echo);
  if (!sent && sent.error() != std::errc::operation_would_block) return {{}, sent};
  asio::const_buffer unsent = echo + sent.bytes();
  if (unsent.size() > 0 && !own) {
    own = std::make_unique_for_overwrite<char[]>(own_buffer_size);
    std::memcpy(own.get(), unsent.data(), unsent.size());
    unsent = asio::buffer(own.get(), unsent.size());
  } else if (echo.size() >= streaming_bytes && !own) {
    own = std::make_unique_for_overwrite<char[]>(own_buffer_size);
  } else if (unsent.size() == 0 && echo.size() < streaming_bytes) {
    own.reset();
  }
  return {unsent, sent.bytes()};
}

// What a session over `Stream` is: a coronet::task for a lean_stream (the servers' lean path,
// which echo_server takes), an asio::awaitable for tcp_stream and unix_stream.
template <class Stream>
using session_for = std::conditional_t<std::is_same_v<Stream, coronet::lean_stream>,
                                       coronet::task<void>, asio::awaitable<void>>;

// The coroutine type of a session over `Stream` that returns a T.
template <class Stream, class T>
using session_result = std::conditional_t<std::is_same_v<Stream, coronet::lean_stream>,
                                          coronet::task<T>, asio::awaitable<T>>;

// Sends what the peer did not take at once. A coroutine of its own, so that its operation
// (about 100 bytes) is in a frame only while such a send waits, not in the session's frame,
// which every idle connection holds.
template <class Stream>
session_result<Stream, coronet::io_result> send_rest(Stream& stream, asio::const_buffer rest) {
  co_return co_await stream.send_all(rest, coronet::no_timeout);
}

// One stream connection (TCP or Unix): echo until the peer closes, then close with FIN. A
// peer silent for the stream's own timeout (set_timeout(), none by default) is closed. The same
// body for both kinds of stream and session.
//
// Memory: an idle session holds 128 bytes of buffer, not the 64 KiB it echoes at most at once.
// It waits in recv() on that small buffer, which takes a short message whole in one receive,
// and echo_now() sends it back at once, through the thread's buffer when there is more. A
// buffer of the session's own (64 KiB, as the epoll baseline keeps for a connection once a
// send falls short) exists only while the peer streams or an echo waits for it to read.
template <class Stream>
inline session_for<Stream> echo_session(Stream stream) {
  debug_line(stream, "connected");
  if constexpr (!std::is_same_v<Stream, coronet::unix_stream>) {
    // Every echo goes out at once, the short tail of a long one too, rather than waiting for
    // the peer's acknowledgement (Nagle): as both baselines do. (A lean_stream may be a Unix
    // one, which refuses the option: nothing to do there.)
    (void)stream.set_option(coronet::option::no_delay{true});
  }

  std::array<char, 128> first;
  std::unique_ptr<char[]> own;
  for (;;) {
    const auto into = own ? asio::buffer(own.get(), own_buffer_size) : asio::buffer(first);
    auto got = co_await stream.recv(into);
    if (!got) {
      // Everything received was echoed: answer the peer's FIN with ours.
      if (got.error() == coronet::errc::eof) (void)stream.shutdown(coronet::shutdown_type::send);
      debug_end(stream, got.error());
      break;
    }
    auto left = echo_now(stream, into, got.bytes(), own);
    if (left.sent && left.unsent.size() > 0) left.sent = co_await send_rest(stream, left.unsent);
    if (!left.sent) {
      debug_line(stream, "send failed: ", left.sent.error());
      break;
    }
  }
  stream.close();
}

// The longest a TLS client may take to complete its handshake, unless the idle limit is
// shorter: a client that connects and never speaks TLS is let go.
constexpr auto tls_handshake_limit = std::chrono::seconds(10);

// A TLS session: the handshake (logged when it fails: a client that does not speak TLS, or
// rejects the certificate), then each receive's decrypted bytes echoed whole until the peer's
// close_notify, answered with this side's own. The session receives into a buffer of its own
// rather than the thread's: a TLS send can suspend with the plaintext still to encrypt.
inline asio::awaitable<void> tls_echo_session(coronet::tls_stream stream, coronet::timeout idle) {
  debug_line(stream, "connected");
  (void)stream.set_option(coronet::option::no_delay{true});
  const coronet::timeout handshake_limit =
      !idle.is_none() && idle.value() < tls_handshake_limit ? idle : tls_handshake_limit;
  if (auto shaken = co_await stream.handshake(handshake_limit); !shaken) {
    coronet::log().info("{}: TLS handshake failed: {} ({})", stream.remote_endpoint().to_string(),
                        shaken.error().message(), stream.failure_detail());
    co_return;
  }
  // Small while the peer sends little, a record's worth once a receive fills it, small again
  // after one that does not: an idle session holds 256 bytes, not 16 KiB.
  constexpr std::size_t record_bytes = 16 * 1024;
  std::array<char, 256> small;
  std::unique_ptr<char[]> large;
  for (;;) {
    const auto buffer = large ? asio::buffer(large.get(), record_bytes) : asio::buffer(small);
    auto got = co_await stream.recv(buffer, idle);
    if (!got) {
      // The peer's close_notify, after everything it sent: answered with ours.
      if (got.error() == coronet::errc::eof)
        (void)co_await stream.shutdown(std::chrono::seconds(5));
      debug_end(stream, got.error());
      break;
    }
    auto sent = co_await stream.send_all(asio::buffer(buffer.data(), got.bytes()));
    if (!sent) {
      debug_line(stream, "send failed: ", sent.error());
      break;
    }
    if (got.bytes() == buffer.size() && !large) {
      large = std::make_unique<char[]>(record_bytes);
    } else if (got.bytes() < small.size() && large) {
      large.reset();
    }
  }
  stream.close();
}

// After one awaited receive, the datagrams already queued that udp_echo() takes at once, each
// without a trip through Asio's reactor, before it waits its turn again: a socket that keeps
// receiving cannot hold its thread for ever.
constexpr int udp_batch = 64;

// Every datagram goes back to its sender unchanged, until the socket is closed (on this
// socket's own thread, like everything else done with it).
inline asio::awaitable<void> udp_echo(std::shared_ptr<coronet::udp_socket> socket) {
  std::vector<char> buffer(65536);  // above the largest UDP payload, so nothing is truncated
  while (socket->is_open()) {
    auto got = co_await socket->recv_from(asio::buffer(buffer));
    if (!got) {
      if (got.error() == std::errc::operation_canceled) break;
      coronet::log().debug("udp receive: {}", got.error().message());
      continue;
    }
    for (int taken = 1;; ++taken) {
      const asio::const_buffer echo(buffer.data(), got.bytes());
      auto sent = socket->try_send_to(echo, got.sender());
      if (!sent && sent.error() == std::errc::operation_would_block) {
        sent = co_await socket->send_to(echo, got.sender());
      }
      if (!sent) {
        coronet::log().debug("udp send to {}: {}", got.sender().to_string(),
                             sent.error().message());
      }
      if (taken == udp_batch) break;
      got = socket->try_recv_from(asio::buffer(buffer));
      if (!got) {
        // None queued now (would_block), or an error, logged as the awaited receive logs it;
        // either way the loop goes back to waiting.
        if (got.error() != std::errc::operation_would_block) {
          coronet::log().debug("udp receive: {}", got.error().message());
        }
        break;
      }
    }
  }
}

// Awaited through co_spawn on the socket's executor: the close runs on the socket's thread.
inline asio::awaitable<void> close_udp(std::shared_ptr<coronet::udp_socket> socket) {
  socket->close();
  co_return;
}

// Binds one SO_REUSEPORT UDP socket per runtime thread on `where` (port 0: the first socket
// picks the port, the others join it). Each gets a 4 MiB receive buffer (as far as
// net.core.rmem_max allows): one socket takes datagrams from every client, and Linux's default
// of 208 KiB holds only about 270 small datagrams (each costs ~768 bytes of buffer), so a few
// hundred clients with one message each in flight would see drops.
inline std::vector<std::shared_ptr<coronet::udp_socket>> bind_udp_echo(coronet::runtime& runtime,
                                                                       coronet::endpoint where) {
  const coronet::udp_options reuse{.reuse_port = true};
  std::vector<std::shared_ptr<coronet::udp_socket>> sockets;
  for (std::size_t k = 0; k < runtime.size(); ++k) {
    auto socket = std::make_shared<coronet::udp_socket>(
        coronet::udp_socket::bind(runtime.executor(k), where, reuse));
    (void)socket->set_option(coronet::option::receive_buffer_size{4 << 20});
    if (k == 0) where = socket->local_endpoint();
    sockets.push_back(std::move(socket));
  }
  return sockets;
}

}  // namespace coronet_examples
