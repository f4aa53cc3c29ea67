// zspool bench store: the page store's throughput against raw compression of the same pages,
// and, with --vs-zram, against the kernel's zram (the measurement: bench/store_bench.h).
//
//   zspool bench store [--input PATH...] [--max-bytes SIZE] [--threads N] [--compressor SPEC]
//                      [--max-chain N] [--seed N] [--vs-zram] [--json]
//
// Throughput is MB/s (10^6 bytes) of uncompressed pages; efficiency is compr_data_size /
// mem_used_total. "store/raw" divides the store's write and read rates by raw compress and
// decompress rates of the store's compressor.
// --json: one object {"corpus", "threads", "compressor", "max_chain", "seed", "store", "raw",
// "store_vs_raw", "zram"}.
#include <cstdint>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "zspool/bench/store_bench.h"
#include "zspool/cli/bench_verbs.h"
#include "zspool/cli/command.h"
#include "zspool/cli/corpus_args.h"
#include "zspool/cli/options.h"
#include "zspool/cli/progress.h"
#include "zspool/cli/render.h"
#include "zspool/cli/store_args.h"

namespace zspool::tools {
namespace {

constexpr unsigned kMaxThreads = 256;
constexpr unsigned kCorpusMemoryShare = 4;  // the corpus and the raw buffers: a quarter each

struct BenchStoreArgs {
  CorpusArgs corpus;
  StoreBenchOptions bench;
  bool json = false;
};

void run_bench_store(const BenchStoreArgs& args) {
  const LoadedCorpus corpus = load_bench_corpus(args.corpus, kBenchPageSize, kCorpusMemoryShare);
  const auto result = run_store_bench(corpus.corpus, args.bench, terminal_progress());
  if (!result)
    command_failed(
        fmt::format("cannot run the store benchmark: {}", error_message(result.error())));
  print_output(args.json ? store_bench_json(corpus, *result).dump(2) + "\n"
                         : store_bench_text(corpus, *result));
  if (const std::uint64_t errors = result->errors(); errors != 0)
    command_failed(fmt::format("{} pages failed or read back different bytes", errors));
}

}  // namespace

void setup_bench_store(CLI::App& app) {
  auto args = std::make_shared<BenchStoreArgs>();
  add_corpus_options(app, args->corpus);
  add_threads_option(app, args->bench.threads, kMaxThreads,
                     "threads writing, reading and compressing");
  add_compressor_option(app, args->bench.compressor);
  add_count_option(app, "--max-chain", args->bench.max_chain,
                   fmt::format("most pages per zspage: 1 .. {}", kMaxChain), 1, kMaxChain);
  add_count_option(app, "--seed", args->bench.seed,
                   "which random half is discarded", 0, ~std::uint64_t{0});
  app.add_flag("--vs-zram", args->bench.vs_zram,
               "run the same sequence on /dev/zram0 (root; zram0 unused) and reset it after");
  app.add_flag("--json", args->json, "print one JSON object instead of tables");
  app.callback([args] { run_bench_store(*args); });
}

}  // namespace zspool::tools
