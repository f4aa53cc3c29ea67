// zspool bench alloc: zram's allocations replayed through zspool, glibc, jemalloc and mimalloc.
//
//   zspool bench alloc [--input PATH...] [--max-bytes SIZE] [--seed N] [--max-chain N]
//                      [--kernel-like] [--json]
//
//   corpus ──AllocTrace (lz4 sizes, same-filled skipped, huge raw)──▶ for each allocator:
//       fork ─▶ child: fill · free_half · compact · refill (bench/alloc.h) ─▶ JSON ─▶ parent
//
// Allocators, one child each: zspool (lazy commit, chain --max-chain: by default the store's
// 16), zspool-kernel-like (PoolOptions::lazy_commit = false and the kernel's chain 8: the
// kernel's memory behaviour), glibc, jemalloc, mimalloc. The trace stores raw the pages that
// compress to at least huge_class_size of the --max-chain table. --kernel-like runs only the
// kernel-like zspool, which then is the reference row. A library that cannot be loaded is reported
// as unavailable, with dlerror's reason.
//
// Output (cli/render.h): the trace, then per allocator and phase ops/s (and relative to
// glibc), bytes requested, memory held (child RSS over its baseline; relative to zspool) and
// efficiency (requested / held); then zspool's pool view and zspool's efficiency the zram way
// (compr_data_size / mem_used_total) beside the kernel zsmalloc's (bench/alloc.h).
// --json: one object {"corpus", "trace", "seed", "allocators": [...], "zram_efficiency"}.
#include <cstdint>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "zspool/bench/alloc.h"
#include "zspool/bench/child.h"
#include "zspool/bench/store_bench.h"
#include "zspool/cli/bench_verbs.h"
#include "zspool/cli/command.h"
#include "zspool/cli/corpus_args.h"
#include "zspool/cli/options.h"
#include "zspool/cli/render.h"
#include "zspool/core/size_class.h"
#include "zspool/store/store.h"

namespace zspool::tools {
namespace {

constexpr unsigned kCorpusMemoryShare = 4;  // the corpus lives twice while a child copies it

struct BenchAllocOptions {
  CorpusArgs corpus;
  std::uint64_t seed = 1;
  std::uint32_t max_chain = kStoreDefaultChain;  // the store's; the kernel-like row uses 8
  bool kernel_like = false;
  bool json = false;
};

void run_bench_alloc(const BenchAllocOptions& options) {
  const std::string tls_problem = ensure_static_tls_surplus();  // may re-execute the program
  const LoadedCorpus corpus = load_bench_corpus(options.corpus, kBenchPageSize, kCorpusMemoryShare);
  const auto table = SizeClassTable::make(kBenchPageSize, options.max_chain);
  if (!table) usage_error(fmt::format("--max-chain {}: no size-class table", options.max_chain));
  const AllocTrace trace = AllocTrace::from_corpus(corpus.corpus, table->huge_class_size());
  if (trace.objects() < 2)
    command_failed("the corpus has fewer than 2 pages that are not same-filled");
  const AllocBenchResult result =
      run_alloc_bench(trace, options.max_chain, options.seed, options.kernel_like, tls_problem);
  print_output(options.json ? alloc_bench_json(corpus, result).dump(2) + "\n"
                            : alloc_bench_text(corpus, result));
  if (const std::string bad = result.unverified(); !bad.empty())
    command_failed(fmt::format("{}: objects read back different bytes", bad));
}

}  // namespace

void setup_bench_alloc(CLI::App& app) {
  auto options = std::make_shared<BenchAllocOptions>();
  add_corpus_options(app, options->corpus);
  add_count_option(app, "--seed", options->seed,
                   "which random half is freed", 0, ~std::uint64_t{0});
  add_count_option(app, "--max-chain", options->max_chain,
                   fmt::format("most pages per zspage of the zspool row: 1 .. {} (the kernel-like "
                               "row always uses the kernel's {})",
                               kMaxChain, kDefaultChain), 1, kMaxChain);
  app.add_flag("--kernel-like", options->kernel_like,
               "run zspool only as the kernel does (lazy_commit off)");
  app.add_flag("--json", options->json, "print one JSON object instead of tables");
  app.callback([options] { run_bench_alloc(*options); });
}

}  // namespace zspool::tools
