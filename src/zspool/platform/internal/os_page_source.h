// OsPageSource: the OS-backed PageSource (see page_source.h for the contract). Internal: users
// get one through make_os_page_source(); tests and the pool's internals use the class.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "zspool/platform/internal/commit_calibrator.h"
#include "zspool/platform/internal/os.h"
#include "zspool/platform/internal/spin_mutex.h"
#include "zspool/platform/page_source.h"

namespace zspool {

// The OS-backed source. It reserves arenas of virtual memory and carves spans from them with a
// bump pointer. A released span stays resident ("dirty") for a short decay time, so churn reuses
// it with no syscall and no page fault; spans older than `decay`, or the oldest ones beyond
// `cache_limit` bytes, go back to the OS together (MADV_DONTNEED, adjacent spans coalesced into
// one call), checked on every acquire/release; trim() returns them all now. The returned
// address ranges join a free list per span size; virtual space is returned when the source is
// destroyed. Why delay at all: in a VM, MADV_DONTNEED's TLB shootdown costs ~50 us here and the
// next touch of each page faults again, which would dominate churn and reclaim; mimalloc
// (purge_delay) and jemalloc (dirty_decay_ms) delay purging for the same reason.
//
// Dirty spans are kept in kShards caches, each behind its own lock on cache lines of its own; a
// thread releases into, and acquires first from, the cache it holds (at its first call, the one
// the fewest live threads hold; given back when it exits, spans and all), so threads
// churning zspages (a pool's class shards, one per thread that contends) do not take turns on
// one lock or write one list. acquire() then looks in the other caches before it carves fresh
// memory (skipping a cache whose lock is taken: it is busy, and a fresh span costs less than a
// wait), so a span freed by one thread is mostly reused by another before the arena grows.
// Measured with core_benchmark's BM_ZspoolMallocFreeThreaded (BENCHMARKS.md, "Issue 16, third
// pass: two threads on one pool").
//
//   shard 0 ┌ mutex │ dirty spans by size │ dirty_bytes │ next_purge ┐  (alignas 64)
//   shard 1 ├ ...                                                   ┤
//   ...     └ ...                                                   ┘
//   arena_mutex_ ┌ arenas_ │ arena_used_ │ clean_spans_ ┐
//   next_purge_any_ (atomic, a line of its own)
//
// Lock order: shard mutexes in index order (a purge takes all of them) -> arena_mutex_.
// A purge collects the spans to return under the shard locks, returns their pages with no lock
// held, then files their ranges as clean under arena_mutex_: a range is never reissued before
// its pages are gone, so a purge never wipes memory someone else has been given.
//
// Invariants: sum over arenas of bump offset = bytes handed out + dirty + clean + being purged
//             cached_bytes() = sum over shards of dirty_bytes <= cache_limit (between calls)
//             every dirty span was released less than `decay` ago (as of the last purge)
//             next_purge_any_ <= min over shards of next_purge <= min over dirty spans of
//             (released + decay); max() when none
// Time is CLOCK_MONOTONIC_COARSE (a few ns to read, one tick of 1-4 ms resolution, fine for a
// 10 ms decay); a call purges only once next_purge_any_ has passed or the cache is over its
// limit, so the hot acquire/release pair costs one uncontended lock, one map lookup and one clock
// read, and writes no line another shard writes. Over-limit checks read only the releasing
// shard's bytes until it holds more than cache_limit / kShards.
class OsPageSource final : public PageSource {
 public:
  static constexpr std::size_t kArenaBytes = std::size_t{64} << 20;
  static constexpr std::size_t kDefaultCacheLimit = kDefaultPageCacheBytes;
  static constexpr std::chrono::milliseconds kDefaultDecay = kDefaultPageCacheDecay;
  static constexpr std::size_t kShards = 4;  // caches of dirty spans (see above)

