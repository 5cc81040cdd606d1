// chat_server driven as a child process over loopback: every rule of its contract (issue 6,
// point 1) checked from the outside, by clients that speak its line protocol.
//
// "Nothing else arrived" is never checked by waiting a while: a client asks /who, and the
// reply must be the very next line it reads, so anything the server had queued for it before
// shows up in its place. Lines the test expects get a generous limit (patience); the only
// timing asserted is the contract's own "each within 1 s" for a client that keeps reading.
#include <doctest/doctest.h>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "support/child_process.hpp"
#include "support/run.hpp"

using namespace std::chrono_literals;
using coronet::tcp_stream;
using coronet::test::child_process;
namespace test = coronet::test;

namespace {

const std::string chat_server = CORONET_CHAT_SERVER_PATH;

// How long a line the test expects may take to come: long, because this is not a timing check.
constexpr std::chrono::milliseconds patience = 5s;

// The contract's longest line: bytes of content, "\n" and an optional "\r" not counted.
constexpr std::size_t max_content = 4096;

// Reads the ready line, `listening tcp HOST:PORT`; returns HOST:PORT.
coronet::endpoint ready_endpoint(child_process& server) {
  return test::ready_endpoint(server.read_stdout_line(5s));
}

// chat_server's arguments: 127.0.0.1 port 0, then `extra`.
std::vector<std::string> server_args(std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--tcp", "127.0.0.1:0"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// SIGTERM: exit 0 and no sanitizer report (under the asan and tsan presets the server is
// instrumented, and a report goes to its stderr).
void stop(child_process& server) {
  server.send_signal(SIGTERM);
  CHECK(server.wait(5s) == 0);
  const auto log = server.read_all_stderr(2s);
  CHECK_MESSAGE(log.find("Sanitizer") == std::string::npos, log);
  CHECK_MESSAGE(log.find("runtime error") == std::string::npos, log);
}

// One chat client: its connection, a reader over it, and the nick the test knows it by.
// Server lines are read with read_until("\n"), which keeps a "\r": the server must not send one.
struct member {
  explicit member(tcp_stream connected) : stream(std::move(connected)), reader(stream) {}
  member(const member&) = delete;
  member& operator=(const member&) = delete;
  ~member() = default;

  tcp_stream stream;
  coronet::stream_reader<tcp_stream> reader;
  std::string nick;
};
using member_ptr = std::unique_ptr<member>;

// The next line `m` receives, without its "\n"; fails the test when none comes in `limit`.
asio::awaitable<std::string> next_line(member& m, std::chrono::milliseconds limit = patience) {
  auto got = co_await m.reader.read_until("\n", limit);
  REQUIRE_MESSAGE(got, m.nick << " expected a line but: " << got.error().message());
  co_return std::string(*got);
}

asio::awaitable<void> send_raw(member& m, std::string bytes) {
  const auto sent = co_await m.stream.send_all(asio::buffer(bytes), patience);
  REQUIRE_MESSAGE(sent, m.nick << " could not send: " << sent.error().message());
}

asio::awaitable<void> say(member& m, std::string text) { co_await send_raw(m, text + "\n"); }

// The next line `m` receives is `wanted`.
asio::awaitable<void> expect(member& m, std::string wanted) {
  const auto got = co_await next_line(m);
  CHECK_MESSAGE(got == wanted, "line to " << m.nick);
}

// The members given, as the vectors the helpers below take. (A braced list inside a co_await
// expression trips GCC 12's coroutine lowering: "array used as initializer".)
template <class... P>
std::vector<member*> these(const P&... members) {
  return std::vector<member*>{&*members...};
}

template <class... S>
std::vector<std::string> names(const S&... nicks) {
  return std::vector<std::string>{std::string(nicks)...};
}

// Every one of `members` receives `wanted` next.
asio::awaitable<void> expect_all(std::vector<member*> members, std::string wanted) {
  for (auto* m : members) co_await expect(*m, wanted);
}

// `m` sends `command` and the next line it receives is `! error: <reason>`.
asio::awaitable<void> expect_error(member& m, std::string command) {
  co_await say(m, command);
  const auto got = co_await next_line(m);
  CHECK_MESSAGE((got.starts_with("! error: ") && got.size() > 9),
                m.nick << " sent \"" << command << "\" and got \"" << got << "\"");
}

// Nothing was queued for `m`: the next line it receives is the reply to its own /who.
asio::awaitable<void> expect_nothing_queued(member& m) {
  co_await say(m, "/who");
  const auto got = co_await next_line(m);
  CHECK_MESSAGE(got.starts_with("* in "),
                m.nick << " was sent \"" << got << "\" before the reply to its /who");
}

// How the connection of `m` ends: its error (coronet::errc::eof for a FIN), after
// `last_line` if one is given; no other line may come first.
asio::awaitable<std::error_code> end_of(member& m, std::string last_line = "") {
  if (!last_line.empty()) co_await expect(m, last_line);
  auto got = co_await m.reader.read_until("\n", patience);
  CHECK_MESSAGE(!got, m.nick << " was sent \"" << (got ? std::string(*got) : "") << "\"");
  co_return got ? std::error_code() : got.error();
}

// `* in ROOM: a, b, c`, the nicks sorted by byte value (char_traits<char> compares as
// unsigned char).
std::string who_line(const std::string& room, std::vector<std::string> nicks) {
  std::sort(nicks.begin(), nicks.end());
  std::string line = "* in " + room + ":";
  for (std::size_t i = 0; i < nicks.size(); ++i) line += (i == 0 ? " " : ", ") + nicks[i];
  return line;
}

// Connects; the first line must be `* welcome guest<N>`, and guest<N> becomes m.nick.
asio::awaitable<member_ptr> enter(coronet::endpoint server) {
  auto stream = co_await tcp_stream::connect(server, {.limit = patience});
  REQUIRE_MESSAGE(stream, stream.error().message());
  auto m = std::make_unique<member>(std::move(*stream));
  m->nick = "(connecting)";
  const auto first = co_await next_line(*m);
  static const std::regex welcome(R"(\* welcome (guest[0-9]+))");
  std::smatch match;
  REQUIRE_MESSAGE(std::regex_match(first, match, welcome), "first line: \"" << first << "\"");
  m->nick = match[1].str();
  co_return m;
}

unsigned long guest_number(const std::string& nick) { return std::stoul(nick.substr(5)); }

// `m` renames itself to `name`; `room_others` see the notice.
asio::awaitable<void> change_nick(member& m, std::string name, std::vector<member*> room_others) {
  co_await say(m, "/nick " + name);
  co_await expect(m, "* you are now " + name);
  co_await expect_all(room_others, "* " + m.nick + " is now " + name);
  m.nick = name;
}

// `m` moves to `room`; `old_others` and `new_others` (the members there) see the notices.
asio::awaitable<void> move_to(member& m, std::string room, std::vector<member*> old_others,
                              std::vector<member*> new_others) {
  co_await say(m, "/join " + room);
  co_await expect(m, "* joined " + room);
  co_await expect_all(old_others, "* " + m.nick + " left");
  co_await expect_all(new_others, "* " + m.nick + " joined");
}

// Closes `m`'s connection with a reset instead of a FIN.
void reset(member& m) {
  REQUIRE(m.stream.set_option(coronet::option::linger{true, 0s}));
  m.stream.close();
}

}  // namespace

// --- welcome and guest numbers --------------------------------------------------------------

namespace {

asio::awaitable<void> welcome_and_guest_numbers(coronet::endpoint where) {
  // The observer stays in the lobby and sees every departure, so each one is known to be
  // done before the next client connects.
  auto observer = co_await enter(where);
  std::set<unsigned long> numbers;
  numbers.insert(guest_number(observer->nick));
  std::vector<member_ptr> members;
  for (int i = 0; i < 4; ++i) {
    members.push_back(co_await enter(where));
    numbers.insert(guest_number(members.back()->nick));
  }
  CHECK(numbers.size() == 5);  // distinct

  // Connect, disconnect, connect: never a number handed out before, not even a freed one.
  for (int round = 0; round < 3; ++round) {
    auto leaving = std::move(members.front());
    members.erase(members.begin());
    leaving->stream.close();
    co_await expect(*observer, "* " + leaving->nick + " left");
    for (auto& m : members) co_await expect(*m, "* " + leaving->nick + " left");
    auto newcomer = co_await enter(where);
    CHECK_MESSAGE(!numbers.contains(guest_number(newcomer->nick)), newcomer->nick);
    numbers.insert(guest_number(newcomer->nick));
    members.push_back(std::move(newcomer));
  }

  // Two clients take the guest names that would most likely be handed out next; the next
  // guest must get a name nobody uses.
  const auto highest = *numbers.rbegin();
  const std::string taken_1 = "guest" + std::to_string(highest + 1);
  const std::string taken_2 = "guest" + std::to_string(highest + 2);
  co_await change_nick(*members[0], taken_1, these(observer, members[1], members[2], members[3]));
  co_await change_nick(*members[1], taken_2, these(observer, members[0], members[2], members[3]));
  auto late = co_await enter(where);
  CHECK(late->nick != taken_1);
  CHECK(late->nick != taken_2);
  CHECK_MESSAGE(!numbers.contains(guest_number(late->nick)), late->nick);

  // Connecting is not announced: the observer's next line is its /who reply, which lists
  // every nick in use, the newcomer's once.
  std::vector<std::string> nicks{observer->nick, late->nick};
  for (auto& m : members) nicks.push_back(m->nick);
  co_await say(*observer, "/who");
  co_await expect(*observer, who_line("lobby", nicks));
}

}  // namespace

TEST_CASE("chat_server: each client is first welcomed as a guest whose number is never reused") {
  child_process server(chat_server, server_args());
  const auto where = ready_endpoint(server);
  test::run([&] { return welcome_and_guest_numbers(where); });
  stop(server);
}

// --- plain lines ------------------------------------------------------------------------------

namespace {

asio::awaitable<void> plain_lines(coronet::endpoint where) {
  auto a = co_await enter(where);
  auto b = co_await enter(where);
  auto c = co_await enter(where);
  auto d = co_await enter(where);
  co_await move_to(*d, "elsewhere", these(a, b, c), these());

  // Connecting is not announced to the room.
  co_await expect_nothing_queued(*a);

  const std::vector<std::string> texts = {"hello there",
                                          "  two leading spaces",
                                          "trailing space ",
                                          "a/b is not a command",
                                          " /nick not-a-command",
                                          "tab\there",
                                          "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93",
                                          "*",
                                          "!"};
  for (const auto& text : texts) {
    co_await say(*a, text);
    co_await expect_all(these(b, c), a->nick + ": " + text);
  }
  co_await expect_nothing_queued(*a);  // never echoed to the sender
  co_await expect_nothing_queued(*d);  // nor sent to another room

  co_await say(*b, "and back");
  co_await expect_all(these(a, c), b->nick + ": and back");
  co_await expect_nothing_queued(*b);

  // In the other room, d talks to nobody: no error, nothing to the lobby.
  co_await say(*d, "anyone here?");
  co_await expect_nothing_queued(*d);
  co_await expect_nothing_queued(*c);
}

asio::awaitable<void> line_endings(coronet::endpoint where) {
  auto a = co_await enter(where);
  auto b = co_await enter(where);

  co_await send_raw(*a, "crlf\r\n");
  co_await expect(*b, a->nick + ": crlf");
  co_await send_raw(*a, "two cr\r\r\n");  // one "\r" is removed, not two
  co_await expect(*b, a->nick + ": two cr\r");
  co_await send_raw(*a, "mid\rdle\n");
  co_await expect(*b, a->nick + ": mid\rdle");

  // Empty lines go nowhere: b's next line is a's next real one, and a gets no error.
  co_await send_raw(*a, "\n\r\n\n");
  co_await send_raw(*a, "\r\n");
  co_await say(*a, "after the empty ones");
  co_await expect(*b, a->nick + ": after the empty ones");
  co_await expect_nothing_queued(*a);

  // Several lines in one segment, and one line in several.
  co_await send_raw(*a, "one\ntwo\r\nthree\n");
  co_await expect(*b, a->nick + ": one");
  co_await expect(*b, a->nick + ": two");
  co_await expect(*b, a->nick + ": three");
  co_await send_raw(*a, "spl");
  co_await test::sleep_for(100ms);  // so that the server reads the first part on its own
  co_await send_raw(*a, "it\r");
  co_await test::sleep_for(100ms);
  co_await send_raw(*a, "\n");
  co_await expect(*b, a->nick + ": split");

  // Commands end in "\r\n" too.
  co_await send_raw(*a, "/nick crlf_name\r\n");
  co_await expect(*a, "* you are now crlf_name");
  co_await expect(*b, "* " + a->nick + " is now crlf_name");
  a->nick = "crlf_name";
  co_await send_raw(*a, "/who\r\n");
  co_await expect(*a, who_line("lobby", names(a->nick, b->nick)));
  co_await expect_nothing_queued(*b);
}

}  // namespace

TEST_CASE("chat_server: a plain line goes to the others in the room as nick: text - not back") {
  child_process server(chat_server, server_args());
  const auto where = ready_endpoint(server);
  test::run([&] { return plain_lines(where); });
  stop(server);
}

TEST_CASE("chat_server: one CR before LF is removed and empty lines are ignored") {
  child_process server(chat_server, server_args());
  const auto where = ready_endpoint(server);
  test::run([&] { return line_endings(where); });
  stop(server);
}

// --- /nick ------------------------------------------------------------------------------------

namespace {

asio::awaitable<void> nick_command(coronet::endpoint where) {
  auto a = co_await enter(where);
  auto b = co_await enter(where);
  auto d = co_await enter(where);
  co_await move_to(*d, "side", these(a, b), these());
  const std::string a_guest = a->nick;

  co_await change_nick(*a, "alice", these(b));
  co_await expect_nothing_queued(*d);  // another room hears nothing
  co_await say(*a, "hi");
  co_await expect(*b, "alice: hi");

  // Every allowed character, and the two lengths at the ends of the range.
  const std::string longest = "Az09_-" + std::string(26, 'q');
  REQUIRE(longest.size() == 32);
  co_await change_nick(*a, longest, these(b));
  co_await change_nick(*a, "x", these(b));
  co_await change_nick(*a, "Zed-9_", these(b));

  // Refused: the connection stays, the nick is unchanged, and nobody hears of it.
  const std::vector<std::string> refused = {
      "/nick bad!name",   "/nick a.b", "/nick caf\xc3\xa9", "/nick " + std::string(33, 'n'),
      "/nick " + b->nick, "/nick",     "/nick one two",     "/nick a\tb"};
  for (const auto& command : refused) {
    co_await expect_error(*a, command);
  }
  co_await expect_nothing_queued(*b);
  co_await expect_nothing_queued(*d);
  co_await say(*a, "still Zed");
  co_await expect(*b, "Zed-9_: still Zed");
  co_await say(*a, "/who");
  co_await expect(*a, who_line("lobby", names("Zed-9_", b->nick)));

  // A name given up is free again, a guest name included.
  co_await change_nick(*b, a_guest, these(a));
  co_await change_nick(*a, "alice", these(b));
  co_await change_nick(*d, longest, these());
}

}  // namespace

TEST_CASE("chat_server: /nick renames and tells the room - a refused name is an error only") {
  child_process server(chat_server, server_args());
  const auto where = ready_endpoint(server);
  test::run([&] { return nick_command(where); });
  stop(server);
}

// --- /join ------------------------------------------------------------------------------------

namespace {

asio::awaitable<void> join_command(coronet::endpoint where) {
  auto a = co_await enter(where);
  auto b = co_await enter(where);
  auto c = co_await enter(where);
  auto d = co_await enter(where);

  // Joining the room one is in: the confirmation, and no notice to anyone.
  co_await say(*b, "/join lobby");
  co_await expect(*b, "* joined lobby");
  co_await expect_nothing_queued(*a);
  co_await expect_nothing_queued(*d);

  co_await move_to(*d, "blue", these(a, b, c), these());
  co_await move_to(*a, "blue", these(b, c), these(d));

  co_await say(*a, "/join blue");
  co_await expect(*a, "* joined blue");
  co_await expect_nothing_queued(*d);
  co_await expect_nothing_queued(*b);

  // Lines stay in the room they are said in.
  co_await say(*a, "in blue");
  co_await expect(*d, a->nick + ": in blue");
  co_await expect_nothing_queued(*b);
  co_await say(*b, "in the lobby");
  co_await expect(*c, b->nick + ": in the lobby");
  co_await expect_nothing_queued(*a);
  co_await expect_nothing_queued(*d);

  // Refused: a stays in blue and nobody hears of it.
  const std::vector<std::string> refused = {"/join",
                                            "/join two words",
                                            "/join bad!room",
                                            "/join a.b",
                                            "/join " + std::string(33, 'r'),
                                            "/JOIN lobby"};
  for (const auto& command : refused) {
    co_await expect_error(*a, command);
  }
  co_await expect_nothing_queued(*d);
  co_await say(*a, "/who");
  co_await expect(*a, who_line("blue", names(a->nick, d->nick)));

  // The longest room name, empty until c comes.
  const std::string far_room = "Room-_09" + std::string(24, 'z');
  co_await move_to(*c, far_room, these(b), these());
  co_await say(*c, "/who");
  co_await expect(*c, who_line(far_room, names(c->nick)));

  // Back to the lobby.
  co_await move_to(*a, "lobby", these(d), these(b));
  co_await say(*b, "/who");
  co_await expect(*b, who_line("lobby", names(a->nick, b->nick)));
  co_await say(*a, "home again");
  co_await expect(*b, a->nick + ": home again");
  co_await expect_nothing_queued(*d);
}

}  // namespace

TEST_CASE("chat_server: /join moves a client and tells the old room and the new one") {
  child_process server(chat_server, server_args());
  const auto where = ready_endpoint(server);
  test::run([&] { return join_command(where); });
  stop(server);
}

// --- /who -------------------------------------------------------------------------------------

namespace {

asio::awaitable<void> who_command(coronet::endpoint where) {
  // Byte order: '-' < digits < upper case < '_' < lower case, and a prefix first.
  const std::vector<std::string> chosen = {"bob", "Bob", "_u",    "9lives",
                                           "a-b", "bo",  "-dash", "Zed"};
  std::vector<member_ptr> members;
  for (const auto& name : chosen) {
    members.push_back(co_await enter(where));
    std::vector<member*> others;
    for (std::size_t i = 0; i + 1 < members.size(); ++i) others.push_back(members[i].get());
    co_await change_nick(*members.back(), name, others);
  }
  auto elsewhere = co_await enter(where);
  std::vector<member*> lobby;
  for (auto& m : members) lobby.push_back(m.get());
  co_await move_to(*elsewhere, "elsewhere", lobby, these());

  const auto listing = who_line("lobby", chosen);
  CHECK(listing == "* in lobby: -dash, 9lives, Bob, Zed, _u, a-b, bo, bob");
  for (auto& m : members) {
    co_await say(*m, "/who");
    co_await expect(*m, listing);
  }
  co_await say(*elsewhere, "/who");
  co_await expect(*elsewhere, who_line("elsewhere", names(elsewhere->nick)));
}

}  // namespace

TEST_CASE("chat_server: /who lists the room with the sender sorted by byte value") {
  child_process server(chat_server, server_args());
  const auto where = ready_endpoint(server);
  test::run([&] { return who_command(where); });
  stop(server);
}

// --- /quit and other disconnects ------------------------------------------------------------

namespace {

asio::awaitable<void> quit_command(coronet::endpoint where) {
  auto a = co_await enter(where);
  auto b = co_await enter(where);
  auto c = co_await enter(where);
  auto d = co_await enter(where);
  auto e = co_await enter(where);
  co_await move_to(*d, "side", these(a, b, c, e), these());
  co_await move_to(*e, "side", these(a, b, c), these(d));

  co_await say(*a, "/quit");
  CHECK(co_await end_of(*a) == coronet::errc::eof);
  co_await expect_all(these(b, c), "* " + a->nick + " left");
  co_await expect_nothing_queued(*d);

  co_await send_raw(*c, "/quit\r\n");
  CHECK(co_await end_of(*c) == coronet::errc::eof);
  co_await expect(*b, "* " + c->nick + " left");

  co_await say(*d, "/quit");
  CHECK(co_await end_of(*d) == coronet::errc::eof);
  co_await expect(*e, "* " + d->nick + " left");
  co_await expect_nothing_queued(*b);

  co_await say(*b, "/who");
  co_await expect(*b, who_line("lobby", names(b->nick)));
  co_await say(*e, "/who");
  co_await expect(*e, who_line("side", names(e->nick)));
}

asio::awaitable<void> other_disconnects(coronet::endpoint where) {
  auto b = co_await enter(where);
  auto c = co_await enter(where);
  const auto room = these(b, c);

  // EOF right after a whole line: the line is delivered, then the departure.
  {
    auto m = co_await enter(where);
    co_await change_nick(*m, "carol", room);
    co_await say(*m, "last words");
    REQUIRE(m->stream.shutdown(coronet::shutdown_type::send));
    co_await expect_all(room, "carol: last words");
    co_await expect_all(room, "* carol left");
  }
  // EOF in the middle of a line: the part is never delivered.
  {
    auto m = co_await enter(where);
    co_await send_raw(*m, "unterminated and lost");
    REQUIRE(m->stream.shutdown(coronet::shutdown_type::send));
    co_await expect_all(room, "* " + m->nick + " left");
  }
  // close() with nothing pending, and in the middle of a line.
  {
    auto m = co_await enter(where);
    m->stream.close();
    co_await expect_all(room, "* " + m->nick + " left");
  }
  {
    auto m = co_await enter(where);
    co_await send_raw(*m, "closed mid-li");
    m->stream.close();
    co_await expect_all(room, "* " + m->nick + " left");
  }
  // A reset (SO_LINGER 0) after a whole line, and in the middle of one.
  {
    auto m = co_await enter(where);
    co_await say(*m, "before the reset");
    co_await expect_all(room, m->nick + ": before the reset");
    reset(*m);
    co_await expect_all(room, "* " + m->nick + " left");
  }
  {
    auto m = co_await enter(where);
    co_await send_raw(*m, "reset mid-li");
    reset(*m);
    co_await expect_all(room, "* " + m->nick + " left");
  }
  // A reset in another room: the lobby hears nothing of it.
  {
    auto m = co_await enter(where);
    co_await move_to(*m, "side", room, these());
    co_await send_raw(*m, "half");
    reset(*m);
    co_await expect_nothing_queued(*b);
  }

  // The others were not disturbed, and carol's name is free again.
  co_await say(*b, "still talking");
  co_await expect(*c, b->nick + ": still talking");
  co_await expect_nothing_queued(*b);
  co_await expect_nothing_queued(*c);
  co_await change_nick(*c, "carol", these(b));
  co_await say(*b, "/who");
  co_await expect(*b, who_line("lobby", names(b->nick, "carol")));
}

}  // namespace

TEST_CASE("chat_server: /quit closes the connection with FIN and the room hears NICK left") {
  child_process server(chat_server, server_args());
  const auto where = ready_endpoint(server);
  test::run([&] { return quit_command(where); });
  stop(server);
}

TEST_CASE("chat_server: EOF and RST and mid-line disconnects are NICK left and disturb nobody") {
  child_process server(chat_server, server_args());
  const auto where = ready_endpoint(server);
  test::run([&] { return other_disconnects(where); });
  stop(server);
}

// --- unknown commands -------------------------------------------------------------------------

namespace {

asio::awaitable<void> unknown_commands(coronet::endpoint where) {
  auto a = co_await enter(where);
  auto b = co_await enter(where);
  const std::vector<std::string> unknown = {"/foo",  "/foo bar", "/",        "/WHO", "/Quit",
                                            "/who2", "//nick x", "/nick\tx", "/ who"};
  for (const auto& command : unknown) {
    co_await expect_error(*a, command);
  }
  co_await expect_nothing_queued(*b);
  co_await say(*a, "still connected");
  co_await expect(*b, a->nick + ": still connected");
  co_await say(*a, "/who");
  co_await expect(*a, who_line("lobby", names(a->nick, b->nick)));
}

}  // namespace

TEST_CASE("chat_server: an unknown command is an error and the connection stays open") {
  child_process server(chat_server, server_args());
  const auto where = ready_endpoint(server);
  test::run([&] { return unknown_commands(where); });
  stop(server);
}

// --- the 4096-byte limit ----------------------------------------------------------------------

namespace {

// `m` sends `bytes`, whose line is too long: it gets `! error: line too long` and then a FIN,
// and `room` hears only that it left.
asio::awaitable<void> expect_too_long(member& m, std::string bytes, std::vector<member*> room) {
  co_await send_raw(m, std::move(bytes));
  CHECK(co_await end_of(m, "! error: line too long") == coronet::errc::eof);
  co_await expect_all(room, "* " + m.nick + " left");
}

asio::awaitable<void> line_limit(coronet::endpoint where) {
  auto a = co_await enter(where);
  auto b = co_await enter(where);
  const auto room = these(b);

  const std::string longest(max_content, 'x');
  co_await send_raw(*a, longest + "\n");
  co_await expect(*b, a->nick + ": " + longest);
  co_await send_raw(*a, longest + "\r\n");  // the "\r" is not content
  co_await expect(*b, a->nick + ": " + longest);

  // 4096 bytes and a "\r" without "\n" are not yet too long: the "\r" may still end the line.
  co_await send_raw(*a, longest);
  co_await test::sleep_for(100ms);  // so that the server holds the unterminated part
  co_await send_raw(*a, "\r");
  co_await test::sleep_for(100ms);
  co_await send_raw(*a, "\n");
  co_await expect(*b, a->nick + ": " + longest);
  co_await expect_nothing_queued(*a);
  co_await expect_nothing_queued(*b);

  const std::string over(max_content + 1, 'y');
  co_await expect_too_long(*a, over + "\n", room);
  {
    auto m = co_await enter(where);
    co_await expect_too_long(*m, over + "\r\n", room);
  }
  {
    // 4096 bytes and a "\r" followed by more content.
    auto m = co_await enter(where);
    co_await expect_too_long(*m, longest + "\rz\n", room);
  }
  {
    // Unterminated: the error comes once byte 4097 is in, with no newline ever sent.
    auto m = co_await enter(where);
    co_await expect_too_long(*m, over, room);
  }
  {
    // A command is a line like any other.
    auto m = co_await enter(where);
    co_await expect_too_long(*m, "/nick " + std::string(max_content, 'n') + "\n", room);
  }
  co_await expect_nothing_queued(*b);
}

asio::awaitable<void> line_far_too_long(coronet::endpoint where) {
  auto b = co_await enter(where);
  auto m = co_await enter(where);
  // 32 KiB of one line, far more than the server reads before it decides, and still little
  // enough for loopback's buffers to take at once: the send is done before the server answers.
  // (Were it still going on, the reset that follows the FIN of a server closing with unread
  // bytes could end it, and a send that reports the reset hides it from the next recv.)
  const std::string line = std::string(32 * 1024, 'w') + "\n";
  const auto sent = co_await m->stream.send_all(asio::buffer(line), patience);
  REQUIRE_MESSAGE(sent, "after " << sent.bytes() << " bytes: " << sent.error().message());
  CHECK(co_await end_of(*m, "! error: line too long") == coronet::errc::eof);
  co_await expect(*b, "* " + m->nick + " left");
  co_await expect_nothing_queued(*b);
}

}  // namespace

TEST_CASE("chat_server: 4096 bytes of content pass and 4097 get line too long then FIN") {
  child_process server(chat_server, server_args());
  const auto where = ready_endpoint(server);
  test::run([&] { return line_limit(where); });
  stop(server);
}

TEST_CASE("chat_server: a line far past 4096 bytes also gets the error line and then FIN") {
  child_process server(chat_server, server_args());
  const auto where = ready_endpoint(server);
  test::run([&] { return line_far_too_long(where); });
  stop(server);
}

// --- many clients in rooms --------------------------------------------------------------------

namespace {

// Clients in rooms, each sending numbered lines that all its room-mates must receive.
struct crowd {
  std::size_t rooms = 1;
  std::size_t lines_each = 1;
  std::vector<member_ptr> members;
  std::map<std::string, std::size_t> index_of;  // nick -> position in members
  std::size_t complete = 0;                     // members that received everything due

