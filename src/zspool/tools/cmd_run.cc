// zspool run: the main job. Fill a compressed page store with a corpus, compact it, read every
// page back and verify it byte for byte, then report what it cost.
//
//   zspool run [--pages N | --size SIZE | --input PATH... [--max-bytes SIZE]]
//              [--compressor SPEC] [--limit SIZE] [--backing FILE] [--threads N]
//              [--page-size SIZE] [--max-chain N] [--json]
//
//   corpus ──write (N threads, timed)──▶ Store ──compact──▶ ──read + verify (N threads, timed)──▶
//
// Corpus: the builtin deterministic mix (corpus.h), kDefaultPages pages unless --pages or
// --size say otherwise; or, with --input, the named files and directories (at most --max-bytes).
// The store's capacity is the corpus's page count.
//
// Output (stdout): the corpus line, a zramctl-like summary (ALGORITHM DISKSIZE DATA COMPR TOTAL
// STREAMS), efficiency (compr_data_size / mem_used_total) and ratio (orig / compr), mm_stat, the
// pool's class table (used classes only), the writeback counters and the throughput of each
// phase in MB/s (10^6 bytes of uncompressed data per second). --json: one JSON object instead.
// A progress bar is drawn on stderr when it is a terminal.
//
// Errors: a page whose write fails (with --limit and no --backing, the pages that do not fit),
// whose read fails, or whose bytes differ, counts once in `errors`; pages that failed to write
// are not read back. The summary is printed all the same, then one line "zspool: N of M pages
// failed ..." on stderr and exit status 1. Exit 0 when errors == 0; 2 on usage errors (bad
// option values, missing --input paths, unknown compressors).
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "zspool/core/stats.h"
#include "zspool/platform/os.h"
#include "zspool/store/store.h"
#include "zspool/tools/command.h"
#include "zspool/tools/corpus.h"
#include "zspool/tools/parallel.h"
#include "zspool/tools/progress.h"
#include "zspool/tools/size_arg.h"
#include "zspool/tools/store_args.h"

namespace zspool::tools {
namespace {

constexpr std::uint64_t kDefaultPages = 16384;  // 64 MiB of 4 KiB pages
constexpr std::uint64_t kDefaultMaxBytes = std::uint64_t{64} << 20;
constexpr std::uint64_t kMaxPages = std::uint64_t{1} << 40;
constexpr unsigned kMaxThreads = 256;
constexpr double kBytesPerMB = 1e6;

struct RunOptions {
  StoreArgs store;
  std::uint64_t pages = kDefaultPages;
  std::uint64_t size = 0;  // --size: pages = size / page_size when given
  std::vector<std::string> inputs;
  std::uint64_t max_bytes = kDefaultMaxBytes;
  unsigned threads = 1;
  bool json = false;
};

// What the corpus is, for the report.
struct CorpusInfo {
  Corpus corpus;
  std::string source;  // "builtin" or "paths"
  LoadReport load;     // paths only
};

struct RunReport {
  std::uint64_t pages = 0;
  std::uint64_t bytes = 0;  // uncompressed: pages * page size
  PhaseResult write;
  std::size_t pages_compacted = 0;
  PhaseResult read;
  StoreStats stats;

