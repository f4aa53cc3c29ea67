// zspool train-dict: a zstd dictionary trained on files, for "zstd:dict=FILE" and "lz4:dict=FILE".
//
//   zspool train-dict --input PATH... -o FILE [--dict-size SIZE] [--samples N]
//                     [--max-bytes SIZE] [--force] [--json]
//
// The --input files (and directories, walked as `zspool run` walks them) are cut into 4 KiB
// pages; at most --samples of those holding data (not zero, not same-filled), spread evenly,
// train a dictionary of at most --dict-size bytes with libzstd's ZDICT_trainFromBuffer
// (bench/train_dict.h). It is written to FILE and named in one line (or one JSON object).
//
// FILE is never a file that exists, unless --force; even then it must be a regular file (a
// symlink, a device, a FIFO or a directory is refused) and neither an input nor inside an input
// directory. It is written through write_output_file (output_file.h): to a temporary file beside
// it, then linked (a new FILE: never over one that appeared meanwhile) or renamed over it. A FILE
// refused, before training or as it is written, is a usage error (exit 2).
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "zspool/bench/train_dict.h"
#include "zspool/cli/command.h"
#include "zspool/cli/corpus_args.h"
#include "zspool/cli/options.h"
#include "zspool/cli/output_file.h"
#include "zspool/cli/render.h"
#include "zspool/cli/size_arg.h"
#include "zspool/platform/file_identity.h"
#include "zspool/store/compressor.h"

namespace zspool::tools {
namespace {

constexpr std::uint32_t kTrainPageSize = 4096;
constexpr unsigned kCorpusMemoryShare = 4;
constexpr std::uint64_t kDefaultDictionaryBytes = 64 << 10;
constexpr std::uint64_t kDefaultSamples = 4096;  // 16 MiB of pages: ~250x a 64 KiB dictionary

struct TrainDictArgs {
  CorpusArgs corpus;
  std::string output;
  std::uint64_t dict_bytes = kDefaultDictionaryBytes;
  std::uint64_t samples = kDefaultSamples;
  bool force = false;
  bool json = false;
};

// Whether `path` names something inside directory `dir` (both resolved, symlinks included).
bool inside_directory(const std::string& path, const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return false;
  const auto base = std::filesystem::weakly_canonical(dir, ec);
  if (ec) return false;
  const auto resolved = std::filesystem::weakly_canonical(path, ec);
  if (ec) return false;
  const auto [end, _] = std::mismatch(base.begin(), base.end(), resolved.begin(), resolved.end());
  return end == base.end();
}

// What is at `path` now, if anything, may be replaced (only with --force, only a regular file,
// never an input, nor anything inside an input directory: it may be one of the files read).
void check_output(const TrainDictArgs& args) {
  for (const std::string& input : args.corpus.inputs) {
    if (same_file(args.output, input))
      usage_error(fmt::format("-o {}: it is {}, one of the inputs", args.output, input));
    if (inside_directory(args.output, input))
      usage_error(fmt::format("-o {}: inside {}, one of the inputs", args.output, input));
  }
  struct stat st {};
  if (::lstat(args.output.c_str(), &st) != 0) return;  // nothing there (or open will say why)
  if (!S_ISREG(st.st_mode))
    usage_error(fmt::format("-o {}: exists and is not a regular file; refusing", args.output));
  if (!args.force)
    usage_error(fmt::format("-o {}: exists; not overwritten (--force replaces it)", args.output));
}

void run_train_dict(const TrainDictArgs& args) {
  check_output(args);
  const LoadedCorpus corpus = load_paths_corpus(args.corpus, kTrainPageSize, kCorpusMemoryShare);
  std::string why;
  auto trained = train_dictionary_on(corpus.corpus, args.samples,
                                     static_cast<std::size_t>(args.dict_bytes), &why);
  if (!trained) {
    const std::string message =
        fmt::format("cannot train a dictionary on {}: {}", corpus.joined_paths(),
                    why.empty() ? error_message(trained.error()) : why);
    if (trained.error() == Error::out_of_memory) command_failed(message);
    usage_error(message);
  }
  // Checked again as it is written: whole or not at all, and nothing that appeared meanwhile
  // is replaced without --force (output_file.h).
  stop_unless_written(write_output_file(args.output, trained->bytes, args.force));
  print_output(args.json ? trained_dictionary_json(args.output, *trained, corpus).dump() + "\n"
                         : trained_dictionary_text(args.output, *trained, corpus));
}

void setup_train_dict(CLI::App& app) {
  auto args = std::make_shared<TrainDictArgs>();
  add_corpus_options(app, args->corpus, false)->required();
  app.add_option("-o,--output", args->output, "the dictionary file to write (a new file)")
      ->required()
      ->type_name("FILE");
  add_size_option(
      app, "--dict-size", args->dict_bytes,
      fmt::format("largest dictionary ({} .. {} bytes)", kMinDictionaryBytes, kMaxDictionaryBytes))
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            const auto bytes = parse_size(text);
            if (!bytes || *bytes < kMinDictionaryBytes || *bytes > kMaxDictionaryBytes)
              return fmt::format("a dictionary size from {} to {} bytes", kMinDictionaryBytes,
                                 kMaxDictionaryBytes);
            return "";
          },
          ""));
  add_count_option(app, "--samples", args->samples, "most pages to train on", 1, 1u << 24);
  app.add_flag("--force", args->force, "replace FILE if it exists (a regular file only)");
  app.add_flag("--json", args->json, "print one JSON object");
  app.callback([args] { run_train_dict(*args); });
}

[[maybe_unused]] const bool registered = register_command(
    {"train-dict",
     "train a zstd dictionary on files (for --compressor zstd:dict=FILE or lz4:dict=FILE)",
     setup_train_dict});

}  // namespace
}  // namespace zspool::tools
