// Pool: creation, malloc, free, map, read/write. Compaction is in compact.cc, writeback
// in reclaim.cc, statistics in stats.cc. Locking: see the lock order in pool_state.h.
#include "zspool/core/pool.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <mutex>

#include "zspool/core/internal/pool_state.h"
#include "zspool/core/internal/sync_point.h"

namespace zspool {

Result<std::unique_ptr<Pool>> Pool::create(PoolOptions options) {
  auto table = SizeClassTable::make(options.page_size, options.max_chain);
  if (!table) return table.error();
  if (options.page_size % os::page_size() != 0) return Error::invalid_argument;
  if (options.max_handles < 2 * HandleTable::kBatch || options.max_zspages < 2)
    return Error::invalid_argument;
  // Zspage ids fit the slot's 32 bits by their type; slot indices have at most 32 bits, which
  // leaves a handle at least 30 generation bits below the header's 2 tag bits.
  static_assert(sizeof(options.max_zspages) * 8 <= kSlotZspageBits);
  static_assert(kMaxHandles <= std::uint64_t{1} << (64 - kObjTagBits - 30));
  if (options.max_handles > kMaxHandles) return Error::invalid_argument;
  auto state = std::make_unique<PoolState>(std::move(options), std::move(*table));
  if (!state->handles.ok() || !state->descriptors.ok()) return Error::out_of_memory;
  return std::unique_ptr<Pool>(new Pool(std::move(state)));
}

void PoolOptions::reserve_for(std::uint64_t objects) {
  // Issued and unused: up to a batch per class shard (at most 256 classes), plus slot 0 and a
  // last batch too short to issue. Deferred: one zspage's objects at most.
  constexpr std::uint64_t kSpareSlots = (256 * kClassShards + 1) * HandleTable::kBatch + 1;
  const std::uint64_t deferred = std::uint64_t{page_size} * max_chain / kMinObjectSize;
  // Saturating: a count near 2^64 means "as many as a pool can have", not a small wrapped one.
  const std::uint64_t wanted = std::max<std::uint64_t>(objects, 1);
  const std::uint64_t extra = kSpareSlots + deferred;
  max_handles = wanted >= kMaxHandles - std::min(kMaxHandles, extra) ? kMaxHandles : wanted + extra;
  max_zspages = static_cast<std::uint32_t>(std::min<std::uint64_t>(max_handles, UINT32_MAX));
}

Pool::Pool(std::unique_ptr<PoolState> state) : state_(std::move(state)) {}

// Destroying the pool releases every zspage (live objects included) and its tables.
Pool::~Pool() {
  PoolState& p = *state_;
  p.for_each_state([&p](ClassState& c) {
    std::lock_guard lock(c.lock);
    for (int g = 0; g < kFullnessGroups; ++g) {
      while (ZsPage* z = c.groups[g]) {
        p.remove_fullness(c, z);
        z->inuse = 0;
        z->pins.store(0);
        p.destroy_zspage(c, z);
      }
    }
  });
  p.source->trim();  // a shared source may outlive the pool: leave nothing of ours resident
}

std::uint32_t Pool::page_size() const {
  return state_->table.page_size();
}
std::uint32_t Pool::huge_class_size() const {
  return state_->table.huge_class_size();
}
const SizeClassTable& Pool::classes() const {
  return state_->table;
}
std::size_t Pool::total_pages() const {
  return state_->pages_now();
}
PageSource& Pool::page_source() const {
  return *state_->source;
}
std::uint64_t Pool::handle_index(Handle h) const {
  return state_->handles.index_of(h);
}

// ── malloc ───────────────────────────────────────────────────────────────────────────────────

namespace {

// This thread's class shard (see ClassState), shared by every pool: `contended` counts mallocs
// that found their class lock taken, and one is forgiven per 256 that did not.
struct ShardHint {
  std::uint32_t shard = 0;
  std::uint32_t contended = 0;
  std::uint8_t calm = 0;
};
thread_local ShardHint t_shard_hint;

// The contended path of lock_class_for_malloc: counts the contention, moves this thread to the
// next shard once it has contended kShardMoveAfter times (net), and waits for the lock.
[[gnu::noinline]] ClassState& lock_contended_class(PoolState& p, std::uint32_t class_index,
                                                   ClassState* c,
                                                   std::unique_lock<SpinThenBlockMutex>& lock) {
  ShardHint& hint = t_shard_hint;
  if (c == nullptr) c = &p.class_state(class_index);  // a shard could not be allocated
  ZSPOOL_SYNC_POINT("malloc.contended", class_index);
  if (++hint.contended >= kShardMoveAfter) {
    hint.contended = 0;
    hint.shard = (hint.shard + 1) % kClassShards;
    if (ClassState* next = p.shard_state(class_index, hint.shard)) c = next;
  }
  lock = std::unique_lock(c->lock);
  return *c;
}

// Locks and returns the ClassState this thread allocates `class_index` from.
ClassState& lock_class_for_malloc(PoolState& p, std::uint32_t class_index,
                                  std::unique_lock<SpinThenBlockMutex>& lock) {
  ShardHint& hint = t_shard_hint;
  ClassState* c =
      hint.shard == 0 ? &p.class_state(class_index) : p.shard_state(class_index, hint.shard);
  if (c == nullptr || !c->lock.try_lock()) [[unlikely]]
    return lock_contended_class(p, class_index, c, lock);
  lock = std::unique_lock(c->lock, std::adopt_lock);
  if (hint.contended > 0 && ++hint.calm == 0) [[unlikely]]
    --hint.contended;
  return *c;
}

// Pages the pool would count beyond what it counts now if z (just created or not) handed out
// its next object: its own count, if just created, plus the pages that object reaches first.
std::uint32_t pages_to_take(const PoolState& p, const ClassState& c, const ZsPage* z,
                            bool created) {
  const std::uint32_t own = created ? z->committed : 0;
  if (z->first_free != kNoFreeObject) return own;
  const std::uint64_t end = std::uint64_t{z->bump + 1u} * c.info->size;
  const std::uint64_t ps = p.table.page_size();
  const auto through = static_cast<std::uint32_t>((end + ps - 1) / ps);
  return own + (through > z->committed ? through - z->committed : 0);
}

// The zspage to allocate from within a budget of new pages: the fullest with room, else a new
// one. Null with `error` set when none fits the budget or memory runs out. A new zspage is not
// made when its first object alone would pass the budget (made and freed, its untouched span
// would go to the page source's cache as resident, and count whole when reused); one that
// comes from the cache counts whole, and goes back to it when that passes the budget.
ZsPage* zspage_for_malloc(PoolState& p, ClassState& c, std::size_t max_new_pages, Error& error) {
  const bool budgeted = max_new_pages != Pool::kAnyNewPages;
  ZsPage* z = p.fullest_with_room(c);
  const bool created = z == nullptr;
  if (created) {
    const std::uint64_t ps = p.table.page_size();
    if (budgeted && (c.info->size + ps - 1) / ps > max_new_pages) {
      error = Error::limit_reached;
      return nullptr;
    }
    z = p.create_zspage(c);
    if (z == nullptr) {
      error = Error::out_of_memory;
      return nullptr;
    }
  }
  if (!budgeted || pages_to_take(p, c, z, created) <= max_new_pages) return z;
  if (created) {
    p.remove_fullness(c, z);
    p.destroy_zspage(c, z);
  }
  error = Error::limit_reached;
  return nullptr;
}

// malloc, and malloc_copy when `copy` is not null (size bytes of it go into the payload).
Result<Handle> allocate(PoolState& p, std::size_t size, const std::byte* copy,
                        std::size_t max_new_pages) {
  if (size == 0) return Error::invalid_argument;
  if (size > p.table.max_alloc_size()) return Error::too_large;

  std::unique_lock<SpinThenBlockMutex> lock;
  ClassState& c = lock_class_for_malloc(p, p.table.class_for_request(size).index, lock);
  ZSPOOL_SYNC_POINT("malloc.locked", c.state_index);
  const Handle h = p.take_slot(c);
  if (h == 0) {
    p.alloc_failures.fetch_add(1, std::memory_order_relaxed);
    return Error::out_of_memory;
  }
  Error error = Error::ok;
  ZsPage* z = zspage_for_malloc(p, c, max_new_pages, error);
  if (z == nullptr) {
    p.release_slot(c, h);
    if (error == Error::out_of_memory) p.alloc_failures.fetch_add(1, std::memory_order_relaxed);
    return error;
  }
  const std::uint32_t idx = p.take_free_object(c, z);
  p.write_header(c, z, idx, allocated_header(h));
  if (copy != nullptr)
    std::memcpy(p.object_address(c, z, idx) + (c.info->huge ? 0 : kHeaderSize), copy, size);
  p.handles.slot(h).store(encode_location({c.state_index, p.descriptors.id_of(z), idx}),
                          std::memory_order_release);
#ifdef ZSPOOL_CHECKED
  p.checked[h].requested = static_cast<std::uint32_t>(size);
#endif
  ++c.obj_used;
  p.refresh_fullness(c, z);
  if (p.writeback()) p.lru_push_head(z);
  return h;
}

}  // namespace

Result<Handle> Pool::malloc(std::size_t size) {
  return allocate(*state_, size, nullptr, kAnyNewPages);
}

Result<Handle> Pool::malloc_copy(std::span<const std::byte> data, std::size_t max_new_pages) {
  return allocate(*state_, data.size(), data.data(), max_new_pages);
}

// ── resolving a handle ───────────────────────────────────────────────────────────────────────

namespace {

// A handle resolved to its object, with the object's class lock held.
struct LockedObject {
  std::unique_lock<SpinThenBlockMutex> lock;
  ClassState* c = nullptr;
  ZsPage* z = nullptr;
  std::uint32_t idx = 0;
  bool deferred = false;  // freed while its zspage is under reclaim; still readable then
};

// The state a handle's object lives in, read without a lock. Compaction may move the object to
// another shard of its class (merging shards) or to a larger class (spilling, compact.cc), so
// lock_object re-checks under the lock.
Result<ClassState*> state_of_handle(PoolState& p, Handle h) {
  if (!p.handles.issued(h)) return Error::invalid_handle;
  const std::uint64_t word = p.handles.slot(h).load(std::memory_order_acquire);
  if (slot_is_free(word)) return Error::stale_handle;
  ClassState* c = p.state_at(decode_location(word).state_index);
  if (c == nullptr) return Error::invalid_handle;
  return c;
}

// Locks the state the slot names and re-reads the slot (stable under that lock: only compaction
// rewrites live slots, holding the locks of the states involved). If the object moved to another
// state meanwhile (another shard, or a larger class), starts again from the slot's new state.
Result<LockedObject> lock_object(PoolState& p, Handle h) {
  LockedObject o;
  ObjLocation loc;
  for (;;) {
    auto c = state_of_handle(p, h);
    if (!c) return c.error();
    ZSPOOL_SYNC_POINT("lock_object.state_read", h);
    o.c = *c;
    o.lock = std::unique_lock(o.c->lock);
    const std::uint64_t word = p.handles.slot(h).load(std::memory_order_acquire);
    if (slot_is_free(word)) return Error::stale_handle;  // freed while we took the lock
    loc = decode_location(word);
    if (loc.state_index == o.c->state_index) break;
    o.lock.unlock();  // moved meanwhile (a shard merge, a spill to a larger class): follow it
  }
  o.z = p.descriptors.find(loc.zspage_id);
  if (o.z == nullptr || o.z->base == nullptr || o.z->state_index != loc.state_index ||
      loc.obj_index >= o.z->bump)
    return Error::invalid_handle;
  o.idx = loc.obj_index;
  const std::uint64_t header = p.read_header(*o.c, o.z, o.idx);
  if (header_payload(header) != h) {
    // The slot's object has a newer handle: h was freed and its slot reissued.
    const bool same_slot = p.handles.index_of(header_payload(header)) == p.handles.index_of(h);
    return same_slot ? Error::stale_handle : Error::invalid_handle;
  }
  if (header_deferred(header)) {
    if (!o.z->under_reclaim) return Error::stale_handle;
    o.deferred = true;
  } else if (!header_allocated(header)) {
    return Error::invalid_handle;
  }
  return o;
}

std::byte* payload(const PoolState& p, const LockedObject& o) {
  return p.object_address(*o.c, o.z, o.idx) + (o.c->info->huge ? 0 : kHeaderSize);
}

// How far write() may reach: the class capacity; in checked builds, the size malloc was asked
// for. (read() may always read the whole capacity, as the kernel's zs_obj_read may.)
std::size_t write_limit(const PoolState& p, const LockedObject& o, Handle h) {
#ifdef ZSPOOL_CHECKED
  (void)o;
  return p.checked[h].requested;
#else
  (void)p;
  (void)h;
  return o.c->info->capacity();
#endif
}

bool within(std::size_t limit, std::size_t offset, std::size_t n) {
  return offset <= limit && n <= limit - offset;
}

}  // namespace

// ── free ─────────────────────────────────────────────────────────────────────────────────────

// Frees an object. On a zspage under reclaim the handle slot is left untouched (it still
// locates the object, which reclaim may be about to evict) and the object's header becomes
// handle | OBJ_DEFERRED; reclaim releases the handle when it frees or restores the zspage.
Error Pool::free(Handle h) {
  PoolState& p = *state_;
  auto o = lock_object(p, h);
  if (!o) return report_misuse(o.error(), h, "free");
  if (o->deferred) return report_misuse(Error::stale_handle, h, "free");
  if (slot_maps(p.handles.slot(h).load(std::memory_order_acquire)) != 0)
    return report_misuse(Error::busy, h, "free (still mapped)");
  ClassState& c = *o->c;
  ZsPage* z = o->z;
  --c.obj_used;
  if (z->under_reclaim) {
#ifdef ZSPOOL_PREFIX_RACE
    // Pre-fix design (test only): the object goes on the freelist and the handle slot is
    // overwritten with the previous deferred handle, losing the object's location.
    p.push_free_object(c, z, o->idx);
    p.handles.slot(h).store(z->deferred_chain, std::memory_order_release);
    z->deferred_chain = h;
#else
    p.write_header(c, z, o->idx, deferred_header(h));
    --z->inuse;
#endif
    p.deferred_created.fetch_add(1, std::memory_order_relaxed);
    return Error::ok;
  }
  p.push_free_object(c, z, o->idx);
  p.release_slot(c, h);
  if (z->inuse == 0 && z->pins.load(std::memory_order_acquire) == 0) {
    p.remove_fullness(c, z);
    p.destroy_zspage(c, z);
  } else {
    p.refresh_fullness(c, z);
  }
  return Error::ok;
}

// ── map ──────────────────────────────────────────────────────────────────────────────────────

Result<Mapping> Pool::map(Handle h, MapMode mode) {
  PoolState& p = *state_;
  if (mode != MapMode::read_only && mode != MapMode::write_only && mode != MapMode::read_write)
    return Error::invalid_argument;
  auto o = lock_object(p, h);
  if (!o) return report_misuse(o.error(), h, "map");
  // A deferred object's slot is released when its reclaim ends, mapped or not: its Mappings
  // pin the zspage only (free() refuses it anyway, as stale).
  const bool counted = !o->deferred;
  if (counted) {
    std::atomic_ref<std::uint64_t> slot = p.handles.slot(h);
    if (slot_maps(slot.load(std::memory_order_relaxed)) == kMaxMapsPerHandle) return Error::busy;
    slot.fetch_add(kSlotOneMap, std::memory_order_acq_rel);
  }
  o->z->pins.fetch_add(1, std::memory_order_acq_rel);
  return Mapping(this, o->z, h, payload(p, *o), o->c->info->capacity(), mode, counted);
}

// The slot's count first: once the zspage is unpinned, compaction may rewrite the slot.
void Pool::unpin(ZsPage* z, Handle h, bool counted) {
  if (counted) state_->handles.slot(h).fetch_sub(kSlotOneMap, std::memory_order_acq_rel);
  z->pins.fetch_sub(1, std::memory_order_acq_rel);
}

Mapping& Mapping::operator=(Mapping&& other) noexcept {
  if (this != &other) {
    reset();
    pool_ = std::exchange(other.pool_, nullptr);
    zspage_ = std::exchange(other.zspage_, nullptr);
    handle_ = std::exchange(other.handle_, 0);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mode_ = other.mode_;
    counted_ = other.counted_;
  }
  return *this;
}

void Mapping::reset() {
  if (pool_ != nullptr) pool_->unpin(zspage_, handle_, counted_);
  pool_ = nullptr;
  zspage_ = nullptr;
  data_ = nullptr;
  size_ = 0;
  handle_ = 0;
}

// ── copy access ──────────────────────────────────────────────────────────────────────────────

Error Pool::read(Handle h, std::span<std::byte> out, std::size_t offset) {
  PoolState& p = *state_;
  auto o = lock_object(p, h);
  if (!o) return report_misuse(o.error(), h, "read");
  if (!within(o->c->info->capacity(), offset, out.size()))
    return report_misuse(Error::out_of_bounds, h, "read");
  std::memcpy(out.data(), payload(p, *o) + offset, out.size());
  return Error::ok;
}

Error Pool::write(Handle h, std::span<const std::byte> in, std::size_t offset) {
  PoolState& p = *state_;
  auto o = lock_object(p, h);
  if (!o) return report_misuse(o.error(), h, "write");
  if (o->deferred) return report_misuse(Error::stale_handle, h, "write");
  if (!within(write_limit(p, *o, h), offset, in.size()))
    return report_misuse(Error::out_of_bounds, h, "write");
  std::memcpy(payload(p, *o) + offset, in.data(), in.size());
  return Error::ok;
}

Result<std::size_t> Pool::capacity(Handle h) {
  PoolState& p = *state_;
  auto o = lock_object(p, h);
  if (!o) return o.error();
  return std::size_t{o->c->info->capacity()};
}

}  // namespace zspool
