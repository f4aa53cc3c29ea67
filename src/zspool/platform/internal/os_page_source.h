// OsPageSource: the OS-backed PageSource (see page_source.h for the contract). Internal: users
// get one through make_os_page_source(); tests and the pool's internals use the class.
#pragma once

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
// Invariants: sum over arenas of bump offset = bytes handed out + dirty bytes + clean bytes
//             cached_bytes() = dirty bytes <= cache_limit (between calls)
//             every dirty span was released less than `decay` ago (as of the last call)
//             next_purge_ <= min over dirty spans of (released + decay); max() when none
// Time is CLOCK_MONOTONIC_COARSE (a few ns to read, one tick of 1-4 ms resolution, fine for a
// 10 ms decay); a call scans the dirty lists only once next_purge_ has passed or the cache is
// over its limit, so the hot acquire/release pair costs one lock, one map lookup, one clock read.
class OsPageSource final : public PageSource {
 public:
  static constexpr std::size_t kArenaBytes = std::size_t{64} << 20;
  static constexpr std::size_t kDefaultCacheLimit = kDefaultPageCacheBytes;
  static constexpr std::chrono::milliseconds kDefaultDecay = kDefaultPageCacheDecay;

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
  void* carve_from_arena(std::size_t bytes);
  Clock::time_point expiry(Clock::time_point released) const;
  // purge_locked(now, false) when a dirty span may have expired or the cache is over its limit.
  void purge_if_due_locked(Clock::time_point now);
  // Returns expired spans (or the oldest, while over the limit) to the OS; all of them if `all`.
  // Recomputes next_purge_.
  void purge_locked(Clock::time_point now, bool all);

  const std::size_t cache_limit_;
  const std::chrono::nanoseconds decay_;
  mutable SpinThenBlockMutex mutex_;
  std::vector<os::VirtualRange> arenas_;
  std::size_t arena_used_ = 0;  // bump offset into arenas_.back()
  // Per span size, oldest first: acquire takes the newest (back), purge the oldest (front).
  std::unordered_map<std::size_t, std::deque<DirtySpan>> dirty_spans_;
  std::size_t dirty_bytes_ = 0;
  Clock::time_point next_purge_ = Clock::time_point::max();
  std::unordered_map<std::size_t, std::vector<void*>> clean_spans_;  // pages returned to the OS
  CommitCalibrator calibrator_;  // lock-free: populate() takes no lock
};

}  // namespace zspool
