// The socket-file rules, shared by every Unix-domain bind: a stale file is replaced, a live one
// is address_in_use, any other file is an error and is never deleted, and the file a socket
// created is removed when it closes, unless something else has replaced it.
#include <doctest/doctest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "support/run.hpp"

using coronet::endpoint;
using coronet::unix_listener;
namespace fs = std::filesystem;
namespace test = coronet::test;

namespace {

// Leaves a socket file behind that nobody listens on, as a crashed server does.
void make_stale_socket_file(const fs::path& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
  REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
  ::close(fd);
  REQUIRE(fs::is_socket(path));
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("unix_listener: creates its socket file and removes it on close and on destruction") {
  const test::temp_dir dir;
  asio::io_context context;
  const auto where = dir.socket("a.sock");
  {
    auto listener = unix_listener::bind(context, where);
    CHECK(fs::is_socket(where.path()));
    listener.close();
    CHECK_FALSE(fs::exists(where.path()));
    listener.close();  // idempotent
  }
  {
    auto listener = unix_listener::bind(context, where);
    auto moved = std::move(listener);  // the file goes with the moved-to listener
    CHECK(fs::is_socket(where.path()));
  }
  CHECK_FALSE(fs::exists(where.path()));
}

TEST_CASE("unix_listener: a stale socket file is replaced") {
  const test::temp_dir dir;
  const auto where = dir.socket("stale.sock");
  make_stale_socket_file(where.path());
  test::run([&]() -> asio::awaitable<void> {
    auto listener = unix_listener::bind(co_await asio::this_coro::executor, where);
    auto client = co_await coronet::unix_stream::connect(where);
    CHECK(client);
    CHECK(co_await listener.accept());
  });
}

TEST_CASE("unix_listener: a socket file in use is address_in_use and keeps serving") {
  const test::temp_dir dir;
  const auto where = dir.socket("live.sock");
  test::run([&]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    auto live = unix_listener::bind(executor, where);
    try {
      auto second = unix_listener::bind(executor, where);
      FAIL("a second bind to a live socket file succeeded");
    } catch (const std::system_error& e) {
      CHECK(e.code() == std::errc::address_in_use);
      CHECK(std::string(e.what()).find("cannot bind " + where.to_string()) != std::string::npos);
    }
    CHECK(fs::is_socket(where.path()));
    CHECK(co_await coronet::unix_stream::connect(where));
    CHECK(co_await live.accept());
  });
}

TEST_CASE("unix_listener: any other existing file is an error and is never deleted") {
  const test::temp_dir dir;
  asio::io_context context;
  const auto file = dir.socket("notes.txt");
  std::ofstream(std::string(file.path())) << "precious";
  try {
    auto listener = unix_listener::bind(context, file);
    FAIL("bind over a regular file succeeded");
  } catch (const std::system_error& e) {
    CHECK(e.code() == coronet::errc::not_a_socket_file);
  }
  CHECK(read_file(file.path()) == "precious");

  const auto directory = dir.socket("subdir");
  fs::create_directory(directory.path());
  CHECK_THROWS_AS(unix_listener::bind(context, directory), std::system_error);
  CHECK(fs::is_directory(directory.path()));

  const auto link = dir.socket("link");
  fs::create_symlink(file.path(), link.path());
  CHECK_THROWS_AS(unix_listener::bind(context, link), std::system_error);
  CHECK(fs::is_symlink(link.path()));
  CHECK(read_file(file.path()) == "precious");
}

TEST_CASE("unix_listener: close does not remove a file that replaced its own") {
  const test::temp_dir dir;
  asio::io_context context;
  const auto where = dir.socket("replaced.sock");
  auto listener = unix_listener::bind(context, where);
  fs::remove(where.path());
  std::ofstream(std::string(where.path())) << "someone else's";
  listener.close();
  CHECK(read_file(where.path()) == "someone else's");
}

TEST_CASE("unix_listener: abstract names make no file and cannot be bound twice") {
  asio::io_context context;
  const auto name = test::unique_abstract_name();
  auto listener = unix_listener::bind(context, name);
  CHECK_FALSE(fs::exists(std::string(name.path())));
  CHECK_THROWS_AS(unix_listener::bind(context, name), std::system_error);
  CHECK_THROWS_WITH_AS(unix_listener::bind(context, test::any_v4()),
                       doctest::Contains("cannot bind a Unix-domain socket to 127.0.0.1:0"),
                       std::system_error);
}
