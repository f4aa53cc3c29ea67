// The store's writeback policy (issue 14): the per-page access word, the CLOCK that picks the
// pages to write back, idle marking, selective writeback, the writeback budget, and the
// background writer and compactor. store.h documents the access word's bits, the locking and
// the protocols; store.cc holds the page table, write, read and the evict handler.
#include <algorithm>
#include <array>
#include <limits>
#include <utility>

#include "zspool/platform/internal/os.h"
#include "zspool/store/internal/backing_file.h"
#include "zspool/store/internal/store_internals.h"
#include "zspool/store/internal/writeback_batch.h"
#include "zspool/store/store.h"

namespace zspool {

namespace {

constexpr std::array<std::string_view, 2> kPolicyNames = {"page", "zspage"};
constexpr std::array<std::string_view, 5> kKindNames = {"idle", "huge", "incompressible",
                                                        "idle+huge", "all"};

// Rounds of write-back-then-compact the page policy tries before it gives up on a target.
constexpr int kMaxReclaimRounds = 8;
// How often the background thread looks at the pool without being woken (compaction, and a
// wake-up a writer's notify may have raced with).
constexpr std::chrono::milliseconds kBackgroundPeriod{100};

}  // namespace

namespace {

// The enum whose name (its index in `names`) is `name`.
template <typename Enum, std::size_t N>
std::optional<Enum> parse_name(const std::array<std::string_view, N>& names,
                               std::string_view name) {
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == name) return static_cast<Enum>(i);
  }
  return std::nullopt;
}

}  // namespace

// "?" for a value outside the enum (a cast from a bad integer), like recompress_kind_name.
template <std::size_t N>
std::string_view name_or_unknown(const std::array<std::string_view, N>& names, std::size_t i) {
  return i < N ? names[i] : "?";
}

std::string_view writeback_policy_name(WritebackPolicy policy) {
  return name_or_unknown(kPolicyNames, static_cast<std::size_t>(policy));
}

std::optional<WritebackPolicy> parse_writeback_policy(std::string_view name) {
  return parse_name<WritebackPolicy>(kPolicyNames, name);
}

std::string_view writeback_kind_name(WritebackKind kind) {
  return name_or_unknown(kKindNames, static_cast<std::size_t>(kind));
}

std::optional<WritebackKind> parse_writeback_kind(std::string_view name) {
  return parse_name<WritebackKind>(kKindNames, name);
}

// ── the access word ──────────────────────────────────────────────────────────────────────────

// Every write stamps its page, so the coarse clock (whole seconds need no better; it may lag
// born_, read from the fine clock, by a tick: that truncates to 0 s).
std::uint32_t Store::now_seconds() const {
  const std::chrono::steady_clock::time_point now(os::coarse_monotonic_now());
  const auto since = std::chrono::duration_cast<std::chrono::seconds>(now - born_);
  const std::uint64_t s =
      static_cast<std::uint64_t>(since.count()) + clock_offset_s_.load(std::memory_order_relaxed);
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(s, kTimeMask));
}

void Store::forget_idle(std::uint32_t old_word) {
  if ((old_word & kIdle) != 0) counters_.idle_pages.fetch_sub(1, std::memory_order_relaxed);
}

namespace {

// Replaces the word with next_of(old) atomically; returns {old, new}.
template <typename NextOf>
std::pair<std::uint32_t, std::uint32_t> update_word(std::atomic<std::uint32_t>& w,
                                                    NextOf&& next_of) {
  std::uint32_t old = w.load(std::memory_order_relaxed);
  std::uint32_t next = next_of(old);
  while (!w.compare_exchange_weak(old, next, std::memory_order_relaxed)) next = next_of(old);
  return {old, next};
}

}  // namespace

// A read (stripe lock held): referenced, not idle, accessed now. The residency and
// incompressible bits stay as publish set them.
void Store::touch(std::uint64_t index, std::uint32_t ref) {
  std::atomic<std::uint32_t>* w = access(index);
  if (w == nullptr) return;
  const std::uint32_t now = now_seconds();
  const auto [old, next] = update_word(*w, [&](std::uint32_t word) {
    const bool resident = (word & kResident) != 0;
    const std::uint32_t r = resident ? std::max(ref_of(word), ref) : 0;
    return (word & (kResident | kIncompressible)) | (r << kRefShift) | now;
  });
  forget_idle(old);
}

