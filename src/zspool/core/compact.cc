// Compaction: class by class (each shard of it on its own), move live objects from the emptiest
// zspages into the fullest ones, rewrite their handle slots, and free the zspages that empty.
//
//   source      = the emptiest zspage (lowest non-empty fullness group 1..10) with no mapping
//   destination = the fullest zspage with room (highest group 1..10), not the source
//   kernel-like (lazy_commit off): repeat while the class has at least one zspage's worth of
//     free objects, as Linux does:  (obj_allocated - obj_used) / objs_per_zspage >= 1
//   lazy commit: repeat while a source and a destination exist, so a class is left with at most
//     one partly-used unmapped zspage (every hole filled costs no new page: holes lie in
//     committed pages, and the source's pages are freed when it empties)
//   per class shard (pool_state.h); then a class with several shards in use has its higher
//   shards' partly-used zspages drained into the lower shards' (merge_shards below)
//
// Then, under lazy commit only, condense: each partly-used unmapped zspage moves its objects at
// the highest indices into its lowest holes, so its live objects are exactly [0, inuse), and
// gives the pages past the last live byte back to the OS:
//
//   before   │ A │   │ B │   │   │ C │ D │   │ · · · never touched · · · │  bump = 8
//            ◀──────── committed = ceil(8 * size / page_size) ────────▶
//   after    │ A │ D │ B │ C │ · · · returned to the OS (MADV_DONTNEED) · │  bump = inuse = 4
//            ◀─ committed = ceil(4 * size / page_size) ─▶
//
//   afterwards: freelist empty, bump = inuse, committed = ceil(inuse * size / page_size)
//
// Runs under compact_lock (one compaction at a time) and each class's lock; the class lock is
// dropped between source zspages so allocation in the class is never held up for long.
// Zspages under reclaim are on no fullness list, so compaction never sees them; a mapped zspage
// (pins > 0; pins only grow under the class lock) is never a source and never condensed.
#include <algorithm>
#include <bit>
#include <cstring>

#include "zspool/core/internal/pool_state.h"
#include "zspool/core/pool.h"

