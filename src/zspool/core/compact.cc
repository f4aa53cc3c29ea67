// Compaction: per class, largest class first, move live objects from the emptiest zspages into
// the fullest ones, rewrite their handle slots, and free the zspages that empty.
//
//   source      = the emptiest zspage (lowest non-empty fullness group 1..10) with no mapping
//   destination = the fullest zspage with room (highest group 1..10), not the source
//   repeat while the class has at least one zspage's worth of free objects:
//     (obj_allocated - obj_used) / objs_per_zspage >= 1
//
// Runs under compact_lock (one compaction at a time) and each class's lock; the class lock is
// dropped between source zspages so allocation in the class is never held up for long.
// Zspages under reclaim are on no fullness list, so compaction never sees them.
#include <bit>
#include <cstring>

#include "zspool/core/pool.h"
#include "zspool/core/pool_state.h"

namespace zspool {

namespace {

constexpr std::uint32_t kPartialGroups = ((1u << kFullnessFull) - 1) & ~1u;  // groups 1..10

bool worth_compacting(const ClassState& c) {
  const std::uint64_t allocated = c.zspages * c.info->objs_per_zspage;
  return allocated - c.obj_used >= c.info->objs_per_zspage;
}

// The emptiest unmapped zspage of the class, or nullptr.
ZsPage* pick_source(const ClassState& c) {
  for (std::uint32_t mask = c.group_mask & kPartialGroups; mask != 0; mask &= mask - 1) {
    for (ZsPage* z = c.groups[std::countr_zero(mask)]; z != nullptr; z = z->next)
      if (z->pins.load(std::memory_order_acquire) == 0) return z;
  }
  return nullptr;
}

// The fullest zspage with room other than `source`, or nullptr.
ZsPage* pick_destination(const ClassState& c, const ZsPage* source) {
  for (std::uint32_t mask = c.group_mask & kPartialGroups; mask != 0;) {
    const int g = std::bit_width(mask) - 1;
    for (ZsPage* z = c.groups[g]; z != nullptr; z = z->next)
      if (z != source) return z;
    mask &= ~(1u << g);
  }
  return nullptr;
}

// Moves objects from src to dst until src is empty or dst is full; returns the pages dst had
// to commit for them.
std::uint32_t migrate_objects(PoolState& p, ClassState& c, ZsPage* src, ZsPage* dst) {
  const std::uint32_t committed_before = dst->committed;
  const std::uint32_t size = c.info->size;
  for (std::uint32_t i = 0; i < src->bump && src->inuse > 0; ++i) {
    if (dst->inuse == c.info->objs_per_zspage) break;
    const std::uint64_t header = p.read_header(c, src, i);
    if (!header_allocated(header)) continue;
    const Handle h = header_payload(header);
    const std::uint32_t j = p.take_free_object(c, dst);
    std::memcpy(p.object_address(c, dst, j), p.object_address(c, src, i), size);
    p.write_header(c, dst, j, header);
    p.handles.slot(h).store(encode_location({c.info->index, dst->id, j}),
                            std::memory_order_release);
    p.push_free_object(c, src, i);
  }
  return dst->committed - committed_before;
}

// Compacts one class; returns pages freed, net of pages destinations committed.
std::size_t compact_class(PoolState& p, ClassState& c) {
  std::size_t released = 0, committed = 0;
  for (;;) {
    std::lock_guard lock(c.lock);
    if (!worth_compacting(c)) break;
    ZsPage* src = pick_source(c);
    if (src == nullptr) break;
    ZsPage* dst = pick_destination(c, src);
    if (dst == nullptr) break;
    p.remove_fullness(c, src);
    p.remove_fullness(c, dst);
    while (src->inuse > 0 && dst != nullptr) {
      committed += migrate_objects(p, c, src, dst);
      p.insert_fullness(c, dst);
      dst = src->inuse > 0 ? pick_destination(c, src) : nullptr;
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

}  // namespace

std::size_t Pool::compact() {
  PoolState& p = *state_;
  std::lock_guard compacting(p.compact_lock);
  std::size_t freed = 0;
  for (std::uint32_t i = p.class_count(); i-- > 0;) {
    ClassState& c = p.class_state(i);
    if (c.info->huge) continue;  // one object per zspage: nothing to gain
    freed += compact_class(p, c);
  }
  p.pages_compacted.fetch_add(freed, std::memory_order_relaxed);
  p.source->trim();
  return freed;
}

void Pool::trim() {
  state_->source->trim();
}

}  // namespace zspool