  // `commit`: how populate() commits pages; automatic: the cheaper way here, timed on the
  // first commits (internal/commit_calibrator.h).
  explicit OsPageSource(std::size_t cache_limit = kDefaultCacheLimit,
                        std::chrono::nanoseconds decay = kDefaultDecay,
                        CommitMethod commit = CommitMethod::automatic)
      : cache_limit_(cache_limit), decay_(decay), calibrator_(commit) {}
  void* acquire(std::size_t bytes, bool* resident) override;
  void release(void* p, std::size_t bytes) override;
  // MADV_POPULATE_WRITE (one call for the run) or a write fault a page, whichever this host
  // commits a page faster with (os.h, internal/commit_calibrator.h).
  void populate(void* p, std::size_t bytes) override;
  // The way populate() commits from now on; automatic while it is still timing both.
  CommitMethod commit_method() const { return calibrator_.chosen(); }
  std::size_t resident_bytes() const override;
  std::size_t mapping_count() const override;
  std::size_t cached_bytes() const override;
  void trim() override;
  // Which of the kShards caches the calling thread uses first (for tests).
  static std::size_t cache_of_this_thread() { return my_shard(); }

 private:
  // CLOCK_MONOTONIC_COARSE as a std::chrono clock.
  struct Clock {
    using duration = std::chrono::nanoseconds;
    using rep = duration::rep;
    using period = duration::period;
    using time_point = std::chrono::time_point<Clock>;
    static constexpr bool is_steady = true;
    static time_point now() noexcept;
  };
  struct DirtySpan {
    void* p;
    Clock::time_point released;
  };
  struct alignas(64) Shard {
    mutable SpinThenBlockMutex mutex;
    // Per span size, oldest first: acquire takes the newest (back), purge the oldest (front).
    std::unordered_map<std::size_t, std::deque<DirtySpan>> dirty;
    // Written under `mutex`; read without it as a hint (is there anything to take here?).
    std::atomic<std::size_t> dirty_bytes{0};
    Clock::time_point next_purge = Clock::time_point::max();
  };
  // The cache this thread uses first: taken at its first call (the one the fewest live threads
  // hold), given back at its exit (page_source.cc).
  static std::size_t my_shard();
  // Adds delta to shard.dirty_bytes (its lock held); returns the new value.
  static std::size_t add_dirty_bytes(Shard& shard, std::ptrdiff_t delta);
  // A dirty span of `bytes` from `shard` (its lock held), or nullptr.
  void* take_dirty_locked(Shard& shard, std::size_t bytes);
  void* take_clean_or_carve(std::size_t bytes);
  void* carve_from_arena_locked(std::size_t bytes);
  Clock::time_point expiry(Clock::time_point released) const;
  // Sum of the shards' dirty bytes (relaxed reads).
  std::size_t dirty_total() const;
  // purge(now, false) when a dirty span may have expired; after a release into a shard now
  // holding `shard_bytes`, also when the cache is over its limit (the shards are summed only
  // once this one holds more than its share).
  void purge_if_due(Clock::time_point now, std::size_t shard_bytes = 0);
  // Returns expired spans (or the oldest, while over the limit) to the OS; all of them if `all`.
  // Recomputes every shard's next_purge and next_purge_any_. Takes every shard's lock.
  void purge(Clock::time_point now, bool all);
  // The earliest expiry any shard may have is at most t.
  void lower_next_purge_any(Clock::time_point t);

  const std::size_t cache_limit_;
  const std::chrono::nanoseconds decay_;
  std::array<Shard, kShards> shards_;
  // Read by every call, written about once a decay: a cache line of its own.
  alignas(64) std::atomic<Clock::rep> next_purge_any_{
      Clock::time_point::max().time_since_epoch().count()};
  mutable SpinThenBlockMutex arena_mutex_;
  std::vector<os::VirtualRange> arenas_;
  std::size_t arena_used_ = 0;  // bump offset into arenas_.back()
  std::unordered_map<std::size_t, std::vector<void*>> clean_spans_;  // pages returned to the OS
  CommitCalibrator calibrator_;  // lock-free: populate() takes no lock
};

}  // namespace zspool
