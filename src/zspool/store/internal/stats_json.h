// The store's statistics as JSON values, built from the X-macros that declare them (store.h),
// for the renderers inside the tree (cli, the nbdkit plugin). The public form is
// format_store_stats_json (store.h), store_stats_json dumped. Not installed.
#pragma once

#include <nlohmann/json.hpp>

#include "zspool/store/store.h"

namespace zspool {

// The nine mm_stat figures, keyed by their zram names, in zram's order.
nlohmann::ordered_json mm_stat_json(const MmStat& mm_stat);
// The counters beyond mm_stat (ZSPOOL_STORE_COUNTERS), keyed by their names.
nlohmann::ordered_json store_counters_json(const StoreStats& stats);
// A trace's `stats` object: the mm_stat figures, zram's bd_stat keys (bd_count, bd_reads,
// bd_writes) and the writeback policy's counters (ZSPOOL_STORE_POLICY_COUNTERS).
nlohmann::ordered_json trace_stats_json(const StoreStats& stats);
// {"compressor", "page_size", "capacity_pages", mm_stat..., counters..., "pool": {...}}.
nlohmann::ordered_json store_stats_json(const StoreStats& stats);

}  // namespace zspool
