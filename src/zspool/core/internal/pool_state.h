// The pool's internals: handle slots, zspage descriptors, size classes, the LRU.
// Internal header of the core layer: included by core/*.cc only.
//
// ─── Lock order ────────────────────────────────────────────────────────────────────────────
//
//   compact_lock  ->  ClassState::lock  ->  lru_lock  ->  { HandleTable::grow_mutex,
//                                                          DescriptorTable::grow_mutex
//                                                            -> a DescriptorTable free list,
//                                                          PageSource's own mutex }
//   shard_mutex: a leaf, taken with no other lock held (malloc, allocating a class shard).
//   Two ClassState locks at once: only compaction — its shard merge (two shards of one class)
//   and its spill (a class and a larger class of the same shard, compact.cc) — the lower state
//   index first. Everything else holds one class lock at a time.
//
//   * compact_lock: one compaction at a time (held across classes, never by malloc/free).
//   * ClassState::lock: everything about one class — its fullness lists, its zspages' freelists,
//     inuse counts and object headers, the handle slots of its objects, its free-slot list, and
//     the copy of object bytes in read()/write()/compaction. There is no pool-wide lock on the
//     allocation path: a handle's class (and shard) is encoded in its slot, so free/map read the
//     slot, lock that ClassState, and re-read the slot (stable under that lock: only compaction
//     rewrites live slots, and it holds the locks of the states involved). The state changes
//     when compaction merges shards or spills an object into a larger class (lazy commit
//     only), and then they retry.
//   * Class shards: a size class may have up to kClassShards ClassStates (below), each a
//     lock of its own over zspages of its own. A handle's slot names its ClassState (its
//     "state index"), so free/map find the right shard the same way as the right class.
//   * lru_lock: the LRU list and ZsPage::on_lru / lru links. Reclaim, which starts from the LRU,
//     peeks the tail under lru_lock, drops it, takes the class lock, re-takes lru_lock and
//     re-checks that the zspage is still on the LRU in that class before isolating it.
//   * The evict handler is called with no lock held.
//   * ZsPage::pins is atomic: incremented under the class lock (map), decremented lock-free
//     (unmap). Compaction reads it under the class lock and skips pinned zspages, so a mapped
//     object never moves. The same goes for a live slot's map count (below), which a Mapping
//     drops before it unpins the zspage, so compaction never rewrites a slot being unmapped.
//
// ─── Handle (what malloc returns) ─────────────────────────────────────────────────────────
//
//          63 62 61                       b  b-1                                        0
//          ┌─────┬──────────────────────────┬───────────────────────────────────────────┐
//          │ 0 0 │ generation (62 - b)      │ slot index (b)                            │
//          └─────┴──────────────────────────┴───────────────────────────────────────────┘
//   b = bit_width(max_handles - 1) (HandleTable::index_bits), so slot indices < max_handles
//   <= 2^32. Handles stay below 2^62: an object header holds one beside its 2 tag bits. Slot 0
//   is never issued, so no handle is 0, and no handle reaches the C API's error range.
//   Generations: a slot's first handle has generation 0 (so a fresh pool's handles are its slot
//   indices); each release of the slot stores generation + 1 (mod 2^(62 - b)) in the free slot,
//   which the slot's next handle carries. A stale handle (its object freed, its slot reissued
//   to a newer object, however: LIFO reuse, reclaim, compaction moves, shard moves) differs
//   from the slot's live handle in its generation; a live object's header holds the full
//   handle, so lock_object compares the two and answers stale_handle.
//   Budget: the same handle value comes back after 2^(62 - b) reuses of one slot:
//     max_handles 2^27 (the default): 27 index bits, 35 generation bits, 3.4e10 reuses
//                                     (1.9 hours of a 5-million-per-second malloc/free loop
//                                     that reuses one slot, which LIFO reuse makes the worst case)
//     max_handles 2^32 (the most):    32 index bits, 30 generation bits, 1.07e9 reuses
//     a store of 2^20 pages (reserve_for): 21 index bits, 41 generation bits, 2.2e12 reuses
//
// ─── Handle slot (one 64-bit word per slot, in HandleTable) ───────────────────────────────
//
//   live:   63     58 57       48 47                          16 15            1  0
//          ┌─────────┬───────────┬──────────────────────────────┬───────────────┬───┐
//          │ maps (6)│ class (10)│ zspage id (32)               │ obj index (15)│ 0 │
//          └─────────┴───────────┴──────────────────────────────┴───────────────┴───┘
//   free:   63 62                                                                1  0
//          ┌──┬──────────────────────────────────────────────────────────────────┬───┐
//          │0 │ generation of the slot's next handle | next free slot index (62)  │ 1 │
//          └──┴──────────────────────────────────────────────────────────────────┴───┘
//   The class field holds the state index, class * kClassShards + shard (see ClassState).
//   The free word's 62 bits are packed as a handle is: (generation << b) | next free index.
//   A live slot carries no generation (the object's header does) but the handle's live
//   Mappings ("maps"): incremented by map() under the class lock, decremented lock-free when
//   the Mapping goes; free() refuses (busy) while it is not 0. At most 63 at once (map():
//   busy). A deferred object (freed mid-reclaim) may still be mapped, by its evict handler:
//   those Mappings pin the zspage only, since the slot is released at the end of reclaim.
//   Budget: 10 class bits >= 4 shards * 256 classes (64 KiB pages: 256); 15 index bits: object
//   indices < 32768 (64 KiB pages * 16 / 32 B); 32 zspage-id bits >= PoolOptions::max_zspages.
//
// ─── Object header (first 8 bytes of every non-huge object) ───────────────────────────────
//
//          63                                                       2  1  0
//          ┌────────────────────────────────────────────────────────┬──┬──┐
//   alloc  │ handle (62)                                            │0 │1 │  OBJ_ALLOCATED
//   defer  │ handle (62)                                            │1 │0 │  OBJ_DEFERRED
//   free   │ index of next free object (kNoFreeObject: end) (62)    │0 │0 │
//          └────────────────────────────────────────────────────────┴──┴──┘
//   A huge zspage (one object, no header) keeps the same word in ZsPage::huge_header.
//   The payload a user sees starts after the header: capacity = class size - 8.
//
// ─── Zspage memory ────────────────────────────────────────────────────────────────────────
//
//   base ─▶ ┌─ page 0 ──────────┬─ page 1 ──────────┬─ ... ─┬─ page k-1 ───────┐
//           │ obj0 │ obj1 │ obj2│2│ obj3 │ obj4 │ ...│       │ objN-1 │  tail  │
//           └──────────────────┴───────────────────┴───────┴──────────────────┘
//   One contiguous virtual range of k = pages_per_zspage pages from the PageSource, so an
//   object straddling a page boundary (obj2 above) is used in place: no per-CPU bounce buffer
//   and no copy on map/unmap, unlike the kernel, which must kmap two unrelated pages. The cost is
//   one span of virtual address space per zspage, which is free for a user-space process.
//   object i lives at base + i * class.size;  tail = k * page_size - N * size.
//
// ─── Lazy commit (PoolOptions::lazy_commit, the default) ──────────────────────────────────
//
//   base ─▶ ┌─ page 0 ──────┬─ page 1 ──────┬─ page 2 ──────┬─ page 3 ──────┐
//           │ used/freelist objects │ obj b-1 │   never touched: no memory   │
//           └───────────────┴───────────────┴───────────────┴───────────────┘
//           ◀──── committed = ceil(bump * size / page_size) pages ─────▶
//   Objects [0, bump) have been handed out at least once (their headers are valid: allocated,
//   deferred, or freelist links); objects [bump, objs) are implicitly free and their pages are
//   untouched, so the OS holds nothing for them. Allocation takes the freelist first, then
//   `bump++`, committing pages as objects reach them. The pool counts committed pages, which is
//   what the process really holds: a class's last, partly filled zspage costs at most one partly
//   used page instead of up to max_chain pages. (With lazy_commit off, every page is committed
//   and touched at creation, as in the kernel.)
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>
#include <mutex>

