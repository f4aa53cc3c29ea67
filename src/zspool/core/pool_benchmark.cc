// Micro-benchmarks of the Pool's hot paths against glibc malloc, on object sizes drawn from a
// realistic distribution: the lz4-compressed sizes of the 4 KiB pages of real files (shared
// libraries and C headers, 64 MiB at most), the objects zram and zswap store.
//
//   build:  cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release && cmake --build build-rel
//           --target core_benchmark
//   run:    build-rel/core_benchmark
//
// Each case works on batches of kBatch objects whose sizes come from the distribution, the
// batch's window sliding along it every iteration. items_per_second counts objects (one
// malloc + one free, one write + one read, one map + one unmap); bytes_per_second counts the
// objects' sizes (both directions for the copy cases).
#include <benchmark/benchmark.h>
#include <lz4.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "zspool/core/pool.h"
#include "zspool/core/zsmalloc.h"
#include "zspool/workload/bench_pages.h"

namespace zspool {
namespace {

constexpr std::size_t kPage = bench::kBenchPage;
constexpr std::size_t kBatch = 4096;
constexpr std::size_t kCorpusBytes = std::size_t{64} << 20;

// ── the size distribution ──────────────────────────────────────────────────────────────────

struct SizeDistribution {
  std::vector<std::uint32_t> sizes;  // shuffled, one per page of the corpus
  std::string source;
  std::uint64_t total = 0;
};

SizeDistribution build_distribution() {
  SizeDistribution d;
  const bench::BenchPages pages = bench::bench_pages(kCorpusBytes);
  d.source = "lz4 of " + pages.source;
  std::vector<char> out(LZ4_compressBound(kPage));
  for (std::size_t i = 0; i < pages.count(); ++i) {
    const int n =
        LZ4_compress_default(pages.page(i), out.data(), kPage, static_cast<int>(out.size()));
    const std::uint32_t size =
        n <= 0 || static_cast<std::size_t>(n) >= kPage ? kPage : static_cast<std::uint32_t>(n);
    d.sizes.push_back(std::clamp<std::uint32_t>(size, 1, kPage));
  }
  std::shuffle(d.sizes.begin(), d.sizes.end(), std::mt19937_64(7));
  d.total = std::accumulate(d.sizes.begin(), d.sizes.end(), std::uint64_t{0});
  return d;
}

const SizeDistribution& distribution() {
  static const SizeDistribution d = build_distribution();
  return d;
}

// Described in the benchmark's context header (built before main, so outside any timing).
const bool kDistributionReported = [] {
  const SizeDistribution& d = distribution();
  std::vector<std::uint32_t> sorted = d.sizes;
  std::sort(sorted.begin(), sorted.end());
  const auto pct = [&](int p) { return sorted[(sorted.size() - 1) * p / 100]; };
  const auto raw = std::count(sorted.begin(), sorted.end(), kPage);
  benchmark::AddCustomContext("size_source", d.source);
  benchmark::AddCustomContext("size_distribution",
                              std::to_string(d.sizes.size()) + " pages, mean " +
                                  std::to_string(d.total / d.sizes.size()) + " B, p10/p50/p90 " +
                                  std::to_string(pct(10)) + "/" + std::to_string(pct(50)) + "/" +
                                  std::to_string(pct(90)) + " B, incompressible " +
                                  std::to_string(100 * raw / sorted.size()) + "%");
  return true;
}();

// The sizes of batch number `round` (a window sliding along the distribution).
class Batches {
 public:
  explicit Batches(std::size_t start = 0) : pos_(start % distribution().sizes.size()) {}
  // Fills `out` with the next kBatch sizes; returns their sum.
  std::uint64_t next(std::vector<std::uint32_t>& out) {
    const auto& s = distribution().sizes;
    out.resize(kBatch);
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < kBatch; ++i) {
      out[i] = s[pos_];
      sum += out[i];
      if (++pos_ == s.size()) pos_ = 0;
    }
    return sum;
  }