// publish's part (stripe lock held): a page that enters the pool is referenced (a write) and
// keeps a higher count it had; one that leaves it (written back, discarded, same-filled) has
// no count, no idle mark and no incompressible mark.
void Store::set_access(std::uint64_t index, bool resident, bool incompressible) {
  std::atomic<std::uint32_t>* w = access(index);
  if (w == nullptr) return;
  const std::uint32_t now = now_seconds();
  const auto [old, next] = update_word(*w, [&](std::uint32_t word) {
    if (!resident) return now;
    const std::uint32_t r = std::max(ref_of(word), kRefOnWrite);
    return now | kResident | (incompressible ? kIncompressible : 0) | (r << kRefShift);
  });
  forget_idle(old);
  const std::uint32_t both = kResident | kIncompressible;
  if ((old & both) == both) counters_.incompressible_pages.fetch_sub(1, std::memory_order_relaxed);
  if ((next & both) == both) counters_.incompressible_pages.fetch_add(1, std::memory_order_relaxed);
}

// publish_recompressed's part (stripe lock held): recency and the idle mark stay; the
// incompressible mark goes.
void Store::clear_incompressible(std::uint64_t index) {
  std::atomic<std::uint32_t>* w = access(index);
  if (w == nullptr) return;
  const auto [old, next] =
      update_word(*w, [](std::uint32_t word) { return word & ~kIncompressible; });
  const std::uint32_t both = kResident | kIncompressible;
  if ((old & both) == both) counters_.incompressible_pages.fetch_sub(1, std::memory_order_relaxed);
}

// Calls f(index, word) for every page whose chunk was made, in ascending order, while f
// returns true.
template <typename F>
void Store::for_each_access_word(F&& f) const {
  for (std::uint64_t base = 0; base < options_.pages; base += kEntryChunk) {
    std::atomic<std::uint32_t>* first = access_.find(base);
    if (first == nullptr) continue;
    const std::uint64_t end = std::min<std::uint64_t>(base + kEntryChunk, options_.pages);
    for (std::uint64_t i = base; i < end; ++i) {
      if (!f(i, first[i - base])) return;
    }
  }
}

bool Store::in_memory(std::uint64_t index) const {
  if (index >= options_.pages) return false;
  std::lock_guard lock(stripe(index));
  const Entry* e = entries_.find(index);
  return e != nullptr &&
         (e->kind == Kind::compressed || e->kind == Kind::huge || e->kind == Kind::same_filled);
}

// ── idle ─────────────────────────────────────────────────────────────────────────────────────

std::size_t Store::mark_idle() {
  return mark_idle(std::chrono::seconds(0));
}

std::size_t Store::mark_idle(std::chrono::seconds age) {
  const std::uint32_t now = now_seconds();
  const auto min_age = static_cast<std::uint64_t>(std::max<std::int64_t>(age.count(), 0));
  std::size_t marked = 0;
  for_each_access_word([&](std::uint64_t, std::atomic<std::uint32_t>& w) {
    std::uint32_t old = w.load(std::memory_order_relaxed);
    while ((old & kResident) != 0 && (old & kIdle) == 0 && now - (old & kTimeMask) >= min_age) {
      if (w.compare_exchange_weak(old, old | kIdle, std::memory_order_relaxed)) {
        counters_.idle_pages.fetch_add(1, std::memory_order_relaxed);
        ++marked;
        break;
      }
    }
    return true;
  });
  return marked;
}

// ── the budget ───────────────────────────────────────────────────────────────────────────────

void Store::set_writeback_limit(std::optional<std::uint64_t> pages) {
  counters_.writeback_limit.store(pages.value_or(0), std::memory_order_relaxed);
  counters_.writeback_limit_enable.store(pages ? 1 : 0, std::memory_order_release);
}