#include "zspool/core/internal/debug.h"
#include "zspool/core/pool.h"
#include "zspool/core/size_class.h"
#include "zspool/platform/internal/os.h"
#include "zspool/platform/internal/spin_mutex.h"
#include "zspool/platform/page_source.h"

namespace zspool {

// ── handle slot encoding ──
inline constexpr std::uint64_t kSlotFreeTag = 1;
inline constexpr int kSlotIndexShift = 1;
inline constexpr int kSlotIndexBits = 15;
inline constexpr int kSlotZspageShift = kSlotIndexShift + kSlotIndexBits;  // 16
inline constexpr int kSlotZspageBits = 32;
inline constexpr int kSlotClassShift = kSlotZspageShift + kSlotZspageBits;  // 48
inline constexpr int kSlotClassBits = 10;
inline constexpr int kSlotMapsShift = kSlotClassShift + kSlotClassBits;  // 58
inline constexpr std::uint64_t kSlotOneMap = std::uint64_t{1} << kSlotMapsShift;
inline constexpr std::uint32_t kMaxMapsPerHandle = 63;
static_assert(kSlotMapsShift + 6 == 64 && kMaxMapsPerHandle == (1u << 6) - 1);
static_assert(std::uint64_t{kMaxPageSize} * kMaxChain / kMinObjectSize <= 1u << kSlotIndexBits,
              "object indices fit the slot's index field");

// Class shards per class (see ClassState below).
inline constexpr std::uint32_t kClassShards = 4;

struct ObjLocation {
  std::uint32_t state_index;  // class * kClassShards + shard (ClassState::state_index)
  std::uint32_t zspage_id;
  std::uint32_t obj_index;
};

// A live slot word with no maps.
constexpr std::uint64_t encode_location(ObjLocation loc) {
  return (std::uint64_t{loc.state_index} << kSlotClassShift) |
         (std::uint64_t{loc.zspage_id} << kSlotZspageShift) |
         (std::uint64_t{loc.obj_index} << kSlotIndexShift);
}
constexpr ObjLocation decode_location(std::uint64_t word) {
  return {static_cast<std::uint32_t>((word >> kSlotClassShift) & ((1u << kSlotClassBits) - 1)),
          static_cast<std::uint32_t>(word >> kSlotZspageShift),
          static_cast<std::uint32_t>((word >> kSlotIndexShift) & ((1u << kSlotIndexBits) - 1))};
}
constexpr std::uint32_t slot_maps(std::uint64_t live_word) {
  return static_cast<std::uint32_t>(live_word >> kSlotMapsShift);
}
constexpr bool slot_is_free(std::uint64_t word) {
  return (word & kSlotFreeTag) != 0;
}
static_assert(decode_location(encode_location({1023, 0xfffffffe, 32767})).zspage_id == 0xfffffffe);
static_assert(decode_location(encode_location({1023, 0xfffffffe, 32767}) | kSlotOneMap * 63)
                  .state_index == 1023);

// ── object header encoding ──
inline constexpr std::uint64_t kObjAllocatedTag = 1;
inline constexpr std::uint64_t kObjDeferredTag = 2;
inline constexpr std::uint64_t kObjTagMask = kObjAllocatedTag | kObjDeferredTag;
inline constexpr int kObjTagBits = 2;
inline constexpr std::uint64_t kNoFreeObject = (std::uint64_t{1} << 62) - 1;

constexpr std::uint64_t allocated_header(Handle h) {
  return (h << kObjTagBits) | kObjAllocatedTag;
}
constexpr std::uint64_t deferred_header(Handle h) {
  return (h << kObjTagBits) | kObjDeferredTag;
}
constexpr std::uint64_t free_header(std::uint64_t next_free) {
  return next_free << kObjTagBits;
}
constexpr bool header_allocated(std::uint64_t w) {
  return (w & kObjTagMask) == kObjAllocatedTag;
}
constexpr bool header_deferred(std::uint64_t w) {
  return (w & kObjTagMask) == kObjDeferredTag;
}
constexpr std::uint64_t header_payload(std::uint64_t w) {
  return w >> kObjTagBits;
}

// A freelist head in 16 bits: object indices are below 2^15 (see the slot budget above), and
// kNoFreeObject, the freelist's end, is stored as 0xffff. Reads and writes as a 64-bit index.
class PackedObjIndex {
 public:
  PackedObjIndex& operator=(std::uint64_t idx) {
    bits_ = idx == kNoFreeObject ? kNone : static_cast<std::uint16_t>(idx);
    return *this;
  }
  operator std::uint64_t() const { return bits_ == kNone ? kNoFreeObject : bits_; }

