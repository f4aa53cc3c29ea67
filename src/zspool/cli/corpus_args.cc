#include "zspool/cli/corpus_args.h"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "zspool/cli/command.h"
#include "zspool/cli/options.h"
#include "zspool/cli/size_arg.h"
#include "zspool/platform/internal/os.h"

namespace zspool::tools {
namespace {

void check_fits(const char* option, std::uint64_t bytes, unsigned memory_share) {
  const std::uint64_t memory = os::physical_memory_bytes();
  if (memory == 0 || bytes <= memory / memory_share) return;
  usage_error(fmt::format("{}: {} is more than 1/{} of this machine's memory ({})", option,
                          format_bytes(bytes), memory_share, format_bytes(memory)));
}

}  // namespace

std::string LoadedCorpus::joined_paths() const {
  std::string text;
  for (const std::string& p : paths) text += (text.empty() ? "" : " ") + p;
  return text;
}

CLI::Option* add_corpus_options(CLI::App& app, CorpusArgs& args) {
  CLI::Option* input = app.add_option("--input", args.inputs,
                                      "files and directories of real data (default: builtin)")
                           ->type_name("PATH")
                           ->expected(1, -1);
  add_size_option(app, "--max-bytes", args.max_bytes, "--input: read at most this many bytes");
  return input;
}

LoadedCorpus load_builtin_corpus(const char* option, std::uint64_t pages, std::uint32_t page_size,
                                 unsigned memory_share) {
  check_fits(option, pages * page_size, memory_share);
  return {Corpus::builtin(pages, page_size), {}, {}};
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
  return load_builtin_corpus("--max-bytes", args.max_bytes / page_size, page_size, memory_share);
}

LoadedCorpus load_paths_corpus(const CorpusArgs& args, std::uint32_t page_size,
                               unsigned memory_share) {
  check_fits("--max-bytes", args.max_bytes, memory_share);
  LoadReport load;
  auto corpus = Corpus::from_paths(args.inputs, page_size, args.max_bytes, &load);
  if (!corpus) {
    const std::string message = "--input: " + load.error;
    if (corpus.error() == Error::io_error) command_failed(message);
    usage_error(message);
  }
  return {std::move(*corpus), args.inputs, load};
}

}  // namespace zspool::tools