  std::string room_of(std::size_t i) const { return "room" + std::to_string(i % rooms); }
  std::size_t room_size(std::size_t i) const {
    std::size_t n = 0;
    for (std::size_t j = 0; j < members.size(); ++j) {
      if (room_of(j) == room_of(i)) ++n;
    }
    return n;
  }
};

std::string numbered(std::size_t sender, std::size_t k) {
  return "line " + std::to_string(sender) + " " + std::to_string(k);
}

// Sends member i's numbered lines, a few per write.
asio::awaitable<void> send_numbered(crowd& all, std::size_t i, test::wait_group& group) {
  member& m = *all.members[i];
  for (std::size_t k = 0; k < all.lines_each;) {
    std::string batch;
    for (std::size_t end = std::min(k + 3, all.lines_each); k < end; ++k) {
      batch += numbered(i, k) + "\n";
    }
    const auto sent = co_await m.stream.send_all(asio::buffer(batch), patience);
    CHECK_MESSAGE(sent, m.nick << " could not send: " << sent.error().message());
    if (!sent) break;
  }
  group.done();
}

// Reads member i's lines until it has every line of every room-mate, each sender's in order;
// the only other lines allowed are `* NICK joined` from the joins before.
asio::awaitable<void> receive_numbered(crowd& all, std::size_t i, test::wait_group& group) {
  member& m = *all.members[i];
  static const std::regex joined(R"(\* [A-Za-z0-9_-]+ joined)");
  const std::size_t due = (all.room_size(i) - 1) * all.lines_each;
  std::vector<std::size_t> next(all.members.size(), 0);  // per sender, the number expected
  std::size_t received = 0;
  while (received < due) {
    auto got = co_await m.reader.read_until("\n", patience);
    if (!got) {
      CHECK_MESSAGE(false, m.nick << " in " << all.room_of(i) << " has " << received << " of "
                                  << due << " lines: " << got.error().message());
      break;
    }
    const std::string text(*got);
    if (std::regex_match(text, joined)) continue;
    const auto colon = text.find(": ");
    const auto sender = all.index_of.find(text.substr(0, colon == std::string::npos ? 0 : colon));
    const bool well_formed =
        colon != std::string::npos && sender != all.index_of.end() && sender->second != i &&
        all.room_of(sender->second) == all.room_of(i) && next[sender->second] < all.lines_each &&
        text.substr(colon + 2) == numbered(sender->second, next[sender->second]);
    if (!well_formed) {
      CHECK_MESSAGE(false, m.nick << " in " << all.room_of(i) << " got \"" << text << "\"");
      break;
    }
    ++next[sender->second];
    ++received;
  }
  if (received == due) ++all.complete;
  group.done();
}

// `clients` clients in `rooms` rooms, each sending `lines_each` lines.
asio::awaitable<void> crowd_talk(coronet::endpoint where, std::size_t clients, std::size_t rooms,
                                 std::size_t lines_each) {
  crowd all;  // here, so that its sockets go before the test's io_context
  all.rooms = rooms;
  all.lines_each = lines_each;
  for (std::size_t i = 0; i < clients; ++i) {
    all.members.push_back(co_await enter(where));
    all.index_of[all.members.back()->nick] = i;
  }
  REQUIRE(all.index_of.size() == clients);

  // One by one into the rooms; before its own confirmation a client sees only the lobby's
  // notices of those that went before it.
  static const std::regex left(R"(\* [A-Za-z0-9_-]+ left)");
  for (std::size_t i = 0; i < clients; ++i) {
    member& m = *all.members[i];
    co_await say(m, "/join " + all.room_of(i));
    for (;;) {
      const auto text = co_await next_line(m);
      if (text == "* joined " + all.room_of(i)) break;
      REQUIRE_MESSAGE(std::regex_match(text, left), m.nick << " got \"" << text << "\"");
    }
  }

  // Everyone talks and listens at once.
  const auto executor = co_await asio::this_coro::executor;
  test::wait_group group(executor);
  group.add(2 * clients);
  for (std::size_t i = 0; i < clients; ++i) {
    coronet::spawn(executor, receive_numbered(all, i, group), "receive");
    coronet::spawn(executor, send_numbered(all, i, group), "send");
  }
  co_await group.wait();
  CHECK(all.complete == clients);

  // Every line has been delivered, so anything from another room would be queued by now: the
  // next line each one reads is its /who reply, listing its room.
  for (std::size_t i = 0; i < clients; ++i) {
    std::vector<std::string> nicks;
    for (std::size_t j = 0; j < clients; ++j) {
      if (all.room_of(j) == all.room_of(i)) nicks.push_back(all.members[j]->nick);
    }
    co_await say(*all.members[i], "/who");
    co_await expect(*all.members[i], who_line(all.room_of(i), nicks));
  }
}

}  // namespace

TEST_CASE("chat_server: 100 clients in 5 rooms each receive every line of their room in order") {
  const auto limit = coronet::raise_open_file_limit();
  REQUIRE(limit);
  REQUIRE(*limit >= 300);
  child_process server(chat_server, server_args({"--log-level", "warn"}));
  const auto where = ready_endpoint(server);
  test::run([&] { return crowd_talk(where, 100, 5, 10); }, 30s);
  stop(server);
}

TEST_CASE("chat_server: with --threads 4 clients on different threads hear each other") {
  // Connections are handed to the threads in turn, so 16 clients are on all four.
  child_process server(chat_server, server_args({"--threads", "4"}));
  const auto where = ready_endpoint(server);
  test::run([&] { return crowd_talk(where, 16, 2, 50); }, 20s);
  stop(server);
}

// --- a client that never reads ----------------------------------------------------------------

namespace {

using clock_type = std::chrono::steady_clock;

struct flood {
  std::size_t lines = 0;  // the sender's, each of line_size bytes of content
  std::size_t line_size = 4000;
  std::size_t burst = 64;                   // lines per write
  std::chrono::milliseconds period = 25ms;  // between writes: about 10 MB/s
  std::string stalled_nick;                 // the client that never reads
  std::vector<clock_type::time_point> sent_at;
  bool sender_done = false;
  clock_type::time_point sender_done_at{};
  bool sender_heard_drop = false;
  bool reader_heard_drop = false;
  std::size_t received = 0;
  std::size_t late = 0;
  clock_type::duration worst{};
};

std::string flood_line(const flood& f, std::size_t k) {
  std::string text = std::to_string(k) + " ";
  text.resize(f.line_size, static_cast<char>('a' + k % 26));
  return text;
}

// Sends f.lines lines at a steady pace, noting when each write began: a line counts as sent
// from then, so time spent blocked behind a stalled server counts against delivery.
asio::awaitable<void> send_flood(member& sender, flood& f, test::wait_group& group) {
  asio::steady_timer pace(co_await asio::this_coro::executor);
  auto next = clock_type::now();
  for (std::size_t k = 0; k < f.lines;) {
    std::string batch;
    const auto began = clock_type::now();
    for (std::size_t end = std::min(k + f.burst, f.lines); k < end; ++k) {
      f.sent_at[k] = began;
      batch += flood_line(f, k) + "\n";
    }
    const auto sent = co_await sender.stream.send_all(asio::buffer(batch), patience);
    CHECK_MESSAGE(sent, "the sender could not send: " << sent.error().message());
    if (!sent) break;
    next += f.period;
    pace.expires_at(next);
    co_await pace.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
  }
  f.sender_done = true;
  f.sender_done_at = clock_type::now();
  group.done();
}

// The sender's own incoming lines: only `* STALLED left` may come. Reads until that has come,
// or until 5 s after the sender is done.
asio::awaitable<void> sender_listens(member& sender, flood& f, test::wait_group& group) {
  while (!f.sender_heard_drop) {
    auto got = co_await sender.reader.read_until("\n", 500ms);
    if (!got) {
      if (got.error() == std::errc::timed_out &&
          (!f.sender_done || clock_type::now() - f.sender_done_at < 5s)) {
        continue;
      }
      CHECK_MESSAGE(
          false, "the sender never heard that the stalled client left: " << got.error().message());
      break;
    }
    const std::string text(*got);
    CHECK_MESSAGE(text == "* " + f.stalled_nick + " left", "the sender got \"" << text << "\"");
    f.sender_heard_drop = text == "* " + f.stalled_nick + " left";
  }
  group.done();
}

// Every line of the sender, in order, each within 1 s of its write; and the stalled client's
// departure at some point among them.
asio::awaitable<void> reader_keeps_up(member& reader, const std::string& sender_nick, flood& f,
                                      test::wait_group& group) {
  const std::string prefix = sender_nick + ": ";
  while (f.received < f.lines || !f.reader_heard_drop) {
    auto got = co_await reader.reader.read_until("\n", patience);
    if (!got) {
      CHECK_MESSAGE(false, "the reader has " << f.received << " of " << f.lines
                                             << " lines, drop notice " << f.reader_heard_drop
                                             << ": " << got.error().message());
      break;
    }
    const auto now = clock_type::now();
    const std::string_view text = *got;
    if (!f.reader_heard_drop && text == "* " + f.stalled_nick + " left") {
      f.reader_heard_drop = true;
      continue;
    }
    if (f.received >= f.lines || text != prefix + flood_line(f, f.received)) {
      CHECK_MESSAGE(false, "the reader expected line " << f.received << " and got \""
                                                       << text.substr(0, 80) << "...\"");
      break;
    }
    const auto delay = now - f.sent_at[f.received];
    f.worst = std::max(f.worst, delay);
    if (delay > 1s) ++f.late;
    ++f.received;
  }
  group.done();
}

asio::awaitable<void> slow_consumer(coronet::endpoint where, flood& f) {
  auto sender = co_await enter(where);
  auto reader = co_await enter(where);
  auto stalled = co_await enter(where);  // reads its welcome, then never again
  f.stalled_nick = stalled->nick;
  f.sent_at.resize(f.lines);

  const auto executor = co_await asio::this_coro::executor;
  test::wait_group group(executor);
  group.add(3);
  coronet::spawn(executor, reader_keeps_up(*reader, sender->nick, f, group), "reader");
  coronet::spawn(executor, sender_listens(*sender, f, group), "sender's reader");
  coronet::spawn(executor, send_flood(*sender, f, group), "sender");
  co_await group.wait();

  CHECK(f.received == f.lines);
  CHECK_MESSAGE(f.late == 0, f.late << " line(s) took over 1 s; the slowest took "
                                    << std::chrono::duration<double>(f.worst).count() << " s");
  CHECK(f.sender_heard_drop);
  CHECK(f.reader_heard_drop);

  // The stalled client's connection has ended: after what the kernel holds, eof or a reset.
  std::vector<char> sink(256 * 1024);
  std::size_t drained = 0;
  for (;;) {
    auto got = co_await stalled->stream.recv(asio::buffer(sink), patience);
    drained += got.bytes();
    if (!got) {
      CHECK_MESSAGE(got.error() != std::errc::timed_out,
                    "the stalled client's connection is still open after " << drained << " bytes");
      break;
    }
  }
  MESSAGE("slowest delivery " << std::chrono::duration<double>(f.worst).count()
                              << " s; the stalled client held " << drained << " bytes");

  // The room goes on without it.
  co_await say(*reader, "/who");
  co_await expect(*reader, who_line("lobby", names(sender->nick, reader->nick)));
}

}  // namespace

TEST_CASE(
    "chat_server: a client that never reads is dropped while a reader gets each line in 1 s") {
  child_process server(chat_server, server_args({"--log-level", "warn"}));
  const auto where = ready_endpoint(server);
  flood f;
  f.lines = 10240;  // 40 MiB: well past 4 MiB and the kernel's buffers
  test::run([&] { return slow_consumer(where, f); }, 25s);
  stop(server);
}

// --- the command line and signals -------------------------------------------------------------

namespace {

asio::awaitable<void> signal_with_clients(coronet::endpoint where, child_process& server,
                                          int signal) {
  auto a = co_await enter(where);
  auto b = co_await enter(where);
  auto c = co_await enter(where);
  co_await send_raw(*c, "half a li");
  co_await say(*a, "before the signal");
  co_await expect_all(these(b, c), a->nick + ": before the signal");

  server.send_signal(signal);
  CHECK(server.wait(5s) == 0);
  // It closed every connection on the way out and no longer listens. The only lines that may
  // come first: news of the others' departures, for a session cut off a moment before
  // another is told so.
  const auto all = these(a, b, c);
  std::set<std::string> departures;
  for (auto* m : all) departures.insert("* " + m->nick + " left");
  for (auto* m : all) {
    auto end = co_await m->reader.read_until("\n", patience);
    while (end && departures.count(std::string(*end)) > 0) {
      end = co_await m->reader.read_until("\n", patience);
    }
    CHECK_MESSAGE(!end, m->nick << " got \"" << (end ? std::string(*end) : "") << "\"");
    CHECK(end.error() != std::errc::timed_out);
  }
  auto late = co_await tcp_stream::connect(where);
  CHECK(late.error() == std::errc::connection_refused);
}

}  // namespace

TEST_CASE("chat_server: SIGTERM and SIGINT with clients connected exit 0") {
  for (int signal : {SIGTERM, SIGINT}) {
    CAPTURE(signal);
    child_process server(chat_server, server_args());
    const auto where = ready_endpoint(server);
    test::run([&] { return signal_with_clients(where, server, signal); });
    const auto log = server.read_all_stderr(2s);
    CHECK_MESSAGE(log.find("Sanitizer") == std::string::npos, log);
  }
}

TEST_CASE("chat_server: a bad --tcp exits 1 with one stderr line and no --tcp exits 2") {
  asio::io_context context;
  auto taken = coronet::tcp_listener::bind(context, test::any_v4());
  const std::vector<std::string> bad = {"127.0.0.1", "127.0.0.1:70000",
                                        "[::1:80",   "127.0.0.1:80junk",
                                        "",          taken.local_endpoint().to_string()};
  for (const auto& address : bad) {
    CAPTURE(address);
    const auto r = test::run_to_exit(chat_server, {"--tcp", address});
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());
    const auto err_lines = test::lines_of(r.err);
    CHECK_MESSAGE(err_lines.size() == 1, r.err);
    CHECK_FALSE(r.err.empty());
  }
  const std::vector<std::vector<std::string>> usage_errors = {
      {}, {"--threads", "2"}, {"--log-level", "info"}, {"--tcp"}};
  for (const auto& args : usage_errors) {
    std::string shown;
    for (const auto& a : args) shown += a + ' ';
    CAPTURE(shown);
    const auto r = test::run_to_exit(chat_server, args);
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(r.err.find("--tcp") != std::string::npos);  // the usage names the option
  }
}