 private:
  static constexpr std::uint16_t kNone = 0xffff;
  std::uint16_t bits_ = kNone;
};
static_assert(std::uint64_t{kMaxPageSize} * kMaxChain / kMinObjectSize <= 0xffff);

// A zspage descriptor. Lives in DescriptorTable (never freed while the pool lives, so a stale
// pointer is always safe to read; ids are reused). A descriptor's id is its index in the table
// (DescriptorTable::id_of); zspages link to each other by id (DescriptorTable::at, 0 = none),
// 4 bytes a link instead of a pointer's 8. The LRU links, needed only with writeback, live in a
// parallel array (DescriptorTable::lru), committed only by pools that have an evict handler.
//
//   ┌ base 8 ┬ huge_header 8 ┬ prev 4 ┬ next 4 ┬ pins 4 ┬ inuse 2 ┬ bump 2 ┬ first_free 2 ┬
//   state_index 2 ┬ committed 1 ┬ fullness 1 ┬ under_reclaim 1 ┬ on_lru 1 ┐  = 40 bytes
//   (+ 8 of LruLinks with writeback): 40 / (4096 * pages_per_zspage) of the pool, 0.98% for a
//   1-page huge zspage, 0.12% for an 8-page one
//
// Invariants (under the class lock):
//   inuse = objects with OBJ_ALLOCATED headers
//   bump = inuse + objects on the freelist + objects with OBJ_DEFERRED headers <= objs_per_zspage
//   committed >= ceil(bump * size / page_size)  (= it, under lazy commit from a fresh span)
//   OBJ_DEFERRED headers exist only while under_reclaim
//   fullness = fullness_group(inuse, objs_per_zspage) when on a fullness list;
//   under_reclaim => on no fullness list and not on the LRU
//   pins > 0 => compaction never takes this zspage as a source
struct ZsPage {
  std::byte* base = nullptr;      // pages_per_zspage * page_size bytes, contiguous
  std::uint64_t huge_header = 0;  // huge zspages: the header their one object cannot carry
  std::uint32_t prev = 0;         // fullness list (and the descriptor free list, via next)
  std::uint32_t next = 0;
  std::atomic<std::uint32_t> pins{0};
  std::uint16_t inuse = 0;
  std::uint16_t bump = 0;  // objects [bump, objs) were never handed out
  PackedObjIndex first_free;
  std::uint16_t state_index = 0;  // its ClassState (class * kClassShards + shard)
  std::uint8_t committed = 0;     // pages of this zspage the pool counts as held (<= kMaxChain)
  std::uint8_t fullness = kFullnessEmpty;
  bool under_reclaim = false;
  bool on_lru = false;  // under lru_lock
#ifdef ZSPOOL_PREFIX_RACE
  Handle deferred_chain = 0;  // the pre-fix design: deferred handles linked via their slots
#endif
};
static_assert(kMaxChain <= 0xff, "ZsPage::committed is 8 bits");
#ifndef ZSPOOL_PREFIX_RACE
static_assert(sizeof(ZsPage) == 40);
#endif

// Handle slots: one reserved virtual array of 64-bit words, index = the handle's slot index.
// Slot 0 is never issued. Slots are issued in batches to each class's free-slot list (under the
// class lock), so the hot path never takes a pool-wide lock. A handle is (generation, slot
// index) packed as the layout above says; these members pack and unpack it.
//   committed bytes = next_unused * 8, rounded up to OS pages
//   issued (next_unused - 1) = in use + on the class states' free lists
// A freed slot goes on the list of the class state that freed it, so a class whose objects
// left (a store's pages change class as they are rewritten; shards merge) can hold many while
// another reserves fresh batches. When the table has no fresh batch left, a class takes slots
// from other states' lists instead (PoolState::steal_slots): capacity is never stranded.
class HandleTable {
 public:
  // Slots are issued to a class, and taken from another, kBatch at a time.
  static constexpr std::uint64_t kBatch = 16;
  static_assert(kBatch * sizeof(std::uint64_t) % 64 == 0, "a batch fills whole cache lines");
  explicit HandleTable(std::uint64_t capacity);
  bool ok() const { return range_.ok(); }
  // The slot index of a handle (of a slot index: itself).
  std::uint64_t index_of(Handle h) const { return h & index_mask_; }
  Handle make_handle(std::uint64_t index, std::uint64_t generation) const {
    return (generation << index_bits_) | index;
  }
  std::atomic_ref<std::uint64_t> slot(Handle h) const {
    return std::atomic_ref<std::uint64_t>(words_[index_of(h)]);
  }
  // True if h's slot was ever handed to a class (it may be live, deferred or free).
  bool issued(Handle h) const {
    const std::uint64_t index = index_of(h);
    return index != 0 && index < next_unused_.load(std::memory_order_acquire);
  }
  // The free word of a slot whose next handle has `generation`, linking to `next_index`.
  std::uint64_t free_word(std::uint64_t next_index, std::uint64_t generation) const {
    return (make_handle(next_index, generation) << 1) | kSlotFreeTag;
  }
  // The free word h's slot gets when h is released: h's generation + 1 (wrapping).
  std::uint64_t free_word_after(Handle h, std::uint64_t next_index) const {
    return free_word(next_index, ((h >> index_bits_) + 1) & generation_mask_);
  }
  std::uint64_t free_word_next(std::uint64_t word) const { return (word >> 1) & index_mask_; }
  // A free word linking to `next_index` instead, with the same generation.
  std::uint64_t relinked(std::uint64_t word, std::uint64_t next_index) const {
    return free_word(next_index, (word >> 1) >> index_bits_);
  }
  // The handle a free slot `index` with this free word issues next.
  Handle handle_from_free_word(std::uint64_t index, std::uint64_t word) const {
    return make_handle(index, (word >> 1) >> index_bits_);
  }
  int index_bits() const { return index_bits_; }
  // Fresh slots [first, end): the rest of the kBatch-aligned group of slots at next_unused_,
  // so two classes' batches never share a cache line (kBatch * 8 = 128 bytes, two whole lines;
  // the array is page-aligned): the first batch is slots 1-15, then 16-31, 32-47, ...
  // {0, 0} when capacity is exhausted.
  struct Batch {
    std::uint64_t first = 0;
    std::uint64_t end = 0;
  };
  Batch reserve_batch();
  std::uint64_t committed_bytes() const;

