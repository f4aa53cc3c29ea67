// zspool bench: measurements against the kernel's figures and other allocators.
//
//   zspool bench alloc [--input PATH...] [--max-bytes SIZE] [--seed N] [--max-chain N]
//                      [--kernel-like] [--json]
//   zspool bench store [--input PATH...] [--max-bytes SIZE] [--threads N] [--compressor SPEC]
//                      [--seed N] [--vs-zram] [--json]
//   zspool bench policy [--input PATH...] [--max-bytes SIZE] [--compressor SPEC] [--seed N]
//                       [--read-rounds N] [--limit-percent P] [--backing-dir DIR] [--json]
//
// Each sub-verb documents itself in its own file (bench_verbs.h lists them); BENCHMARKS.md has
// the figures of this project's machines with the commands that produced them.
#include <CLI/CLI.hpp>

#include "zspool/cli/bench_verbs.h"
#include "zspool/cli/command.h"

namespace zspool::tools {
namespace {

void setup_bench(CLI::App& app) {
  app.require_subcommand(1, 1);
  setup_bench_alloc(*app.add_subcommand(
      "alloc", "replay zram's allocations through zspool, glibc, jemalloc and mimalloc"));
  setup_bench_store(*app.add_subcommand(
      "store", "page store write/read throughput against raw lz4/zstd (and zram with --vs-zram)"));
  setup_bench_policy(*app.add_subcommand(
      "policy", "writeback policies (page, zspage) under a limit against an exact LRU"));
}

[[maybe_unused]] const bool registered = register_command(
    {"bench", "benchmarks: the pool against other allocators, the store against raw compression",
     setup_bench});

}  // namespace
}  // namespace zspool::tools
