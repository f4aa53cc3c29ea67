// Statistics: the snapshot (Pool::stats) and its two printings, both generated from the
// X-macros in stats.h.
#include "zspool/core/stats.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "zspool/core/internal/stats_json.h"

#include "zspool/core/internal/pool_state.h"
#include "zspool/core/pool.h"

namespace zspool {

const char* fullness_label(int group) {
  static constexpr const char* kLabels[kFullnessGroups] = {
      "0%", "10%", "20%", "30%", "40%", "50%", "60%", "70%", "80%", "90%", "99%", "100%"};
  return group >= 0 && group < kFullnessGroups ? kLabels[group] : "?";
}

namespace {

// Walks the class's fullness lists (class lock held): stats are not on the hot path, so the
// class keeps no per-group counters.
std::array<std::uint64_t, kFullnessGroups> zspages_per_group(const PoolState& p,
                                                             const ClassState& c) {
  std::array<std::uint64_t, kFullnessGroups> n{};
  for (int g = 0; g < kFullnessGroups; ++g)
    for (const ZsPage* z = c.groups[g]; z != nullptr; z = p.descriptors.at(z->next)) ++n[g];
  return n;
}

}  // namespace

PoolStats Pool::stats() const {
  PoolState& p = *state_;
  PoolStats s;
  s.page_size = p.table.page_size();
  s.max_chain = p.table.max_chain();
  s.huge_class_size = p.table.huge_class_size();
  for (std::uint32_t i = 0; i < p.class_count(); ++i) {
    const SizeClass& info = *p.class_state(i).info;
    ClassStats cs;
    cs.index = i;
    cs.size = info.size;
    cs.pages_per_zspage = info.pages_per_zspage;
    cs.objs_per_zspage = info.objs_per_zspage;
    cs.huge = info.huge;
    for (std::uint32_t shard = 0; shard < kClassShards; ++shard) {  // a class sums its shards
      ClassState* c = p.state_at(i * kClassShards + shard);
      if (c == nullptr) continue;
      std::lock_guard lock(c->lock);
      const auto groups = zspages_per_group(p, *c);
      for (int g = 0; g < kFullnessGroups; ++g) cs.fullness[g] += groups[g];
      cs.zspages += c->zspages;
      cs.obj_used += c->obj_used;
      cs.pages_used += c->pages_committed;
      s.handle_slots_in_use += c->slots_in_use;
    }
    cs.obj_allocated = cs.zspages * cs.objs_per_zspage;
    cs.freeable = (cs.obj_allocated - cs.obj_used) / cs.objs_per_zspage * cs.pages_per_zspage;
    s.objects += cs.obj_used;
    s.classes.push_back(cs);
  }
  s.pages = p.pages_now();
  s.pages_max = p.pages_max.load(std::memory_order_relaxed);
  s.pages_compacted = p.pages_compacted.load(std::memory_order_relaxed);
  s.cached_bytes = p.source->cached_bytes();
  s.handle_slot_bytes = p.handles.committed_bytes();
  s.descriptor_bytes = p.descriptors.committed_bytes();
  s.metadata_bytes = s.handle_slot_bytes + s.descriptor_bytes +
                     p.shards_in_use() * p.class_count() * sizeof(ClassState) + sizeof(PoolState);
  s.class_shards = p.shards_in_use();
  s.reclaim_attempts = p.reclaim_attempts.load(std::memory_order_relaxed);
  s.zspages_reclaimed = p.zspages_reclaimed.load(std::memory_order_relaxed);
  s.evict_calls = p.evict_calls.load(std::memory_order_relaxed);
  s.evict_failures = p.evict_failures.load(std::memory_order_relaxed);
  s.deferred_handles_created = p.deferred_created.load(std::memory_order_relaxed);
  s.deferred_handles_released = p.deferred_released.load(std::memory_order_relaxed);
  s.alloc_failures = p.alloc_failures.load(std::memory_order_relaxed);
  return s;
}

namespace {

bool shown(const ClassStats& c, bool only_used) {
  return !only_used || c.zspages != 0;
}

}  // namespace

std::string format_stats_table(const PoolStats& s, bool only_used) {
  std::string out = fmt::format("{:>5} {:>5} {:>5} {:>5}", "class", "size", "ppz", "opz");
  for (int g = 0; g < kFullnessGroups; ++g) out += fmt::format(" {:>5}", fullness_label(g));
#define ZSPOOL_CLASS_HEADER(name, desc) out += fmt::format(" {:>13}", #name);
  ZSPOOL_CLASS_STATS(ZSPOOL_CLASS_HEADER)
#undef ZSPOOL_CLASS_HEADER
  out += '\n';
  for (const ClassStats& c : s.classes) {
    if (!shown(c, only_used)) continue;
    out += fmt::format("{:>5} {:>5} {:>5} {:>5}", c.index, c.size, c.pages_per_zspage,
                       c.objs_per_zspage);
    for (int g = 0; g < kFullnessGroups; ++g) out += fmt::format(" {:>5}", c.fullness[g]);
#define ZSPOOL_CLASS_CELL(name, desc) out += fmt::format(" {:>13}", c.name);
    ZSPOOL_CLASS_STATS(ZSPOOL_CLASS_CELL)
#undef ZSPOOL_CLASS_CELL
    out += '\n';
  }
  out += fmt::format("\npage_size {}  max_chain {}  huge_class_size {}\n", s.page_size, s.max_chain,
                     s.huge_class_size);
#define ZSPOOL_POOL_ROW(name, desc) out += fmt::format("{:<26} {:>14}  {}\n", #name, s.name, desc);
  ZSPOOL_POOL_STATS(ZSPOOL_POOL_ROW)
#undef ZSPOOL_POOL_ROW
  return out;
}

nlohmann::ordered_json pool_stats_json(const PoolStats& s, bool only_used) {
  nlohmann::ordered_json j;
  j["page_size"] = s.page_size;
  j["max_chain"] = s.max_chain;
  j["huge_class_size"] = s.huge_class_size;
  nlohmann::ordered_json classes = nlohmann::ordered_json::array();
  for (const ClassStats& c : s.classes) {
    if (!shown(c, only_used)) continue;
    nlohmann::ordered_json row{{"class", c.index},
                               {"size", c.size},
                               {"pages_per_zspage", c.pages_per_zspage},
                               {"objs_per_zspage", c.objs_per_zspage},
                               {"huge", c.huge}};
    nlohmann::ordered_json groups = nlohmann::ordered_json::object();
    for (int g = 0; g < kFullnessGroups; ++g) groups[fullness_label(g)] = c.fullness[g];
    row["fullness"] = groups;
#define ZSPOOL_CLASS_KEY(name, desc) row[#name] = c.name;
    ZSPOOL_CLASS_STATS(ZSPOOL_CLASS_KEY)
#undef ZSPOOL_CLASS_KEY
    classes.push_back(std::move(row));
  }
  j["classes"] = std::move(classes);
#define ZSPOOL_POOL_KEY(name, desc) j[#name] = s.name;
  ZSPOOL_POOL_STATS(ZSPOOL_POOL_KEY)
#undef ZSPOOL_POOL_KEY
  return j;
}

std::string format_stats_json(const PoolStats& s, bool only_used) {
  return pool_stats_json(s, only_used).dump();
}

}  // namespace zspool