 private:
  os::VirtualRange range_;
  std::uint64_t* words_ = nullptr;
  std::uint64_t capacity_ = 0;
  int index_bits_ = 0;
  std::uint64_t index_mask_ = 0;
  std::uint64_t generation_mask_ = 0;
  std::mutex grow_mutex_;
  std::atomic<std::uint64_t> next_unused_{1};
};

// Checked builds only (ZSPOOL_CHECKED): per handle slot, the size malloc was asked for, so an
// access past the requested size (not just past the class capacity) is caught exactly. One
// reserved array indexed by slot, like the slots; entries are written under the class lock.
struct CheckedHandle {
  std::uint32_t requested = 0;
};
class CheckedHandles {
 public:
  CheckedHandles(std::uint64_t capacity, const HandleTable& handles)
      : range_(capacity * sizeof(CheckedHandle)),
        entries_(reinterpret_cast<CheckedHandle*>(range_.base())),
        handles_(handles) {}
  CheckedHandle& operator[](Handle h) const { return entries_[handles_.index_of(h)]; }

 private:
  os::VirtualRange range_;
  CheckedHandle* entries_;
  const HandleTable& handles_;
};

// A zspage's place on the LRU (writeback only), under lru_lock; ids as in ZsPage's links.
struct LruLinks {
  std::uint32_t prev = 0;
  std::uint32_t next = 0;
};

// Descriptors, and with `lru_links` their LruLinks, in reserved arrays indexed by id; id 0 is
// never used. committed bytes = next_unused * (sizeof(ZsPage) [+ sizeof(LruLinks)]), rounded up
// to OS pages.
//
// Free descriptors are kept per class shard: a shard's zspages take and give back descriptors
// on its own list, under its own mutex, so threads allocating in different shards neither take
// turns on one mutex nor write to one cache line per zspage they create or free. Shard 0 (every
// single-threaded pool) takes fresh descriptors one at a time, as it always did; shards > 0
// take them in groups of kGroup that fill whole cache lines of their own:
//
//   ids    8k        8k+1              8k+7
//          ┌─────────┬─────────┬ ... ┬─────────┐   8 * 40 bytes = 320 = 5 cache lines,
//          │ ZsPage  │ ZsPage  │     │ ZsPage  │   starting at byte 320k (the array is
//          └─────────┴─────────┴ ... ┴─────────┘   page-aligned): no line shared with any
//                                                  descriptor of another group
// The ids skipped to align a group go to shard 0's list. A shard whose list is empty when the
// table is exhausted takes one from another shard's list, so capacity is never stranded.
//   every descriptor is on at most one list; free descriptors = sum of the lists' lengths
class DescriptorTable {
 public:
  static constexpr std::uint32_t kGroup = 8;
  static_assert(kGroup * 40 % 64 == 0, "a group of descriptors fills whole cache lines");

