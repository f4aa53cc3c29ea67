// What tests and the soak verb may reach inside a Store and users may not: the backing file, to
// inject faults into it (BackingFile::fail_write_at and friends). Not installed.
#pragma once

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
};

}  // namespace zspool
