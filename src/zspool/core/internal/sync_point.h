// Test-only sync points: named places in the core where a test can stop a thread to force an
// interleaving deterministically (e.g. "reclaim.handle_read": reclaim has read an object's
// handle and not yet called the evict handler).
//
// Compiled in only when ZSPOOL_SYNC_POINTS is defined (the zspool_core_syncpoints library the
// core tests link); in every other build ZSPOOL_SYNC_POINT expands to nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace zspool::testing {

using SyncCallback = std::function<void(std::uint64_t arg)>;
// Runs `callback` whenever the sync point `name` is reached (replacing any previous one).
void set_sync_point(const std::string& name, SyncCallback callback);
void clear_sync_points();
void reach_sync_point(const char* name, std::uint64_t arg);
// True in builds where sync points are compiled in.
bool sync_points_enabled();

}  // namespace zspool::testing

#ifdef ZSPOOL_SYNC_POINTS
#define ZSPOOL_SYNC_POINT(name, arg) ::zspool::testing::reach_sync_point(name, arg)
#else
#define ZSPOOL_SYNC_POINT(name, arg) ((void)0)
#endif