  DescriptorTable(std::uint32_t capacity, bool lru_links);
  bool ok() const { return range_.ok() && (!has_lru_ || lru_range_.ok()); }
  // A free descriptor for a zspage of class shard `shard`; nullptr when capacity is exhausted.
  ZsPage* allocate(std::uint32_t shard);
  // Gives back the descriptor of a destroyed zspage of class shard `shard`.
  void release(ZsPage* z, std::uint32_t shard);
  // The descriptor with this id, or nullptr if the id was never used.
  ZsPage* find(std::uint32_t id) const {
    return id != 0 && id < next_unused_.load(std::memory_order_acquire) ? base_ + id : nullptr;
  }
  // A link's target: the descriptor with this id, or nullptr for 0. Precondition: id was
  // read from a link (so it was allocated).
  ZsPage* at(std::uint32_t id) const { return id == 0 ? nullptr : base_ + id; }
  std::uint32_t id_of(const ZsPage* z) const {
    return z == nullptr ? 0 : static_cast<std::uint32_t>(z - base_);
  }
  // z's LRU links. Precondition: the table was made with lru_links.
  LruLinks& lru(const ZsPage* z) const { return lru_base_[id_of(z)]; }
  std::uint64_t committed_bytes() const;

 private:
  struct alignas(64) FreeList {
    SpinThenBlockMutex mutex;  // short sections: a pop or a push
    ZsPage* head = nullptr;    // linked by ZsPage::next
  };
  ZsPage* pop(FreeList& list);
  void push(FreeList& list, ZsPage* z);
  ZsPage* construct(std::uint32_t id);
  // Fresh descriptors for `shard` (grow_mutex_ held): one for shard 0, else a group whose
  // first is returned and the rest pushed on the shard's list. nullptr when none is left.
  ZsPage* carve_locked(std::uint32_t shard);
  ZsPage* steal();  // a free descriptor from any shard's list, or nullptr

