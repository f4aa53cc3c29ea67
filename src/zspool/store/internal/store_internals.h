// What tests and the soak verb may reach inside a Store and users may not: the backing file, to
// inject faults into it (BackingFile::fail_write_at and friends). Not installed.
#pragma once

#include <functional>
#include <span>

#include "zspool/store/internal/backing_file.h"
#include "zspool/store/store.h"

namespace zspool {

struct StoreInternals {
  // The store's backing file, or nullptr without one.
  static BackingFile* backing_file(const Store& store) { return store.backing_.get(); }
  // Moves the store's clock (the access word's seconds) `seconds` forward, for idle ages.
  static void advance_clock(Store& store, std::uint64_t seconds) {
    store.clock_offset_s_.fetch_add(seconds, std::memory_order_relaxed);
  }
  // The batched writeback with a test's action in its I/O window: stages `pages` (those in the
  // pool, whatever their recency) as the CLOCK does, runs between() with no store lock held
  // but writeback_mutex_, then flushes the batch. Needs writeback_batch_pages >= pages.size()
  // and > 1. Returns the pages published to the backing file; *failed: the flush's error.
  static std::size_t stage_then_flush(Store& store, std::span<const std::uint64_t> pages,
                                      const std::function<void()>& between, Error* failed);
};

}  // namespace zspool
