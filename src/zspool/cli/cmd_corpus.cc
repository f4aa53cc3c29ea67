// zspool corpus: write the built-in corpus (the main job's default input; workload/corpus.h) to
// a file, so tools that take files (nbdcopy, qemu-img, `zspool run --input`, the nbd benchmark)
// can use the same bytes.
//
//   zspool corpus -o FILE [--corpus NAME] [--size SIZE] [--page-size N] [--seed N] [--force]
//                 [--json]
//
// The file is SIZE bytes rounded down to whole pages (at least one page), the pages of
// the generated corpus NAME (builtin, the default, or small-records: generated_corpus in
// workload/corpus.h) of SIZE / page_size pages with `seed`: the same arguments give the same bytes
// on every machine. It is written through write_output_file (output_file.h): whole or not at all,
// and an existing FILE is replaced only with --force and only if it is a regular file (checked
// before the corpus is made, and again as it is written; a refusal is a usage error, exit 2).
// Prints the file, the seed and the corpus as `zspool run` describes it (its pages of each
// kind), as lines or one JSON object with --json.
#include <cstdint>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "zspool/cli/command.h"
#include "zspool/cli/corpus_args.h"
#include "zspool/cli/options.h"
#include "zspool/cli/output_file.h"
#include "zspool/cli/render.h"

namespace zspool::tools {
namespace {

// The corpus is made in memory before it is written: at most half the machine's memory.
constexpr unsigned kCorpusMemoryShare = 2;

struct CorpusOptions {
  std::string output;
  std::uint64_t size = 64ull << 20;
  std::uint64_t page_size = Corpus::kDefaultPageSize;
  std::uint64_t seed = 1;
  std::string generator = "builtin";
  bool force = false;
  bool json = false;
};

void run_corpus(const CorpusOptions& options) {
  if (const std::string problem = page_size_problem(options.page_size); !problem.empty())
    usage_error("--page-size: " + problem);
  const auto page_size = static_cast<std::uint32_t>(options.page_size);
  if (options.size < page_size)
    usage_error(fmt::format("--size: {} is below one page ({} bytes)", options.size, page_size));
  // Before the corpus is made: a user who forgot --force should not wait for it.
  if (const std::string refusal = output_refusal(options.output, options.force); !refusal.empty())
    usage_error("-o " + refusal);
  const LoadedCorpus corpus =
      load_builtin_corpus("--size", options.size / page_size, page_size, kCorpusMemoryShare,
                          options.seed, options.generator);
  // Checked again as it is written: nothing that appeared meanwhile is replaced without --force.
  stop_unless_written(write_output_file(options.output, corpus.corpus.bytes(), options.force));
  print_output(options.json ? corpus_file_json(options.output, options.seed, corpus).dump(2) + "\n"
                            : corpus_file_text(options.output, options.seed, corpus));
}

void setup_corpus(CLI::App& app) {
  auto options = std::make_shared<CorpusOptions>();
  app.add_option("-o,--output", options->output, "the file to write (must not exist)")->required();
  add_generator_option(app, options->generator);
  add_positive_size_option(app, "--size", options->size, "bytes of corpus (whole pages)");
  add_size_option(app, "--page-size", options->page_size, "page size (4096 .. 65536)");
  add_count_option(app, "--seed", options->seed, "the corpus's seed (same seed, same bytes)", 0,
                   UINT64_MAX);
  app.add_flag("--force", options->force, "replace FILE if it is a regular file");
  app.add_flag("--json", options->json, "print one JSON object instead of a table");
  app.callback([options] { run_corpus(*options); });
}

[[maybe_unused]] const bool registered = register_command(
    {"corpus", "write the built-in corpus to a file (for NBD clients, qemu-img, --input)",
     setup_corpus});

}  // namespace
}  // namespace zspool::tools