  os::VirtualRange range_;
  ZsPage* base_ = nullptr;
  bool has_lru_ = false;
  os::VirtualRange lru_range_;
  LruLinks* lru_base_ = nullptr;
  std::uint32_t capacity_ = 0;
  std::array<FreeList, kClassShards> free_;
  SpinThenBlockMutex grow_mutex_;  // next_unused_'s writers; taken before a list's mutex
  std::atomic<std::uint32_t> next_unused_{1};
};

// One shard of one distinct size class. Cache-line aligned so two shards' locks never share a
// line; three lines (192 bytes), counted in PoolStats::metadata_bytes for every shard that exists.
//   zspages = sum over g of (length of the list groups[g]) + zspages under reclaim
//   group_mask bit g set  <=>  groups[g] != nullptr
//   every zspage on its lists, and every handle it issued, names state_index
//
// Shards: two threads allocating in one class would take turns on its lock and write to the
// same zspage's cache lines. So a thread that keeps finding its class lock taken (kShardMoveAfter
// contended mallocs, forgiven one per 256 uncontended) moves to the next shard, for every class,
// and allocates from that shard's zspages from then on; frees go to whichever shard the object
// lives in. A single-threaded user never contends and stays on shard 0;
// shard s > 0 is allocated (class_count states) the first time a thread moves there. Each shard
// compacts on its own, then compaction merges a class's shards (moving objects from higher
// shards' partly used zspages into lower shards'), so a class ends as dense as with one shard.
//
//   state index  =  class * kClassShards + shard     (< 256 * kClassShards <= 2^10)
//   so the shard and class are a mask and a shift away (no division on the free path)
inline constexpr std::uint32_t kShardMoveAfter = 8;  // contended mallocs (net) before a move
static_assert(kClassShards * 256 <= (1u << kSlotClassBits), "state index must fit the slot");
static_assert(std::has_single_bit(kClassShards));

struct alignas(64) ClassState {
  SpinThenBlockMutex lock;
  const SizeClass* info = nullptr;
  std::uint32_t state_index = 0;  // what slots and ZsPage::state_index record
  std::array<ZsPage*, kFullnessGroups> groups{};
  std::uint32_t group_mask = 0;
  std::uint32_t zspages = 0;          // <= PoolOptions::max_zspages, a uint32
  std::uint64_t free_slots = 0;       // slot index heading this class's free-slot list (0: none)
  std::uint64_t free_slot_count = 0;  // slots on that list
  std::uint64_t slots_in_use = 0;     // handles of this class issued and not released
  std::uint64_t obj_used = 0;
  std::uint64_t pages_committed = 0;  // sum of ZsPage::committed over this class's zspages

