// Zspages: their memory, freelists, fullness lists and LRU; handle slots and descriptors.
// Every function here runs with the zspage's class lock held (see the lock order in
// pool_state.h) unless its comment says otherwise.
#include <bit>
#include <cstdio>
#include <cstring>
#include <new>

#include "zspool/core/internal/pool_state.h"
#include "zspool/platform/internal/os_page_source.h"

namespace zspool {

// ── HandleTable ──────────────────────────────────────────────────────────────────────────────

HandleTable::HandleTable(std::uint64_t capacity)
    : range_(capacity * sizeof(std::uint64_t)),
      words_(reinterpret_cast<std::uint64_t*>(range_.base())),
      capacity_(range_.ok() ? capacity : 0),
      index_bits_(std::bit_width(capacity - 1)),
      index_mask_((std::uint64_t{1} << index_bits_) - 1),
      generation_mask_((std::uint64_t{1} << (64 - kObjTagBits - index_bits_)) - 1) {}

HandleTable::Batch HandleTable::reserve_batch() {
  std::lock_guard lock(grow_mutex_);
  const std::uint64_t first = next_unused_.load(std::memory_order_relaxed);
  const std::uint64_t end = (first / kBatch + 1) * kBatch;  // the next multiple of kBatch
  if (end > capacity_) return {};
  next_unused_.store(end, std::memory_order_release);
  return {first, end};
}

std::uint64_t HandleTable::committed_bytes() const {
  const std::uint64_t ps = os::page_size();
  return (next_unused_.load(std::memory_order_relaxed) * sizeof(std::uint64_t) + ps - 1) / ps * ps;
}

// ── DescriptorTable ──────────────────────────────────────────────────────────────────────────

DescriptorTable::DescriptorTable(std::uint32_t capacity, bool lru_links)
    : range_(std::size_t{capacity} * sizeof(ZsPage)),
      base_(reinterpret_cast<ZsPage*>(range_.base())),
      has_lru_(lru_links),
      lru_range_(lru_links ? std::size_t{capacity} * sizeof(LruLinks) : 0),
      lru_base_(reinterpret_cast<LruLinks*>(lru_range_.base())),
      capacity_(range_.ok() ? capacity : 0) {}

ZsPage* DescriptorTable::pop(FreeList& list) {
  std::lock_guard lock(list.mutex);
  ZsPage* z = list.head;
  if (z != nullptr) {
    list.head = at(z->next);
    z->next = 0;
  }
  return z;
}

void DescriptorTable::push(FreeList& list, ZsPage* z) {
  std::lock_guard lock(list.mutex);
  z->next = id_of(list.head);
  list.head = z;
}

ZsPage* DescriptorTable::construct(std::uint32_t id) {
  ZsPage* z = new (base_ + id) ZsPage();
  if (has_lru_) new (lru_base_ + id) LruLinks();
  return z;
}

ZsPage* DescriptorTable::carve_locked(std::uint32_t shard) {
  const std::uint32_t id = next_unused_.load(std::memory_order_relaxed);
  const std::uint32_t group = (id + kGroup - 1) / kGroup * kGroup;
  const bool grouped = shard != 0 && std::uint64_t{group} + kGroup <= capacity_;
  const std::uint32_t end = grouped ? group + kGroup : id + 1;
  if (end > capacity_) return nullptr;
  for (std::uint32_t i = id; i < end; ++i) construct(i);
  next_unused_.store(end, std::memory_order_release);
  if (!grouped) return base_ + id;
  for (std::uint32_t i = id; i < group; ++i) push(free_[0], base_ + i);
  for (std::uint32_t i = end - 1; i > group; --i) push(free_[shard], base_ + i);
  return base_ + group;
}

ZsPage* DescriptorTable::steal() {
  for (FreeList& list : free_)
    if (ZsPage* z = pop(list)) return z;
  return nullptr;
}

ZsPage* DescriptorTable::allocate(std::uint32_t shard) {
  if (ZsPage* z = pop(free_[shard])) return z;
  {
    std::lock_guard lock(grow_mutex_);
    if (ZsPage* z = carve_locked(shard)) return z;
  }
  return steal();
}

void DescriptorTable::release(ZsPage* z, std::uint32_t shard) {
  push(free_[shard], z);
}

std::uint64_t DescriptorTable::committed_bytes() const {
  const std::uint64_t ps = os::page_size();
  const std::uint64_t n = next_unused_.load(std::memory_order_relaxed);
  const auto rounded = [ps](std::uint64_t bytes) { return (bytes + ps - 1) / ps * ps; };
  return rounded(n * sizeof(ZsPage)) + (has_lru_ ? rounded(n * sizeof(LruLinks)) : 0);
}

// ── PoolState ────────────────────────────────────────────────────────────────────────────────

PoolState::PoolState(PoolOptions opts, SizeClassTable t)
    : options(std::move(opts)),
      table(std::move(t)),
      source(options.page_source ? options.page_source
                                 : std::make_shared<OsPageSource>(options.page_cache_bytes,
                                                                  options.page_cache_decay)),
      handles(options.max_handles),
      descriptors(options.max_zspages, writeback()) {
  shard_storage_[0] = make_shard(0);
  shards_[0].store(shard_storage_[0].get(), std::memory_order_release);
}

std::unique_ptr<ClassState[]> PoolState::make_shard(std::uint32_t shard) {
  std::unique_ptr<ClassState[]> states(new ClassState[class_count()]);
  for (std::uint32_t i = 0; i < class_count(); ++i) {
    states[i].info = &table.at(i);
    states[i].state_index = i * kClassShards + shard;
  }
  return states;
}

ClassState* PoolState::shard_state(std::uint32_t class_index, std::uint32_t shard) {
  if (ClassState* base = shard_base(shard)) return base + class_index;
  std::lock_guard lock(shard_mutex_);
  if (shard_storage_[shard] == nullptr) {
    try {
      shard_storage_[shard] = make_shard(shard);
    } catch (const std::bad_alloc&) {
      return nullptr;
    }
    shards_[shard].store(shard_storage_[shard].get(), std::memory_order_release);
  }
  return shard_storage_[shard].get() + class_index;
}

std::uint64_t PoolState::read_header(const ClassState& c, const ZsPage* z,
                                     std::uint32_t idx) const {
  if (c.info->huge) return z->huge_header;
  std::uint64_t word;
  std::memcpy(&word, object_address(c, z, idx), sizeof word);
  return word;
}

void PoolState::write_header(const ClassState& c, ZsPage* z, std::uint32_t idx,
                             std::uint64_t word) {
  if (c.info->huge) {
    z->huge_header = word;
    return;
  }
  std::memcpy(object_address(c, z, idx), &word, sizeof word);
}

// A statistic, not a synchronisation point: relaxed (exact at quiescence, like the others).
// Only a growth can set a new maximum, so only then are the other shards' counters read.
void PoolState::account_pages(const ClassState& c, std::int64_t delta) {
  shard_pages[c.shard()].pages.fetch_add(static_cast<std::uint64_t>(delta),
                                         std::memory_order_relaxed);
  if (delta <= 0) return;
  const std::uint64_t now = pages_now();
  std::uint64_t max = pages_max.load(std::memory_order_relaxed);
  while (now > max && !pages_max.compare_exchange_weak(max, now, std::memory_order_relaxed)) {
  }
}

// A new zspage: memory from the page source, no object handed out yet (bump = 0). Under lazy
// commit nothing is touched or counted now; otherwise every page is touched and counted, as in
// the kernel. Returns nullptr when the page source or the descriptor table is exhausted;
// nothing is changed then.
ZsPage* PoolState::create_zspage(ClassState& c) {
  const std::size_t bytes = zspage_bytes(*c.info);
  bool resident = false;
  void* mem = source->acquire(bytes, &resident);
  if (mem == nullptr) return nullptr;
  ZsPage* z = descriptors.allocate(c.shard());
  if (z == nullptr) {
    source->release(mem, bytes);
    return nullptr;
  }
  ZS_ASSERT(z->pins.load() == 0);
  z->base = static_cast<std::byte*>(mem);
  z->state_index = static_cast<std::uint16_t>(c.state_index);
  z->inuse = 0;
  z->bump = 0;
  z->committed = 0;
  z->first_free = kNoFreeObject;
  z->under_reclaim = false;
  z->huge_header = 0;
  z->prev = z->next = 0;
  ++c.zspages;
  if (!options.lazy_commit) {
    const std::size_t ps = table.page_size();
    for (std::size_t off = 0; off < bytes; off += ps) z->base[off] = std::byte{0};
  }
  // A reused cached span is resident already: count all of it, the OS does.
  if (resident || !options.lazy_commit) commit_pages(c, z, c.info->pages_per_zspage);
  insert_fullness(c, z);
  if (writeback()) lru_push_head(z);
  return z;
}

void PoolState::commit_pages(ClassState& c, ZsPage* z, std::uint32_t through) {
  if (through <= z->committed) return;
  const std::uint32_t added = through - z->committed;
  z->committed = static_cast<std::uint16_t>(through);
  c.pages_committed += added;
  account_pages(c, added);
}

std::uint32_t PoolState::decommit_pages(ClassState& c, ZsPage* z, std::uint32_t keep) {
  if (keep >= z->committed) return 0;
  const std::uint32_t dropped = z->committed - keep;
  const std::size_t ps = table.page_size();
  os::release_pages(z->base + std::size_t{keep} * ps, std::size_t{dropped} * ps);
  z->committed = static_cast<std::uint8_t>(keep);
  c.pages_committed -= dropped;
  account_pages(c, -static_cast<std::int64_t>(dropped));
  return dropped;
}

// Gives z's memory back to the OS and its descriptor to the table.
// Precondition: inuse == 0, no deferred handles left, not on a fullness list.
void PoolState::destroy_zspage(ClassState& c, ZsPage* z) {
  ZS_ASSERT(z->inuse == 0);
  ZS_ASSERT(z->pins.load() == 0);
  if (writeback()) lru_remove(z);
  source->release(z->base, zspage_bytes(*c.info));
  z->base = nullptr;
  z->under_reclaim = false;
  --c.zspages;
  c.pages_committed -= z->committed;
  account_pages(c, -static_cast<std::int64_t>(z->committed));
  z->committed = 0;
  descriptors.release(z, c.shard());
}

void PoolState::insert_fullness(ClassState& c, ZsPage* z) {
  const int g = fullness_group(z->inuse, c.info->objs_per_zspage);
  z->fullness = static_cast<std::uint8_t>(g);
  z->prev = 0;
  z->next = descriptors.id_of(c.groups[g]);
  if (c.groups[g] != nullptr) c.groups[g]->prev = descriptors.id_of(z);
  c.groups[g] = z;
  c.group_mask |= 1u << g;
}

void PoolState::remove_fullness(ClassState& c, ZsPage* z) {
  const int g = z->fullness;
  ZsPage* prev = descriptors.at(z->prev);
  ZsPage* next = descriptors.at(z->next);
  if (prev != nullptr)
    prev->next = z->next;
  else
    c.groups[g] = next;
  if (next != nullptr) next->prev = z->prev;
  z->prev = z->next = 0;
  if (c.groups[g] == nullptr) c.group_mask &= ~(1u << g);
}

void PoolState::refresh_fullness(ClassState& c, ZsPage* z) {
  if (fullness_group(z->inuse, c.info->objs_per_zspage) == z->fullness) return;
  remove_fullness(c, z);
  insert_fullness(c, z);
}

ZsPage* PoolState::fullest_with_room(ClassState& c) const {
  const std::uint32_t partial = c.group_mask & kPartialGroups;
  if (partial != 0) return c.groups[std::bit_width(partial) - 1];
  return c.groups[kFullnessEmpty];
}

std::uint32_t PoolState::take_free_object(ClassState& c, ZsPage* z) {
  std::uint32_t idx;
  if (z->first_free != kNoFreeObject) {
    idx = static_cast<std::uint32_t>(z->first_free);
    z->first_free = header_payload(read_header(c, z, idx));
  } else {
    ZS_ASSERT(z->bump < c.info->objs_per_zspage);
    idx = z->bump++;
    const std::size_t ps = table.page_size();
    const std::uint64_t end = std::uint64_t{idx + 1u} * c.info->size;
    const auto through = static_cast<std::uint32_t>((end + ps - 1) >> std::countr_zero(ps));
    // The OS pages this object is the first to reach are committed by the source before the
    // header and data writes touch them, the way that costs least on this host (one
    // MADV_POPULATE_WRITE call, or a write fault a page: commit_calibrator.h). Only these, in
    // OS pages (4 KiB), not pool pages: at 32 or 64 KiB pool pages a frontier zspage's
    // unreached OS pages stay uncommitted, so the process holds what the objects reach (to
    // 4 KiB), while the pool still counts whole pool pages (commit_pages: its figures stay an
    // upper bound of what it holds).
    //
    //   pool page (32 KiB):  │ obj idx-1 │ obj idx ░░░░░░│ . . . . . . . . . . . │
    //   OS pages populated:  ├─ earlier ─┼─ now ──┤  (the rest: not resident until reached)
    // Pool pages of one OS page: only when the object reaches a page not yet counted (a reused
    // resident span has every page counted, and needs nothing).
    if (through > z->committed || ps > os::page_size())
      populate_reached(z, std::uint64_t{idx} * c.info->size, end);
    commit_pages(c, z, through);
  }
  ++z->inuse;
  prefetch_next_object(c, z);
  return idx;
}

// Populates the OS pages of [begin, end) (bytes from the zspage's base) that no earlier object
// of the bump order reached: those from begin rounded up to end rounded up, in OS pages.
void PoolState::populate_reached(ZsPage* z, std::uint64_t begin, std::uint64_t end) {
  const std::uint64_t os_page = os::page_size();
  const std::uint64_t from = (begin + os_page - 1) / os_page * os_page;
  const std::uint64_t to = (end + os_page - 1) / os_page * os_page;
  if (to > from) source->populate(z->base + from, static_cast<std::size_t>(to - from));
}

// The object this zspage will hand out next has its header read (freelist) or written (bump)
// then: start fetching its line now, while this malloc goes on, so that the next allocation in
// the class finds it in the cache instead of stalling under the class lock.
void PoolState::prefetch_next_object(const ClassState& c, const ZsPage* z) const {
  if (c.info->huge) return;
  std::uint32_t next;
  if (z->first_free != kNoFreeObject)
    next = static_cast<std::uint32_t>(z->first_free);
  else if (z->bump < c.info->objs_per_zspage &&
           std::uint64_t{z->bump} * c.info->size + kHeaderSize <=
               std::uint64_t{z->committed} * table.page_size())
    next = z->bump;  // only within committed pages: a prefetch must not fault a page in
  else
    return;
  __builtin_prefetch(object_address(c, z, next), 1, 3);
}

void PoolState::push_free_object(ClassState& c, ZsPage* z, std::uint32_t idx) {
  write_header(c, z, idx, free_header(z->first_free));
  z->first_free = idx;
  --z->inuse;
}

// The seed's restore_freelist: after a failed reclaim, walk every object handed out so far;
// OBJ_ALLOCATED objects stay, OBJ_DEFERRED objects release their handle, and they plus every
// freed object form a new freelist in index order (never-used objects past bump stay implicit).
void PoolState::restore_freelist(ClassState& c, ZsPage* z) {
  std::uint64_t head = kNoFreeObject;
  for (std::uint32_t i = z->bump; i-- > 0;) {  // objects past bump stay implicitly free
    const std::uint64_t word = read_header(c, z, i);
    if (header_allocated(word)) continue;
    if (header_deferred(word)) {
      release_slot(c, header_payload(word));
      deferred_released.fetch_add(1, std::memory_order_relaxed);
    }
    write_header(c, z, i, free_header(head));
    head = i;
  }
  z->first_free = head;
}

void PoolState::release_deferred_handles(ClassState& c, ZsPage* z) {
#ifdef ZSPOOL_PREFIX_RACE
  // Pre-fix design: walk the chain threaded through the handle slots.
  for (Handle h = z->deferred_chain; h != 0;) {
    const Handle next = handles.slot(h).load(std::memory_order_relaxed);
    release_slot(c, h);
    deferred_released.fetch_add(1, std::memory_order_relaxed);
    h = next;
  }
  z->deferred_chain = 0;
#endif
  for (std::uint32_t i = 0; i < z->bump; ++i) {
    const std::uint64_t word = read_header(c, z, i);
    if (!header_deferred(word)) continue;
    release_slot(c, header_payload(word));
    write_header(c, z, i, free_header(kNoFreeObject));
    deferred_released.fetch_add(1, std::memory_order_relaxed);
  }
}

// ── handle slots ─────────────────────────────────────────────────────────────────────────────

// An empty class list gets a fresh batch, else (the table is exhausted) slots other class
// states freed.
bool PoolState::refill_slots(ClassState& c) {
  const HandleTable::Batch batch = handles.reserve_batch();
  if (batch.first == 0) return steal_slots(c);
  for (std::uint64_t i = batch.end; i-- > batch.first;) {
    handles.slot(i).store(handles.free_word(c.free_slots, 0), std::memory_order_relaxed);
    c.free_slots = i;
  }
  return true;
}

// Up to kBatch slots from the first other class state that has free ones and whose lock is free
// (c's lock is held: another class lock only by try_lock, so no two mallocs can wait on each
// other). A slot keeps its word's generation when it changes list, so its old handles stay
// stale. False when no state could give any.
bool PoolState::steal_slots(ClassState& c) {
  bool got = false;
  for_each_state([&](ClassState& other) {
    if (got || &other == &c || !other.lock.try_lock()) return;
    std::lock_guard lock(other.lock, std::adopt_lock);
    for (std::uint64_t n = 0; n < HandleTable::kBatch && other.free_slots != 0; ++n) {
      const std::uint64_t index = other.free_slots;
      const std::uint64_t word = handles.slot(index).load(std::memory_order_relaxed);
      other.free_slots = handles.free_word_next(word);
      handles.slot(index).store(handles.relinked(word, c.free_slots), std::memory_order_relaxed);
      c.free_slots = index;
      got = true;
    }
  });
  return got;
}

Handle PoolState::take_slot(ClassState& c) {
  if (c.free_slots == 0 && !refill_slots(c)) return 0;
  const std::uint64_t index = c.free_slots;
  const std::uint64_t word = handles.slot(index).load(std::memory_order_relaxed);
  c.free_slots = handles.free_word_next(word);
  ++c.slots_in_use;
  return handles.handle_from_free_word(index, word);
}

// The slot's next handle gets h's generation + 1, so h (and every earlier handle of the slot)
// is stale from now on.
void PoolState::release_slot(ClassState& c, Handle h) {
  handles.slot(h).store(handles.free_word_after(h, c.free_slots), std::memory_order_release);
  c.free_slots = handles.index_of(h);
  --c.slots_in_use;
}

// ── LRU ──────────────────────────────────────────────────────────────────────────────────────

static void lru_unlink(PoolState& p, ZsPage* z) {
  LruLinks& links = p.descriptors.lru(z);
  ZsPage* prev = p.descriptors.at(links.prev);
  ZsPage* next = p.descriptors.at(links.next);
  if (prev != nullptr)
    p.descriptors.lru(prev).next = links.next;
  else
    p.lru_head = next;
  if (next != nullptr)
    p.descriptors.lru(next).prev = links.prev;
  else
    p.lru_tail = prev;
  links = {};
}

void PoolState::lru_push_head(ZsPage* z) {
  std::lock_guard lock(lru_lock);
  if (z->on_lru) {
    if (lru_head == z) return;
    lru_unlink(*this, z);
  }
  descriptors.lru(z) = {.prev = 0, .next = descriptors.id_of(lru_head)};
  if (lru_head != nullptr) descriptors.lru(lru_head).prev = descriptors.id_of(z);
  lru_head = z;
  if (lru_tail == nullptr) lru_tail = z;
  z->on_lru = true;
}

void PoolState::lru_remove(ZsPage* z) {
  std::lock_guard lock(lru_lock);
  if (!z->on_lru) return;
  lru_unlink(*this, z);
  z->on_lru = false;
}

ZsPage* PoolState::lru_peek_tail(std::uint32_t* state_index) {
  std::lock_guard lock(lru_lock);
  if (lru_tail != nullptr) *state_index = lru_tail->state_index;
  return lru_tail;
}

bool PoolState::lru_isolate(ZsPage* z, std::uint32_t state_index) {
  std::lock_guard lock(lru_lock);
  // on_lru first: only a zspage on the LRU has a state_index published under lru_lock.
  if (!z->on_lru || z->state_index != state_index) return false;
  lru_unlink(*this, z);
  z->on_lru = false;
  return true;
}

// ── misuse ───────────────────────────────────────────────────────────────────────────────────

Error report_misuse(Error e, Handle h, const char* operation) {
#ifdef ZSPOOL_CHECKED
  std::fprintf(stderr, "zspool: %s of handle %#llx: %s (%s)\n", operation,
               static_cast<unsigned long long>(h), std::string(error_message(e)).c_str(),
               std::string(error_name(e)).c_str());
  std::abort();
#else
  (void)h;
  (void)operation;
  return e;
#endif
}

}  // namespace zspool
