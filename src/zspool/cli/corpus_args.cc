#include "zspool/cli/corpus_args.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <CLI/CLI.hpp>

#include "zspool/cli/command.h"
#include "zspool/cli/options.h"
#include "zspool/cli/size_arg.h"
#include "zspool/platform/internal/os.h"

namespace zspool::tools {
namespace {

// The most corpus bytes the verb may hold: 1/share of what this process may use (cgroup,
// RLIMIT_AS, available memory: os::memory_budget).
std::uint64_t corpus_budget(unsigned memory_share) {
  return os::memory_budget().bytes / memory_share;
}

void check_fits(const char* option, std::uint64_t bytes, unsigned memory_share) {
  if (bytes <= corpus_budget(memory_share)) return;
  const os::MemoryBudget budget = os::memory_budget();
  usage_error(fmt::format("{}: {} is more than 1/{} of the {} this process may use (limited by {})",
                          option, format_bytes(bytes), memory_share, format_bytes(budget.bytes),
                          budget.limited_by));
}

}  // namespace

std::string LoadedCorpus::joined_paths() const {
  std::string text;
  for (const std::string& p : paths) text += (text.empty() ? "" : " ") + p;
  return text;
}

CLI::Option* add_generator_option(CLI::App& app, std::string& generator) {
  std::vector<std::string> names(kGeneratedCorpora.begin(), kGeneratedCorpora.end());
  return app
      .add_option("--corpus", generator,
                  fmt::format("generated corpus: {} (default builtin)", fmt::join(names, ", ")))
      ->type_name("NAME")
      ->check(CLI::IsMember(names));
}

CLI::Option* add_corpus_options(CLI::App& app, CorpusArgs& args, bool generated) {
  CLI::Option* input = app.add_option("--input", args.inputs,
                                      "files and directories of real data (default: builtin)")
                           ->type_name("PATH")
                           ->expected(1, -1);
  add_size_option(app, "--max-bytes", args.max_bytes, "--input: read at most this many bytes");
  if (generated) add_generator_option(app, args.generator)->excludes(input);
  return input;
}

LoadedCorpus load_builtin_corpus(const char* option, std::uint64_t pages, std::uint32_t page_size,
                                 unsigned memory_share, std::uint64_t seed,
                                 const std::string& generator) {
  check_fits(option, pages * page_size, memory_share);
  auto corpus = generated_corpus(generator, pages, page_size, seed);
  if (!corpus) usage_error(fmt::format("--corpus: no generated corpus called '{}'", generator));
  return {std::move(*corpus), {}, {}, generator};
}

namespace {
void check_at_least_a_page(const CorpusArgs& args, std::uint32_t page_size) {
  if (args.max_bytes < page_size)
    usage_error(
        fmt::format("--max-bytes: {} is below one page ({} bytes)", args.max_bytes, page_size));
}
}  // namespace

LoadedCorpus load_bench_corpus(const CorpusArgs& args, std::uint32_t page_size,
                               unsigned memory_share) {
  check_at_least_a_page(args, page_size);
  if (!args.inputs.empty()) return load_paths_corpus(args, page_size, memory_share);
  return load_builtin_corpus("--max-bytes", args.max_bytes / page_size, page_size, memory_share, 1,
                             args.generator);
}

LoadedCorpus load_paths_corpus(const CorpusArgs& args, std::uint32_t page_size,
                               unsigned memory_share) {
  // --max-bytes 0 ("no limit") still stops at what the process may hold, and says so (the
  // corpus is then reported truncated) rather than dying of an allocation failure half-way.
  const std::uint64_t max_bytes =
      args.max_bytes == 0 ? corpus_budget(memory_share) : args.max_bytes;
  check_fits("--max-bytes", max_bytes, memory_share);
  LoadReport load;
  auto corpus = Corpus::from_paths(args.inputs, page_size, max_bytes, &load);
  if (!corpus) {
    const std::string message = "--input: " + load.error;
    if (corpus.error() == Error::io_error || corpus.error() == Error::out_of_memory)
      command_failed(message);
    usage_error(message);
  }
  return {std::move(*corpus), args.inputs, load, {}};
}

}  // namespace zspool::tools
