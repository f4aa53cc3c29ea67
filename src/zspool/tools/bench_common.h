// What `zspool bench alloc` and `zspool bench store` share: the corpus options and their
// loading, and small formatting helpers.
//
//   --input PATH...   files and directories of real data (default: the builtin corpus)
//   --max-bytes SIZE  at most this much data (default 64M); the builtin corpus's size too
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "zspool/tools/corpus.h"

namespace CLI {
class App;
}  // namespace CLI

namespace zspool::tools {

inline constexpr std::uint64_t kBenchDefaultBytes = std::uint64_t{64} << 20;
inline constexpr std::uint32_t kBenchPageSize = 4096;  // zram's page

struct BenchCorpusArgs {
  std::vector<std::string> inputs;
  std::uint64_t max_bytes = kBenchDefaultBytes;
};

void add_bench_corpus_options(CLI::App& app, BenchCorpusArgs& args);

struct BenchCorpus {
  Corpus corpus;
  std::string source;  // "builtin", or the --input paths joined by spaces
  LoadReport load;
};

// The corpus the arguments name; a bad argument stops the verb (usage error, exit 2), data
// that cannot be read a failure (exit 1).
BenchCorpus load_bench_corpus(const BenchCorpusArgs& args);

// "builtin corpus, 16384 pages (64.0 MiB)" or "/usr/include: 16384 pages (64.0 MiB) from 2301
// files, truncated at --max-bytes".
std::string describe_bench_corpus(const BenchCorpus& c);
nlohmann::ordered_json bench_corpus_json(const BenchCorpus& c);

// numerator / denominator, 0 when the denominator is not positive.
double safe_ratio(double numerator, double denominator);
// "95.1%".
std::string percent(double fraction);

}  // namespace zspool::tools
