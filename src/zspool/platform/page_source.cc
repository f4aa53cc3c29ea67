#include "zspool/platform/page_source.h"

namespace zspool {

void* OsPageSource::acquire(std::size_t bytes) {
  if (bytes == 0 || bytes % os::page_size() != 0 || bytes > kArenaBytes) return nullptr;
  std::lock_guard lock(mutex_);
  auto it = free_spans_.find(bytes);
  if (it != free_spans_.end() && !it->second.empty()) {
    void* p = it->second.back();
    it->second.pop_back();
    return p;
  }
  return carve_from_arena(bytes);
}

void* OsPageSource::carve_from_arena(std::size_t bytes) {
  if (arenas_.empty() || arena_used_ + bytes > arenas_.back().size()) {
    os::VirtualRange arena(kArenaBytes);
    if (!arena.ok()) return nullptr;
    arenas_.push_back(std::move(arena));
    arena_used_ = 0;
  }
  void* p = arenas_.back().base() + arena_used_;
  arena_used_ += bytes;
  return p;
}

void OsPageSource::release(void* p, std::size_t bytes) {
  os::release_pages(p, bytes);
  std::lock_guard lock(mutex_);
  free_spans_[bytes].push_back(p);
}

std::size_t OsPageSource::resident_bytes() const {
  std::lock_guard lock(mutex_);
  std::size_t total = 0;
  for (const auto& arena : arenas_) total += os::resident_bytes(arena.base(), arena.size());
  return total;
}

std::size_t OsPageSource::mapping_count() const {
  std::lock_guard lock(mutex_);
  return arenas_.size();
}

void* FailingPageSource::acquire(std::size_t bytes) {
  const std::uint64_t n = requests_.fetch_add(1) + 1;
  const std::uint64_t at = fail_at_.load();
  const std::uint64_t every = fail_every_.load();
  const bool fail = at != 0 && (n == at || (every != 0 && n > at && (n - at) % every == 0));
  if (fail) {
    failures_.fetch_add(1);
    return nullptr;
  }
  return inner_->acquire(bytes);
}

}  // namespace zspool
