// The one renderer: every result struct and statistic the verbs print, as a table (text) or as
// JSON, and the one way output reaches stdout.
//
//   bench/ and testing/ ──typed results──▶ render_*_text / *_json ──▶ print_output ──▶ stdout
//   stats: pool_stats_json (core), mm_stat_json / store_counters_json (store), from the X-macros
//
// No verb formats its own figures, and nothing here prints JSON and reads it back.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "zspool/bench/alloc.h"
#include "zspool/bench/policy_bench.h"
#include "zspool/bench/run_job.h"
#include "zspool/bench/store_bench.h"
#include "zspool/bench/train_dict.h"
#include "zspool/cli/corpus_args.h"
#include "zspool/core/size_class.h"
#include "zspool/store/store.h"
#include "zspool/testing/soak.h"

namespace zspool::tools {

using Json = nlohmann::ordered_json;

// Writes `text` to stdout and flushes it; a failed write (a full disk, a closed pipe) stops the
// verb with "cannot write the output: ..." (exit 1), so no verb exits 0 having printed nothing.
void print_output(const std::string& text);

// ---- corpora ---------------------------------------------------------------------------------
// `zspool run`'s corpus lines ("corpus     builtin, N pages ..." and "mix ...") and JSON.
std::string run_corpus_text(const LoadedCorpus& c);
Json run_corpus_json(const LoadedCorpus& c);
// The bench verbs' one-line description and JSON.
std::string bench_corpus_text(const LoadedCorpus& c);
Json bench_corpus_json(const LoadedCorpus& c);

// `zspool corpus`: the file written, the seed, and the corpus as run_corpus_text/json show it.
std::string corpus_file_text(const std::string& path, std::uint64_t seed, const LoadedCorpus& c);
Json corpus_file_json(const std::string& path, std::uint64_t seed, const LoadedCorpus& c);

// ---- zspool run ------------------------------------------------------------------------------
std::string run_text(const LoadedCorpus& corpus, const RunReport& report);
Json run_json(const LoadedCorpus& corpus, const RunReport& report);

// ---- zspool replay ---------------------------------------------------------------------------
// A trace's `stats`: three lines, "mm_stat N N ...", "bd_stat N N N" (zram's bd_count bd_reads
// bd_writes) and "policy_stat name=N ..." (the writeback policy's counters), or one JSON line
// with the same figures keyed by their names.
std::string mm_stat_text(const StoreStats& stats, bool json);

// ---- zspool bench store ----------------------------------------------------------------------
std::string store_bench_text(const LoadedCorpus& corpus, const StoreBenchResult& r);
Json store_bench_json(const LoadedCorpus& corpus, const StoreBenchResult& r);

// ---- zspool bench policy ---------------------------------------------------------------------
std::string policy_bench_text(const LoadedCorpus& corpus, const PolicyBenchResult& r);
Json policy_bench_json(const LoadedCorpus& corpus, const PolicyBenchResult& r);

// ---- zspool bench alloc ----------------------------------------------------------------------
std::string alloc_bench_text(const LoadedCorpus& corpus, const AllocBenchResult& r);
Json alloc_bench_json(const LoadedCorpus& corpus, const AllocBenchResult& r);

// ---- zspool classes -------------------------------------------------------------------------
std::string classes_text(const SizeClassTable& table);
Json classes_json(const SizeClassTable& table);

// ---- zspool soak -----------------------------------------------------------------------------
std::string soak_text(const SoakResult& r);
Json soak_json(const SoakResult& r);

// ---- zspool train-dict ------------------------------------------------------------------------
// "dictionary FILE: N bytes, id X, trained on M pages (S) of CORPUS" and its JSON.
std::string trained_dictionary_text(const std::string& path, const TrainedDictionary& d,
                                    const LoadedCorpus& corpus);
Json trained_dictionary_json(const std::string& path, const TrainedDictionary& d,
                             const LoadedCorpus& corpus);

}  // namespace zspool::tools
