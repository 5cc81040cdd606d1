#pragma once
// What the fuzz targets share: an invariant check that aborts, so that libFuzzer (and the replay
// tests) report the input that broke it.

#include <cstdio>
#include <cstdlib>

// Aborts with the broken invariant, its file and line when `condition` is false. A macro for
// the condition's text; clang 14 has no std::source_location.
#define CORONET_FUZZ_REQUIRE(condition)                                                        \
  do {                                                                                         \
    if (!(condition)) {                                                                        \
      std::fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                            \
    }                                                                                          \
  } while (false)
