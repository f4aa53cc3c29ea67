#include "zspool/platform/internal/os_page_source.h"

#include <algorithm>
#include <array>
#include <atomic>

namespace zspool {

OsPageSource::Clock::time_point OsPageSource::Clock::now() noexcept {
  return time_point(os::coarse_monotonic_now());
}

// released + decay, saturating (a decay may be as long as nanoseconds::max()).
OsPageSource::Clock::time_point OsPageSource::expiry(Clock::time_point released) const {
  if (released > Clock::time_point::max() - decay_) return Clock::time_point::max();
  return released + decay_;
}

namespace {

// Live threads per cache, shared by every OsPageSource: a thread takes the cache the fewest live
// threads hold (ties: the lowest index), and gives it back when it exits. So two threads never
// share a cache while another is free, and a new thread adopts the cache, and the spans still
// in it, of one that has gone. (Choosing by a thread number that only grew put every fourth new
// thread in a long-lived thread's cache: every fourth repetition of the two-thread benchmark ran
// at 7-21 M malloc+free a second against 17-32 M for the others, BENCHMARKS.md "Issue 16, fourth
// pass".)
std::array<std::atomic<std::uint32_t>, OsPageSource::kShards> g_threads_in_shard{};

std::size_t take_least_held_shard() {
  for (;;) {
    std::size_t best = 0;
    std::uint32_t fewest = g_threads_in_shard[0].load(std::memory_order_relaxed);
    for (std::size_t i = 1; i < g_threads_in_shard.size(); ++i) {
      const std::uint32_t n = g_threads_in_shard[i].load(std::memory_order_relaxed);
      if (n < fewest) {
        fewest = n;
        best = i;
      }
    }
    // Only if it is still the count we chose by: two threads starting at once take two caches.
    if (g_threads_in_shard[best].compare_exchange_weak(fewest, fewest + 1,
                                                       std::memory_order_relaxed))
      return best;
  }
}

// Gives the thread's cache back at thread exit. The shard number itself lives in a separate,
// trivially destructible thread_local, so a page-source call made later in the thread's exit
// (another thread_local's destructor freeing pool memory) still reads it.
struct ShardHold {
  std::size_t shard;
  ~ShardHold() { g_threads_in_shard[shard].fetch_sub(1, std::memory_order_relaxed); }
};

}  // namespace

std::size_t OsPageSource::my_shard() {
  thread_local const std::size_t shard = take_least_held_shard();
  thread_local const ShardHold hold{shard};
  (void)hold;
  return shard;
}

void OsPageSource::lower_next_purge_any(Clock::time_point t) {
  Clock::rep seen = next_purge_any_.load(std::memory_order_relaxed);
  const Clock::rep want = t.time_since_epoch().count();
  while (want < seen &&
         !next_purge_any_.compare_exchange_weak(seen, want, std::memory_order_relaxed)) {
  }
}

std::size_t OsPageSource::dirty_total() const {
  std::size_t total = 0;
  for (const Shard& shard : shards_) total += shard.dirty_bytes.load(std::memory_order_relaxed);
  return total;
}

void OsPageSource::purge_if_due(Clock::time_point now, std::size_t shard_bytes) {
  if (now.time_since_epoch().count() >= next_purge_any_.load(std::memory_order_relaxed) ||
      (shard_bytes > cache_limit_ / kShards && dirty_total() > cache_limit_))
    purge(now, false);
}

std::size_t OsPageSource::add_dirty_bytes(Shard& shard, std::ptrdiff_t delta) {
  const std::size_t now =
      shard.dirty_bytes.load(std::memory_order_relaxed) + static_cast<std::size_t>(delta);
  shard.dirty_bytes.store(now, std::memory_order_relaxed);
  return now;
}

void* OsPageSource::take_dirty_locked(Shard& shard, std::size_t bytes) {
  auto it = shard.dirty.find(bytes);
  if (it == shard.dirty.end() || it->second.empty()) return nullptr;
  void* p = it->second.back().p;
  it->second.pop_back();
  add_dirty_bytes(shard, -static_cast<std::ptrdiff_t>(bytes));
  return p;
}

void* OsPageSource::acquire(std::size_t bytes, bool* resident) {
  *resident = false;
  if (bytes == 0 || bytes % os::page_size() != 0 || bytes > kArenaBytes) return nullptr;
  purge_if_due(Clock::now());
  const std::size_t mine = my_shard();
  for (std::size_t i = 0; i < kShards; ++i) {  // this thread's cache first, then the others'
    Shard& shard = shards_[(mine + i) % kShards];
    std::unique_lock lock(shard.mutex, std::defer_lock);
    if (i == 0) {
      lock.lock();
    } else if (shard.dirty_bytes.load(std::memory_order_relaxed) == 0 || !lock.try_lock()) {
      continue;
    }
    if (void* p = take_dirty_locked(shard, bytes)) {
      *resident = true;
      return p;
    }
  }
  return take_clean_or_carve(bytes);
}

void* OsPageSource::take_clean_or_carve(std::size_t bytes) {
  std::lock_guard lock(arena_mutex_);
  if (auto it = clean_spans_.find(bytes); it != clean_spans_.end() && !it->second.empty()) {
    void* p = it->second.back();
    it->second.pop_back();
    return p;
  }
  return carve_from_arena_locked(bytes);
}

void* OsPageSource::carve_from_arena_locked(std::size_t bytes) {
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
  const Clock::time_point now = Clock::now();
  std::size_t shard_bytes = 0;
  {
    Shard& shard = shards_[my_shard()];
    std::lock_guard lock(shard.mutex);
    shard.dirty[bytes].push_back({p, now});
    shard_bytes = add_dirty_bytes(shard, static_cast<std::ptrdiff_t>(bytes));
    if (shard.next_purge == Clock::time_point::max()) {
      shard.next_purge = expiry(now);
      lower_next_purge_any(shard.next_purge);
    }
  }
  purge_if_due(now, shard_bytes);
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
  return dirty_total();
}

void OsPageSource::trim() {
  purge(Clock::now(), true);
}

// Spans freed close together in time (reclaim walking the LRU, compaction draining neighbours, a
// burst of frees) are usually adjacent in the arena, so a purge costs a few TLB shootdowns
// instead of one per zspage.
void OsPageSource::purge(Clock::time_point now, bool all) {
  std::vector<std::pair<std::byte*, std::size_t>> purged;
  {
    std::array<std::unique_lock<SpinThenBlockMutex>, kShards> locks;
    for (std::size_t i = 0; i < kShards; ++i) locks[i] = std::unique_lock(shards_[i].mutex);
    auto purge_front = [&](Shard& shard, std::size_t bytes, std::deque<DirtySpan>& list) {
      purged.emplace_back(static_cast<std::byte*>(list.front().p), bytes);
      list.pop_front();
      add_dirty_bytes(shard, -static_cast<std::ptrdiff_t>(bytes));
    };
    for (Shard& shard : shards_)
      for (auto& [bytes, list] : shard.dirty)
        while (!list.empty() && (all || now - list.front().released >= decay_))
          purge_front(shard, bytes, list);
    while (dirty_total() > cache_limit_) {  // the oldest first
      Shard* oldest_shard = nullptr;
      std::deque<DirtySpan>* oldest = nullptr;
      std::size_t oldest_bytes = 0;
      for (Shard& shard : shards_)
        for (auto& [bytes, list] : shard.dirty)
          if (!list.empty() &&
              (oldest == nullptr || list.front().released < oldest->front().released)) {
            oldest_shard = &shard;
            oldest = &list;
            oldest_bytes = bytes;
          }
      purge_front(*oldest_shard, oldest_bytes, *oldest);
    }
    Clock::time_point earliest = Clock::time_point::max();
    for (Shard& shard : shards_) {
      shard.next_purge = Clock::time_point::max();
      for (const auto& [bytes, list] : shard.dirty)
        if (!list.empty())
          shard.next_purge = std::min(shard.next_purge, expiry(list.front().released));
      earliest = std::min(earliest, shard.next_purge);
    }
    next_purge_any_.store(earliest.time_since_epoch().count(), std::memory_order_relaxed);
  }
  if (purged.empty()) return;
  std::sort(purged.begin(), purged.end());
  for (std::size_t i = 0; i < purged.size();) {
    std::byte* start = purged[i].first;
    std::byte* end = start + purged[i].second;
    for (++i; i < purged.size() && purged[i].first == end; ++i) end += purged[i].second;
    os::release_pages(start, static_cast<std::size_t>(end - start));
  }
  std::lock_guard lock(arena_mutex_);
  for (const auto& [p, bytes] : purged) clean_spans_[bytes].push_back(p);
}

std::size_t OsPageSource::resident_bytes() const {
  std::lock_guard lock(arena_mutex_);
  std::size_t total = 0;
  for (const auto& arena : arenas_) total += os::resident_bytes(arena.base(), arena.size());
  return total;
}

std::size_t OsPageSource::mapping_count() const {
  std::lock_guard lock(arena_mutex_);
  return arenas_.size();
}

std::shared_ptr<PageSource> make_os_page_source(std::size_t cache_limit,
                                                std::chrono::nanoseconds decay) {
  return std::make_shared<OsPageSource>(cache_limit, decay);
}

}  // namespace zspool
