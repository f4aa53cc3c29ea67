// zspool run: the main job (bench/run_job.h). Fill a compressed page store with a corpus,
// compact it, read every page back and verify it byte for byte, then report what it cost.
//
//   zspool run [--pages N | --size SIZE | --input PATH... [--max-bytes SIZE]]
//              [--compressor SPEC] [--limit SIZE] [--backing FILE] [--threads N]
//              [--recompress-with SPEC[,SPEC...]] (then every page is recompressed before the
//              reads)
//              [--page-size SIZE] [--max-chain N] [--json]
//
// Corpus: the builtin deterministic mix (workload/corpus.h), kDefaultPages pages unless --pages
// or --size say otherwise; or, with --input, the named files and directories (at most
// --max-bytes). The store's capacity is the corpus's page count.
//
// Output (stdout, cli/render.h): the corpus line, a zramctl-like summary (ALGORITHM DISKSIZE
// DATA COMPR TOTAL STREAMS), efficiency (compr_data_size / mem_used_total) and ratio (orig /
// compr), mm_stat, the pool's class table (used classes only), the writeback counters and the
// throughput of each phase in MB/s. --json: one JSON object instead. A progress bar is drawn on
// stderr when it is a terminal.
//
// Errors: a page whose write fails, whose read fails, or whose bytes differ counts once in
// `errors`; the summary is printed all the same, then one line "zspool: N of M pages failed ..."
// on stderr and exit status 1. Exit 2 on usage errors.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "zspool/bench/run_job.h"
#include "zspool/cli/command.h"
#include "zspool/cli/corpus_args.h"
#include "zspool/cli/options.h"
#include "zspool/cli/progress.h"
#include "zspool/cli/render.h"
#include "zspool/cli/store_args.h"

namespace zspool::tools {
namespace {

constexpr std::uint64_t kDefaultPages = 16384;  // 64 MiB of 4 KiB pages
constexpr std::uint64_t kMaxPages = std::uint64_t{1} << 40;
constexpr unsigned kMaxThreads = 256;
constexpr unsigned kCorpusMemoryShare = 2;  // the corpus may take half the machine

struct RunOptions {
  StoreArgs store;
  std::uint64_t pages = kDefaultPages;
  std::uint64_t size = 0;  // --size: pages = size / page_size when given
  bool size_given = false;
  CorpusArgs corpus;
  unsigned threads = 1;
  bool json = false;
};

LoadedCorpus load_corpus(const RunOptions& options) {
  const auto page_size = static_cast<std::uint32_t>(options.store.geometry.page_size);
  if (!options.corpus.inputs.empty())
    return load_paths_corpus(options.corpus, page_size, kCorpusMemoryShare);
  if (!options.size_given)
    return load_builtin_corpus("--pages", options.pages, page_size, kCorpusMemoryShare, 1,
                               options.corpus.generator);
  if (options.size < page_size)
    usage_error(fmt::format("--size: {} is below one page ({} bytes)", options.size, page_size));
  return load_builtin_corpus("--size", options.size / page_size, page_size, kCorpusMemoryShare, 1,
                             options.corpus.generator);
}

void run_run(const RunOptions& options) {
  const LoadedCorpus corpus = load_corpus(options);
  const std::unique_ptr<Store> store =
      open_store(options.store, corpus.corpus.page_count(), corpus.paths);
  RunReport report = run_job(*store, corpus.corpus, options.threads, terminal_progress());
  report.compressor = options.store.compressor;
  print_output(options.json ? run_json(corpus, report).dump(2) + "\n" : run_text(corpus, report));
  if (report.errors() == 0) return;
  const std::string backing = store->backing_failure();  // why the backing file failed, if it did
  command_failed(report.failure_summary() + (backing.empty() ? "" : "; " + backing));
}

void add_run_corpus_options(CLI::App& app, RunOptions& options) {
  CLI::Option* pages = add_count_option(app, "--pages", options.pages,
                                        "builtin corpus: pages to store", 1, kMaxPages);
  CLI::Option* size =
      add_size_option(app, "--size", options.size, "builtin corpus: bytes to store (e.g. 64M)");
  CLI::Option* input = add_corpus_options(app, options.corpus);
  pages->excludes(size);
  input->excludes(pages)->excludes(size);
  app.get_option("--max-bytes")->needs(input);
}

void setup_run(CLI::App& app) {
  auto options = std::make_shared<RunOptions>();
  add_run_corpus_options(app, *options);
  add_store_options(app, options->store);
  add_threads_option(app, options->threads, kMaxThreads,
                     "threads writing, then reading, the pages");
  app.add_flag("--json", options->json, "print one JSON object instead of tables");
  app.callback([options, &app] {
    options->size_given = app.count("--size") > 0;
    run_run(*options);
  });
}

[[maybe_unused]] const bool registered = register_command(
    {"run", "the main job: store a corpus in a compressed page store, verify, report", setup_run});

}  // namespace
}  // namespace zspool::tools
