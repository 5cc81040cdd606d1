#pragma once
// source_location: where in the source a call was written, for the operations that record
// where they are awaited (runtime::suspended_operations()).

#include <cstdint>
#if __has_include(<source_location>)
#include <source_location>
#endif

namespace coronet {

#if defined(__cpp_lib_source_location)
/// std::source_location, where the standard library has it.
using source_location = std::source_location;
#else
/// The same from the compiler's builtins, for compilers whose standard library lacks
/// std::source_location (clang 14 with libstdc++ 12, which needs __builtin_source_location):
/// file, line and function of the call that uses `current()` as a default argument.
class source_location {
 public:
  static constexpr source_location current(const char* file = __builtin_FILE(),
                                           std::uint_least32_t line = __builtin_LINE(),
                                           const char* function = __builtin_FUNCTION()) noexcept {
    source_location here;
    here.file_ = file;
    here.line_ = line;
    here.function_ = function;
    return here;
  }
  constexpr source_location() noexcept = default;
  constexpr const char* file_name() const noexcept { return file_; }
  constexpr const char* function_name() const noexcept { return function_; }
  constexpr std::uint_least32_t line() const noexcept { return line_; }
  constexpr std::uint_least32_t column() const noexcept { return 0; }

 private:
  const char* file_ = "";
  const char* function_ = "";
  std::uint_least32_t line_ = 0;
};
#endif

}  // namespace coronet
