// The soak engine behind `zspool soak`: every store operation at once, for a while, with
// faults injected; every read verified.
//
// T threads pick random pages and write (a page derived from (page, version) in one of five
// flavours: text, zeros, same-filled, pointer-rich, random), read and verify against the
// version last written (a per-page shadow, locked per page so the check is exact), discard,
// compact, write back, or (with secondary compressors) recompress a few pages. The store runs under
// a tight memory limit with a backing file, so writeback runs constantly. Faults: every
// `fault_every` operations a thread makes the page source refuse a request (the pool must return
// out_of_memory and change nothing) and the backing file fail a write (the page must stay in
// memory). At the end, with faults off, every page is verified once more. Errors: wrong data, or an
// error a fault does not explain.
//
// The backing file lives in a fresh private directory (mkdtemp under $TMPDIR, mode 0700) and is
// unlinked, with its directory, as soon as the store has opened it: nothing is left behind even
// when the process is killed, and no path another user could plant a link at is ever opened.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "zspool/bench/phase.h"
#include "zspool/platform/error.h"

namespace zspool::tools {

inline constexpr unsigned kMaxSoakThreads = 1024;

struct SoakOptions {
  std::uint64_t seconds = 60;
  unsigned threads = 4;  // 1 .. kMaxSoakThreads
  std::uint64_t pages = 8192;
  std::uint64_t limit = 8 << 20;
  std::uint64_t fault_every = 5000;          // 0: no faults
  std::string compressor = "lz4";            // the store's, as StoreOptions::compressor
  std::vector<std::string> recompress_with;  // secondaries; non-empty: recompress joins the mix
};

struct SoakResult {
  SoakOptions options;
  double seconds = 0;
  std::uint64_t ops = 0, writes = 0, reads = 0, verified = 0, discards = 0, compactions = 0,
                writebacks = 0, recompressions = 0, faults = 0, refused = 0, errors = 0;
  std::uint64_t recompressed_pages = 0;
  std::uint64_t bd_write_failures = 0, page_source_failures = 0, written_back_pages = 0;
  std::string first_error;  // "" when errors == 0
};

// Runs the soak. Errors, with one line in *why: invalid_argument (threads or pages 0, threads
// above kMaxSoakThreads, a compressor the store refuses), io_error (no private temporary
// directory), the store's creation errors, and out_of_memory when a thread cannot be started (the
// started ones are stopped and joined first).
Result<SoakResult> run_soak(const SoakOptions& options, const ProgressFactory& progress,
                            std::string* why);

}  // namespace zspool::tools
