// The sub-verbs of `zspool bench`, each in its own file; cmd_bench.cc registers the verb and
// adds them.
//
//   zspool bench alloc   zspool's pool against glibc, jemalloc and mimalloc   cmd_bench_alloc.cc
//   zspool bench store   the page store against raw compression (and zram)    cmd_bench_store.cc
//   zspool bench policy  writeback policies against an exact LRU (issue 14)   cmd_bench_policy.cc
#pragma once

#include "zspool/cli/cli11_fwd.h"

namespace zspool::tools {

// Each adds its options to `app` (the sub-verb's own CLI::App) and sets its callback.
void setup_bench_alloc(CLI::App& app);
void setup_bench_store(CLI::App& app);
void setup_bench_policy(CLI::App& app);

}  // namespace zspool::tools
