// Folder testing/: test support and fault injection, linked by the tests and by the soak verb:
// patterns (this file), FailingPageSource, the soak engine (soak.h), the proc-maps census, the
// subprocess helper and the end-to-end tests of the binary (*_test.cc). Not installed.
//
// Helpers shared by the core tests: deterministic object contents and their verification.
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <vector>

#include "zspool/workload/rng.h"

// For tests of the error values release builds return on misuse: a checked build
// (-DZSPOOL_CHECKED=ON) stops instead, which misuse_test.cc checks.
#ifdef ZSPOOL_CHECKED
#define ZSPOOL_RELEASE_BUILD_ONLY() GTEST_SKIP() << "checked builds stop on misuse (misuse_test.cc)"
#else
#define ZSPOOL_RELEASE_BUILD_ONLY() (void)0
#endif

namespace zspool::test {

inline std::uint64_t mix(std::uint64_t x) {
  return splitmix64_at(x);
}

// The bytes an object with this seed must hold.
inline std::vector<std::byte> pattern(std::uint64_t seed, std::size_t n) {
  std::vector<std::byte> v(n);
  std::uint64_t s = mix(seed);
  for (std::size_t i = 0; i < n; ++i) {
    if (i % 8 == 0) s = mix(s + i);
    v[i] = static_cast<std::byte>(s >> (8 * (i % 8)));
  }
  return v;
}

inline bool matches(std::span<const std::byte> got, std::uint64_t seed) {
  const auto want = pattern(seed, got.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    if (got[i] != want[i]) return false;
  return true;
}

// A tiny deterministic PRNG for tests (same sequence on every machine).
struct Rng {
  std::uint64_t state;
  explicit Rng(std::uint64_t seed) : state(seed) {}
  std::uint64_t next() { return state = mix(state); }
  std::uint64_t below(std::uint64_t n) { return next() % n; }
};

// Caps this process's address space at what it uses now plus `headroom`, keeping the limit it
// had in *old; false on failure.
inline bool cap_address_space_above_use(std::size_t headroom, rlimit* old = nullptr) {
  unsigned long vm_pages = 0;
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return false;
  const bool read = std::fscanf(f, "%lu", &vm_pages) == 1;
  std::fclose(f);
  if (!read) return false;
  rlimit capped{};
  getrlimit(RLIMIT_AS, &capped);
  if (old != nullptr) *old = capped;
  capped.rlim_cur = vm_pages * sysconf(_SC_PAGESIZE) + headroom;
  return setrlimit(RLIMIT_AS, &capped) == 0;
}

}  // namespace zspool::test