namespace zspool {

namespace {

// Kernel-like: at least one zspage's worth of free objects. Lazy commit: any free object (the
// loop stops by itself when no source or destination is left).
bool worth_compacting(const PoolState& p, const ClassState& c) {
  const std::uint64_t free_objects =
      std::uint64_t{c.zspages} * c.info->objs_per_zspage - c.obj_used;
  if (p.options.lazy_commit) return free_objects > 0;
  return free_objects >= c.info->objs_per_zspage;
}

// The emptiest unmapped zspage of the class, or nullptr.
ZsPage* pick_source(const PoolState& p, const ClassState& c) {
  for (std::uint32_t mask = c.group_mask & kPartialGroups; mask != 0; mask &= mask - 1) {
    for (ZsPage* z = c.groups[std::countr_zero(mask)]; z != nullptr; z = p.descriptors.at(z->next))
      if (z->pins.load(std::memory_order_acquire) == 0) return z;
  }
  return nullptr;
}

// The fullest zspage with room other than `source`, or nullptr.
ZsPage* pick_destination(const PoolState& p, const ClassState& c, const ZsPage* source) {
  for (std::uint32_t mask = c.group_mask & kPartialGroups; mask != 0;) {
    const int g = std::bit_width(mask) - 1;
    for (ZsPage* z = c.groups[g]; z != nullptr; z = p.descriptors.at(z->next))
      if (z != source) return z;
    mask &= ~(1u << g);
  }
  return nullptr;
}

// Copies the allocated object (src, i) with this header to (dst, j) and points its handle slot
// there. The caller owns the bookkeeping of both indices. src and dst may belong to two shards
// of one class (sc, dc), or dc may be a larger class (a spill): sc's size is copied, both locks
// held.
void move_object(PoolState& p, ClassState& sc, ZsPage* src, std::uint32_t i, ClassState& dc,
                 ZsPage* dst, std::uint32_t j, std::uint64_t header) {
  std::memcpy(p.object_address(dc, dst, j), p.object_address(sc, src, i), sc.info->size);
  p.write_header(dc, dst, j, header);
  p.handles.slot(header_payload(header))
      .store(encode_location({dc.state_index, p.descriptors.id_of(dst), j}),
             std::memory_order_release);
}

// Moves objects from src (of sc) to dst (of dc) until src is empty or dst is full; returns the
// pages dst had to commit for them. Between shards, each moved object's count and handle slot
// move to dc too (its free() will lock dc from now on).
std::uint32_t migrate_objects(PoolState& p, ClassState& sc, ZsPage* src, ClassState& dc,
                              ZsPage* dst) {
  const std::uint32_t committed_before = dst->committed;
  for (std::uint32_t i = 0; i < src->bump && src->inuse > 0; ++i) {
    if (dst->inuse == dc.info->objs_per_zspage) break;
    const std::uint64_t header = p.read_header(sc, src, i);
    if (!header_allocated(header)) continue;
    move_object(p, sc, src, i, dc, dst, p.take_free_object(dc, dst), header);
    p.push_free_object(sc, src, i);
    if (&sc != &dc) {
      --sc.obj_used, --sc.slots_in_use;
      ++dc.obj_used, ++dc.slots_in_use;
    }
  }
  return dst->committed - committed_before;
}

// Compacts one class; returns pages freed, net of pages destinations committed.
std::size_t compact_class(PoolState& p, ClassState& c) {
  std::size_t released = 0, committed = 0;
  for (;;) {
    std::lock_guard lock(c.lock);
    if (!worth_compacting(p, c)) break;
    ZsPage* src = pick_source(p, c);
    if (src == nullptr) break;
    ZsPage* dst = pick_destination(p, c, src);
    if (dst == nullptr) break;
    p.remove_fullness(c, src);
    p.remove_fullness(c, dst);
    while (src->inuse > 0 && dst != nullptr) {
      committed += migrate_objects(p, c, src, c, dst);
      p.insert_fullness(c, dst);
      dst = src->inuse > 0 ? pick_destination(p, c, src) : nullptr;
      if (dst != nullptr) p.remove_fullness(c, dst);
    }
    if (src->inuse == 0) {
      released += src->committed;
      p.destroy_zspage(c, src);
    } else {
      p.insert_fullness(c, src);
      break;
    }
  }
  return released > committed ? released - committed : 0;
}

// ── merging a class's shards ──
//
// Each shard compacts on its own (compact_class), which leaves a class whose objects are spread
// over several shards with up to one partly used zspage per shard. Merging then moves objects
// from higher shards' partly used zspages into lower shards' fullest ones, so the class ends as
// dense as if it had one shard. Both shards' locks are held, the lower shard's first (the only
// place two class locks are held at once: see the lock order in pool_state.h).

// Moves objects of sc's partly used zspages into dc's; returns pages freed, net.
std::size_t drain_shard_into(PoolState& p, ClassState& dc, ClassState& sc) {
  ZS_ASSERT(dc.info == sc.info && dc.state_index < sc.state_index);
  std::lock_guard lower(dc.lock);
  std::lock_guard higher(sc.lock);
  std::size_t released = 0, committed = 0;
  for (;;) {
    ZsPage* src = pick_source(p, sc);
    ZsPage* dst = src == nullptr ? nullptr : pick_destination(p, dc, nullptr);
    if (dst == nullptr) break;
    p.remove_fullness(sc, src);
    p.remove_fullness(dc, dst);
    committed += migrate_objects(p, sc, src, dc, dst);
    p.insert_fullness(dc, dst);
    if (src->inuse == 0) {  // unpinned: pick_source says so, and pins grow only under sc.lock
      released += src->committed;
      p.destroy_zspage(sc, src);
    } else {
      p.insert_fullness(sc, src);  // dst is full now: the next round picks another
    }
  }
  return released > committed ? released - committed : 0;
}

// Merges every pair of existing shards of one class, lower shards receiving.
std::size_t merge_shards(PoolState& p, std::uint32_t class_index) {
  std::size_t freed = 0;
  for (std::uint32_t d = 0; d < kClassShards; ++d) {
    ClassState* dc = p.state_at(class_index * kClassShards + d);
    if (dc == nullptr) continue;
    for (std::uint32_t s = kClassShards - 1; s > d; --s)
      if (ClassState* sc = p.state_at(class_index * kClassShards + s))
        freed += drain_shard_into(p, *dc, *sc);
  }
  return freed;
}

// ── condense (lazy commit only) ──

// Pages that objects [0, objs) reach.
std::uint32_t pages_reached(const PoolState& p, const ClassState& c, std::uint32_t objs) {
  const std::uint64_t ps = p.table.page_size();
  return static_cast<std::uint32_t>((std::uint64_t{objs} * c.info->size + ps - 1) / ps);
}

// A zspage condense may touch (unmapped; on a fullness list, so not under reclaim) whose live
// objects, packed low, would need fewer pages than it holds.
bool worth_condensing(const PoolState& p, const ClassState& c, const ZsPage* z) {
  return z->pins.load(std::memory_order_acquire) == 0 && !z->under_reclaim && z->inuse > 0 &&
         pages_reached(p, c, z->inuse) < z->committed;
}

// Moves the allocated objects at the highest indices into the lowest holes, so the allocated
// objects are exactly [0, inuse); then every object of [inuse, bump) is free and the freelist,
// which links only such objects, is dropped by lowering bump to inuse.
void pack_objects_low(PoolState& p, ClassState& c, ZsPage* z) {
  std::uint32_t hole = 0, last = z->bump;
  for (;;) {
    while (hole < last && header_allocated(p.read_header(c, z, hole))) ++hole;
    while (last > hole && !header_allocated(p.read_header(c, z, last - 1))) --last;
    if (hole == last) break;  // [0, hole) allocated, nothing allocated at or past it
    --last;                   // hole is free and last is allocated, so hole < last here
    move_object(p, c, z, last, c, z, hole, p.read_header(c, z, last));
    ++hole;
  }
  ZS_ASSERT(hole == z->inuse);
  z->first_free = kNoFreeObject;
  z->bump = z->inuse;
}

// Condenses one zspage; returns the pages given back to the OS.
std::uint32_t condense_zspage(PoolState& p, ClassState& c, ZsPage* z) {
  pack_objects_low(p, c, z);
  return p.decommit_pages(c, z, pages_reached(p, c, z->inuse));
}

// Condenses every partly-used zspage of the class that gains a page from it.
std::size_t condense_class(PoolState& p, ClassState& c) {
  std::lock_guard lock(c.lock);
  std::size_t decommitted = 0;
  for (std::uint32_t mask = c.group_mask & kPartialGroups; mask != 0; mask &= mask - 1) {
    for (ZsPage* z = c.groups[std::countr_zero(mask)]; z != nullptr; z = p.descriptors.at(z->next))
      if (worth_condensing(p, c, z)) decommitted += condense_zspage(p, c, z);
  }
  return decommitted;
}

// ── spill (lazy commit only) ──
//
// After condensing, each class still ends in one partly used page: its last zspage's objects
// reach into a page they fill only in part, and the next few classes up have room in their own
// last pages. Spilling moves the objects that reach into a class's last page into free objects
// of the next kSpillClasses larger classes of the same shard, where those lie in pages already
// committed, and gives the emptied page back to the OS:
//
//   class c     │ obj │ obj │ obj │ o│bj │ obj │ ▒▒▒▒▒▒▒▒▒ │   last page: 2 objects reach it
//   class c+1   │ obj  │ obj  │ obj  │ ··· free ··· │          room in a committed page
//   after       class c's last page returned; its 2 objects live in class c+1's room
//
// A spilled object keeps its handle; its slot names the larger class from then on (its capacity
// grows to that class's). Only whole pages are worth it: a zspage spills only if the rooms
// take every object that reaches its last page. Never a pinned zspage, never huge classes (no
// header), never in kernel-like mode (lazy_commit off), which keeps the kernel's classes.
// Locks: the class, then each larger class in turn (the lower state index first).

// How far up a class spills: the next kSpillClasses classes.
constexpr std::uint32_t kSpillClasses = 4;

// Whether z can hand out an object without committing a page.
bool has_committed_room(const PoolState& p, const ClassState& c, const ZsPage* z) {
  if (z->inuse >= c.info->objs_per_zspage || z->under_reclaim) return false;
  if (z->first_free != kNoFreeObject) return true;  // freelist objects lie below bump
  return std::uint64_t{z->bump + 1u} * c.info->size <=
         std::uint64_t{z->committed} * p.table.page_size();
}

// The objects (at most `want`) c's partly used zspages can take without committing a page.
std::uint32_t committed_room(const PoolState& p, const ClassState& c, std::uint32_t want) {
  std::uint32_t room = 0;
  for (std::uint32_t mask = c.group_mask & kPartialGroups; mask != 0; mask &= mask - 1) {
    for (ZsPage* z = c.groups[std::countr_zero(mask)]; z != nullptr && room < want;
         z = p.descriptors.at(z->next)) {
      if (z->under_reclaim) continue;
      const std::uint64_t ps = p.table.page_size();
      const auto in_pages = static_cast<std::uint32_t>(std::min<std::uint64_t>(
          std::uint64_t{z->committed} * ps / c.info->size, c.info->objs_per_zspage));
      room += in_pages - z->inuse;
    }
  }
  return std::min(room, want);
}

// A partly used zspage of c with committed room, or nullptr.
ZsPage* room_in(const PoolState& p, const ClassState& c) {
  for (std::uint32_t mask = c.group_mask & kPartialGroups; mask != 0;) {
    const int g = std::bit_width(mask) - 1;
    for (ZsPage* z = c.groups[g]; z != nullptr; z = p.descriptors.at(z->next))
      if (has_committed_room(p, c, z)) return z;
    mask &= ~(1u << g);
  }
  return nullptr;
}

// Moves c's object `idx` (allocated, of condensed z) into dc's room; the caller checked there is.
void spill_object(PoolState& p, ClassState& c, ZsPage* z, std::uint32_t idx, ClassState& dc) {
  ZsPage* dst = room_in(p, dc);
  ZS_ASSERT(dst != nullptr);
  p.remove_fullness(dc, dst);
  move_object(p, c, z, idx, dc, dst, p.take_free_object(dc, dst), p.read_header(c, z, idx));
  p.insert_fullness(dc, dst);
  --z->inuse;
  --c.obj_used, --c.slots_in_use;
  ++dc.obj_used, ++dc.slots_in_use;
}

// The larger classes c may spill into: same shard, not huge, within kSpillClasses.
template <class F>
void for_each_spill_target(PoolState& p, const ClassState& c, F&& f) {
  const std::uint32_t class_index = c.state_index / kClassShards;
  for (std::uint32_t k = 1; k <= kSpillClasses && class_index + k < p.class_count(); ++k) {
    ClassState* dc = p.state_at(c.state_index + k * kClassShards);
    if (dc == nullptr || dc->info->huge) return;
    if (!f(*dc)) return;
  }
}

// Spills the objects reaching z's last page, if the rooms above take them all; returns the
// pages given back (1, or 0 when nothing moved). Precondition: z condensed (objects [0, inuse)).
std::uint32_t spill_last_page(PoolState& p, ClassState& c, ZsPage* z) {
  if (z->committed == 0 || z->inuse == 0 || z->bump != z->inuse) return 0;
  const std::uint64_t ps = p.table.page_size();
  const std::uint32_t last = z->committed - 1u;
  const auto first = static_cast<std::uint32_t>(std::uint64_t{last} * ps / c.info->size);
  if (first >= z->inuse) return 0;
  const std::uint32_t moving = z->inuse - first;
  std::uint32_t room = 0;
  for_each_spill_target(p, c, [&](ClassState& dc) {
    std::lock_guard lock(dc.lock);
    room += committed_room(p, dc, moving - room);
    return room < moving;
  });
  if (room < moving) return 0;
  for_each_spill_target(p, c, [&](ClassState& dc) {
    std::lock_guard lock(dc.lock);
    while (z->inuse > first && room_in(p, dc) != nullptr) spill_object(p, c, z, z->inuse - 1u, dc);
    return z->inuse > first;
  });
  // A malloc above may have taken a room meanwhile: what stayed is still [0, inuse).
  z->bump = z->inuse;
  return p.decommit_pages(c, z, pages_reached(p, c, z->inuse));
}

// Spills every unpinned partly used zspage of c, page by page, while the rooms above take them;
// returns the pages given back.
std::size_t spill_class(PoolState& p, ClassState& c) {
  std::lock_guard lock(c.lock);
  std::size_t freed = 0;
  for (std::uint32_t mask = c.group_mask & kPartialGroups; mask != 0; mask &= mask - 1) {
    for (ZsPage* z = c.groups[std::countr_zero(mask)]; z != nullptr;) {
      ZsPage* next = p.descriptors.at(z->next);
      if (z->pins.load(std::memory_order_acquire) == 0 && !z->under_reclaim) {
        if (z->bump != z->inuse) pack_objects_low(p, c, z);  // holes condense did not take
        while (std::uint32_t n = spill_last_page(p, c, z)) freed += n;
        if (z->inuse == 0) {
          p.remove_fullness(c, z);
          p.destroy_zspage(c, z);
        } else {
          p.refresh_fullness(c, z);
        }
      }
      z = next;
    }
  }
  return freed;
}

}  // namespace

std::size_t Pool::compact() {
  PoolState& p = *state_;
  std::lock_guard compacting(p.compact_lock);
  std::size_t freed = 0;
  p.for_each_state([&](ClassState& c) {
    if (!c.info->huge) freed += compact_class(p, c);  // huge: one object a zspage, no gain
  });
  if (p.shards_in_use() > 1) {
    for (std::uint32_t i = 0; i < p.class_count(); ++i)
      if (!p.class_state(i).info->huge) freed += merge_shards(p, i);
  }
  if (p.options.lazy_commit) {
    p.for_each_state([&](ClassState& c) {
      if (!c.info->huge) freed += condense_class(p, c);
    });
    p.for_each_state([&](ClassState& c) {
      if (!c.info->huge) freed += spill_class(p, c);
    });
  }
  p.pages_compacted.fetch_add(freed, std::memory_order_relaxed);
  p.source->trim();
  return freed;
}

void Pool::trim() {
  state_->source->trim();
}

}  // namespace zspool
