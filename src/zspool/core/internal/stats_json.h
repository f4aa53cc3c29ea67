// The pool's statistics as a JSON value, for the renderers inside the tree (store, cli, the
// nbdkit plugin), so none of them prints JSON text and parses it back. The public form is
// format_stats_json (stats.h), the same value dumped. Not installed: it exposes nlohmann::json.
#pragma once

#include <nlohmann/json.hpp>

#include "zspool/core/stats.h"

namespace zspool {

// {"page_size", "max_chain", "huge_class_size", "classes": [...], and every ZSPOOL_POOL_STATS
// counter}; classes with no zspage and no object are left out when only_used.
nlohmann::ordered_json pool_stats_json(const PoolStats& stats, bool only_used = true);

}  // namespace zspool
