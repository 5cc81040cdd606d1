// chat_command: the chat protocol's parser on its own, every command and every refusal.
#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "../examples/chat_command.hpp"

using coronet_examples::chat_command;
using coronet_examples::parse_chat_command;
using coronet_examples::valid_name;
using kind = chat_command::kind;

namespace {

const char* name_of(kind what) {
  switch (what) {
    case kind::say: return "say";
    case kind::nick: return "nick";
    case kind::join: return "join";
    case kind::who: return "who";
    case kind::quit: return "quit";
    case kind::error: return "error";
  }
  return "?";
}

// `line` parses as `what` with `argument`, and no reply.
void check_parsed(std::string_view line, kind what, std::string_view argument = {}) {
  CAPTURE(line);
  const auto command = parse_chat_command(line);
  CHECK(name_of(command.what) == std::string_view(name_of(what)));
  CHECK(command.argument == argument);
  CHECK(command.reply.empty());
}

// `line` is refused with exactly `reply`.
void check_refused(std::string_view line, std::string_view reply) {
  CAPTURE(line);
  const auto command = parse_chat_command(line);
  CHECK(name_of(command.what) == std::string_view("error"));
  CHECK(command.reply == reply);
  CHECK(command.argument.empty());
}

std::string invalid_name(std::string_view name) {
  return "! error: invalid name '" + std::string(name) + "': 1 to 32 of A-Z a-z 0-9 _ -";
}

}  // namespace

TEST_CASE("chat_command: valid_name takes 1 to 32 of A-Z a-z 0-9 _ - and nothing else") {
  CHECK(valid_name("a"));
  CHECK(valid_name("Az09_-"));
  CHECK(valid_name("ABCDEFGHIJKLMNOPQRSTUVWXYZ"));
  CHECK(valid_name("abcdefghijklmnopqrstuvwxyz"));
  CHECK(valid_name("0123456789"));
  CHECK(valid_name(std::string(32, 'n')));
  CHECK_FALSE(valid_name(std::string(33, 'n')));
  CHECK_FALSE(valid_name(""));
  // The neighbours of each allowed range in ASCII, and a few others.
  for (const char c : std::string_view("/:@[`{ .!\t\r'\"\\*+,;=~")) {
    CAPTURE(static_cast<int>(c));
    CHECK_FALSE(valid_name(std::string("ab") + c));
  }
  CHECK_FALSE(valid_name(std::string("a\0b", 3)));
  CHECK_FALSE(valid_name("caf\xc3\xa9"));  // UTF-8: bytes >= 0x80 are not letters here
  CHECK_FALSE(valid_name("\x80"));
  CHECK_FALSE(valid_name("\xff"));
}

TEST_CASE("chat_command: a line that does not start with a slash is said - whole and as is") {
  check_parsed("hello", kind::say, "hello");
  check_parsed("hello world  two spaces ", kind::say, "hello world  two spaces ");
  check_parsed(" /nick bob", kind::say, " /nick bob");  // a leading space: not a command
  check_parsed("nick bob", kind::say, "nick bob");
  check_parsed("\\/who", kind::say, "\\/who");
  check_parsed("caf\xc3\xa9 \xff\x80", kind::say, "caf\xc3\xa9 \xff\x80");
  check_parsed(std::string_view("a\0/b", 4), kind::say, std::string_view("a\0/b", 4));
  check_parsed("\t/who", kind::say, "\t/who");
  check_parsed("", kind::say, "");
}

TEST_CASE("chat_command: /nick NAME and /join ROOM give the name - spaces around it ignored") {
  check_parsed("/nick bob", kind::nick, "bob");
  check_parsed("/join side", kind::join, "side");
  check_parsed("/nick   bob", kind::nick, "bob");
  check_parsed("/nick bob ", kind::nick, "bob");
  check_parsed("/nick  bob   ", kind::nick, "bob");
  check_parsed("/join Az09_-", kind::join, "Az09_-");
  const std::string longest(32, 'q');
  check_parsed("/nick " + longest, kind::nick, longest);
  check_parsed("/join " + longest, kind::join, longest);
  // The view is into the line itself.
  const std::string line = "/nick alice";
  const auto command = parse_chat_command(line);
  CHECK(command.argument.data() == line.data() + 6);
}

TEST_CASE("chat_command: /nick and /join without exactly one argument are usage errors") {
  check_refused("/nick", "! error: usage: /nick NAME");
  check_refused("/nick ", "! error: usage: /nick NAME");
  check_refused("/nick    ", "! error: usage: /nick NAME");
  check_refused("/nick a b", "! error: usage: /nick NAME");
  check_refused("/nick a b c d", "! error: usage: /nick NAME");
  check_refused("/nick  a  b ", "! error: usage: /nick NAME");
  check_refused("/join", "! error: usage: /join ROOM");
  check_refused("/join ", "! error: usage: /join ROOM");
  check_refused("/join a b", "! error: usage: /join ROOM");
  check_refused("/join bad! two", "! error: usage: /join ROOM");  // the count is checked first
}

TEST_CASE("chat_command: a NAME or ROOM outside the alphabet is refused and quoted as sent") {
  check_refused("/nick " + std::string(33, 'n'), invalid_name(std::string(33, 'n')));
  check_refused("/join " + std::string(33, 'r'), invalid_name(std::string(33, 'r')));
  check_refused("/nick bad!name", invalid_name("bad!name"));
  check_refused("/nick a.b", invalid_name("a.b"));
  check_refused("/nick a\tb", invalid_name("a\tb"));  // a tab does not separate words
  check_refused("/join caf\xc3\xa9", invalid_name("caf\xc3\xa9"));
  check_refused("/nick \xff", invalid_name("\xff"));
  check_refused("/nick a\rb", invalid_name("a\rb"));
  check_refused("/nick 'x'", invalid_name("'x'"));
  check_refused(std::string("/nick a\0b", 9), invalid_name(std::string("a\0b", 3)));
}

TEST_CASE("chat_command: /who and /quit take no argument") {
  check_parsed("/who", kind::who);
  check_parsed("/quit", kind::quit);
  check_parsed("/who ", kind::who);
  check_parsed("/quit   ", kind::quit);
  check_refused("/who x", "! error: usage: /who");
  check_refused("/who  x  ", "! error: usage: /who");
  check_refused("/quit now", "! error: usage: /quit");
  check_refused("/quit a b c", "! error: usage: /quit");
}

TEST_CASE("chat_command: any other word after a slash is an unknown command named as sent") {
  check_refused("/", "! error: unknown command /");
  check_refused("/ ", "! error: unknown command /");
  check_refused("/ nick bob", "! error: unknown command /");
  check_refused("//nick bob", "! error: unknown command //nick");
  check_refused("/dance", "! error: unknown command /dance");
  check_refused("/dance with me", "! error: unknown command /dance");
  check_refused("/NICK bob", "! error: unknown command /NICK");  // commands are lower case
  check_refused("/Who", "! error: unknown command /Who");
  check_refused("/nickname bob", "! error: unknown command /nickname");
  check_refused("/nic", "! error: unknown command /nic");
  check_refused("/who\tx", "! error: unknown command /who\tx");
  check_refused("/quit\r", "! error: unknown command /quit\r");
  check_refused("/\xff\x80", "! error: unknown command /\xff\x80");
  check_refused(std::string_view("/who\0", 5), std::string("! error: unknown command /who\0", 30));
}
