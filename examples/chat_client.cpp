// chat_client: a terminal for chat_server. Sends each line of stdin to the server and prints
// each line the server sends as it arrives; typed at a terminal or fed through a pipe.
//
// Run:    build/bin/chat_server --tcp 127.0.0.1:7000 &
//         build/bin/chat_client --connect 127.0.0.1:7000      (or [::1]:7000, localhost:7000)
//         then type lines: hello, /nick ada, /join rust, /who, /quit
// Pipe:   printf 'hello\n/who\n' | build/bin/chat_client --connect 127.0.0.1:7000
// Stop:   end stdin (Ctrl-D), Ctrl-C or SIGTERM: sends /quit, prints what the server still sends,
//         and exits once the server has closed the connection (it gets 5 s). The server
//         closing first ends the client too.
//
// Exit codes: 0 once the server has closed the connection; 1 when the address is malformed,
// the connection fails or breaks, or the server does not close within 5 s of /quit (one line
// on stderr); 2 for a command-line mistake (usage on stderr).

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <exception>
#include <iostream>
#include <string>
#include <system_error>
#include <utility>
#include <variant>

#include <CLI/CLI.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/signal_set.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "coronet/coronet.hpp"

namespace {

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

constexpr auto connect_limit = 10s;  // a name lookup included
constexpr auto quit_grace = 5s;      // for the server to close the connection after /quit

// stdin as a stream coronet::stream_reader can read lines from. It reads a dup of fd 0, so
// that closing it leaves fd 0 alone. Asio waits on a pipe or a terminal through epoll; a
// regular file, which epoll refuses, Asio reads directly, as such reads never block.
class stdin_stream {
 public:
  explicit stdin_stream(const asio::any_io_executor& executor) : fd_(executor, dup_stdin()) {}

  // No time limit: stdin waits for its user.
  asio::awaitable<coronet::io_result> recv(asio::mutable_buffer buffer,
                                           coronet::call_timeout /*limit*/) {
    auto [ec, n] =
        co_await fd_.async_read_some(buffer, asio::experimental::as_tuple(asio::use_awaitable));
    if (ec == asio::error::eof) ec = coronet::errc::eof;
    co_return coronet::io_result(n, ec);
  }

 private:
  static int dup_stdin() {
    const int fd = ::dup(STDIN_FILENO);
    if (fd < 0) throw std::system_error(errno, std::system_category(), "stdin");
    return fd;
  }

  asio::posix::stream_descriptor fd_;
};

// Asio puts stdin in non-blocking mode, a flag the dup shares with fd 0 and, at a terminal,
// with the shell: put the flags back on the way out, or the shell's next read fails.
class stdin_flags_restorer {
 public:
  stdin_flags_restorer() : flags_(::fcntl(STDIN_FILENO, F_GETFL)) {}
  stdin_flags_restorer(const stdin_flags_restorer&) = delete;
  stdin_flags_restorer& operator=(const stdin_flags_restorer&) = delete;
  ~stdin_flags_restorer() {
    if (flags_ != -1) (void)::fcntl(STDIN_FILENO, F_SETFL, flags_);
  }

 private:
  int flags_;
};

// What went wrong, for the one line on stderr; empty when nothing did.
using problem = std::string;

asio::awaitable<problem> send_line(coronet::tcp_stream& server, std::string line) {
  line += '\n';
  auto sent = co_await server.send_all(asio::buffer(line));
  co_return sent ? problem() : "connection lost: " + sent.error().message();
}

// Prints each line the server sends, until the server closes the connection (no problem) or
// the connection breaks.
asio::awaitable<problem> print_server_lines(coronet::stream_reader<coronet::tcp_stream>& server) {
  for (;;) {
    auto line = co_await server.read_line();
    if (!line) {
      if (line.error() == coronet::errc::eof) co_return problem();
      co_return "connection lost: " + line.error().message();
    }
    std::cout << *line << std::endl;  // flushed, so that a pipe gets each line at once
  }
}

// Sends each line of stdin to the server, until stdin ends (no problem) or either side fails.
asio::awaitable<problem> send_stdin_lines(coronet::stream_reader<stdin_stream>& input,
                                          coronet::tcp_stream& server) {
  for (;;) {
    auto line = co_await input.read_line();
    if (line) {
      if (auto failed = co_await send_line(server, std::string(*line)); !failed.empty()) {
        co_return failed;
      }
    } else if (line.error() == coronet::errc::unexpected_eof) {
      co_return co_await send_line(server, std::string(input.buffered()));  // no final "\n"
    } else if (line.error() == coronet::errc::eof) {
      co_return problem();
    } else {
      co_return "stdin: " + line.error().message();
    }
  }
}

// The whole session, until the server has closed the connection.
asio::awaitable<problem> chat(std::string address) {
  const auto executor = co_await asio::this_coro::executor;
  auto server = co_await coronet::tcp_stream::connect(address, {.limit = connect_limit});
  if (!server) co_return "cannot connect to " + address + ": " + server.error().message();
  coronet::stream_reader from_server(*server);
  stdin_stream input_stream(executor);
  coronet::stream_reader input(input_stream);
  asio::signal_set stop_signals(executor, SIGINT, SIGTERM);

  // The first of the three to end cancels the other two. Each reports failure as a value:
  // Asio's || waits for the first to succeed, and a branch that threw would not count.
  auto first =
      co_await (print_server_lines(from_server) || send_stdin_lines(input, *server) ||
                stop_signals.async_wait(asio::experimental::as_tuple(asio::use_awaitable)));
  if (first.index() == 0) co_return std::get<0>(first);  // the server closed, or it broke
  if (first.index() == 1 && !std::get<1>(first).empty()) co_return std::get<1>(first);

  // stdin ended or a signal came: say goodbye, and let the server close the connection.
  if (auto failed = co_await send_line(*server, "/quit"); !failed.empty()) co_return failed;
  auto closed = co_await coronet::with_timeout(print_server_lines(from_server), quit_grace);
  if (!closed) co_return "the server did not close the connection within 5 s of /quit";
  co_return *closed;
}

// Runs chat() and sets the exit code; whatever went wrong becomes one line on stderr.
asio::awaitable<void> run_client(std::string address, int& exit_code) {
  problem failed;
  try {
    failed = co_await chat(std::move(address));
  } catch (const std::exception& e) {
    failed = e.what();  // no descriptor left to dup stdin, out of memory, ...
  }
  if (!failed.empty()) std::cerr << "chat_client: " << failed << std::endl;
  exit_code = failed.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("coronet chat client: stdin lines to a chat server, its lines to stdout",
               "chat_client");
  std::string address;
  app.add_option("--connect", address, "the server: 127.0.0.1:7000, [::1]:7000, localhost:7000")
      ->type_name("HOST:PORT")
      ->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "chat_client: " << e.what() << "\n\n" << app.help();
    return 2;
  }
  if (auto parsed = coronet::host_port::parse(address); !parsed) {
    std::cerr << "chat_client: invalid --connect '" << address << "': " << parsed.error().message()
              << std::endl;
    return 1;
  }

  const stdin_flags_restorer restore_stdin;  // destroyed last, after the io_context
  asio::io_context context(1);
  int exit_code = 1;
  coronet::spawn(context.get_executor(), run_client(address, exit_code), "chat client");
  context.run();
  return exit_code;
}
