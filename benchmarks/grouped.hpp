#pragma once
// grouped(): 1234567 as "1,234,567", for the tables coronet_bench and coronet_soak print.

#include <cstddef>
#include <cstdint>
#include <string>

namespace coronet_bench {

inline std::string grouped(std::uint64_t n) {
  // Appended rather than inserted: g++ 12 at -O3 sees a bogus overlap in string::insert
  // (-Wrestrict), and the optimised uring preset treats warnings as errors.
  const auto digits = std::to_string(n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace coronet_bench
