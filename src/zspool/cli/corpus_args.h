// The corpus options the verbs share, and the one place a corpus is loaded from them.
//
//   --input PATH...   files and directories of real data (default: the builtin corpus)
//   --max-bytes SIZE  at most this much data (default 64M)
//   --corpus NAME     which generated corpus, when there is no --input: builtin (the default)
//                     or small-records (workload/corpus.h)
//
// A bad argument stops the verb (usage error, exit 2); data that cannot be read is a failure
// (exit 1). A corpus lives in memory: one larger than the share of the machine's memory the
// verb allows is refused before anything is read.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "zspool/workload/corpus.h"

#include "zspool/cli/cli11_fwd.h"

namespace zspool::tools {

inline constexpr std::uint64_t kDefaultCorpusBytes = std::uint64_t{64} << 20;

struct CorpusArgs {
  std::vector<std::string> inputs;
  std::uint64_t max_bytes = kDefaultCorpusBytes;
  std::string generator = "builtin";  // --corpus
};

// A corpus and where it came from.
struct LoadedCorpus {
  Corpus corpus;
  std::vector<std::string> paths;     // empty: a generated corpus
  LoadReport load;                    // paths only
  std::string generator = "builtin";  // which one, when paths is empty

  bool builtin() const { return paths.empty(); }
  std::string joined_paths() const;  // the paths, separated by spaces
};

// Adds --input and --max-bytes, and --corpus unless `generated` is false (a verb that reads only
// files); returns the --input option (for excludes/needs).
CLI::Option* add_corpus_options(CLI::App& app, CorpusArgs& args, bool generated = true);
// Adds --corpus NAME (one of kGeneratedCorpora) setting `generator`.
CLI::Option* add_generator_option(CLI::App& app, std::string& generator);

// The generated corpus `generator` of `pages` pages (generated_corpus with `seed`). `memory_share`:
// the corpus may take at most 1/share of the machine's memory; `option` names the argument that set
// its size, for the message.
LoadedCorpus load_builtin_corpus(const char* option, std::uint64_t pages, std::uint32_t page_size,
                                 unsigned memory_share, std::uint64_t seed = 1,
                                 const std::string& generator = "builtin");
// The bench verbs' corpus: --input's data, else the --corpus corpus of --max-bytes.
LoadedCorpus load_bench_corpus(const CorpusArgs& args, std::uint32_t page_size,
                               unsigned memory_share);
// The --input corpus, at most args.max_bytes of it.
LoadedCorpus load_paths_corpus(const CorpusArgs& args, std::uint32_t page_size,
                               unsigned memory_share);

}  // namespace zspool::tools