 private:
  std::size_t pos_;
};

void report(benchmark::State& state, std::uint64_t items, std::uint64_t bytes) {
  state.SetItemsProcessed(static_cast<std::int64_t>(items));
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}

std::unique_ptr<Pool> make_pool() {
  auto p = Pool::create({});
  if (!p) std::abort();
  return std::move(*p);
}

// ── malloc / free ──────────────────────────────────────────────────────────────────────────

void zspool_malloc_free(benchmark::State& state, Pool& pool) {
  Batches batches(state.thread_index() * 7919);
  std::vector<std::uint32_t> sizes;
  std::vector<Handle> hs(kBatch);
  std::uint64_t bytes = 0;
  for (auto _ : state) {
    bytes += batches.next(sizes);
    for (std::size_t i = 0; i < kBatch; ++i) {
      auto h = pool.malloc(sizes[i]);
      if (!h) state.SkipWithError("zspool malloc failed");
      hs[i] = h.value_or(0);
    }
    for (std::size_t i = 0; i < kBatch; ++i) pool.free(hs[i]);
  }
  report(state, state.iterations() * kBatch, bytes);
}

void glibc_malloc_free(benchmark::State& state) {
  Batches batches(state.thread_index() * 7919);
  std::vector<std::uint32_t> sizes;
  std::vector<void*> ps(kBatch);
  std::uint64_t bytes = 0;
  for (auto _ : state) {
    bytes += batches.next(sizes);
    for (std::size_t i = 0; i < kBatch; ++i) {
      ps[i] = std::malloc(sizes[i]);
      benchmark::DoNotOptimize(ps[i]);
    }
    for (std::size_t i = 0; i < kBatch; ++i) std::free(ps[i]);
  }
  report(state, state.iterations() * kBatch, bytes);
}

void BM_ZspoolMallocFree(benchmark::State& state) {
  auto pool = make_pool();
  zspool_malloc_free(state, *pool);
}
BENCHMARK(BM_ZspoolMallocFree);

void BM_GlibcMallocFree(benchmark::State& state) {
  glibc_malloc_free(state);
}
BENCHMARK(BM_GlibcMallocFree);

// Several threads on one shared pool, each with its own batch.
void BM_ZspoolMallocFreeThreaded(benchmark::State& state) {
  static Pool& shared = *make_pool().release();  // lives for the process
  zspool_malloc_free(state, shared);
}
BENCHMARK(BM_ZspoolMallocFreeThreaded)->ThreadRange(1, 8)->UseRealTime();  // 1, 2, 4, 8

// The same with a pool per thread: nothing of zspool's is shared, so its 2-thread / 1-thread
// ratio is what the machine allows (memory bandwidth, caches, the hypervisor); the shared
// pool's ratio against it is what sharing one pool costs.
void BM_ZspoolMallocFreePrivateThreaded(benchmark::State& state) {
  auto pool = make_pool();
  zspool_malloc_free(state, *pool);
}
BENCHMARK(BM_ZspoolMallocFreePrivateThreaded)->ThreadRange(1, 8)->UseRealTime();  // 1, 2, 4, 8

void BM_GlibcMallocFreeThreaded(benchmark::State& state) {
  glibc_malloc_free(state);
}
BENCHMARK(BM_GlibcMallocFreeThreaded)->ThreadRange(1, 8)->UseRealTime();  // 1, 2, 4, 8

// Steady-state churn, as a zram device in use sees it: a resident population of kLive objects;
// each iteration frees kBatch of them at random and allocates replacements of the next sizes.
// Frees mostly punch holes in zspages that stay alive, so this measures the allocator rather
// than the OS (the batch cases above empty whole zspages and return them).
constexpr std::size_t kLive = 16 * kBatch;

template <typename Alloc, typename Free, typename Ptr>
void churn(benchmark::State& state, Alloc alloc, Free free_one, std::vector<Ptr>& live) {
  Batches batches;
  std::vector<std::uint32_t> sizes;
  for (std::size_t i = 0; i < kLive; i += kBatch) {
    batches.next(sizes);
    for (std::size_t j = 0; j < kBatch; ++j) live.push_back(alloc(sizes[j]));
  }
  std::mt19937_64 rng(3);
  std::vector<std::uint32_t> victims(kBatch);
  std::uint64_t bytes = 0;
  for (auto _ : state) {
    state.PauseTiming();
    for (auto& v : victims) v = static_cast<std::uint32_t>(rng() % kLive);
    bytes += batches.next(sizes);
    state.ResumeTiming();
    for (std::size_t j = 0; j < kBatch; ++j) {
      free_one(live[victims[j]]);
      live[victims[j]] = alloc(sizes[j]);
    }
  }
  for (Ptr& p : live) free_one(p);
  report(state, state.iterations() * kBatch, bytes);
}

void BM_ZspoolChurn(benchmark::State& state) {
  auto pool = make_pool();
  std::vector<Handle> live;
  churn(
      state, [&](std::uint32_t size) { return pool->malloc(size).value_or(0); },
      [&](Handle h) { pool->free(h); }, live);
}
BENCHMARK(BM_ZspoolChurn);

void BM_GlibcChurn(benchmark::State& state) {
  std::vector<void*> live;
  churn(
      state,
      [](std::uint32_t size) {
        void* p = std::malloc(size);
        benchmark::DoNotOptimize(p);
        return p;
      },
      [](void* p) { std::free(p); }, live);
}
BENCHMARK(BM_GlibcChurn);

// ── copy access ────────────────────────────────────────────────────────────────────────────

// A live batch of objects with their sizes, and page-size buffers to copy from and to.
struct LiveBatch {
  std::unique_ptr<Pool> pool = make_pool();
  std::vector<std::uint32_t> sizes;
  std::vector<Handle> handles;
  std::uint64_t bytes = 0;
  std::vector<std::byte> src = std::vector<std::byte>(kPage, std::byte{0x5a});
  std::vector<std::byte> dst = std::vector<std::byte>(kPage);