  std::uint32_t shard() const { return state_index % kClassShards; }
};
static_assert(sizeof(ClassState) <= 192);

class PoolState {
 public:
  explicit PoolState(PoolOptions opts, SizeClassTable t);

  bool writeback() const { return static_cast<bool>(options.evict); }
  std::uint32_t class_count() const { return static_cast<std::uint32_t>(table.classes().size()); }
  // Shard 0 of a class (always exists).
  ClassState& class_state(std::uint32_t class_index) { return shard_base(0)[class_index]; }
  // The state with this index, or nullptr if its shard does not exist (or the index is out of
  // range: it may come from a corrupted handle).
  ClassState* state_at(std::uint32_t state_index) const {
    const std::uint32_t class_index = state_index / kClassShards;
    if (class_index >= class_count()) return nullptr;
    ClassState* base = shard_base(state_index % kClassShards);
    return base == nullptr ? nullptr : base + class_index;
  }
  // The class's state in `shard`, allocating the shard on first use; nullptr if that fails.
  // Takes shard_mutex: call with no lock held.
  ClassState* shard_state(std::uint32_t class_index, std::uint32_t shard);
  // Calls f(ClassState&) for every state of every existing shard, shard by shard.
  template <class F>
  void for_each_state(F&& f) {
    for (std::uint32_t s = 0; s < kClassShards; ++s)
      if (ClassState* base = shard_base(s))
        for (std::uint32_t i = 0; i < class_count(); ++i) f(base[i]);
  }
  std::uint32_t shards_in_use() const {
    std::uint32_t n = 0;
    for (std::uint32_t s = 0; s < kClassShards; ++s) n += shard_base(s) != nullptr ? 1 : 0;
    return n;
  }
  std::size_t zspage_bytes(const SizeClass& c) const {
    return std::size_t{c.pages_per_zspage} * table.page_size();
  }
  std::byte* object_address(const ClassState& c, const ZsPage* z, std::uint32_t idx) const {
    return z->base + std::size_t{idx} * c.info->size;
  }

  // ── object headers (class lock held) ──
  std::uint64_t read_header(const ClassState& c, const ZsPage* z, std::uint32_t idx) const;
  void write_header(const ClassState& c, ZsPage* z, std::uint32_t idx, std::uint64_t word);

  // ── zspage lifecycle and lists (zspage.cc; class lock held) ──
  ZsPage* create_zspage(ClassState& c);
  void destroy_zspage(ClassState& c, ZsPage* z);
  void insert_fullness(ClassState& c, ZsPage* z);
  void remove_fullness(ClassState& c, ZsPage* z);
  void refresh_fullness(ClassState& c, ZsPage* z);
  // The fullest zspage with a free object, or nullptr.
  ZsPage* fullest_with_room(ClassState& c) const;
  // An object index to allocate: the freelist's head, else the bump index (committing its
  // pages). Precondition: z has room (inuse < objs_per_zspage, not under reclaim).
  std::uint32_t take_free_object(ClassState& c, ZsPage* z);
  void populate_reached(ZsPage* z, std::uint64_t begin, std::uint64_t end);
  void prefetch_next_object(const ClassState& c, const ZsPage* z) const;
  // Counts z's first `through` pages as held (no-op for pages already counted).
  void commit_pages(ClassState& c, ZsPage* z, std::uint32_t through);
  // Gives z's pages from `keep` on back to the OS (MADV_DONTNEED) and stops counting them;
  // returns how many that was (0 if z holds no more than `keep`). Precondition: no object of z
  // that is allocated, deferred or on its freelist reaches page `keep` (bump was lowered).
  std::uint32_t decommit_pages(ClassState& c, ZsPage* z, std::uint32_t keep);
  void push_free_object(ClassState& c, ZsPage* z, std::uint32_t idx);
  // Rebuilds z's freelist from its headers; releases OBJ_DEFERRED handles (reclaim failure).
  void restore_freelist(ClassState& c, ZsPage* z);
  // Releases every OBJ_DEFERRED handle of z (reclaim success, before destroy_zspage).
  void release_deferred_handles(ClassState& c, ZsPage* z);

