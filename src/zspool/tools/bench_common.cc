#include "zspool/tools/bench_common.h"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "zspool/platform/os.h"
#include "zspool/tools/command.h"
#include "zspool/tools/options.h"
#include "zspool/tools/size_arg.h"

namespace zspool::tools {
namespace {

std::string join(const std::vector<std::string>& words) {
  std::string text;
  for (const std::string& w : words) text += (text.empty() ? "" : " ") + w;
  return text;
}

// The corpus lives in memory (twice over while a child copies it): refuse one the machine cannot
// hold rather than be killed half-way.
void check_fits(std::uint64_t bytes) {
  const std::uint64_t memory = os::physical_memory_bytes();
  if (memory == 0 || bytes <= memory / 4) return;
  usage_error(fmt::format("--max-bytes: {} is more than a quarter of this machine's memory ({})",
                          format_bytes(bytes), format_bytes(memory)));
}

}  // namespace

void add_bench_corpus_options(CLI::App& app, BenchCorpusArgs& args) {
  app.add_option("--input", args.inputs, "files and directories of real data (default: builtin)")
      ->type_name("PATH")
      ->expected(1, -1);
  add_size_option(app, "--max-bytes", args.max_bytes, "at most this much data (builtin: its size)");
}

BenchCorpus load_bench_corpus(const BenchCorpusArgs& args) {
  if (args.max_bytes < kBenchPageSize)
    usage_error(fmt::format("--max-bytes: {} is below one page ({} bytes)", args.max_bytes,
                            kBenchPageSize));
  check_fits(args.max_bytes);
  if (args.inputs.empty())
    return {Corpus::builtin(args.max_bytes / kBenchPageSize, kBenchPageSize), "builtin", {}};
  LoadReport load;
  auto corpus = Corpus::from_paths(args.inputs, kBenchPageSize, args.max_bytes, &load);
  if (!corpus) {
    if (corpus.error() == Error::io_error) command_failed("--input: " + load.error);
    usage_error("--input: " + load.error);
  }
  return {std::move(*corpus), join(args.inputs), load};
}

std::string describe_bench_corpus(const BenchCorpus& c) {
  const std::string size =
      fmt::format("{} pages ({})", c.corpus.page_count(), format_bytes(c.corpus.size_bytes()));
  if (c.source == "builtin") return "builtin corpus, " + size;
  return fmt::format("{}: {} from {} files{}", c.source, size, c.load.files_read,
                     c.load.truncated ? ", truncated at --max-bytes" : "");
}

nlohmann::ordered_json bench_corpus_json(const BenchCorpus& c) {
  nlohmann::ordered_json j = {
      {"source", c.source}, {"pages", c.corpus.page_count()}, {"bytes", c.corpus.size_bytes()}};
  if (c.source != "builtin") {
    j["files_read"] = c.load.files_read;
    j["truncated"] = c.load.truncated;
  }
  return j;
}

double safe_ratio(double numerator, double denominator) {
  return denominator > 0 ? numerator / denominator : 0.0;
}

std::string percent(double fraction) {
  return fmt::format("{:.1f}%", 100.0 * fraction);
}

}  // namespace zspool::tools
