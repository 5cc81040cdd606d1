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
//   queue points to, and posts it once to each runtime thread, which queues it for its own
//   members of the room: each thread keeps its members by room, touched only there, so a
//   broadcast takes no lock and copies no member list;
// - nicks, and each room's nicks for /who, are one table under one mutex;
// - a writer sends every line that queued up while it was sending in one send;
// - each queue is bounded: a client that stops reading is dropped past 4 MiB, and nobody else
//   waits for it;
// - with --idle-timeout SECS, each line must arrive whole within SECS of the one before: a
//   client that goes quiet, or trickles bytes without ever ending a line (slowloris), is told
//   "! error: idle timeout" and closed.
//
// Exit codes: 0 after a signal; 1 when the address is malformed or cannot be bound; 2 for a
// command-line mistake.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include "chat_command.hpp"
#include "coronet/coronet.hpp"
#include "return_free_memory.hpp"

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

// One connected client, living on one runtime thread: its room and queue belong to that
// thread, and no other thread touches the member; its nick is also read by /who on other
// threads, under the chat's mutex, which every change of it holds.
class member {
 public:
  member(coronet::tcp_stream& stream, std::uint64_t member_id)
      : id(member_id),
        executor(stream.get_executor()),
        stream_(stream),
        wake_(executor, asio::steady_timer::time_point::max()) {}

  const std::uint64_t id;                // never reused, unlike an address
  const asio::any_io_executor executor;  // its runtime thread's
  std::string nick;
  std::string room;

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
      // One line, the usual case, is sent from its shared buffer as it is; several are copied
      // into `batch`, which is let go of again once used, so that an idle client holds none.
      const line first = std::move(queue_.front());
      queue_.pop_front();
      asio::const_buffer out = asio::buffer(*first);
      if (!queue_.empty()) {
        batch = *first;
        while (!queue_.empty() && batch.size() + queue_.front()->size() <= max_batch) {
          batch += *queue_.front();
          queue_.pop_front();
        }
        out = asio::buffer(batch);
      }
      const auto limit = finishing_ ? coronet::call_timeout(last_words_limit) : std::nullopt;
      const auto sent = co_await stream_.send_all(out, limit);
      queued_bytes_ -= out.size();
      std::string().swap(batch);
      if (!sent) {
        stop();  // the peer is gone or stuck: the reader ends too
        co_return;
      }
    }
  }

 private:
  coronet::tcp_stream& stream_;
  asio::steady_timer wake_;  // cancelled when there is something to send
  std::deque<line> queue_;
  std::size_t queued_bytes_ = 0;
  bool finishing_ = false;
  bool gone_ = false;
};

// Every room and nick. Two views of the rooms:
// - on each runtime thread, the members of each room that live on that thread (touched only
//   there, so without a lock): a broadcast is one post to each thread, which queues the line
//   for its own members of the room;
// - under one mutex, every nick in use and each room's nicks in byte order, for /who.
// Joining, leaving and renaming cost O(log n) under the mutex (plus, to leave, a scan of the
// thread's own list for the room), and a broadcast a post per thread plus a queue push per
// recipient, with no copy of a member list: a crowd of thousands coming or going at once stays
// cheap (each of its members is still told of every departure).
class chat {
 public:
  explicit chat(coronet::runtime& runtime) {
    for (std::size_t k = 0; k < runtime.size(); ++k) {
      threads_.push_back(std::make_unique<thread_rooms>(runtime.executor(k)));
    }
  }

  // A new client (on its own thread): a fresh guest nick, in the lobby, not announced.
  std::shared_ptr<member> enter(coronet::tcp_stream& stream) {
    auto who = std::make_shared<member>(stream, next_id_++);
    {
      std::lock_guard lock(mutex_);
      do {
        who->nick = "guest" + std::to_string(next_guest_++);
      } while (nicks_.count(who->nick) > 0);
      nicks_.insert(who->nick);
      who->room = "lobby";
      room_nicks_[who->room].insert(who->nick);
    }
    local(who->executor).rooms[who->room].push_back(who.get());
    return who;
  }

  void say(const member& from, std::string_view text) {
    broadcast(from.room, make_line(from.nick + ": " + std::string(text)), from.id);
  }

  // Returns why not, or nothing when done.
  std::optional<std::string> rename(member& who, const std::string& to) {
    std::string old;
    {
      std::lock_guard lock(mutex_);
      if (to == who.nick) return std::nullopt;
      if (nicks_.count(to) > 0) return "nick " + to + " is taken";
      nicks_.erase(who.nick);
      nicks_.insert(to);
      auto& in_room = room_nicks_[who.room];
      in_room.erase(who.nick);
      in_room.insert(to);
      old = std::exchange(who.nick, to);
    }
    broadcast(who.room, make_line("* " + old + " is now " + to), who.id);
    return std::nullopt;
  }

