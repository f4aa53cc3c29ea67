// Where zspage memory comes from: a small interface so tests can fake or fail it.
//
//   Pool ──acquire(bytes)──▶ PageSource ──▶ OS (mmap'd arenas)
//        ◀──release(p, bytes)──           ──▶ madvise(DONTNEED): RSS drops at once
//
// Contract:
//   acquire(bytes): bytes is a multiple of os::page_size(); returns read-write memory of that
//     size, aligned to os::page_size(), contiguous in virtual memory, or nullptr when the OS (or
//     an injected fault) refuses. Contents are unspecified.
//   release(p, bytes): p came from acquire(bytes) on this source; its physical pages are
//     returned to the OS before release() returns.
//   Both are thread-safe.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "zspool/platform/os.h"

namespace zspool {

class PageSource {
 public:
  virtual ~PageSource() = default;
  virtual void* acquire(std::size_t bytes) = 0;
  virtual void release(void* p, std::size_t bytes) = 0;
  // Bytes of this source's memory the OS reports resident (mincore); for tests and leak checks.
  virtual std::size_t resident_bytes() const = 0;
  // Number of mmap'd regions this source holds (each is one line of /proc/self/maps at most).
  virtual std::size_t mapping_count() const = 0;
};

// The OS-backed source. It reserves arenas of virtual memory and carves spans from them with a
// bump pointer; a released span's pages go back to the OS at once (MADV_DONTNEED) and the span's
// address range is kept on a free list per span size for reuse. Virtual space is cheap and is
// returned when the source is destroyed; physical memory is returned on every release.
//
// Invariant: sum over arenas of bump offset
//              = bytes handed out now + bytes on the free lists.
class OsPageSource final : public PageSource {
 public:
  static constexpr std::size_t kArenaBytes = std::size_t{64} << 20;

  OsPageSource() = default;
  void* acquire(std::size_t bytes) override;
  void release(void* p, std::size_t bytes) override;
  std::size_t resident_bytes() const override;
  std::size_t mapping_count() const override;

 private:
  void* carve_from_arena(std::size_t bytes);

  mutable std::mutex mutex_;
  std::vector<os::VirtualRange> arenas_;
  std::size_t arena_used_ = 0;  // bump offset into arenas_.back()
  std::unordered_map<std::size_t, std::vector<void*>> free_spans_;  // by span size
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

  void* acquire(std::size_t bytes) override;
  void release(void* p, std::size_t bytes) override { inner_->release(p, bytes); }
  std::size_t resident_bytes() const override { return inner_->resident_bytes(); }
  std::size_t mapping_count() const override { return inner_->mapping_count(); }

 private:
  std::shared_ptr<PageSource> inner_;
  std::atomic<std::uint64_t> fail_at_{0};
  std::atomic<std::uint64_t> fail_every_{0};
  std::atomic<std::uint64_t> requests_{0};
  std::atomic<std::uint64_t> failures_{0};
};

}  // namespace zspool
