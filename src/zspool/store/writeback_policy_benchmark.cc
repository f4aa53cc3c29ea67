// What batching the backing file's writes buys (issue 14): selective writeback of every page of
// a filled store, one pwrite per page (batch 1, under each page's stripe lock) against batches
// (adjacent slots in one pwritev, no stripe lock across the I/O).
//
//   build:  cmake --build build --target store_benchmark
//   run:    build/store_benchmark --benchmark_filter=BM_WritebackIdle
//
//   BM_WritebackIdle/B  a fresh store of the first kPages bench pages per iteration, every page
//                       written and marked idle outside the timing; timed: writeback(idle) of
//                       all of them with writeback_batch_pages = B, into a fresh backing file in
//                       the temp directory (page cache: the figure is the CPU and system-call
//                       cost, not a disk's)
//
// items_per_second counts pages written back; counter write_calls = bd_write_ios per iteration.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "zspool/store/store.h"
#include "zspool/workload/bench_pages.h"

namespace zspool {
namespace {

constexpr std::size_t kPages = 8192;  // 32 MiB of pages

const bench::BenchPages& bench_pages_for_writeback() {
  static const bench::BenchPages p = bench::bench_pages(kPages * bench::kBenchPage);
  return p;
}

std::string fresh_dir() {
  std::string tmpl = std::filesystem::temp_directory_path().string() + "/zspool-wb-bench-XXXXXX";
  return ::mkdtemp(tmpl.data()) != nullptr ? tmpl : "";
}

void BM_WritebackIdle(benchmark::State& state) {
  const bench::BenchPages& pages = bench_pages_for_writeback();
  const std::string dir = fresh_dir();
  if (dir.empty()) return state.SkipWithError("no temp directory");
  std::uint64_t written = 0, calls = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::filesystem::remove(dir + "/backing");
    auto store =
        Store::create({.pages = pages.count(),
                       .backing_path = dir + "/backing",
                       .writeback_batch_pages = static_cast<std::uint32_t>(state.range(0))});
    if (!store) return state.SkipWithError("Store::create failed");
    for (std::size_t i = 0; i < pages.count(); ++i) {
      const std::span<const std::byte> page(reinterpret_cast<const std::byte*>(pages.page(i)),
                                            bench::kBenchPage);
      if ((*store)->write(i, page) != Error::ok) return state.SkipWithError("write failed");
    }
    const std::size_t in_pool = (*store)->mark_idle();  // same-filled pages are not in the pool
    state.ResumeTiming();
    auto wb = (*store)->writeback(WritebackKind::idle);
    state.PauseTiming();
    if (!wb || *wb != in_pool) return state.SkipWithError("writeback fell short");
    written += *wb;
    calls += (*store)->stats().bd_write_ios;
    store->reset();
    state.ResumeTiming();
  }
  std::filesystem::remove_all(dir);
  state.SetItemsProcessed(static_cast<std::int64_t>(written));
  state.counters["write_calls"] =
      benchmark::Counter(static_cast<double>(calls), benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_WritebackIdle)
    ->Arg(1)
    ->Arg(8)
    ->Arg(32)
    ->Arg(128)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace zspool
