#pragma once
// The chat protocol's lines, parsed without any I/O: chat_server asks what a line is, then
// acts on it; the unit tests and the fuzz target check the parser on its own.

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

namespace coronet_examples {

// NAME and ROOM: 1 to 32 of [A-Za-z0-9_-].
inline bool valid_name(std::string_view name) {
  return !name.empty() && name.size() <= 32 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

// What one line from a client asks for.
struct chat_command {
  enum class kind {
    say,    // a line that does not start with "/": text for the room
    nick,   // /nick NAME
    join,   // /join ROOM
    who,    // /who
    quit,   // /quit
    error,  // a malformed or unknown command: `reply` says why
  };

  kind what = kind::say;
  // say: the whole line; nick and join: the NAME or ROOM, which passes valid_name(). A view
  // into the parsed line.
  std::string_view argument;
  // error: the line the server sends back, "! error: ...", without its "\n".
  std::string reply;
};

// One received line, without its "\n" and "\r", into what it asks for. Words are separated by
// one or more spaces (only ' ': a tab is part of a word). An empty line is a say of nothing,
// which the server ignores.
inline chat_command parse_chat_command(std::string_view line) {
  using kind = chat_command::kind;
  const auto asks = [](kind what, std::string_view argument = {}) {
    chat_command command;
    command.what = what;
    command.argument = argument;
    return command;
  };
  const auto refused = [](std::string reply) {
    chat_command command;
    command.what = kind::error;
    command.reply = std::move(reply);
    return command;
  };
  if (!line.starts_with('/')) return asks(kind::say, line);

  // At most the command, one argument and a sign of more: no command takes two arguments.
  std::string_view words[3];
  std::size_t count = 0;
  for (std::string_view rest = line; !rest.empty() && count < 3;) {
    const auto space = rest.find(' ');
    if (space != 0) words[count++] = rest.substr(0, space);
    if (space == std::string_view::npos) break;
    rest.remove_prefix(space + 1);
  }
  const std::string_view command = words[0];  // never empty: the line starts with '/'

  if (command == "/nick" || command == "/join") {
    const bool nick = command == "/nick";
    if (count != 2) {
      return refused(nick ? "! error: usage: /nick NAME" : "! error: usage: /join ROOM");
    }
    if (!valid_name(words[1])) {
      return refused("! error: invalid name '" + std::string(words[1]) +
                     "': 1 to 32 of A-Z a-z 0-9 _ -");
    }
    return asks(nick ? kind::nick : kind::join, words[1]);
  }
  if (command == "/who" || command == "/quit") {
    if (count > 1) return refused("! error: usage: " + std::string(command));
    return asks(command == "/who" ? kind::who : kind::quit);
  }
  return refused("! error: unknown command " + std::string(command));
}

}  // namespace coronet_examples
