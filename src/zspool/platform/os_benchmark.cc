// What a fresh page costs to commit: the floor under every write path that stores into new
// memory (the Store's fill, a pool refilling after compaction gave pages back).
//
//   build/platform_benchmark
//
// Each iteration commits 16 MiB of fresh anonymous memory, `pages` per call, and gives it back.
// items_per_second counts pages committed; its inverse is the cost of one page. Cases:
//   BM_PopulatePages/N   os::populate_pages (MADV_POPULATE_WRITE) of N pages per call
//   BM_TouchPages        a write to each page (one page fault each)
//   BM_TouchHugePages    a write to each 4 KiB page of a MADV_HUGEPAGE range (2 MiB faults)
#include <benchmark/benchmark.h>
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>

#include "zspool/platform/internal/os.h"

namespace zspool {
namespace {

constexpr std::size_t kBytes = std::size_t{16} << 20;
constexpr std::size_t kHuge = std::size_t{2} << 20;

// One write the compiler must emit: the first touch of a page faults it in.
void touch(std::byte* p) {
  *static_cast<volatile std::byte*>(p) = std::byte{1};
}

void report(benchmark::State& state, std::size_t pages) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * pages));
}

void BM_PopulatePages(benchmark::State& state) {
  const std::size_t ps = os::page_size();
  const std::size_t step = static_cast<std::size_t>(state.range(0)) * ps;
  os::VirtualRange range(kBytes);
  if (!range.ok()) return state.SkipWithError("mmap failed");
  for (auto _ : state) {
    for (std::size_t off = 0; off < kBytes; off += step)
      if (!os::populate_pages(range.base() + off, step))
        return state.SkipWithError("MADV_POPULATE_WRITE unsupported");
    state.PauseTiming();
    os::release_pages(range.base(), kBytes);
    state.ResumeTiming();
  }
  report(state, kBytes / ps);
}
BENCHMARK(BM_PopulatePages)->Arg(1)->Arg(2)->Arg(4)->Arg(8)->Arg(16)->Arg(64);

void BM_TouchPages(benchmark::State& state) {
  const std::size_t ps = os::page_size();
  os::VirtualRange range(kBytes);
  if (!range.ok()) return state.SkipWithError("mmap failed");
  for (auto _ : state) {
    for (std::size_t off = 0; off < kBytes; off += ps) touch(range.base() + off);
    state.PauseTiming();
    os::release_pages(range.base(), kBytes);
    state.ResumeTiming();
  }
  report(state, kBytes / ps);
}
BENCHMARK(BM_TouchPages);

void BM_TouchHugePages(benchmark::State& state) {
  const std::size_t ps = os::page_size();
  os::VirtualRange range(kBytes + kHuge);
  if (!range.ok()) return state.SkipWithError("mmap failed");
  const auto addr = reinterpret_cast<std::uintptr_t>(range.base());
  auto* base = reinterpret_cast<std::byte*>((addr + kHuge - 1) & ~(kHuge - 1));
  if (madvise(base, kBytes, MADV_HUGEPAGE) != 0) return state.SkipWithError("no THP");
  for (auto _ : state) {
    for (std::size_t off = 0; off < kBytes; off += ps) touch(base + off);
    state.PauseTiming();
    os::release_pages(base, kBytes);
    state.ResumeTiming();
  }
  report(state, kBytes / ps);
}
BENCHMARK(BM_TouchHugePages);

}  // namespace
}  // namespace zspool
