// Every statistic the pool keeps, declared once.
//
// The X-macros below are the single declaration: they generate the struct fields, the table
// columns and the JSON keys (format_stats_table / format_stats_json, and the renderers inside
// the tree through core/internal/stats_json.h). Add a statistic here and it appears everywhere.
//
// Per class (the kernel's debugfs `classes` columns, then ours):
//   obj_allocated = zspages * objs_per_zspage
//   obj_used      = live objects (a deferred-handle object under reclaim is not live)
//   pages_used    = pages committed: <= zspages * pages_per_zspage (= with lazy_commit off)
//   freeable      = (obj_allocated - obj_used) / objs_per_zspage * pages_per_zspage
//                   (pages compaction could free now)
//   sum(fullness[g] over g) = zspages not under reclaim
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "zspool/platform/export.h"

namespace zspool {

// Fullness groups, as modern Linux has them: 0 = empty, 1..10 = ratio 0-9% .. 90-99%
// (group = 100 * inuse / objs_per_zspage / 10 + 1), 11 = full.
inline constexpr int kFullnessGroups = 12;
inline constexpr int kFullnessEmpty = 0;
inline constexpr int kFullnessFull = kFullnessGroups - 1;
// The partly used groups 1 .. kFullnessFull - 1 as a bit mask (group 0 is empty, the last full).
inline constexpr std::uint32_t kPartialGroups = ((1u << kFullnessFull) - 1) & ~1u;

//   X(field, description)
#define ZSPOOL_CLASS_STATS(X)                              \
  X(obj_allocated, "object slots in this class's zspages") \
  X(obj_used, "live objects")                              \
  X(pages_used, "pages committed by this class's zspages") \
  X(freeable, "pages compaction could free now")           \
  X(zspages, "zspages of this class")

#define ZSPOOL_POOL_STATS(X)                                                         \
  X(pages, "pages the pool holds now")                                               \
  X(pages_max, "most pages the pool has held at once")                               \
  X(pages_compacted, "pages freed by compaction (condensed tails too), ever")        \
  X(cached_bytes, "freed zspage memory kept resident for reuse (trim() returns it)") \
  X(objects, "live objects")                                                         \
  X(handle_slots_in_use, "handle slots issued and not released")                     \
  X(handle_slot_bytes, "memory committed for handle slots")                          \
  X(descriptor_bytes, "memory committed for zspage descriptors")                     \
  X(metadata_bytes, "handle slots + descriptors + class table")                      \
  X(class_shards, "class shards in use: 1 until threads contend for a class lock")   \
  X(reclaim_attempts, "zspages taken off the LRU for reclaim")                       \
  X(zspages_reclaimed, "zspages freed by reclaim")                                   \
  X(evict_calls, "calls to the evict handler")                                       \
  X(evict_failures, "evict calls that failed (or threw)")                            \
  X(deferred_handles_created, "frees during reclaim that deferred their handle")     \
  X(deferred_handles_released, "deferred handles released after reclaim")            \
  X(alloc_failures, "malloc calls that failed for lack of memory")

struct ClassStats {
  std::uint32_t index = 0;  // the distinct class index
  std::uint32_t size = 0;
  std::uint32_t pages_per_zspage = 0;
  std::uint32_t objs_per_zspage = 0;
  bool huge = false;
  std::array<std::uint64_t, kFullnessGroups> fullness{};  // zspages per fullness group
#define ZSPOOL_CLASS_FIELD(name, desc) std::uint64_t name = 0;
  ZSPOOL_CLASS_STATS(ZSPOOL_CLASS_FIELD)
#undef ZSPOOL_CLASS_FIELD
};

struct PoolStats {
  std::uint32_t page_size = 0;
  std::uint32_t max_chain = 0;
  std::uint32_t huge_class_size = 0;
  std::vector<ClassStats> classes;  // distinct classes, ascending size
#define ZSPOOL_POOL_FIELD(name, desc) std::uint64_t name = 0;
  ZSPOOL_POOL_STATS(ZSPOOL_POOL_FIELD)
#undef ZSPOOL_POOL_FIELD
};

// The fullness group column titles: "0%", "10%", ..., "99%", "100%".
ZSPOOL_API const char* fullness_label(int group);

// The debugfs-like table: one row per class (all classes, or only those with zspages when
// `only_used`), then the pool-wide figures.
ZSPOOL_API std::string format_stats_table(const PoolStats& stats, bool only_used = true);
// One JSON object: {"page_size", "max_chain", "huge_class_size", "classes": [...], pool figures}.
ZSPOOL_API std::string format_stats_json(const PoolStats& stats, bool only_used = true);

}  // namespace zspool
