// zspool bench policy: the LRU inversion, side by side (the measurement: bench/policy_bench.h).
//
//   zspool bench policy [--input PATH...] [--max-bytes SIZE] [--compressor SPEC] [--seed N]
//                       [--read-rounds N] [--limit-percent P] [--backing-dir DIR]
//                       [--writeback-batch PAGES] [--json]
//
// Writes the corpus (default: the builtin 64 MiB) into stores limited to --limit-percent of its
// compressed size with a backing file each, then reads it --read-rounds times over (80% of the
// reads to a hot tenth of the pages); prints, per policy (page, zspage, page with the
// background writer) and for an exact page-granular LRU with the same memory, the share of reads
// served from memory (all, hot set), backing reads and writes, write latencies, and how much of
// the limit held data. --json: one object {"corpus", ..., "runs": [...]}.
#include <cstdint>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "zspool/bench/policy_bench.h"
#include "zspool/cli/bench_verbs.h"
#include "zspool/cli/command.h"
#include "zspool/cli/corpus_args.h"
#include "zspool/cli/options.h"
#include "zspool/cli/progress.h"
#include "zspool/cli/render.h"
#include "zspool/cli/store_args.h"

namespace zspool::tools {
namespace {

constexpr unsigned kCorpusMemoryShare = 4;

struct BenchPolicyArgs {
  CorpusArgs corpus;
  PolicyBenchOptions bench;
  bool json = false;
};

// A --backing-dir that cannot take the backing files is the user's mistake, found before the
// corpus is loaded or any store is made.
void check_backing_dir(const std::string& dir) {
  if (dir.empty()) return;  // the default: $TMPDIR or /tmp
  if (const std::string problem = backing_dir_problem(dir); !problem.empty())
    usage_error("--backing-dir " + problem);
}

// The failure line: how many pages failed and, when a backing file failed, which and why
// (as `zspool run` says it).
std::string failure_line(const PolicyBenchResult& result) {
  const std::string backing = result.backing_failure();
  return fmt::format("{} pages failed or read back different bytes{}", result.errors(),
                     backing.empty() ? "" : "; " + backing);
}

void run_bench_policy(const BenchPolicyArgs& args) {
  check_backing_dir(args.bench.backing_dir);
  const LoadedCorpus corpus = load_bench_corpus(args.corpus, kBenchPageSize, kCorpusMemoryShare);
  std::string why;
  const auto result = run_policy_bench(corpus.corpus, args.bench, terminal_progress(), &why);
  if (!result)
    command_failed(fmt::format("cannot run the policy benchmark: {}",
                               why.empty() ? error_message(result.error()) : why));
  print_output(args.json ? policy_bench_json(corpus, *result).dump(2) + "\n"
                         : policy_bench_text(corpus, *result));
  if (result->errors() != 0) command_failed(failure_line(*result));
}

}  // namespace

void setup_bench_policy(CLI::App& app) {
  auto args = std::make_shared<BenchPolicyArgs>();
  add_corpus_options(app, args->corpus);
  add_compressor_option(app, args->bench.compressor);
  add_count_option(app, "--seed", args->bench.seed, "which pages are hot, and the reads", 0,
                   ~std::uint64_t{0});
  add_count_option(app, "--read-rounds", args->bench.read_rounds,
                   "reads: this many times the corpus's pages", 1, 1000);
  add_count_option(app, "--limit-percent", args->bench.limit_percent,
                   "the memory limit: this % of the corpus's compressed size", 1, 100);
  app.add_option("--backing-dir", args->bench.backing_dir,
                 "where the backing files go (a fresh directory inside it, removed after; "
                 "default: $TMPDIR, else /tmp)")
      ->type_name("DIR");
  add_count_option(app, "--writeback-batch", args->bench.writeback_batch,
                   "pages each store writes back per batch (1: one write per page)", 1,
                   kMaxWritebackBatch)
      ->type_name("PAGES");
  app.add_flag("--json", args->json, "print one JSON object instead of tables");
  app.callback([args] { run_bench_policy(*args); });
}

}  // namespace zspool::tools
