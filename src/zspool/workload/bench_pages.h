// The micro-benchmarks' corpus: 4 KiB pages of real files, the kind zram and zswap hold (shared
// libraries and C headers), read the same way on every run; synthetic text / binary /
// random pages where those files are missing. For *_benchmark.cc; not installed.
//
//   bench_pages(bytes)  ->  { pages back to back (a multiple of 4 KiB, <= bytes), source }
//     first half:  /usr/lib/x86_64-linux-gnu/*.so*   (sorted, whole pages only)
//     then:        /usr/include/**                  (sorted, recursive)
//     fewer than 256 pages readable: bytes / 4 of the builtin corpus instead (corpus.h)
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace zspool::bench {

inline constexpr std::size_t kBenchPage = 4096;

struct BenchPages {
  std::vector<char> bytes;  // whole pages, back to back
  std::string source;
  std::size_t count() const { return bytes.size() / kBenchPage; }
  const char* page(std::size_t i) const { return bytes.data() + i * kBenchPage; }
};

BenchPages bench_pages(std::size_t bytes);

}  // namespace zspool::bench
