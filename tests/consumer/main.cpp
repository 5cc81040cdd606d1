// A loopback round trip through the installed coronet: exits 0 only if "ping" comes back. It
// also makes a TLS client context, so that OpenSSL's headers and libraries are found too.
#include <array>
#include <cstdio>
#include <string_view>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <coronet/coronet.hpp>
#include <coronet/tls.hpp>

namespace {

asio::awaitable<int> round_trip() {
  auto executor = co_await asio::this_coro::executor;
  auto listener =
      coronet::tcp_listener::bind(executor, coronet::endpoint::parse("127.0.0.1:0").value());
  auto client = (co_await coronet::tcp_stream::connect(listener.local_endpoint())).value();
  auto server = (co_await listener.accept()).value();

  constexpr std::string_view message = "ping";
  (co_await client.send_all(asio::buffer(message))).value();
  std::array<char, message.size()> got{};
  (co_await server.recv_exact(asio::buffer(got))).value();
  (co_await server.send_all(asio::buffer(got))).value();
  std::array<char, message.size()> back{};
  (co_await client.recv_exact(asio::buffer(back))).value();
  co_return std::string_view(back.data(), back.size()) == message ? 0 : 1;
}

}  // namespace

int main() {
  if (coronet::tls_context::client({.verify_peer = false}).is_server()) return 4;
  asio::io_context context;
  int code = 2;
  asio::co_spawn(context, round_trip(),
                 [&](std::exception_ptr error, int result) { code = error ? 3 : result; });
  context.run_for(std::chrono::seconds(10));
  std::printf("consumer round trip: %s\n", code == 0 ? "ok" : "FAILED");
  return code;
}
