#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/socket.h>

#include <array>
#include <string_view>

#include "support/run.hpp"

using namespace std::chrono_literals;
namespace test = coronet::test;

namespace {

// Acts only after a pause, so that the operation under test is already pending: had that
// operation blocked the thread, this would never run and the test would time out.
asio::awaitable<void> send_later(coronet::tcp_stream& stream, std::string_view data) {
  co_await test::sleep_for(20ms);
  CHECK(co_await stream.send_all(asio::buffer(data)));
}

asio::awaitable<void> connect_later(coronet::endpoint where, coronet::tcp_stream& out) {
  co_await test::sleep_for(20ms);
  auto stream = co_await coronet::tcp_stream::connect(where);
  REQUIRE(stream);
  out = std::move(*stream);
}

#if defined(ASIO_HAS_IO_URING_AS_DEFAULT)
constexpr bool reactor_keeps_non_blocking = false;
#else
constexpr bool reactor_keeps_non_blocking = true;
#endif

}  // namespace

TEST_CASE("basic_socket: a stream's descriptor and blocking mode") {
  for (const auto& any : test::loopbacks()) {
    CAPTURE(any);
    test::run([&]() -> asio::awaitable<void> {
      auto [client, server] = co_await test::connected_pair(any);
      const int fd = client.native_handle();
      REQUIRE(fd >= 0);
      CHECK(::fcntl(fd, F_GETFD) >= 0);
      // Asio's epoll reactor keeps its descriptors non-blocking; its io_uring backend
      // (CORONET_IO_URING) leaves them as the kernel made them.
      CHECK(client.non_blocking() == reactor_keeps_non_blocking);

      REQUIRE(client.set_non_blocking(false));
      CHECK_FALSE(client.non_blocking());
      CHECK((::fcntl(fd, F_GETFL) & O_NONBLOCK) == 0);
      // A blocking descriptor behaves as one for code that uses it directly...
      CHECK(::send(fd, "x", 1, MSG_NOSIGNAL) == 1);
      // ...and coronet's operations still never block the thread.
      std::array<char, 1> one{};
      CHECK(co_await server.recv_exact(asio::buffer(one)));
      coronet::spawn(co_await asio::this_coro::executor, send_later(server, "y"), "sender");
      CHECK(co_await client.recv_exact(asio::buffer(one)));
      CHECK(one[0] == 'y');
      CHECK(client.non_blocking() == reactor_keeps_non_blocking);  // as recv_exact() started

      REQUIRE(client.set_non_blocking(true));
      CHECK(client.non_blocking());
      client.close();
      CHECK_FALSE(client.non_blocking());
      CHECK_FALSE(client.set_non_blocking(true));
    });
  }
}

TEST_CASE("basic_socket: a listener in blocking mode still accepts without blocking the thread") {
  for (const auto& any : test::loopbacks()) {
    CAPTURE(any);
    test::run([&]() -> asio::awaitable<void> {
      auto listener = coronet::tcp_listener::bind(co_await asio::this_coro::executor, any);
      REQUIRE(listener.set_non_blocking(false));
      CHECK_FALSE(listener.non_blocking());
      CHECK((::fcntl(listener.native_handle(), F_GETFL) & O_NONBLOCK) == 0);
      // A placeholder stream, replaced by the connected one.
      coronet::tcp_stream client(asio::ip::tcp::socket(co_await asio::this_coro::executor));
      coronet::spawn(co_await asio::this_coro::executor,
                     connect_later(listener.local_endpoint(), client), "connector");
      auto accepted = co_await listener.accept();
      REQUIRE(accepted);
      // The connector may not have run its completion yet (io_uring delivers the two in
      // either order): wait for it, within the test's deadline.
      while (!client.is_open()) co_await test::sleep_for(1ms);
      CHECK(accepted->remote_endpoint() == client.local_endpoint());
      CHECK(listener.non_blocking() == reactor_keeps_non_blocking);  // as accept() started

      listener.close();
      CHECK_FALSE(listener.is_open());
      CHECK(listener.native_handle() == -1);
      CHECK(listener.get_option<coronet::option::reuse_address>().error() ==
            std::errc::bad_file_descriptor);
    });
  }
}