  // On the member's own thread, like leave().
  void join(member& who, const std::string& room) {
    if (room == who.room) return;
    std::string old;
    {
      std::lock_guard lock(mutex_);
      remove_nick(who.room, who.nick);
      room_nicks_[room].insert(who.nick);
      old = std::exchange(who.room, room);
    }
    auto& rooms = local(who.executor).rooms;
    remove_member(rooms, old, who);
    rooms[room].push_back(&who);
    broadcast(old, make_line("* " + who.nick + " left"), who.id);
    broadcast(room, make_line("* " + who.nick + " joined"), who.id);
  }

  std::string who_is_in(const member& asking) {
    std::string list = "* in " + asking.room + ":";
    std::lock_guard lock(mutex_);
    const char* separator = " ";
    for (const auto& nick : room_nicks_[asking.room]) {
      list += separator + nick;
      separator = ", ";
    }
    return list;
  }

  // Idempotent, on the member's own thread: it leaves its room (the others are told) and
  // frees its nick.
  void leave(member& who) {
    {
      std::lock_guard lock(mutex_);
      if (nicks_.erase(who.nick) == 0) return;
      remove_nick(who.room, who.nick);
    }
    remove_member(local(who.executor).rooms, who.room, who);
    broadcast(who.room, make_line("* " + who.nick + " left"), who.id);
  }

 private:
  // One runtime thread's members by room. Member pointers stay valid: a member leaves (on
  // this thread) before it goes away.
  struct thread_rooms {
    explicit thread_rooms(asio::any_io_executor e)
        : executor(std::move(e)), context(&asio::query(executor, asio::execution::context)) {}
    const asio::any_io_executor executor;
    const asio::execution_context* const context;
    std::map<std::string, std::vector<member*>> rooms;
  };

  thread_rooms& local(const asio::any_io_executor& own_thread) {
    const auto* context = &asio::query(own_thread, asio::execution::context);
    for (const auto& t : threads_) {
      if (t->context == context) return *t;
    }
    throw std::logic_error("chat: a member on a thread outside the runtime");
  }

  static void remove_member(std::map<std::string, std::vector<member*>>& rooms,
                            const std::string& room, const member& who) {
    const auto found = rooms.find(room);
    if (found == rooms.end()) return;
    auto& members = found->second;
    members.erase(std::remove(members.begin(), members.end(), &who), members.end());
    if (members.empty()) rooms.erase(found);
  }

  // Under mutex_.
  void remove_nick(const std::string& room, const std::string& nick) {
    const auto found = room_nicks_.find(room);
    if (found == room_nicks_.end()) return;
    found->second.erase(nick);
    if (found->second.empty()) room_nicks_.erase(found);
  }

  // To everyone in `room` but member `except`: the same buffer to each, through one post to
  // each runtime thread. Lines from one sender reach each thread in the order sent.
  void broadcast(const std::string& room, const line& message, std::uint64_t except) {
    for (const auto& t : threads_) {
      asio::post(t->executor, [&rooms = t->rooms, room, message, except] {
        const auto found = rooms.find(room);
        if (found == rooms.end()) return;
        for (member* m : found->second) {
          if (m->id != except) m->enqueue(message);
        }
      });
    }
  }

  std::vector<std::unique_ptr<thread_rooms>> threads_;
  std::atomic<std::uint64_t> next_id_ = 1;
  std::mutex mutex_;
  std::uint64_t next_guest_ = 1;
  std::set<std::string> nicks_;
  std::map<std::string, std::set<std::string>> room_nicks_;  // nicks in byte order
};

// One line from a client; false when it asked to quit.
bool handle(chat& rooms, member& me, std::string_view text) {
  using kind = coronet_examples::chat_command::kind;
  auto command = coronet_examples::parse_chat_command(text);
  std::string reply;
  switch (command.what) {
    case kind::say: rooms.say(me, command.argument); return true;
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
    case kind::who: reply = rooms.who_is_in(me); break;
    case kind::quit: return false;
    case kind::error: reply = std::move(command.reply); break;
  }
  me.enqueue(make_line(std::move(reply)));
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
    if (!handle(rooms, *me, *got)) break;
  }
  rooms.leave(*me);
  me->finish();
}

asio::awaitable<void> session(std::shared_ptr<chat> rooms, coronet::tcp_stream stream,
                              coronet::timeout idle) {
  // Lines are small and each is sent as it comes: no waiting for more to fill a segment.
  (void)stream.set_option(coronet::option::no_delay{true});
  auto me = rooms->enter(stream);
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
  auto rooms = std::make_shared<chat>(runtime);
  const coronet::timeout idle = idle_option->count() > 0
                                    ? coronet::timeout(std::chrono::duration<double>(idle_seconds))
                                    : coronet::no_timeout;
  try {
    auto server =
        coronet::tcp_server::bind(runtime, *where, [rooms, idle](coronet::tcp_stream stream) {
          return session(rooms, std::move(stream), idle);
        });
    std::cout << "listening tcp " << server.local_endpoint() << std::endl;
    runtime.spawn(0, coronet_examples::return_free_memory(), "return free memory");
    runtime.handle_signals([&server] { return server.stop(std::chrono::seconds(1)); });
    runtime.run();
  } catch (const std::system_error& e) {
    std::cerr << "chat_server: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
