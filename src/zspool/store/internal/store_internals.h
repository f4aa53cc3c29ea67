// What tests and the soak verb may reach inside a Store and users may not: the backing file, to
// inject faults into it (BackingFile::fail_write_at and friends). Not installed.
#pragma once

#include "zspool/store/internal/backing_file.h"
#include "zspool/store/store.h"

namespace zspool {

struct StoreInternals {
  // The store's backing file, or nullptr without one.
  static BackingFile* backing_file(const Store& store) { return store.backing_.get(); }
};

}  // namespace zspool
