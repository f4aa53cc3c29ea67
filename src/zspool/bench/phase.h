// Folder bench/: the measurements behind the verbs (uses workload, store, core), each returning a
// typed result: `run` (run_job.h), `replay` (replay.h), `bench store` (store_bench.h, zram.h),
// `bench alloc` (alloc.h, alloc_trace.h, child.h), and the threaded page phases (this file).
// Not installed.
//
// Runs a page-by-page phase (`zspool run`'s writes, then its reads) on N threads and tallies
// what went wrong.
//
//   pages [0, n) ──split──▶ thread 0: [0, n/N) · thread 1: [n/N, 2n/N) · ...   (contiguous)
//   each thread: for page in its range: visit(page, scratch, tally); progress.advance()
//   joined: the tallies summed, the first failure = the one on the lowest page
//
// The phase's wall-clock time is measured from before the first thread starts to after the
// last one joins, so thread start-up is charged to the phase, as a user would see it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "zspool/platform/error.h"

namespace zspool::tools {

// How a long phase reports how far it got. The command line draws a bar on stderr
// (cli/progress.h); tests and library callers pass no_progress().
class PhaseProgress {
 public:
  virtual ~PhaseProgress() = default;
  // Counts `n` more items done. Thread-safe.
  virtual void advance(std::uint64_t n = 1) = 0;
  // The phase is over. Idempotent.
  virtual void finish() = 0;
};

// Makes the progress of one phase from its label ("store write") and total (0: unknown).
using ProgressFactory =
    std::function<std::unique_ptr<PhaseProgress>(const std::string& label, std::uint64_t total)>;

// A factory whose progress reports go nowhere.
ProgressFactory no_progress();

// The first thing that went wrong in a phase.
struct PageFailure {
  std::uint64_t page = 0;
  std::string what;  // "write", "read", "verify"
  Error error = Error::ok;
};

struct PhaseTally {
  std::uint64_t failed = 0;      // store calls that returned an error
  std::uint64_t mismatched = 0;  // pages read back with different bytes
  std::optional<PageFailure> first_failure;

  std::uint64_t errors() const { return failed + mismatched; }
  void fail(std::uint64_t page, std::string what, Error error);
  void mismatch(std::uint64_t page);
  void merge(const PhaseTally& other);
};

struct PhaseResult {
  PhaseTally tally;
  double seconds = 0;
};

// visit(page, scratch, tally): one page's work; scratch is a per-thread buffer of
// `scratch_bytes`, tally the thread's own.
using PageVisitor =
    std::function<void(std::uint64_t page, std::span<std::byte> scratch, PhaseTally& tally)>;

// Visits every page in [0, pages) once, on `threads` threads (at least 1, at most `pages`).
PhaseResult run_phase(std::uint64_t pages, unsigned threads, std::size_t scratch_bytes,
                      PhaseProgress& progress, const PageVisitor& visit);

// The page range [begin, end) thread `t` of `threads` visits.
struct PageRange {
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};
PageRange thread_range(std::uint64_t pages, unsigned threads, unsigned t);

}  // namespace zspool::tools
