#include "zspool/platform/internal/os_page_source.h"

#include <algorithm>

namespace zspool {

OsPageSource::Clock::time_point OsPageSource::Clock::now() noexcept {
  return time_point(os::coarse_monotonic_now());
}

// released + decay, saturating (a decay may be as long as nanoseconds::max()).
OsPageSource::Clock::time_point OsPageSource::expiry(Clock::time_point released) const {
  if (released > Clock::time_point::max() - decay_) return Clock::time_point::max();
  return released + decay_;
}

void OsPageSource::purge_if_due_locked(Clock::time_point now) {
  if (now >= next_purge_ || dirty_bytes_ > cache_limit_) purge_locked(now, false);
}

void* OsPageSource::acquire(std::size_t bytes, bool* resident) {
  *resident = false;
  if (bytes == 0 || bytes % os::page_size() != 0 || bytes > kArenaBytes) return nullptr;
  std::lock_guard lock(mutex_);
  purge_if_due_locked(Clock::now());
  if (auto it = dirty_spans_.find(bytes); it != dirty_spans_.end() && !it->second.empty()) {
    void* p = it->second.back().p;
    it->second.pop_back();
    dirty_bytes_ -= bytes;
    *resident = true;
    return p;
  }
  if (auto it = clean_spans_.find(bytes); it != clean_spans_.end() && !it->second.empty()) {
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
  std::lock_guard lock(mutex_);
  const Clock::time_point now = Clock::now();
  dirty_spans_[bytes].push_back({p, now});
  dirty_bytes_ += bytes;
  next_purge_ = std::min(next_purge_, expiry(now));
  purge_if_due_locked(now);
}

namespace {

void commit_pages(CommitMethod method, void* p, std::size_t bytes) {
  // A kernel without MADV_POPULATE_WRITE (before 5.14): the pages are written instead.
  if (method == CommitMethod::touch || !os::populate_pages(p, bytes)) os::touch_pages(p, bytes);
}

}  // namespace

void OsPageSource::populate(void* p, std::size_t bytes) {
  if (bytes == 0) return;
  const CommitCalibrator::Ticket ticket = calibrator_.next();
  if (ticket.slot == CommitCalibrator::kNoSlot) return commit_pages(ticket.method, p, bytes);
  const auto start = std::chrono::steady_clock::now();
  commit_pages(ticket.method, p, bytes);
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
          .count();
  calibrator_.record(ticket, static_cast<std::uint64_t>(ns) / (bytes / os::page_size()));
}

std::size_t OsPageSource::cached_bytes() const {
  std::lock_guard lock(mutex_);
  return dirty_bytes_;
}

void OsPageSource::trim() {
  std::lock_guard lock(mutex_);
  purge_locked(Clock::now(), true);
}

// Spans freed close together in time (reclaim walking the LRU, compaction draining neighbours, a
// burst of frees) are usually adjacent in the arena, so a purge costs a few TLB shootdowns
// instead of one per zspage.
void OsPageSource::purge_locked(Clock::time_point now, bool all) {
  std::vector<std::pair<std::byte*, std::size_t>> purged;
  auto purge_front = [&](std::size_t bytes, std::deque<DirtySpan>& list) {
    purged.emplace_back(static_cast<std::byte*>(list.front().p), bytes);
    clean_spans_[bytes].push_back(list.front().p);
    list.pop_front();
    dirty_bytes_ -= bytes;
  };
  for (auto& [bytes, list] : dirty_spans_) {
    while (!list.empty() && (all || now - list.front().released >= decay_))
      purge_front(bytes, list);
  }
  while (dirty_bytes_ > cache_limit_) {  // over the limit: the oldest go first
    std::deque<DirtySpan>* oldest = nullptr;
    std::size_t oldest_bytes = 0;
    for (auto& [bytes, list] : dirty_spans_) {
      if (!list.empty() &&
          (oldest == nullptr || list.front().released < oldest->front().released)) {
        oldest = &list;
        oldest_bytes = bytes;
      }
    }
    purge_front(oldest_bytes, *oldest);
  }
  next_purge_ = Clock::time_point::max();
  for (const auto& [bytes, list] : dirty_spans_)
    if (!list.empty()) next_purge_ = std::min(next_purge_, expiry(list.front().released));
  if (purged.empty()) return;
  std::sort(purged.begin(), purged.end());
  for (std::size_t i = 0; i < purged.size();) {
    std::byte* start = purged[i].first;
    std::byte* end = start + purged[i].second;
    for (++i; i < purged.size() && purged[i].first == end; ++i) end += purged[i].second;
    os::release_pages(start, static_cast<std::size_t>(end - start));
  }
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

std::shared_ptr<PageSource> make_os_page_source(std::size_t cache_limit,
                                                std::chrono::nanoseconds decay) {
  return std::make_shared<OsPageSource>(cache_limit, decay);
}

}  // namespace zspool
