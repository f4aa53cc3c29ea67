// `zspool bench store`'s measurement: the page store's throughput and memory against raw
// compression of the same pages and, optionally, against the kernel's zram (zram.h).
//
//   Store (N threads):  write every page (timed) ─▶ mm_stat ─▶ read + verify every page (timed)
//                       ─▶ discard the random half (timed) ─▶ mm_stat ─▶ compact (timed)
//                       ─▶ mm_stat ─▶ verify every page (kept ones equal, discarded ones zero)
//   raw (N threads):    compress every page into its own buffer (timed), decompress + verify
//                       (timed), for lz4 and zstd (and the store's compressor if it is neither)
//   zram (vs_zram):     the Store's sequence on /dev/zram0; skipped, with the reason, when not
//                       root, no zram0, or zram0 already in use
//
// Raw compression compresses every page, same-filled ones included, as the store does not (it
// keeps only the word). The result is typed; cli/render.h turns it into a table or JSON.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "zspool/bench/phase.h"
#include "zspool/bench/zram.h"
#include "zspool/platform/error.h"
#include "zspool/store/store.h"
#include "zspool/workload/corpus.h"

namespace zspool::tools {

inline constexpr std::uint32_t kBenchPageSize = 4096;  // zram's page

struct StoreBenchOptions {
  unsigned threads = 1;
  std::string compressor = "lz4";  // a make_compressor spec
  std::uint32_t max_chain = kStoreDefaultChain;
  std::uint64_t seed = 1;  // which random half is discarded
  bool vs_zram = false;
};

// One compressor compressing and decompressing every page on its own.
struct RawFigures {
  std::string compressor;
  double compress_seconds = 0;
  double decompress_seconds = 0;
  std::uint64_t compressed_bytes = 0;
  std::uint64_t errors = 0;
};

struct StoreBenchResult {
  StoreBenchOptions options;
  std::uint64_t pages = 0;
  std::uint64_t discarded_pages = 0;
  EngineFigures store;              // the zspool Store
  std::vector<RawFigures> raw;      // lz4, zstd, then the store's compressor if neither
  std::optional<ZramOutcome> zram;  // only with vs_zram

  // Failed calls and pages read back wrong, over every engine that ran.
  std::uint64_t errors() const;
  // The raw figures of the store's own compressor (nullptr if it is not among them).
  const RawFigures* store_compressor_raw() const;
};

// Runs the sequence above on `corpus` (pages of kBenchPageSize). Errors: invalid_argument for a
// compressor spec make_compressor rejects, and Store::create's errors.
Result<StoreBenchResult> run_store_bench(const Corpus& corpus, const StoreBenchOptions& options,
                                         const ProgressFactory& progress);

// MB/s (10^6 bytes of uncompressed pages a second) for `pages` pages of kBenchPageSize.
double pages_mb_per_second(std::uint64_t pages, double seconds);

// zram's name for a compressor spec ("lz4:3" -> "lz4", "lzo1x" -> "lzo").
std::string zram_algorithm(const std::string& spec);

}  // namespace zspool::tools