  std::uint64_t errors() const { return write.tally.errors() + read.tally.errors(); }
};

// ---- the corpus ------------------------------------------------------------------------------

std::uint64_t builtin_page_count(const RunOptions& options) {
  const std::uint64_t page_size = options.store.geometry.page_size;
  if (options.size == 0) return options.pages;
  if (options.size < page_size)
    usage_error(fmt::format("--size: {} is below one page ({} bytes)", options.size, page_size));
  return options.size / page_size;
}

// The corpus lives in memory next to the store: refuse one the machine cannot hold rather than
// be killed half-way.
void check_corpus_fits(const char* option, std::uint64_t pages, std::uint64_t page_size) {
  const std::uint64_t memory = os::physical_memory_bytes();
  if (memory == 0 || pages <= memory / page_size / 2) return;
  usage_error(fmt::format("{}: {} pages of {} bytes is more than half this machine's memory ({})",
                          option, pages, page_size, format_bytes(memory)));
}

CorpusInfo builtin_corpus(const RunOptions& options) {
  const std::uint64_t pages = builtin_page_count(options);
  check_corpus_fits(options.size == 0 ? "--pages" : "--size", pages,
                    options.store.geometry.page_size);
  const auto page_size = static_cast<std::uint32_t>(options.store.geometry.page_size);
  return {Corpus::builtin(pages, page_size), "builtin", {}};
}

CorpusInfo paths_corpus(const RunOptions& options) {
  check_corpus_fits("--max-bytes", options.max_bytes / options.store.geometry.page_size,
                    options.store.geometry.page_size);
  LoadReport load;
  auto corpus = Corpus::from_paths(options.inputs,
                                   static_cast<std::uint32_t>(options.store.geometry.page_size),
                                   options.max_bytes, &load);
  if (!corpus) {
    const std::string message = "--input: " + load.error;
    if (corpus.error() == Error::io_error) command_failed(message);
    usage_error(message);
  }
  return {std::move(*corpus), "paths", load};
}

CorpusInfo load_corpus(const RunOptions& options) {
  return options.inputs.empty() ? builtin_corpus(options) : paths_corpus(options);
}

// ---- the job ---------------------------------------------------------------------------------

PhaseResult write_pages(Store& store, const Corpus& corpus, unsigned threads,
                        std::vector<std::uint8_t>& written) {
  Progress progress("write", corpus.page_count());
  return run_phase(corpus.page_count(), threads, 0, progress,
                   [&](std::uint64_t page, std::span<std::byte>, PhaseTally& tally) {
                     const Error e = store.write(page, corpus.page(page));
                     written[page] = e == Error::ok;
                     if (e != Error::ok) tally.fail(page, "write", e);
                   });
}

PhaseResult read_and_verify_pages(Store& store, const Corpus& corpus, unsigned threads,
                                  const std::vector<std::uint8_t>& written) {
  Progress progress("read", corpus.page_count());
  return run_phase(corpus.page_count(), threads, corpus.page_size(), progress,
                   [&](std::uint64_t page, std::span<std::byte> out, PhaseTally& tally) {
                     if (!written[page]) return;
                     const Error e = store.read(page, out);
                     const std::span<const std::byte> expected = corpus.page(page);
                     if (e != Error::ok) {
                       tally.fail(page, "read", e);
                     } else if (std::memcmp(out.data(), expected.data(), out.size()) != 0) {
                       tally.mismatch(page);
                     }
                   });
}

RunReport run_job(Store& store, const Corpus& corpus, unsigned threads) {
  RunReport report;
  report.pages = corpus.page_count();
  report.bytes = corpus.size_bytes();
  std::vector<std::uint8_t> written(corpus.page_count(), 0);
  report.write = write_pages(store, corpus, threads, written);
  report.pages_compacted = store.compact();
  report.read = read_and_verify_pages(store, corpus, threads, written);
  report.stats = store.stats();
  return report;
}

// ---- figures ---------------------------------------------------------------------------------

double ratio_or_zero(double numerator, double denominator) {
  return denominator > 0 ? numerator / denominator : 0.0;
}

double efficiency(const StoreStats& s) {
  return ratio_or_zero(static_cast<double>(s.compr_data_size),
                       static_cast<double>(s.mem_used_total));
}

double compression_ratio(const StoreStats& s) {
  return ratio_or_zero(static_cast<double>(s.orig_data_size),
                       static_cast<double>(s.compr_data_size));
}

double megabytes_per_second(std::uint64_t bytes, double seconds) {
  return ratio_or_zero(static_cast<double>(bytes) / kBytesPerMB, seconds);
}

// "zero 1638 (10.0%), same_filled 819 (5.0%), ..." for the kinds present.
std::string describe_mix(const Corpus& corpus) {
  std::string text;
  for (std::size_t k = 0; k < kPageKindCount; ++k) {
    const std::uint64_t n = corpus.kind_counts()[k];
    if (n == 0) continue;
    if (!text.empty()) text += ", ";
    text += fmt::format("{} {} ({:.1f}%)", page_kind_name(static_cast<PageKind>(k)), n,
                        100.0 * static_cast<double>(n) / static_cast<double>(corpus.page_count()));
  }
  return text;
}

std::string describe_corpus(const CorpusInfo& info) {
  const Corpus& c = info.corpus;
  std::string text = fmt::format("corpus     {}, {} pages of {} bytes ({})", info.source,
                                 c.page_count(), c.page_size(), format_bytes(c.size_bytes()));
  if (info.source == "paths") {
    text += fmt::format(" from {} files{}", info.load.files_read,
                        info.load.truncated ? ", truncated at --max-bytes" : "");
    if (info.load.entries_skipped > 0)
      text += fmt::format(", {} entries skipped", info.load.entries_skipped);
  }
  return text + "\nmix        " + describe_mix(c) + "\n";
}

std::string failure_summary(const RunReport& report) {
  const PhaseTally& w = report.write.tally;
  const PhaseTally& r = report.read.tally;
  std::string text = fmt::format("{} of {} pages failed ({} writes, {} reads, {} mismatches)",
                                 report.errors(), report.pages, w.failed, r.failed, r.mismatched);
  PhaseTally all = w;
  all.merge(r);
  if (const auto& f = all.first_failure) {
    text += f->what == "verify" ? fmt::format("; first: page {} read back different bytes", f->page)
                                : fmt::format("; first: page {}: {}: {}", f->page, f->what,
                                              error_message(f->error));
  }
  return text;
}

// ---- text output -----------------------------------------------------------------------------

void print_zramctl_summary(const RunOptions& options, const RunReport& report, std::ostream& out) {
  const StoreStats& s = report.stats;
  const std::uint64_t disk = report.bytes;
  out << fmt::format("{:<10} {:>10} {:>10} {:>10} {:>10} {:>7}\n", "ALGORITHM", "DISKSIZE", "DATA",
                     "COMPR", "TOTAL", "STREAMS");
  out << fmt::format("{:<10} {:>10} {:>10} {:>10} {:>10} {:>7}\n", options.store.compressor,
                     format_bytes(disk), format_bytes(s.orig_data_size),
                     format_bytes(s.compr_data_size), format_bytes(s.mem_used_total),
                     options.threads);
  out << fmt::format(
      "efficiency {:.1f}% (COMPR / TOTAL)   ratio {:.2f} (DATA / COMPR)   compacted {} pages\n",
      100.0 * efficiency(s), compression_ratio(s), report.pages_compacted);
  out << "mm_stat    " << mm_stat_line(s) << "\n";
}

// The counters beyond mm_stat: the zswap-like ones, then the backing file's.
void print_store_counters(const StoreStats& s, std::ostream& out) {
  out << fmt::format(
      "store      stored_pages {}  reject_compress_poor {}  pool_limit_hit {}  "
      "rejected_writes {}\n",
      s.stored_pages, s.reject_compress_poor, s.pool_limit_hit, s.rejected_writes);
  out << fmt::format(
      "writeback  written_back_pages {}  bd_count {}  bd_writes {}  bd_reads {}  "
      "bd_write_failures {}  bd_read_failures {}\n",
      s.written_back_pages, s.bd_count, s.bd_writes, s.bd_reads, s.bd_write_failures,
      s.bd_read_failures);
}

void print_throughput(const RunOptions& options, const RunReport& report, std::ostream& out) {
  const std::uint64_t bytes = report.bytes;
  out << fmt::format(
      "throughput write {:.1f} MB/s ({:.3f} s)   read {:.1f} MB/s ({:.3f} s)   "
      "{} thread{}\n",
      megabytes_per_second(bytes, report.write.seconds), report.write.seconds,
      megabytes_per_second(bytes, report.read.seconds), report.read.seconds, options.threads,
      options.threads == 1 ? "" : "s");
  out << fmt::format("verified   {} pages, {} errors\n",
                     report.pages - report.write.tally.failed - report.read.tally.errors(),
                     report.errors());
}

void print_text(const RunOptions& options, const CorpusInfo& info, const RunReport& report) {
  std::cout << describe_corpus(info) << "\n";
  print_zramctl_summary(options, report, std::cout);
  std::cout << "\n" << format_stats_table(report.stats.pool, true) << "\n";
  print_store_counters(report.stats, std::cout);
  print_throughput(options, report, std::cout);
}

// ---- JSON output -----------------------------------------------------------------------------

nlohmann::ordered_json corpus_json(const CorpusInfo& info) {
  nlohmann::ordered_json kinds = nlohmann::ordered_json::object();
  for (std::size_t k = 0; k < kPageKindCount; ++k) {
    if (info.corpus.kind_counts()[k] != 0)
      kinds[std::string(page_kind_name(static_cast<PageKind>(k)))] = info.corpus.kind_counts()[k];
  }
  nlohmann::ordered_json j = {{"source", info.source},
                              {"pages", info.corpus.page_count()},
                              {"bytes", info.corpus.size_bytes()},
                              {"kinds", std::move(kinds)}};
  if (info.source == "paths") {
    j["files_read"] = info.load.files_read;
    j["entries_skipped"] = info.load.entries_skipped;
    j["truncated"] = info.load.truncated;
  }
  return j;
}

nlohmann::ordered_json run_json(const RunOptions& options, const CorpusInfo& info,
                                const RunReport& report) {
  const StoreStats& s = report.stats;
  const std::uint64_t bytes = report.bytes;
  nlohmann::ordered_json j = {{"pages", report.pages},
                              {"page_size", options.store.geometry.page_size},
                              {"max_chain", options.store.geometry.max_chain},
                              {"compressor", options.store.compressor},
                              {"threads", options.threads},
                              {"corpus", corpus_json(info)}};
  j.update(mm_stat_json(s));
  j["efficiency"] = efficiency(s);
  j["ratio"] = compression_ratio(s);
  j["compacted_pages"] = report.pages_compacted;
  j.update(store_counters_json(s));
  j["write_seconds"] = report.write.seconds;
  j["read_seconds"] = report.read.seconds;
  j["write_MBps"] = megabytes_per_second(bytes, report.write.seconds);
  j["read_MBps"] = megabytes_per_second(bytes, report.read.seconds);
  j["write_errors"] = report.write.tally.failed;
  j["read_errors"] = report.read.tally.failed;
  j["mismatches"] = report.read.tally.mismatched;
  j["errors"] = report.errors();
  j["pool"] = nlohmann::ordered_json::parse(format_stats_json(s.pool, true));
  return j;
}

// ---- the verb --------------------------------------------------------------------------------

void run_run(const RunOptions& options) {
  const CorpusInfo info = load_corpus(options);
  const std::unique_ptr<Store> store = open_store(options.store, info.corpus.page_count());
  const RunReport report = run_job(*store, info.corpus, options.threads);
  if (options.json) {
    std::cout << run_json(options, info, report).dump(2) << '\n';
  } else {
    print_text(options, info, report);
  }
  std::cout.flush();
  if (report.errors() != 0) command_failed(failure_summary(report));
}

void add_corpus_options(CLI::App& app, RunOptions& options) {
  CLI::Option* pages = app.add_option("--pages", options.pages, "builtin corpus: pages to store")
                           ->check(CLI::Range(std::uint64_t{1}, kMaxPages).description(""))
                           ->type_name("N")
                           ->capture_default_str();
  CLI::Option* size =
      add_size_option(app, "--size", options.size, "builtin corpus: bytes to store (e.g. 64M)");
  CLI::Option* input =
      app.add_option("--input", options.inputs, "files and directories of real data instead")
          ->type_name("PATH")
          ->expected(1, -1);
  CLI::Option* max_bytes = add_size_option(app, "--max-bytes", options.max_bytes,
                                           "--input: read at most this many bytes");
  pages->excludes(size);
  input->excludes(pages)->excludes(size);
  max_bytes->needs(input);
}

void setup_run(CLI::App& app) {
  auto options = std::make_shared<RunOptions>();
  add_corpus_options(app, *options);
  add_store_options(app, options->store);
  app.add_option("--threads", options->threads, "threads writing, then reading, the pages")
      ->check(CLI::Range(1u, kMaxThreads).description(""))
      ->type_name("N")
      ->capture_default_str();
  app.add_flag("--json", options->json, "print one JSON object instead of tables");
  app.callback([options] { run_run(*options); });
}

[[maybe_unused]] const bool registered = register_command(
    {"run", "the main job: store a corpus in a compressed page store, verify, report", setup_run});

}  // namespace
}  // namespace zspool::tools
