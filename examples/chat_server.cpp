// chat_server: rooms of people talking in lines of text over TCP, served from every core.
//
// Run:    build/bin/chat_server --tcp 127.0.0.1:7000 [--threads 4] [--idle-timeout 300]
// Pair:   build/bin/chat_client --connect 127.0.0.1:7000   (or: nc 127.0.0.1 7000)
// Stop:   Ctrl-C or SIGTERM: stops accepting, gives clients 1 s, closes the rest, exits 0.
//
// The protocol: every line a client sends that does not start with "/" goes to the others in
// its room as "<nick>: <text>". Commands: /nick NAME, /join ROOM, /who, /quit. A client starts
// in room "lobby" as guest<N>. Server lines are "* ..." (news) and "! error: ..." (refusals).
// chat_command.hpp parses each line, apart from any I/O (and so fuzzed on its own).
//
// How it is built, the model of a coroutine server on coronet:
// - each connection runs on one runtime thread as two coroutines: a reader that turns lines
//   into actions, and a writer that drains the client's own outgoing queue;
// - a broadcast builds its line once, as one immutable shared buffer that every recipient's
//   queue points to, delivered by one post to each runtime thread with recipients, which
//   queues it for that thread's members; a writer sends what queued up meanwhile in one send;
// - rooms are one table under one mutex, holding each room's member list as an immutable
//   snapshot that a broadcast takes without copying;
// - each queue is bounded: a client that stops reading is dropped past 4 MiB, and nobody else
//   waits for it;
// - with --idle-timeout SECS, each line must arrive whole within SECS of the one before: a
//   client that goes quiet, or trickles bytes without ever ending a line (slowloris), is told
//   "! error: idle timeout" and closed.
//
// Exit codes: 0 after a signal; 1 when the address is malformed or cannot be bound; 2 for a
// command-line mistake.

#include <chrono>
#include <cstddef>
#include <deque>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include <CLI/CLI.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include "chat_command.hpp"
#include "coronet/coronet.hpp"

namespace {

using namespace asio::experimental::awaitable_operators;

constexpr std::size_t max_line = 4096;               // bytes of content, "\n" and "\r" not counted
constexpr std::size_t max_queued = 4 * 1024 * 1024;  // per client, beyond the kernel's buffers
constexpr std::size_t max_batch = 64 * 1024;         // bytes of queued lines sent at once
constexpr auto last_words_limit = std::chrono::seconds(5);  // to send what is queued at the end

// A line as sent to clients: built once, shared by every queue it is in, never changed.
using line = std::shared_ptr<const std::string>;

line make_line(std::string text) {
  text += '\n';
  return std::make_shared<const std::string>(std::move(text));
}

// One connected client. Its room and queue belong to its connection's thread; its nick is
// changed and read by others only under the chat's mutex; other threads only read executor()
// and home(), to post work to its thread.
class member {
 public:
  explicit member(coronet::tcp_stream& stream)
      : stream_(stream),
        executor_(stream.get_executor()),
        home_(&asio::query(executor_, asio::execution::context)),
        wake_(executor_, asio::steady_timer::time_point::max()) {}

  std::string nick;
  std::string room;

  // Safe from any thread: the executor of the member's runtime thread, and that thread's
  // io_context, which tells members of the same thread apart from the others.
  const asio::any_io_executor& executor() const noexcept { return executor_; }
  const asio::execution_context* home() const noexcept { return home_; }

  // Own thread only. Past the bound the client is dropped: closing the socket ends its reader
  // (which then says it left) and its writer.
  void enqueue(const line& message) {
    if (gone_) return;
    if (queued_bytes_ + message->size() > max_queued) {
      coronet::log().info("{}: not reading, {} bytes queued: dropped", nick, queued_bytes_);
      stop();
      return;
    }
    queued_bytes_ += message->size();
    queue_.push_back(message);
    wake_.cancel();
  }

  // Own thread only: the writer sends what is queued, then ends.
  void finish() {
    finishing_ = true;
    wake_.cancel();
  }

  // Own thread only: ends the writer at once and closes the socket; later deliveries are
  // dropped. Called before the session's frame (and so the stream) goes away.
  void stop() {
    gone_ = true;
    stream_.close();
    wake_.cancel();
  }

  // The writer coroutine. Lines that queued up while a send was under way go out together,
  // copied into one buffer of up to max_batch bytes: one send for many lines when a room is
  // busy (a crowd leaving at once tells each member of every departure).
  asio::awaitable<void> write_loop() {
    std::string batch;
    for (;;) {
      while (queue_.empty()) {
        if (finishing_ || gone_) co_return;
        wake_.expires_at(asio::steady_timer::time_point::max());
        (void)co_await wake_.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
      }
      if (gone_) co_return;
      batch.clear();
      while (!queue_.empty() &&
             (batch.empty() || batch.size() + queue_.front()->size() <= max_batch)) {
        batch += *queue_.front();
        queue_.pop_front();
      }
      const auto limit = finishing_ ? coronet::call_timeout(last_words_limit) : std::nullopt;
      const auto sent = co_await stream_.send_all(asio::buffer(batch), limit);
      queued_bytes_ -= batch.size();
      if (!sent) {
        stop();  // the peer is gone or stuck: the reader ends too
        co_return;
      }
    }
  }