  // ── handle slots (class lock held) ──
  Handle take_slot(ClassState& c);  // 0 when out of capacity
  bool refill_slots(ClassState& c);
  bool steal_slots(ClassState& c);
  void release_slot(ClassState& c, Handle h);

  // ── LRU (takes lru_lock; class lock held) ──
  void lru_push_head(ZsPage* z);
  void lru_remove(ZsPage* z);
  // The coldest zspage and its class, read under lru_lock; nullptr when the LRU is empty.
  ZsPage* lru_peek_tail(std::uint32_t* state_index);
  // Takes z off the LRU if it is still there and still of state `state_index`.
  bool lru_isolate(ZsPage* z, std::uint32_t state_index);

  // c's shard holds `delta` more pages; pages_max follows the pool's total.
  void account_pages(const ClassState& c, std::int64_t delta);

  PoolOptions options;
  SizeClassTable table;
  std::shared_ptr<PageSource> source;
  HandleTable handles;
  DescriptorTable descriptors;
#ifdef ZSPOOL_CHECKED
  CheckedHandles checked{options.max_handles, handles};
#endif

 private:
  ClassState* shard_base(std::uint32_t shard) const {
    return shards_[shard].load(std::memory_order_acquire);
  }
  std::unique_ptr<ClassState[]> make_shard(std::uint32_t shard);
  std::array<std::unique_ptr<ClassState[]>, kClassShards> shard_storage_;
  std::array<std::atomic<ClassState*>, kClassShards> shards_{};
  std::mutex shard_mutex_;

 public:
  std::mutex compact_lock;
  std::mutex lru_lock;
  ZsPage* lru_head = nullptr;  // most recently allocated into
  ZsPage* lru_tail = nullptr;  // coldest: reclaimed first

  // Pages held: one counter per class shard, each on a cache line of its own, so threads that
  // allocate in different shards never write the same line per zspage they create or free.
  //   pages_now() = sum over shards s of shard_pages[s].pages
  //               = sum over states c of c.pages_committed   (at quiescence)
  // A zspage never changes shard (compaction moves objects, not zspages), so each counter is
  // the pages of its own shard's zspages and never goes below 0.
  struct alignas(64) ShardPages {
    std::atomic<std::uint64_t> pages{0};
  };
  std::array<ShardPages, kClassShards> shard_pages;
  std::uint64_t pages_now() const {
    std::uint64_t total = 0;
    for (const ShardPages& s : shard_pages) total += s.pages.load(std::memory_order_relaxed);
    return total;
  }

  // Pool-wide counters (relaxed atomics; exact at quiescence).
  std::atomic<std::uint64_t> pages_max{0};
  std::atomic<std::uint64_t> pages_compacted{0};
  std::atomic<std::uint64_t> reclaim_attempts{0};
  std::atomic<std::uint64_t> zspages_reclaimed{0};
  std::atomic<std::uint64_t> evict_calls{0};
  std::atomic<std::uint64_t> evict_failures{0};
  std::atomic<std::uint64_t> deferred_created{0};
  std::atomic<std::uint64_t> deferred_released{0};
  std::atomic<std::uint64_t> alloc_failures{0};
};

// fullness group of a zspage with `inuse` of `objs` objects in use (see stats.h).
constexpr int fullness_group(std::uint32_t inuse, std::uint32_t objs) {
  if (inuse == 0) return kFullnessEmpty;
  if (inuse >= objs) return kFullnessFull;
  return static_cast<int>(100 * inuse / objs / 10 + 1);
}
static_assert(fullness_group(1, 100) == 1 && fullness_group(99, 100) == 10);

// Misuse of the API (bad handle, double free, unmap without map): an error value in release
// builds; in checked builds (ZSPOOL_CHECKED) a message naming the handle, then abort.
Error report_misuse(Error e, Handle h, const char* operation);

}  // namespace zspool
