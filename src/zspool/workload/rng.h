// The one pseudo-random generator of the tree: Steele, Lea and Flood's SplitMix64. Tiny, fast,
// and the same sequence on every machine and build, so corpora, traces, benchmarks' "random
// halves" and tests are reproducible from a seed. Standard library only; tests of every layer
// may include it.
//
//   state ──+= kSplitMixGamma──▶ mix64 ──▶ output
//
// mix64 is the generator's finalizer (a bijection on 64 bits); splitmix64_at(x) is the output
// of a generator whose state was x, used as a stateless hash of an index.
#pragma once

#include <cstdint>

namespace zspool {

inline constexpr std::uint64_t kSplitMixGamma = 0x9E3779B97F4A7C15;

constexpr std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
  return z ^ (z >> 31);
}

// The value a SplitMix64 seeded with x returns first.
constexpr std::uint64_t splitmix64_at(std::uint64_t x) {
  return mix64(x + kSplitMixGamma);
}

class SplitMix64 {
 public:
  explicit constexpr SplitMix64(std::uint64_t seed) : state_(seed) {}
  constexpr std::uint64_t next() { return mix64(state_ += kSplitMixGamma); }
  // Uniform enough in [0, n) for n far below 2^64 (n > 0): a plain modulo.
  constexpr std::uint64_t below(std::uint64_t n) { return next() % n; }
  // Exactly uniform in [0, bound), bound > 0 (rejection sampling: no modulo bias).
  constexpr std::uint64_t uniform_below(std::uint64_t bound) {
    const std::uint64_t limit = ~std::uint64_t{0} - ~std::uint64_t{0} % bound;
    for (;;) {
      const std::uint64_t r = next();
      if (r < limit) return r % bound;
    }
  }
  // True once in `n` on average.
  constexpr bool one_in(std::uint64_t n) { return below(n) == 0; }

 private:
  std::uint64_t state_;
};

}  // namespace zspool
