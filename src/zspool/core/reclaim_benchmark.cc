// Writeback benchmarks: reclaim throughput with a handler that copies each object to a buffer,
// and the latency of malloc+free while another thread reclaims.
//
//   ./build/core_benchmark --benchmark_filter='Reclaim|LatencyDuringReclaim'
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "zspool/core/pool.h"

#include "zspool/workload/rng.h"

namespace zspool {
namespace {

// Object sizes spread like lz4-compressed 4 KiB pages of binaries (mostly 1.2-3 KiB, some
// small, a few huge), deterministic.
std::size_t object_size(std::uint64_t i) {
  const std::uint64_t x = splitmix64_at(i);
  const std::uint64_t r = x % 100;
  if (r < 10) return 64 + x % 512;
  if (r < 90) return 1200 + x % 1800;
  return 3000 + x % 1096;
}

// A handler that copies the object to a buffer (a stand-in for writing it to disk) and frees it.
struct CopyingHandler {
  std::vector<std::byte> sink = std::vector<std::byte>(4096);
  std::uint64_t bytes = 0;
  Error operator()(Pool& pool, Handle h) {
    auto m = pool.map(h, MapMode::read_only);
    if (!m) return m.error();
    std::memcpy(sink.data(), m->data(), m->size());
    bytes += m->size();
    m->reset();
    return pool.free(h);
  }
};

void BM_ReclaimThroughput(benchmark::State& state) {
  const std::size_t objects = static_cast<std::size_t>(state.range(0));
  std::uint64_t zspages = 0, evicted = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto handler = std::make_shared<CopyingHandler>();
    auto pool = std::move(
        *Pool::create({.evict = [handler](Pool& p, Handle h) { return (*handler)(p, h); }}));
    std::vector<std::byte> data(4096, std::byte{0x5a});
    for (std::size_t i = 0; i < objects; ++i) {
      Handle h = *pool->malloc(object_size(i));
      pool->write(h, std::span(data).first(object_size(i)));
    }
    const auto before = pool->stats();
    state.ResumeTiming();
    while (pool->reclaim_page(1) == Error::ok) {
    }
    state.PauseTiming();
    const auto after = pool->stats();
    zspages += after.zspages_reclaimed - before.zspages_reclaimed;
    evicted += after.evict_calls - before.evict_calls;
    if (pool->total_pages() != 0) state.SkipWithError("reclaim left pages behind");
    pool.reset();
    state.ResumeTiming();
  }
  state.counters["zspages_per_s"] =
      benchmark::Counter(static_cast<double>(zspages), benchmark::Counter::kIsRate);
  state.counters["objects_per_s"] =
      benchmark::Counter(static_cast<double>(evicted), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ReclaimThroughput)->Arg(100000)->Unit(benchmark::kMillisecond)->UseRealTime();

// p50/p99 of one malloc+free pair on the main thread, with (Arg 1) or without (Arg 0) a second
// thread reclaiming and refilling the pool at full speed.
void BM_MallocFreeLatencyDuringReclaim(benchmark::State& state) {
  const bool reclaiming = state.range(0) != 0;
  auto handler = std::make_shared<CopyingHandler>();
  auto pool = std::move(
      *Pool::create({.evict = [handler](Pool& p, Handle h) { return (*handler)(p, h); }}));
  std::atomic<bool> stop{false};
  // The same allocation load either way; with reclaim the pool is held near 32 MiB by
  // evicting, without it the background thread frees what it allocated.
  std::thread background([&] {
    std::uint64_t i = 0;
    std::vector<Handle> batch;
    while (!stop.load(std::memory_order_relaxed)) {
      batch.clear();
      for (int k = 0; k < 64; ++k) batch.push_back(pool->malloc(object_size(i++)).value_or(0));
      if (reclaiming) {
        while (pool->total_pages() > 8192 && pool->reclaim_page(1) == Error::ok) {
        }
      } else {
        for (Handle h : batch) (void)pool->free(h);
      }
    }
  });
  std::vector<double> ns;
  ns.reserve(1 << 20);
  std::uint64_t i = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    auto h = pool->malloc(object_size(i++));
    if (h) pool->free(*h);
    const auto t1 = std::chrono::steady_clock::now();
    if (ns.size() < ns.capacity())
      ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
  }
  stop.store(true);
  background.join();
  std::sort(ns.begin(), ns.end());
  if (!ns.empty()) {
    state.counters["p50_ns"] = ns[ns.size() / 2];
    state.counters["p99_ns"] = ns[ns.size() * 99 / 100];
  }
}
BENCHMARK(BM_MallocFreeLatencyDuringReclaim)->Arg(0)->Arg(1)->UseRealTime();

}  // namespace
}  // namespace zspool