  LiveBatch() {
    bytes = Batches().next(sizes);
    for (std::uint32_t s : sizes) handles.push_back(pool->malloc(s).value());
  }
};

void BM_ZspoolWriteRead(benchmark::State& state) {
  LiveBatch b;
  for (auto _ : state) {
    for (std::size_t i = 0; i < kBatch; ++i) {
      b.pool->write(b.handles[i], std::span(b.src).first(b.sizes[i]));
      b.pool->read(b.handles[i], std::span(b.dst).first(b.sizes[i]));
    }
    benchmark::ClobberMemory();
  }
  report(state, state.iterations() * kBatch, state.iterations() * 2 * b.bytes);
}
BENCHMARK(BM_ZspoolWriteRead);

void BM_GlibcMemcpy(benchmark::State& state) {
  std::vector<std::uint32_t> sizes;
  const std::uint64_t bytes = Batches().next(sizes);
  std::vector<void*> blocks;
  for (std::uint32_t s : sizes) blocks.push_back(std::malloc(s));
  std::vector<std::byte> src(kPage, std::byte{0x5a});
  std::vector<std::byte> dst(kPage);
  for (auto _ : state) {
    for (std::size_t i = 0; i < kBatch; ++i) {
      std::memcpy(blocks[i], src.data(), sizes[i]);
      benchmark::DoNotOptimize(blocks[i]);
      std::memcpy(dst.data(), blocks[i], sizes[i]);
    }
    benchmark::ClobberMemory();
  }
  for (void* p : blocks) std::free(p);
  report(state, state.iterations() * kBatch, state.iterations() * 2 * bytes);
}
BENCHMARK(BM_GlibcMemcpy);

// ── map / unmap ────────────────────────────────────────────────────────────────────────────

// One map + one read of the first and last byte + one unmap per object.
void BM_ZspoolMapUnmap(benchmark::State& state) {
  LiveBatch b;
  std::uint64_t sum = 0;
  for (auto _ : state) {
    for (std::size_t i = 0; i < kBatch; ++i) {
      auto m = b.pool->map(b.handles[i], MapMode::read_only);
      sum += static_cast<std::uint8_t>(m->data()[0]) +
             static_cast<std::uint8_t>(m->data()[b.sizes[i] - 1]);
    }
  }
  benchmark::DoNotOptimize(sum);
  report(state, state.iterations() * kBatch, state.iterations() * b.bytes);
}
BENCHMARK(BM_ZspoolMapUnmap);

// The same through the C API, whose maps outlive the C++ guard in a per-pool table.
void BM_ZsMapUnmapCApi(benchmark::State& state) {
  zs_pool* pool = zs_create_pool("bench");
  std::vector<std::uint32_t> sizes;
  const std::uint64_t bytes = Batches().next(sizes);
  std::vector<unsigned long> hs;
  for (std::uint32_t s : sizes) hs.push_back(zs_malloc(pool, s, 0));
  std::uint64_t sum = 0;
  for (auto _ : state) {
    for (std::size_t i = 0; i < kBatch; ++i) {
      const auto* p = static_cast<const std::uint8_t*>(zs_map_object(pool, hs[i], ZS_MM_RO));
      sum += p[0] + p[sizes[i] - 1];
      zs_unmap_object(pool, hs[i]);
    }
  }
  benchmark::DoNotOptimize(sum);
  zs_destroy_pool(pool);
  report(state, state.iterations() * kBatch, state.iterations() * bytes);
}
BENCHMARK(BM_ZsMapUnmapCApi);

}  // namespace
}  // namespace zspool
