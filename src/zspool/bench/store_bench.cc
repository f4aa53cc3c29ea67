#include "zspool/bench/store_bench.h"

#include <chrono>
#include <cstring>
#include <memory>
#include <span>

#include "zspool/bench/alloc_trace.h"
#include "zspool/bench/run_job.h"
#include "zspool/store/compressor.h"

namespace zspool::tools {
namespace {

Result<std::unique_ptr<Store>> make_store(const StoreBenchOptions& options, std::uint64_t pages) {
  StoreOptions so;
  so.page_size = kBenchPageSize;
  so.max_chain = options.max_chain;
  so.pages = pages;
  so.compressor = options.compressor;
  return Store::create(std::move(so));
}

PhaseResult store_write(Store& store, const Corpus& corpus, unsigned threads,
                        const ProgressFactory& progress) {
  const auto bar = progress("store write", corpus.page_count());
  return run_phase(corpus.page_count(), threads, 0, *bar,
                   [&](std::uint64_t p, std::span<std::byte>, PhaseTally& tally) {
                     if (const Error e = store.write(p, corpus.page(p)); e != Error::ok)
                       tally.fail(p, "write", e);
                   });
}

// Reads every page and compares it with expected(page).
template <typename Expected>
PhaseResult store_read(Store& store, const Corpus& corpus, unsigned threads,
                       const ProgressFactory& progress, const Expected& expected) {
  const auto bar = progress("store read", corpus.page_count());
  return run_phase(corpus.page_count(), threads, kBenchPageSize, *bar,
                   [&](std::uint64_t p, std::span<std::byte> out, PhaseTally& tally) {
                     if (const Error e = store.read(p, out); e != Error::ok) {
                       tally.fail(p, "read", e);
                     } else if (std::memcmp(out.data(), expected(p), out.size()) != 0) {
                       tally.mismatch(p);
                     }
                   });
}

PhaseResult store_discard(Store& store, std::span<const std::uint64_t> half, unsigned threads,
                          const ProgressFactory& progress) {
  const auto bar = progress("store discard", half.size());
  return run_phase(half.size(), threads, 0, *bar,
                   [&](std::uint64_t k, std::span<std::byte>, PhaseTally& tally) {
                     if (const Error e = store.discard(half[k]); e != Error::ok)
                       tally.fail(half[k], "discard", e);
                   });
}

double timed_compact(Store& store) {
  const auto start = std::chrono::steady_clock::now();
  store.compact();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

Result<EngineFigures> bench_store(const StoreBenchOptions& options, const Corpus& corpus,
                                  std::span<const std::uint64_t> half,
                                  const ProgressFactory& progress) {
  auto created = make_store(options, corpus.page_count());
  if (!created) return created.error();
  Store& store = **created;
  EngineFigures f;
  const unsigned threads = options.threads;
  const PhaseResult w = store_write(store, corpus, threads, progress);
  f.after_fill = mm_stat(store.stats());
  const PhaseResult r = store_read(store, corpus, threads, progress,
                                   [&](std::uint64_t p) { return corpus.page(p).data(); });
  const PhaseResult d = store_discard(store, half, threads, progress);
  f.after_discard = mm_stat(store.stats());
  f.compact_seconds = timed_compact(store);
  f.after_compact = mm_stat(store.stats());
  std::vector<bool> discarded(corpus.page_count(), false);
  for (const std::uint64_t p : half) discarded[p] = true;
  const std::vector<std::byte> zeros(kBenchPageSize);
  const PhaseResult v = store_read(store, corpus, threads, progress, [&](std::uint64_t p) {
    return discarded[p] ? zeros.data() : corpus.page(p).data();
  });
  f.write_seconds = w.seconds;
  f.read_seconds = r.seconds;
  f.discard_seconds = d.seconds;
  f.errors = w.tally.errors() + r.tally.errors() + d.tally.errors() + v.tally.errors();
  return f;
}

// Each page compresses into its own slot of max_compressed_size bytes, so threads never share
// one, and decompresses from it.
RawFigures bench_raw(const Compressor& c, const std::string& spec, const Corpus& corpus,
                     unsigned threads, const ProgressFactory& progress) {
  const std::uint64_t pages = corpus.page_count();
  const std::size_t slot = c.max_compressed_size(kBenchPageSize);
  std::vector<std::byte> out(pages * slot);
  std::vector<std::uint32_t> lengths(pages);
  RawFigures f{spec};
  const auto cp = progress("raw " + spec + " compress", pages);
  const PhaseResult comp =
      run_phase(pages, threads, 0, *cp, [&](std::uint64_t p, auto, PhaseTally& t) {
        const auto n =
            c.compress(corpus.page(p), std::span<std::byte>(out).subspan(p * slot, slot));
        if (!n) return t.fail(p, "compress", n.error());
        lengths[p] = static_cast<std::uint32_t>(*n);
      });
  const auto dp = progress("raw " + spec + " decompress", pages);
  const PhaseResult dec =
      run_phase(pages, threads, kBenchPageSize, *dp,
                [&](std::uint64_t p, std::span<std::byte> page, PhaseTally& t) {
                  const Error e = c.decompress(
                      std::span<const std::byte>(out).subspan(p * slot, lengths[p]), page);
                  if (e != Error::ok) return t.fail(p, "decompress", e);
                  if (std::memcmp(page.data(), corpus.page(p).data(), page.size()) != 0)
                    t.mismatch(p);
                });
  f.compress_seconds = comp.seconds;
  f.decompress_seconds = dec.seconds;
  for (const std::uint32_t n : lengths) f.compressed_bytes += n;
  f.errors = comp.tally.errors() + dec.tally.errors();
  return f;
}

std::vector<std::string> raw_compressors(const std::string& store_compressor) {
  std::vector<std::string> specs = {"lz4", "zstd"};
  if (store_compressor != "lz4" && store_compressor != "zstd") specs.push_back(store_compressor);
  return specs;
}

}  // namespace

double pages_mb_per_second(std::uint64_t pages, double seconds) {
  return megabytes_per_second(pages * kBenchPageSize, seconds);
}

std::string zram_algorithm(const std::string& spec) {
  const std::string name = spec.substr(0, spec.find(':'));
  return name == "lzo1x" ? "lzo" : name;
}

std::uint64_t StoreBenchResult::errors() const {
  std::uint64_t n = store.errors;
  for (const RawFigures& r : raw) n += r.errors;
  if (zram && zram->ran) n += zram->figures.errors;
  return n;
}

const RawFigures* StoreBenchResult::store_compressor_raw() const {
  for (const RawFigures& r : raw) {
    if (r.compressor == options.compressor) return &r;
  }
  return nullptr;
}

Result<StoreBenchResult> run_store_bench(const Corpus& corpus, const StoreBenchOptions& options,
                                         const ProgressFactory& progress) {
  std::vector<std::unique_ptr<Compressor>> compressors;
  const std::vector<std::string> specs = raw_compressors(options.compressor);
  for (const std::string& spec : specs) {
    auto c = make_compressor(spec);
    if (!c) return Error::invalid_argument;
    compressors.push_back(std::move(*c));
  }
  StoreBenchResult result;
  result.options = options;
  result.pages = corpus.page_count();
  const std::vector<std::uint64_t> half = random_half(result.pages, options.seed);
  result.discarded_pages = half.size();
  auto store = bench_store(options, corpus, half, progress);
  if (!store) return store.error();
  result.store = *store;
  for (std::size_t i = 0; i < specs.size(); ++i)
    result.raw.push_back(bench_raw(*compressors[i], specs[i], corpus, options.threads, progress));
  if (options.vs_zram)
    result.zram =
        bench_zram(corpus, half, options.threads, zram_algorithm(options.compressor), progress);
  return result;
}

}  // namespace zspool::tools
