// Graded assertions and misuse reports.
//
//   ZSPOOL_DEBUG_LEVEL 0: none (release)   1: cheap O(1) checks   2: expensive walks (O(zspage))
//
// ZS_ASSERT(cond)           level >= 1
// ZS_ASSERT_EXPENSIVE(cond) level >= 2
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#ifndef ZSPOOL_DEBUG_LEVEL
#define ZSPOOL_DEBUG_LEVEL 0
#endif

#define ZSPOOL_ASSERT_AT(level, cond)                                                       \
  do {                                                                                      \
    if constexpr (ZSPOOL_DEBUG_LEVEL >= (level)) {                                          \
      if (!(cond)) {                                                                        \
        std::fprintf(stderr, "zspool: assertion failed at %s:%d: %s\n", __FILE__, __LINE__, \
                     #cond);                                                                \
        std::abort();                                                                       \
      }                                                                                     \
    }                                                                                       \
  } while (0)

#define ZS_ASSERT(cond) ZSPOOL_ASSERT_AT(1, cond)
#define ZS_ASSERT_EXPENSIVE(cond) ZSPOOL_ASSERT_AT(2, cond)
