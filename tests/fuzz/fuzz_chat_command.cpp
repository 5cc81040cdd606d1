// fuzz_chat_command: the chat protocol's parser on any bytes, split into lines as chat_server
// splits them. Each line's outcome is checked against the protocol as stated in
// chat_server.cpp, computed here a second, plainer way.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chat_command.hpp"
#include "fuzz_check.hpp"

namespace {

using coronet_examples::chat_command;
using coronet_examples::valid_name;
using kind = chat_command::kind;

// The words of a line: runs of anything but ' '.
std::vector<std::string_view> words_of(std::string_view line) {
  std::vector<std::string_view> words;
  std::size_t at = 0;
  while (at < line.size()) {
    if (line[at] == ' ') {
      ++at;
      continue;
    }
    std::size_t end = at;
    while (end < line.size() && line[end] != ' ') ++end;
    words.push_back(line.substr(at, end - at));
    at = end;
  }
  return words;
}

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

// Whether `argument` is a view of `line`'s own bytes.
bool inside(std::string_view argument, std::string_view line) {
  const auto* begin = line.data();
  const auto* end = begin + line.size();
  return argument.data() >= begin && argument.data() + argument.size() <= end;
}

void check_line(std::string_view line) {
  const chat_command command = coronet_examples::parse_chat_command(line);

  // A reply is one server line: "! error: ...", and no "\n" that would split it in two.
  if (command.what == kind::error) {
    CORONET_FUZZ_REQUIRE(command.reply.starts_with("! error: "));
    CORONET_FUZZ_REQUIRE(command.reply.find('\n') == std::string::npos);
    CORONET_FUZZ_REQUIRE(command.reply.size() <= line.size() + 64);
    CORONET_FUZZ_REQUIRE(command.argument.empty());
  } else {
    CORONET_FUZZ_REQUIRE(command.reply.empty());
  }

  // say if and only if the line does not start with '/', and then the whole line as is.
  CORONET_FUZZ_REQUIRE((command.what == kind::say) == (line.empty() || line.front() != '/'));
  if (command.what == kind::say) {
    CORONET_FUZZ_REQUIRE(command.argument.data() == line.data());
    CORONET_FUZZ_REQUIRE(command.argument.size() == line.size());
    return;
  }

  // A command: what the words say it is.
  const auto words = words_of(line);
  CORONET_FUZZ_REQUIRE(!words.empty() && words[0].starts_with('/'));
  const std::string_view name = words[0];
  if (name == "/nick" || name == "/join") {
    const bool nick = name == "/nick";
    if (words.size() != 2) {
      CORONET_FUZZ_REQUIRE(command.what == kind::error);
      CORONET_FUZZ_REQUIRE(command.reply ==
                           (nick ? "! error: usage: /nick NAME" : "! error: usage: /join ROOM"));
      return;
    }
    bool good = !words[1].empty() && words[1].size() <= 32;
    for (const char c : words[1]) good = good && name_char(c);
    CORONET_FUZZ_REQUIRE(valid_name(words[1]) == good);
    if (!good) {
      CORONET_FUZZ_REQUIRE(command.what == kind::error);
      CORONET_FUZZ_REQUIRE(command.reply == "! error: invalid name '" + std::string(words[1]) +
                                                "': 1 to 32 of A-Z a-z 0-9 _ -");
      return;
    }
    CORONET_FUZZ_REQUIRE(command.what == (nick ? kind::nick : kind::join));
    CORONET_FUZZ_REQUIRE(command.argument == words[1]);
    CORONET_FUZZ_REQUIRE(inside(command.argument, line));
    CORONET_FUZZ_REQUIRE(valid_name(command.argument));
    return;
  }
  if (name == "/who" || name == "/quit") {
    if (words.size() > 1) {
      CORONET_FUZZ_REQUIRE(command.what == kind::error);
      CORONET_FUZZ_REQUIRE(command.reply == "! error: usage: " + std::string(name));
      return;
    }
    CORONET_FUZZ_REQUIRE(command.what == (name == "/who" ? kind::who : kind::quit));
    CORONET_FUZZ_REQUIRE(command.argument.empty());
    return;
  }
  CORONET_FUZZ_REQUIRE(command.what == kind::error);
  CORONET_FUZZ_REQUIRE(command.reply == "! error: unknown command " + std::string(name));
}

}  // namespace

// The input is what a client sends: lines ending in "\n", one "\r" before it removed, empty
// lines skipped, as chat_server's reader hands them over. The whole input, "\n"s and all, is
// parsed as one line too: the parser must hold whatever it is given.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  const std::string_view whole = rest;
  while (!rest.empty()) {
    const auto end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (!line.empty()) check_line(line);
  }
  const chat_command command = coronet_examples::parse_chat_command(whole);
  CORONET_FUZZ_REQUIRE((command.what == kind::say) == !whole.starts_with('/'));
  return 0;
}
