// `zspool bench policy`'s measurement (issue 14): the LRU inversion, side by side. Which pages a
// store under a memory limit keeps in memory when a hot set is read, with the writeback policy
// `page` (per-page recency, CLOCK with second chance), `zspage` (the pool's zspage LRU), and an
// exact page-granular LRU over the same accesses with the same memory (the reference).
//
//   size:    a store with no limit takes every page: compr_data_size C
//   each store run (limit = limit_percent of C, a fresh backing file, promote_on_read):
//     write every page in order (each write timed)            ─┐ sampled every kSampleEvery
//     read_rounds * pages reads (fixed seed): hot_read_percent │ ops once writeback started:
//       of them to a hot set (hot_page_percent of the pages,   │ compr_data_size/mem_used_total
//       chosen at random), the rest uniform over all pages;    │ and mem_used_total/limit
//       each read verified; a hit is a read of a page in memory─┘
//   runs: page, zspage (both synchronous writeback), page with the background writer
//   exact LRU: the same writes and reads; a page costs its stored size (0 same-filled,
//     page_size when huge, else its compressed length), memory = the limit; a miss brings the
//     page back at the head (as promote_on_read does), evictions from the tail are backing
//     writes
//
// Hits, backing reads and backing writes count pages; MB written = backing writes * page_size
// (a backing slot is a page).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "zspool/bench/phase.h"
#include "zspool/platform/error.h"
#include "zspool/store/store.h"
#include "zspool/workload/corpus.h"

namespace zspool::tools {

struct PolicyBenchOptions {
  std::string compressor = "lz4";
  std::uint64_t seed = 1;
  std::uint32_t read_rounds = 10;       // reads = read_rounds * pages
  std::uint32_t hot_page_percent = 10;  // the hot set's share of the pages
  std::uint32_t hot_read_percent = 80;  // the reads that go to it
  std::uint32_t limit_percent = 50;     // of the corpus's compressed size
  std::string backing_dir;              // where backing files go; empty: $TMPDIR, else /tmp
  std::uint32_t writeback_batch = 32;   // StoreOptions::writeback_batch_pages of every run
};

// One run: a store with a policy, or the exact-LRU reference (no latencies, no samples).
struct PolicyRun {
  std::string name;  // "page", "zspage", "page+bg", "exact-lru"
  std::uint64_t reads = 0, hits = 0;
  std::uint64_t hot_reads = 0, hot_hits = 0;
  std::uint64_t backing_reads = 0, backing_writes = 0;
  std::uint64_t backing_write_ios = 0;  // write system calls (bd_write_ios); 0 for exact-lru
  std::uint64_t errors = 0;             // failed calls and reads that came back wrong
  // Why the backing file failed ("backing file F: No space left on device"): the store's
  // backing_failure() at the run's first failed call that had one to say; "" when none did.
  std::string backing_failure;
  // Write latencies (microseconds) over the write phase.
  double write_p50_us = 0, write_p99_us = 0, write_max_us = 0;
  std::uint64_t writer_stalls = 0, bg_writeback_runs = 0;
  // Samples once writeback started: the least seen, and the mean.
  std::uint64_t samples = 0;
  double min_efficiency = 0, mean_efficiency = 0;  // compr_data_size / mem_used_total
  double min_fill = 0, mean_fill = 0;              // mem_used_total / limit

  double hit_ratio() const;
  double hot_hit_ratio() const;
};

struct PolicyBenchResult {
  PolicyBenchOptions options;
  std::uint64_t pages = 0;
  std::uint64_t compressed_bytes = 0;  // compr_data_size of every page in memory
  std::uint64_t limit = 0;
  std::vector<PolicyRun> runs;  // page, zspage, page+bg, exact-lru

  std::uint64_t errors() const;
  // The first run's backing_failure that is not "", or "".
  std::string backing_failure() const;
};

// Why `dir` cannot take the backing files' directory, as one line naming it ("DIR: No such file
// or directory", "DIR: not a directory", "DIR: Permission denied"); "" when it can: a directory
// (a symlink to one will do) this process may create entries in.
std::string backing_dir_problem(const std::string& dir);

// Errors: invalid_argument (no pages, a compressor spec make_compressor rejects, percentages
// out of 1..100, read_rounds 0), Store::create's errors, io_error when no backing directory can
// be made (checked before any store is made; `*why` then names where and why).
Result<PolicyBenchResult> run_policy_bench(const Corpus& corpus, const PolicyBenchOptions& options,
                                           const ProgressFactory& progress,
                                           std::string* why = nullptr);

}  // namespace zspool::tools
