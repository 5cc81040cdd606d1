#pragma once
// The echo logic itself, shared by echo_server and coronet_bench's in-process server, so that
// the built-in server the harness measures is exactly the one echo_server runs.

#include <array>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>

#include "coronet/coronet.hpp"

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

// What echo_now() could not finish: the bytes the peer did not take at once, in a buffer of
// the session's own, or the error that ends the session.
struct echo_left {
  std::vector<char> rest;
  std::error_code error;
};

// Echoes `received` (the bytes of the session's own buffer) at once, with neither step
// suspending, so that the thread's buffer is not lent to another session in between: when
// `received` fills that buffer, it moves to the thread's buffer, and try_recv() adds what else
// has arrived; try_send() then sends what the socket takes now. A plain function, so that its
// locals live on the stack rather than in the session's frame, which an idle connection holds.
template <class Stream>
echo_left echo_now(Stream& stream, asio::const_buffer received, bool filled) {
  asio::const_buffer echo = received;
  if (filled) {
    // Whatever else try_recv() meets (none yet, the peer's close, an error) leaves `more` with
    // 0 bytes, and the next recv() reports an end again.
    auto& buffer = thread_buffer();
    std::memcpy(buffer.data(), received.data(), received.size());
    auto more = stream.try_recv(asio::buffer(buffer) + received.size());
    echo = asio::buffer(buffer.data(), received.size() + more.bytes());
  }
  auto sent = stream.try_send(echo);
  if (sent.bytes() == echo.size()) return {};
  if (!sent && sent.error() != std::errc::operation_would_block) return {{}, sent.error()};
  // The peer is slower to read than to send: the rest waits in a buffer of the session's own,
  // since the thread's buffer is lent to other sessions while this one is suspended.
  const auto* bytes = static_cast<const char*>(echo.data());
  return {std::vector<char>(bytes + sent.bytes(), bytes + echo.size()), {}};
}

// One stream connection (TCP or Unix): echo until the peer closes, then close with FIN. A
// peer silent for `idle` is closed.
//
// Memory: a session holds 128 bytes of buffer, not the 64 KiB it echoes at most at once. It
// waits in recv() on its own small buffer, which takes a short message whole in one receive.
// echo_now() sends it back at once, through the thread's buffer when there is more. Only an
// echo the peer does not take at once is copied into a buffer of the session's own for
// send_all().
template <class Stream>
inline asio::awaitable<void> echo_session(Stream stream, coronet::timeout idle) {
  debug_line(stream, "connected");

  std::array<char, 128> first;
  for (;;) {
    auto got = co_await stream.recv(asio::buffer(first), idle);
    if (!got) {
      if (got.error() == coronet::errc::eof) {
        // Everything received was echoed: answer the peer's FIN with ours.
        (void)stream.shutdown(coronet::shutdown_type::send);
        debug_line(stream, "closed by peer");
      } else if (got.error() == std::errc::timed_out) {
        debug_line(stream, "idle, closing");
      } else {
        debug_line(stream, "receive failed: ", got.error());
      }
      break;
    }
    auto left =
        echo_now(stream, asio::buffer(first.data(), got.bytes()), got.bytes() == first.size());
    if (!left.error && !left.rest.empty()) {
      auto rest_sent = co_await stream.send_all(asio::buffer(left.rest));
      left.error = rest_sent.error();
    }
    if (left.error) {
      debug_line(stream, "send failed: ", left.error);
      break;
    }
  }
  stream.close();
}

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
    auto sent = co_await socket->send_to(asio::buffer(buffer.data(), got.bytes()), got.sender());
    if (!sent) {
      coronet::log().debug("udp send to {}: {}", got.sender().to_string(), sent.error().message());
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
