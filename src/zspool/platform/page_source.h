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

#include <chrono>
#include <cstddef>
#include <memory>

#include "zspool/platform/export.h"

namespace zspool {

class ZSPOOL_API PageSource {
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

// The OS-backed source every pool uses unless given another (OsPageSource in
// platform/internal/os_page_source.h): arenas of reserved virtual memory, spans carved with a
// bump pointer, released spans kept resident for reuse for `decay` (at most `cache_limit` bytes
// of them) before they go back to the OS; cache_limit 0: every release goes back at once.
inline constexpr std::size_t kDefaultPageCacheBytes = std::size_t{32} << 20;
inline constexpr std::chrono::milliseconds kDefaultPageCacheDecay{10};
ZSPOOL_API std::shared_ptr<PageSource> make_os_page_source(
    std::size_t cache_limit = kDefaultPageCacheBytes,
    std::chrono::nanoseconds decay = kDefaultPageCacheDecay);

}  // namespace zspool
