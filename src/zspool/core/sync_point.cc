#include "zspool/core/sync_point.h"

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
}  // namespace

void set_sync_point(const std::string& name, SyncCallback callback) {
  std::lock_guard lock(registry_mutex());
  registry()[name] = std::move(callback);
}

void clear_sync_points() {
  std::lock_guard lock(registry_mutex());
  registry().clear();
}

void reach_sync_point(const char* name, std::uint64_t arg) {
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
