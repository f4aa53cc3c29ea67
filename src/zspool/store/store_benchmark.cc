// Micro-benchmarks of the page store against its own compressor on the same pages, and of what
// a store write costs beyond compression: committing fresh memory for the pool.
//
//   build:  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build
//           --target store_benchmark
//   run:    build/store_benchmark
//
// Every case works on the same 64 MiB of 4 KiB pages (workload/bench_pages.h); items_per_second
// counts pages, bytes_per_second their uncompressed bytes, so a store case divided by the raw
// case of the same direction is the ratio `zspool bench store` reports as store/raw.
//
//   BM_RawCompress            the store's compressor (lz4) on every page, into buffers that are
//                             already resident: the write target's denominator
//   BM_StoreWrite             a fresh Store per iteration (made and destroyed outside the
//                             timing), every page written: compression + pool + page commits
//   BM_StoreWritePrecommitted the same, but the pool's pages come from a range committed before
//                             the timing: the difference to BM_StoreWrite is what committing
//                             fresh memory costs (the pool still counts pages lazily, as ever)
//   BM_RawDecompress          decompress every page
//   BM_StoreRead              read every page back from a filled store
//
// Counters: efficiency = compr_data_size / mem_used_total after the fill (identical in both
// write cases: the committed range changes what the OS does, not what the pool counts).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <vector>

#include "zspool/platform/internal/os.h"
#include "zspool/platform/page_source.h"
#include "zspool/store/compressor.h"
#include "zspool/store/store.h"
#include "zspool/workload/bench_pages.h"

namespace zspool {
namespace {

constexpr std::size_t kCorpusBytes = std::size_t{64} << 20;

const bench::BenchPages& pages() {
  static const bench::BenchPages p = bench::bench_pages(kCorpusBytes);
  return p;
}

std::span<const std::byte> page(std::size_t i) {
  return {reinterpret_cast<const std::byte*>(pages().page(i)), bench::kBenchPage};
}

const bool kCorpusReported = [] {
  benchmark::AddCustomContext("pages", std::to_string(pages().count()) + " of " + pages().source);
  return true;
}();

void report(benchmark::State& state) {
  const auto n = static_cast<std::int64_t>(pages().count());
  state.SetItemsProcessed(state.iterations() * n);
  state.SetBytesProcessed(state.iterations() * n * static_cast<std::int64_t>(bench::kBenchPage));
}

// A page source over one range committed before the timing (os::populate_pages), carved with a
// bump pointer; release keeps nothing and populate has nothing left to do. For
// BM_StoreWritePrecommitted only: it never reuses memory, so each Store gets a fresh one.
class PrecommittedSource final : public PageSource {
 public:
  explicit PrecommittedSource(std::size_t bytes) : range_(bytes) {
    if (range_.ok() && !os::populate_pages(range_.base(), range_.size()))
      for (std::size_t off = 0; off < range_.size(); off += os::page_size())
        range_.base()[off] = {};
  }
  bool ok() const { return range_.ok(); }
  void* acquire(std::size_t bytes, bool* resident) override {
    *resident = false;  // the pool counts pages as it reaches them, exactly as with the OS source
    if (!range_.ok() || used_ + bytes > range_.size()) return nullptr;
    void* p = range_.base() + used_;
    used_ += bytes;
    return p;
  }
  void release(void*, std::size_t) override {}
  std::size_t resident_bytes() const override { return range_.ok() ? range_.size() : 0; }
  std::size_t mapping_count() const override { return 1; }

