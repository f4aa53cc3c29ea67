// `zspool run`'s job: fill a compressed page store with a corpus, compact it, read every page
// back and verify it byte for byte, timing each phase.
//
//   corpus ──write (N threads, timed)──▶ Store ──compact──▶ ──read + verify (N threads, timed)──▶
//
// A store with secondary compressors (--recompress-with) is recompressed (recompress all)
// between the write and the compaction, so the reads verify the recompressed pages.
//
// A page whose write fails (under a limit with no backing file: the pages that do not fit) is
// counted and not read back; a failed read or a page read back different is counted too. The
// result is typed; cli/render.h turns it into a table or JSON.
#pragma once

#include <cstdint>
#include <string>

#include "zspool/bench/phase.h"
#include "zspool/store/store.h"
#include "zspool/workload/corpus.h"

namespace zspool::tools {

struct RunReport {
  std::uint64_t pages = 0;
  std::uint64_t bytes = 0;  // uncompressed: pages * page size
  unsigned threads = 1;
  std::string compressor;  // the spec as the user gave it ("zstd"; the store says "zstd:3")
  PhaseResult write;
  std::size_t pages_compacted = 0;
  PhaseResult read;
  StoreStats stats;
  Error recompress_error = Error::ok;  // recompress all's failure, with secondaries

  std::uint64_t errors() const {
    return write.tally.errors() + read.tally.errors() + (recompress_error != Error::ok ? 1 : 0);
  }
  // Pages written and read back equal.
  std::uint64_t verified() const { return pages - write.tally.failed - read.tally.errors(); }
  // "N of M pages failed (...); first: ..." for the one-line error.
  std::string failure_summary() const;
};

RunReport run_job(Store& store, const Corpus& corpus, unsigned threads,
                  const ProgressFactory& progress);

// compr_data_size / mem_used_total and orig_data_size / compr_data_size (0 when undefined).
double efficiency(const StoreStats& s);
double compression_ratio(const StoreStats& s);
// MB/s: 10^6 bytes of uncompressed data a second (0 for no time).
double megabytes_per_second(std::uint64_t bytes, double seconds);

}  // namespace zspool::tools
