// Where zspage memory comes from: a small interface so tests can fake or fail it.
//
//   Pool ──acquire(bytes)──▶ PageSource ──▶ OS (mmap'd arenas)
//        ◀──release(p, bytes)──           ──▶ madvise(DONTNEED): RSS drops at once
//
// Contract:
//   acquire(bytes, &resident): bytes is a multiple of os::page_size(); returns read-write memory
//     of that size, aligned to os::page_size(), contiguous in virtual memory, or nullptr when the
//     OS (or an injected fault) refuses. Contents are unspecified. `resident` says whether its
//     pages may already be resident (a reused cached span); if false, no page of it is resident
//     until touched, so the caller can commit memory lazily and count exactly what it touches.
//   release(p, bytes): p came from acquire(bytes) on this source; its physical pages are
//     returned to the OS before release() returns.
//   populate(p, bytes): [p, p + bytes) lies inside one span from acquire(), page-aligned; its
//     pages become resident now, as if written, so the caller's first writes take no page
//     fault. Only for pages the caller counts as held from now on (lazy commit stays exact).
//     A source may do nothing; the pages then fault in on first touch.
//   Both are thread-safe.
//   A source may keep released spans briefly for reuse (cached_bytes(), at most a bound fixed at
//   construction); trim() returns them to the OS now.
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

#include "zspool/platform/os.h"
#include "zspool/platform/spin_mutex.h"

namespace zspool {

class PageSource {
 public:
  virtual ~PageSource() = default;
  virtual void* acquire(std::size_t bytes, bool* resident) = 0;
  virtual void release(void* p, std::size_t bytes) = 0;
  virtual void populate(void* p, std::size_t bytes) {
    (void)p;
    (void)bytes;
  }
  // Bytes of this source's memory the OS reports resident (mincore); for tests and leak checks.
  virtual std::size_t resident_bytes() const = 0;
  // Number of mmap'd regions this source holds (each is one line of /proc/self/maps at most).
  virtual std::size_t mapping_count() const = 0;
  // Bytes released by the pool but still resident, kept for reuse.
  virtual std::size_t cached_bytes() const { return 0; }
  // Returns every cached span's pages to the OS now.
  virtual void trim() {}
};

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
  static constexpr std::size_t kDefaultCacheLimit = std::size_t{32} << 20;
  static constexpr std::chrono::milliseconds kDefaultDecay{10};

  explicit OsPageSource(std::size_t cache_limit = kDefaultCacheLimit,
                        std::chrono::nanoseconds decay = kDefaultDecay)
      : cache_limit_(cache_limit), decay_(decay) {}
  void* acquire(std::size_t bytes, bool* resident) override;
  void release(void* p, std::size_t bytes) override;
  // MADV_POPULATE_WRITE: a fresh page costs one call instead of a page fault (os.h).
  void populate(void* p, std::size_t bytes) override { os::populate_pages(p, bytes); }
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
};

// Fault injection: passes requests to another source, but refuses acquire number `fail_at`
// (1-based) and, if `fail_every` > 0, every `fail_every`-th request after it.
class FailingPageSource final : public PageSource {
 public:
  explicit FailingPageSource(std::shared_ptr<PageSource> inner) : inner_(std::move(inner)) {}
  void fail_at(std::uint64_t nth, std::uint64_t every = 0) {
    fail_at_.store(nth);
    fail_every_.store(every);
  }
  std::uint64_t requests() const { return requests_.load(); }
  std::uint64_t failures() const { return failures_.load(); }

  void* acquire(std::size_t bytes, bool* resident) override;
  void release(void* p, std::size_t bytes) override { inner_->release(p, bytes); }
  void populate(void* p, std::size_t bytes) override { inner_->populate(p, bytes); }
  std::size_t resident_bytes() const override { return inner_->resident_bytes(); }
  std::size_t mapping_count() const override { return inner_->mapping_count(); }
  std::size_t cached_bytes() const override { return inner_->cached_bytes(); }
  void trim() override { inner_->trim(); }

 private:
  std::shared_ptr<PageSource> inner_;
  std::atomic<std::uint64_t> fail_at_{0};
  std::atomic<std::uint64_t> fail_every_{0};
  std::atomic<std::uint64_t> requests_{0};
  std::atomic<std::uint64_t> failures_{0};
};

}  // namespace zspool