 private:
  os::VirtualRange range_;
  std::size_t used_ = 0;
};

std::unique_ptr<Store> make_store(std::shared_ptr<PageSource> source) {
  StoreOptions o;
  o.pages = pages().count();
  o.page_source = std::move(source);
  auto s = Store::create(std::move(o));
  if (!s) std::abort();
  return std::move(*s);
}

void fill(Store& s) {
  for (std::size_t i = 0; i < pages().count(); ++i)
    if (s.write(i, page(i)) != Error::ok) std::abort();
}

double efficiency(const Store& s) {
  const StoreStats st = s.stats();
  return st.mem_used_total == 0
             ? 0.0
             : static_cast<double>(st.compr_data_size) / static_cast<double>(st.mem_used_total);
}

std::unique_ptr<Compressor> lz4() {
  auto c = make_compressor("lz4");
  if (!c) std::abort();
  return std::move(*c);
}

// Every page compressed into its own slot of `out` (one max_compressed_size each, so pages
// never share one), its length in sizes[i]. The raw write case, and the raw read case's setup.
struct RawPages {
  std::size_t slot;
  std::vector<std::byte> out;  // zeroed: resident before any timing
  std::vector<std::size_t> sizes;
  explicit RawPages(const Compressor& c)
      : slot(c.max_compressed_size(bench::kBenchPage)),
        out(pages().count() * slot),
        sizes(pages().count()) {}
  std::span<std::byte> slot_of(std::size_t i) { return std::span(out).subspan(i * slot, slot); }
  void compress_all(const Compressor& c) {
    for (std::size_t i = 0; i < pages().count(); ++i) {
      auto n = c.compress(page(i), slot_of(i));
      if (!n) std::abort();
      sizes[i] = *n;
    }
  }
};

void BM_RawCompress(benchmark::State& state) {
  const auto c = lz4();
  RawPages raw(*c);
  for (auto _ : state) {
    raw.compress_all(*c);
    benchmark::DoNotOptimize(raw.sizes.data());
  }
  report(state);
}
BENCHMARK(BM_RawCompress)->Unit(benchmark::kMillisecond);

template <class MakeSource>
void store_write(benchmark::State& state, MakeSource make_source) {
  double eff = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto store = make_store(make_source());
    state.ResumeTiming();
    fill(*store);
    state.PauseTiming();
    eff = efficiency(*store);
    store.reset();
    state.ResumeTiming();
  }
  state.counters["efficiency"] = eff;
  report(state);
}

void BM_StoreWrite(benchmark::State& state) {
  store_write(state, [] { return std::shared_ptr<PageSource>(); });  // the default OS source
}
BENCHMARK(BM_StoreWrite)->Unit(benchmark::kMillisecond);

void BM_StoreWritePrecommitted(benchmark::State& state) {
  store_write(state, [] {
    auto s = std::make_shared<PrecommittedSource>(kCorpusBytes + (kCorpusBytes >> 2));
    if (!s->ok()) std::abort();
    return s;
  });
}
BENCHMARK(BM_StoreWritePrecommitted)->Unit(benchmark::kMillisecond);

void BM_RawDecompress(benchmark::State& state) {
  const auto c = lz4();
  RawPages raw(*c);
  raw.compress_all(*c);
  std::vector<std::byte> out(bench::kBenchPage);
  for (auto _ : state) {
    for (std::size_t i = 0; i < pages().count(); ++i) {
      const Error e = c->decompress(raw.slot_of(i).first(raw.sizes[i]), out);
      benchmark::DoNotOptimize(e);
      benchmark::DoNotOptimize(out.data());
    }
  }
  report(state);
}
BENCHMARK(BM_RawDecompress)->Unit(benchmark::kMillisecond);

void BM_StoreRead(benchmark::State& state) {
  auto store = make_store(nullptr);
  fill(*store);
  std::vector<std::byte> out(bench::kBenchPage);
  for (auto _ : state) {
    for (std::size_t i = 0; i < pages().count(); ++i) {
      const Error e = store->read(i, out);
      benchmark::DoNotOptimize(e);
      benchmark::DoNotOptimize(out.data());
    }
  }
  state.counters["efficiency"] = efficiency(*store);
  report(state);
}
BENCHMARK(BM_StoreRead)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace zspool