 private:
  coronet::tcp_stream& stream_;
  const asio::any_io_executor executor_;
  const asio::execution_context* const home_;
  asio::steady_timer wake_;  // cancelled when there is something to send
  std::deque<line> queue_;
  std::size_t queued_bytes_ = 0;
  bool finishing_ = false;
  bool gone_ = false;
};

// Every room and nick, shared by all threads under one mutex. A room's member list is an
// immutable snapshot, replaced on each join or leave, so a broadcast takes it under the lock
// and delivers outside it.
class chat {
 public:
  using members = std::vector<std::shared_ptr<member>>;  // in the order they came

  // A new client: a fresh guest nick, in the lobby, not announced.
  void enter(const std::shared_ptr<member>& who) {
    std::lock_guard lock(mutex_);
    do {
      who->nick = "guest" + std::to_string(next_guest_++);
    } while (nicks_.count(who->nick) > 0);
    nicks_.insert(who->nick);
    who->room = "lobby";
    add(who);
  }

  void say(const member& from, std::string_view text) {
    broadcast(from.room, make_line(from.nick + ": " + std::string(text)), &from);
  }

  // Returns why not, or nothing when done.
  std::optional<std::string> rename(const std::shared_ptr<member>& who, const std::string& to) {
    std::string old;
    {
      std::lock_guard lock(mutex_);
      if (to == who->nick) return std::nullopt;
      if (nicks_.count(to) > 0) return "nick " + to + " is taken";
      nicks_.erase(who->nick);
      old = std::exchange(who->nick, to);
      nicks_.insert(to);
    }
    broadcast(who->room, make_line("* " + old + " is now " + to), who.get());
    return std::nullopt;
  }

  void join(const std::shared_ptr<member>& who, const std::string& room) {
    if (room == who->room) return;
    std::string old;
    {
      std::lock_guard lock(mutex_);
      remove(*who);
      old = std::exchange(who->room, room);
      add(who);
    }
    broadcast(old, make_line("* " + who->nick + " left"), who.get());
    broadcast(room, make_line("* " + who->nick + " joined"), who.get());
  }

  std::string who_is_in(const member& asking) {
    std::vector<std::string> nicks;
    {
      std::lock_guard lock(mutex_);
      for (const auto& m : *rooms_[asking.room]) nicks.push_back(m->nick);
    }
    std::sort(nicks.begin(), nicks.end());  // by byte value
    std::string list = "* in " + asking.room + ":";
    const char* separator = " ";
    for (const auto& nick : nicks) {
      list += separator + nick;
      separator = ", ";
    }
    return list;
  }

  // Idempotent: the member leaves its room (the others are told) and frees its nick.
  void leave(member& who) {
    {
      std::lock_guard lock(mutex_);
      if (nicks_.erase(who.nick) == 0) return;
      remove(who);
    }
    broadcast(who.room, make_line("* " + who.nick + " left"), &who);
  }

 private:
  // Under mutex_: copy-on-write of the member's room.
  void add(const std::shared_ptr<member>& who) {
    auto& room = rooms_[who->room];
    auto next = std::make_shared<members>(room ? *room : members{});
    next->push_back(who);
    room = std::move(next);
  }
  void remove(const member& who) {
    auto& room = rooms_[who.room];
    auto next = std::make_shared<members>();
    next->reserve(room->size());
    for (const auto& m : *room) {
      if (m.get() != &who) next->push_back(m);
    }
    if (next->empty()) {
      rooms_.erase(who.room);
    } else {
      room = std::move(next);
    }
  }

  // To everyone in `room` but `except`, the same buffer to each: one post to each runtime
  // thread that has members there, which queues the line for that thread's members. A crowd
  // costs a loop per thread, not a post per member (when a crowd leaves at once, each of its
  // members is told of every departure).
  void broadcast(const std::string& room, const line& message, const member* except) {
    std::shared_ptr<const members> snapshot;
    {
      std::lock_guard lock(mutex_);
      const auto found = rooms_.find(room);
      if (found == rooms_.end()) return;
      snapshot = found->second;
    }
    std::vector<const member*> one_per_thread;
    for (const auto& m : *snapshot) {
      if (m.get() == except) continue;
      if (std::none_of(one_per_thread.begin(), one_per_thread.end(),
                       [&](const member* seen) { return seen->home() == m->home(); })) {
        one_per_thread.push_back(m.get());
      }
    }
    for (const member* first : one_per_thread) {
      asio::post(first->executor(), [snapshot, message, except, home = first->home()] {
        for (const auto& m : *snapshot) {
          if (m->home() == home && m.get() != except) m->enqueue(message);
        }
      });
    }
  }

