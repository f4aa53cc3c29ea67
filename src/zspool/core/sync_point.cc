#include "zspool/core/internal/sync_point.h"

#include <atomic>
#include <map>
#include <mutex>

namespace zspool::testing {

namespace {
std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
std::map<std::string, SyncCallback>& registry() {
  static std::map<std::string, SyncCallback> r;
  return r;
}
// Callbacks registered: while 0, a sync point returns without taking the registry mutex, so
// the hot paths that carry sync points (malloc) stay concurrent in the stress tests.
std::atomic<std::size_t> registered{0};
}  // namespace

void set_sync_point(const std::string& name, SyncCallback callback) {
  std::lock_guard lock(registry_mutex());
  registry()[name] = std::move(callback);
  registered.store(registry().size(), std::memory_order_release);
}

void clear_sync_points() {
  std::lock_guard lock(registry_mutex());
  registry().clear();
  registered.store(0, std::memory_order_release);
}

void reach_sync_point(const char* name, std::uint64_t arg) {
  if (registered.load(std::memory_order_acquire) == 0) return;
  SyncCallback callback;
  {
    std::lock_guard lock(registry_mutex());
    auto it = registry().find(name);
    if (it == registry().end()) return;
    callback = it->second;
  }
  callback(arg);
}

bool sync_points_enabled() {
#ifdef ZSPOOL_SYNC_POINTS
  return true;
#else
  return false;
#endif
}

}  // namespace zspool::testing
