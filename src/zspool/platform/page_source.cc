#include "zspool/platform/page_source.h"

#include <algorithm>

namespace zspool {

void* OsPageSource::pop_span(SpanLists& lists, std::size_t bytes) {
  auto it = lists.find(bytes);
  if (it == lists.end() || it->second.empty()) return nullptr;
  void* p = it->second.back();
  it->second.pop_back();
  return p;
}

void* OsPageSource::acquire(std::size_t bytes, bool* resident) {
  *resident = false;
  if (bytes == 0 || bytes % os::page_size() != 0 || bytes > kArenaBytes) return nullptr;
  std::lock_guard lock(mutex_);
  if (void* p = pop_span(dirty_spans_, bytes)) {
    dirty_bytes_ -= bytes;
    *resident = true;
    return p;
  }
  if (void* p = pop_span(clean_spans_, bytes)) return p;
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
  std::lock_guard lock(mutex_);
  dirty_spans_[bytes].push_back(p);
  dirty_bytes_ += bytes;
  if (dirty_bytes_ > cache_limit_) trim_locked();
}

std::size_t OsPageSource::cached_bytes() const {
  std::lock_guard lock(mutex_);
  return dirty_bytes_;
}

void OsPageSource::trim() {
  std::lock_guard lock(mutex_);
  trim_locked();
}

// Returns every dirty span to the OS, one madvise per run of adjacent spans: spans freed in
// allocation order (reclaim walks the LRU, compaction drains neighbours) are usually adjacent,
// so a flush costs a few TLB shootdowns instead of one per zspage.
void OsPageSource::trim_locked() {
  std::vector<std::pair<std::byte*, std::size_t>> spans;
  for (auto& [bytes, list] : dirty_spans_) {
    for (void* p : list) {
      spans.emplace_back(static_cast<std::byte*>(p), bytes);
      clean_spans_[bytes].push_back(p);
    }
    list.clear();
  }
  std::sort(spans.begin(), spans.end());
  for (std::size_t i = 0; i < spans.size();) {
    std::byte* start = spans[i].first;
    std::byte* end = start + spans[i].second;
    for (++i; i < spans.size() && spans[i].first == end; ++i) end += spans[i].second;
    os::release_pages(start, static_cast<std::size_t>(end - start));
  }
  dirty_bytes_ = 0;
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

void* FailingPageSource::acquire(std::size_t bytes, bool* resident) {
  *resident = false;
  const std::uint64_t n = requests_.fetch_add(1) + 1;
  const std::uint64_t at = fail_at_.load();
  const std::uint64_t every = fail_every_.load();
  const bool fail = at != 0 && (n == at || (every != 0 && n > at && (n - at) % every == 0));
  if (fail) {
    failures_.fetch_add(1);
    return nullptr;
  }
  return inner_->acquire(bytes, resident);
}

}  // namespace zspool