  std::mutex mutex_;
  std::uint64_t next_guest_ = 1;
  std::set<std::string> nicks_;
  std::map<std::string, std::shared_ptr<const members>> rooms_;
};

// One line from a client; false when it asked to quit.
bool handle(chat& rooms, const std::shared_ptr<member>& me, std::string_view text) {
  using kind = coronet_examples::chat_command::kind;
  auto command = coronet_examples::parse_chat_command(text);
  std::string reply;
  switch (command.what) {
    case kind::say: rooms.say(*me, command.argument); return true;
    case kind::nick: {
      const std::string name(command.argument);
      if (auto why_not = rooms.rename(me, name)) {
        reply = "! error: " + *why_not;
      } else {
        reply = "* you are now " + name;
      }
      break;
    }
    case kind::join: {
      const std::string room(command.argument);
      rooms.join(me, room);
      reply = "* joined " + room;
      break;
    }
    case kind::who: reply = rooms.who_is_in(*me); break;
    case kind::quit: return false;
    case kind::error: reply = std::move(command.reply); break;
  }
  me->enqueue(make_line(std::move(reply)));
  return true;
}

// The reader: a line at a time until the client quits, leaves or breaks the rules. `idle`
// bounds each whole line, however many receives it takes.
asio::awaitable<void> read_loop(chat& rooms, std::shared_ptr<member> me,
                                coronet::tcp_stream& stream, coronet::timeout idle) {
  coronet::stream_reader reader(stream, {.max_line = max_line});
  for (;;) {
    auto got = co_await reader.read_line(idle);
    if (!got) {
      if (got.error() == coronet::errc::line_too_long) {
        me->enqueue(make_line("! error: line too long"));
      } else if (got.error() == std::errc::timed_out) {
        coronet::log().info("{}: idle, closing", me->nick);
        me->enqueue(make_line("! error: idle timeout"));
      }
      break;  // eof, a reset, an unterminated line (discarded) or the writer's close
    }
    if (got->empty()) continue;
    if (!handle(rooms, me, *got)) break;
  }
  rooms.leave(*me);
  me->finish();
}

asio::awaitable<void> session(std::shared_ptr<chat> rooms, coronet::tcp_stream stream,
                              coronet::timeout idle) {
  // Lines are small and each is sent as it comes: no waiting for more to fill a segment.
  (void)stream.set_option(coronet::option::no_delay{true});
  auto me = std::make_shared<member>(stream);
  rooms->enter(me);
  // However the session ends (a server stop cancels it), it leaves and the member lets go
  // of the stream before the stream goes away.
  struct goodbye {
    chat& rooms;
    member& me;
    ~goodbye() {
      rooms.leave(me);
      me.stop();
    }
  } on_exit{*rooms, *me};
  me->enqueue(make_line("* welcome " + me->nick));
  co_await (read_loop(*rooms, me, stream, idle) && me->write_loop());
  (void)stream.shutdown(coronet::shutdown_type::send);  // FIN after the last line
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("coronet chat server: rooms of clients talking in lines", "chat_server");
  std::string address;
  unsigned threads = 0;
  std::string log_level = "info";
  double idle_seconds = 0;
  app.add_option("--tcp", address, "listen on ADDR (127.0.0.1:7000, [::]:7000)")
      ->type_name("ADDR")
      ->required();
  auto* threads_option =
      app.add_option("--threads", threads, "runtime threads (default: one per hardware thread)")
          ->check(CLI::Range(1U, 1024U));
  auto* idle_option =
      app.add_option("--idle-timeout", idle_seconds,
                     "close a client whose next line has not arrived whole within SECS "
                     "(default: never)")
          ->type_name("SECS")
          ->check(CLI::PositiveNumber);
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "chat_server: " << e.what() << "\n\n" << app.help();
    return 2;
  }
  coronet::set_log_level(coronet::parse_log_level(log_level).value());
  (void)coronet::raise_open_file_limit();

  const auto where = coronet::endpoint::parse(address);
  if (!where || !where->is_ip()) {
    std::cerr << "chat_server: invalid --tcp '" << address
              << "': " << (where ? "not an IP address" : where.error().message()) << std::endl;
    return 1;
  }
  coronet::runtime runtime =
      threads_option->count() > 0 ? coronet::runtime(threads) : coronet::runtime();
  auto rooms = std::make_shared<chat>();
  const coronet::timeout idle = idle_option->count() > 0
                                    ? coronet::timeout(std::chrono::duration<double>(idle_seconds))
                                    : coronet::no_timeout;
  try {
    auto server =
        coronet::tcp_server::bind(runtime, *where, [rooms, idle](coronet::tcp_stream stream) {
          return session(rooms, std::move(stream), idle);
        });
    std::cout << "listening tcp " << server.local_endpoint() << std::endl;
    runtime.handle_signals([&server] { return server.stop(std::chrono::seconds(1)); });
    runtime.run();
  } catch (const std::system_error& e) {
    std::cerr << "chat_server: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