// One page of the budget, or false (counted) when it is spent. Without a budget: always true.
bool Store::take_budget() {
  if (counters_.writeback_limit_enable.load(std::memory_order_acquire) == 0) return true;
  std::uint64_t left = counters_.writeback_limit.load(std::memory_order_relaxed);
  while (left > 0) {
    if (counters_.writeback_limit.compare_exchange_weak(left, left - 1, std::memory_order_relaxed))
      return true;
  }
  counters_.writeback_limit_refused.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void Store::return_budget() {
  if (counters_.writeback_limit_enable.load(std::memory_order_acquire) != 0)
    counters_.writeback_limit.fetch_add(1, std::memory_order_relaxed);
}

// ── choosing and writing back pages ──────────────────────────────────────────────────────────

// Writes back (or stages, with batches) page `index` if it is still in the pool and
// wanted(word, entry) holds under its stripe lock. *bytes: the stored bytes that went or were
// staged (0: none).
template <typename Wanted>
Error Store::write_back_if(std::uint64_t index, Wanted&& wanted, std::size_t* bytes) {
  *bytes = 0;
  std::lock_guard lock(stripe(index));
  Entry* e = entries_.find(index);
  std::atomic<std::uint32_t>* w = access(index);
  if (e == nullptr || w == nullptr) return Error::ok;
  if (e->kind != Kind::compressed && e->kind != Kind::huge) return Error::ok;
  if (!wanted(w->load(std::memory_order_relaxed), *e)) return Error::ok;
  const std::size_t length = e->length;
  const Error r = batch_ ? stage_locked(index, *e) : write_back_locked(index, *e);
  if (r == Error::ok) *bytes = length;
  return r;
}

bool Store::batch_full() const {
  return batch_ && batch_->full();
}

// Copies the page's object into the batch (stripe lock held) and takes its page of the budget.
Error Store::stage_locked(std::uint64_t index, const Entry& e) {
  if (!take_budget()) return Error::limit_reached;
  const std::size_t k = batch_->pages.size();
  if (const Error r = pool_->read(e.value, batch_->object_bytes(k, e.length)); r != Error::ok) {
    return_budget();
    return r;
  }
  batch_->pages.push_back({index, e});
  return Error::ok;
}

// The page still holds what was staged (stripe lock taken here): it goes to `slot`.
bool Store::publish_staged(std::uint64_t index, const Entry& staged, std::uint64_t slot) {
  std::lock_guard lock(stripe(index));
  const Entry& now = entry(index);  // staged, so its chunk was made
  const bool unchanged = now == staged;
  if (unchanged) publish_written_back(index, now, slot);
  return unchanged;
}

// A staged page that will not be published: its slot (if it got one) goes back to the file,
// its page of the budget back to the budget.
void Store::unstage(std::optional<std::uint64_t> slot) {
  if (slot) backing_->free_slot(*slot);
  return_budget();
}

std::size_t Store::flush_batch(Error* failed) {
  *failed = Error::ok;
  WritebackBatch& b = *batch_;
  if (b.pages.empty()) return 0;
  // 1. A slot for each page (no stripe lock: the pages stay readable in the pool meanwhile).
  b.writes.clear();
  b.page_of_write.clear();
  for (std::size_t k = 0; k < b.pages.size(); ++k) {
    auto slot = backing_->alloc_slot();
    if (!slot) {
      if (*failed == Error::ok) *failed = slot.error();
      continue;
    }
    b.writes.push_back({*slot, b.object_bytes(k, b.pages[k].entry.length)});
    b.page_of_write.push_back(k);
  }
  // 2. One batched write.
  b.results.assign(b.writes.size(), Error::ok);
  backing_->write_slots(b.writes, b.results);
  // 3. Publish each page whose entry is still the one staged.
  std::size_t published = 0;
  std::size_t next_write = 0;
  for (std::size_t k = 0; k < b.pages.size(); ++k) {
    const bool has_slot = next_write < b.page_of_write.size() && b.page_of_write[next_write] == k;
    const std::optional<std::uint64_t> slot =
        has_slot ? std::optional(b.writes[next_write].slot) : std::nullopt;
    const Error written = has_slot ? b.results[next_write++] : Error::limit_reached;
    if (written != Error::ok) {
      counters_.bd_write_failures.fetch_add(1, std::memory_order_relaxed);
      if (*failed == Error::ok) *failed = written;
      unstage(slot);
      continue;
    }
    if (publish_staged(b.pages[k].index, b.pages[k].entry, *slot)) {
      ++published;
    } else {
      unstage(slot);
    }
  }
  b.pages.clear();
  return published;
}

std::size_t StoreInternals::stage_then_flush(Store& store, std::span<const std::uint64_t> pages,
                                             const std::function<void()>& between, Error* failed) {
  *failed = Error::invalid_argument;
  std::lock_guard lock(store.writeback_mutex_);
  if (!store.batch_ || pages.size() > store.batch_->capacity()) return 0;
  for (const std::uint64_t i : pages) {
    std::size_t went = 0;
    (void)store.write_back_if(
        i, [](std::uint32_t, const Store::Entry&) { return true; }, &went);
  }
  between();
  return store.flush_batch(failed);
}

// Takes one from the page's reference count; false when it was already 0 (a victim).
bool Store::age_page(std::atomic<std::uint32_t>& w) {
  std::uint32_t old = w.load(std::memory_order_relaxed);
  while (ref_of(old) != 0) {
    if (w.compare_exchange_weak(old, old - (1u << kRefShift), std::memory_order_relaxed))
      return true;
  }
  return false;
}

// The CLOCK (writeback_mutex_ held). The hand visits pages in index order, wrapping; chunks
// never made are skipped whole. Four sweeps bound the walk: a count of at most 3 reaches 0 by
// the fourth visit, so a store with any page in the pool yields a victim within them.
std::size_t Store::clock_writeback(std::uint64_t bytes, std::size_t max_pages) {
  const std::uint64_t pages = options_.pages;
  const std::uint64_t max_visits = 4 * pages;
  std::uint64_t visits = 0, freed = 0;  // freed: stored bytes written back or staged
  std::size_t chosen = 0, written = 0;  // chosen: pages written back or staged
  Error failed = Error::ok;
  while (chosen < max_pages && freed < bytes && visits < max_visits) {
    const std::uint64_t i = clock_hand_;
    std::atomic<std::uint32_t>* w = access(i);
    const std::uint64_t step = w != nullptr ? 1 : kEntryChunk - i % kEntryChunk;
    clock_hand_ = i + step >= pages ? 0 : i + step;
    visits += step;
    if (w == nullptr || (w->load(std::memory_order_relaxed) & kResident) == 0) continue;
    if (age_page(*w)) continue;
    std::size_t went = 0;
    const Error e = write_back_if(
        i, [](std::uint32_t word, const Entry&) { return ref_of(word) == 0; }, &went);
    if (e != Error::ok) break;  // the backing file failed or the budget is spent
    if (went == 0) continue;
    ++chosen;
    freed += went;
    if (!batch_) {
      ++written;
    } else if (batch_full()) {
      written += flush_batch(&failed);
      if (failed != Error::ok) break;
    }
  }
  if (batch_) written += flush_batch(&failed);
  return written;
}

// Page policy: write back the coldest pages' worth of the excess, compact so that the objects
// freed free pages, and look again; a few rounds, as compaction cannot pack perfectly.
std::size_t Store::reclaim_pages_to(std::uint64_t target) {
  std::size_t total = 0;
  for (int round = 0; round < kMaxReclaimRounds; ++round) {
    const std::uint64_t held = pool_->total_bytes();
    if (held <= target) break;
    const std::size_t written =
        clock_writeback(held - target, std::numeric_limits<std::size_t>::max());
    total += written;
    const std::size_t compacted = pool_->compact();
    if (written == 0 && compacted == 0) break;
  }
  counters_.wb_page_policy_pages.fetch_add(total, std::memory_order_relaxed);
  return total;
}

// The policy's reclaim (writeback_mutex_ held); pages written back.
std::size_t Store::reclaim_to(std::uint64_t target) {
  if (options_.writeback_policy == WritebackPolicy::page) return reclaim_pages_to(target);
  const std::uint64_t held = pool_->total_bytes();
  if (held <= target) return 0;
  const std::uint64_t before = counters_.written_back_pages.load(std::memory_order_relaxed);
  pool_->shrink((held - target + options_.page_size - 1) / options_.page_size);
  return static_cast<std::size_t>(counters_.written_back_pages.load(std::memory_order_relaxed) -
                                  before);
}

namespace {

bool kind_wants(WritebackKind kind, bool idle, bool huge, bool incompressible) {
  switch (kind) {
    case WritebackKind::idle:
      return idle;
    case WritebackKind::huge:
      return huge;
    case WritebackKind::incompressible:
      return incompressible;
    case WritebackKind::idle_huge:
      return idle && huge;
    case WritebackKind::all:
      return true;
  }
  return false;
}

}  // namespace

std::atomic<std::uint64_t>& Store::kind_counter(WritebackKind kind) {
  switch (kind) {
    case WritebackKind::idle:
      return counters_.wb_idle_pages;
    case WritebackKind::huge:
      return counters_.wb_huge_pages;
    case WritebackKind::incompressible:
      return counters_.wb_incompressible_pages;
    case WritebackKind::idle_huge:
      return counters_.wb_idle_huge_pages;
    case WritebackKind::all:
      break;
  }
  return counters_.wb_all_pages;
}

Result<std::size_t> Store::writeback(WritebackKind kind, std::size_t max_pages) {
  if (!backing_) return Error::unsupported;
  std::lock_guard lock(writeback_mutex_);
  std::size_t written = 0;
  Error stop = Error::ok;
  if (kind == WritebackKind::all) {
    const std::uint64_t refused = counters_.writeback_limit_refused.load();
    written = clock_writeback(std::numeric_limits<std::uint64_t>::max(), max_pages);
    if (counters_.writeback_limit_refused.load() != refused) stop = Error::limit_reached;
  } else {
    const auto wanted = [this, kind](std::uint32_t word, const Entry& e) {
      return kind_wants(kind, (word & kIdle) != 0, e.kind == Kind::huge,
                        (word & kIncompressible) != 0);
    };
    std::size_t chosen = 0;  // written back or staged
    for_each_access_word([&](std::uint64_t i, std::atomic<std::uint32_t>& w) {
      if (chosen >= max_pages) return false;
      if ((w.load(std::memory_order_relaxed) & kResident) == 0) return true;
      std::size_t went = 0;
      stop = write_back_if(i, wanted, &went);
      if (went == 0) return stop == Error::ok;
      ++chosen;
      if (!batch_) {
        ++written;
      } else if (batch_full()) {
        written += flush_batch(&stop);
      }
      return stop == Error::ok;
    });
    if (batch_) {
      Error last = Error::ok;
      written += flush_batch(&last);
      if (stop == Error::ok) stop = last;
    }
  }
  kind_counter(kind).fetch_add(written, std::memory_order_relaxed);
  if (written == 0 && stop != Error::ok) return stop;
  return written;
}

// ── the background writer and compactor ──────────────────────────────────────────────────────

bool Store::wants_background_thread() const {
  return writes_back_in_background() || options_.compact_threshold_pages != 0;
}

bool Store::writes_back_in_background() const {
  return options_.background_writer && backing_ && options_.mem_limit != 0;
}

// After a write: wake the writer when the pool passed the high watermark.
void Store::kick_background_writer() {
  if (!writes_back_in_background() ||
      pool_->total_bytes() <= percent_of_limit(options_.high_watermark_percent))
    return;
  {
    std::lock_guard lock(background_mutex_);
    background_kicked_ = true;
  }
  background_cv_.notify_one();
}

void Store::background_loop() {
  std::unique_lock lock(background_mutex_);
  while (!background_stop_) {
    background_cv_.wait_for(lock, kBackgroundPeriod,
                            [this] { return background_stop_ || background_kicked_; });
    if (background_stop_) break;
    background_kicked_ = false;
    lock.unlock();
    write_back_in_background();
    compact_in_background();
    lock.lock();
  }
}

void Store::write_back_in_background() {
  if (!writes_back_in_background()) return;
  const std::uint64_t high = percent_of_limit(options_.high_watermark_percent);
  if (pool_->total_bytes() <= high) return;
  std::lock_guard lock(writeback_mutex_);
  if (pool_->total_bytes() <= high) return;
  counters_.bg_writeback_runs.fetch_add(1, std::memory_order_relaxed);
  const std::size_t written = reclaim_to(percent_of_limit(options_.accept_percent));
  counters_.bg_writeback_pages.fetch_add(written, std::memory_order_relaxed);
}

// zsmalloc's shrinker: compact once the pages compaction could free reach the threshold.
void Store::compact_in_background() {
  if (options_.compact_threshold_pages == 0) return;
  std::uint64_t freeable = 0;
  for (const ClassStats& c : pool_->stats().classes) freeable += c.freeable;
  if (freeable < options_.compact_threshold_pages) return;
  pool_->compact();
  counters_.bg_compactions.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace zspool
