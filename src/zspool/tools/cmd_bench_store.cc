// zspool bench store: the page store's throughput against raw compression of the same pages,
// and, with --vs-zram, against the kernel's zram.
//
//   zspool bench store [--input PATH...] [--max-bytes SIZE] [--threads N] [--compressor SPEC]
//                      [--max-chain N] [--seed N] [--vs-zram] [--json]
//
//   Store (N threads):  write every page (timed) ─▶ mm_stat ─▶ read + verify every page (timed)
//                       ─▶ discard the random half (timed) ─▶ mm_stat ─▶ compact (timed)
//                       ─▶ mm_stat ─▶ verify every page (kept ones equal, discarded ones zero)
//   raw (N threads):    compress every page into its own buffer (timed), decompress + verify
//                       (timed), for lz4 and zstd (and --compressor if it is neither)
//   zram (--vs-zram):   the Store's sequence on /dev/zram0 (bench_zram.h); skipped with one line
//                       when not root, no zram0, or zram0 already in use
//
// Throughput is MB/s (10^6 bytes) of uncompressed pages; efficiency is compr_data_size /
// mem_used_total. Raw compression compresses every page, same-filled ones included, as the
// store does not (it keeps only the word). "store/raw" divides the store's write and read rates
// by raw compress and decompress rates of the store's compressor.
// --json: one object {"corpus", "threads", "compressor", "store", "raw", "store_vs_raw",
// "zram"}.
#include <chrono>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "zspool/store/compressor.h"
#include "zspool/store/store.h"
#include "zspool/tools/bench_common.h"
#include "zspool/tools/bench_trace.h"
#include "zspool/tools/bench_verbs.h"
#include "zspool/tools/bench_zram.h"
#include "zspool/tools/command.h"
#include "zspool/tools/parallel.h"
#include "zspool/tools/progress.h"

namespace zspool::tools {
namespace {

using Json = nlohmann::ordered_json;

constexpr unsigned kMaxThreads = 256;
constexpr double kBytesPerMB = 1e6;

struct BenchStoreOptions {
  BenchCorpusArgs corpus;
  unsigned threads = 1;
  std::string compressor = "lz4";
  std::uint32_t max_chain = kStoreDefaultChain;
  std::uint64_t seed = 1;
  bool vs_zram = false;
  bool json = false;
};

double mb_per_second(std::uint64_t pages, double seconds) {
  return safe_ratio(static_cast<double>(pages * kBenchPageSize) / kBytesPerMB, seconds);
}

// ---- the store -------------------------------------------------------------------------------

struct StoreFigures {
  double write_seconds = 0, read_seconds = 0, discard_seconds = 0, compact_seconds = 0;
  StoreStats after_fill, after_discard, after_compact;
  std::uint64_t errors = 0;
};

std::unique_ptr<Store> make_store(const BenchStoreOptions& options, std::uint64_t pages) {
  StoreOptions so;
  so.page_size = kBenchPageSize;
  so.max_chain = options.max_chain;
  so.pages = pages;
  so.compressor = options.compressor;
  auto store = Store::create(std::move(so));
  if (!store)
    command_failed(fmt::format("cannot create a store: {}", error_message(store.error())));
  return std::move(*store);
}

PhaseResult store_write(Store& store, const Corpus& corpus, unsigned threads) {
  Progress progress("store write", corpus.page_count());
  return run_phase(corpus.page_count(), threads, 0, progress,
                   [&](std::uint64_t p, std::span<std::byte>, PhaseTally& tally) {
                     if (const Error e = store.write(p, corpus.page(p)); e != Error::ok)
                       tally.fail(p, "write", e);
                   });
}

// Reads every page and compares it with expected(page).
template <typename Expected>
PhaseResult store_read(Store& store, const Corpus& corpus, unsigned threads,
                       const Expected& expected) {
  Progress progress("store read", corpus.page_count());
  return run_phase(corpus.page_count(), threads, kBenchPageSize, progress,
                   [&](std::uint64_t p, std::span<std::byte> out, PhaseTally& tally) {
                     if (const Error e = store.read(p, out); e != Error::ok) {
                       tally.fail(p, "read", e);
                     } else if (std::memcmp(out.data(), expected(p), out.size()) != 0) {
                       tally.mismatch(p);
                     }
                   });
}

PhaseResult store_discard(Store& store, std::span<const std::uint64_t> half, unsigned threads) {
  Progress progress("store discard", half.size());
  return run_phase(half.size(), threads, 0, progress,
                   [&](std::uint64_t k, std::span<std::byte>, PhaseTally& tally) {
                     if (const Error e = store.discard(half[k]); e != Error::ok)
                       tally.fail(half[k], "discard", e);
                   });
}

double timed_compact(Store& store) {
  const auto start = std::chrono::steady_clock::now();
  store.compact();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

StoreFigures bench_store(const BenchStoreOptions& options, const Corpus& corpus,
                         std::span<const std::uint64_t> half) {
  const std::unique_ptr<Store> store = make_store(options, corpus.page_count());
  StoreFigures f;
  const PhaseResult w = store_write(*store, corpus, options.threads);
  f.after_fill = store->stats();
  const PhaseResult r = store_read(*store, corpus, options.threads,
                                   [&](std::uint64_t p) { return corpus.page(p).data(); });
  const PhaseResult d = store_discard(*store, half, options.threads);
  f.after_discard = store->stats();
  f.compact_seconds = timed_compact(*store);
  f.after_compact = store->stats();
  std::vector<bool> discarded(corpus.page_count(), false);
  for (const std::uint64_t p : half) discarded[p] = true;
  const std::vector<std::byte> zeros(kBenchPageSize);
  const PhaseResult v = store_read(*store, corpus, options.threads, [&](std::uint64_t p) {
    return discarded[p] ? zeros.data() : corpus.page(p).data();
  });
  f.write_seconds = w.seconds;
  f.read_seconds = r.seconds;
  f.discard_seconds = d.seconds;
  f.errors = w.tally.errors() + r.tally.errors() + d.tally.errors() + v.tally.errors();
  return f;
}

// ---- raw compression -------------------------------------------------------------------------

struct RawFigures {
  std::string compressor;
  double compress_seconds = 0, decompress_seconds = 0;
  std::uint64_t compressed_bytes = 0;
  std::uint64_t errors = 0;
};

// Each page compresses into its own slot of max_compressed_size bytes, so threads never share
// one, and decompresses from it.
RawFigures bench_raw(const std::string& spec, const Corpus& corpus, unsigned threads) {
  auto compressor = make_compressor(spec);
  if (!compressor) usage_error(fmt::format("--compressor: '{}' is not a compressor", spec));
  const Compressor& c = **compressor;
  const std::uint64_t pages = corpus.page_count();
  const std::size_t slot = c.max_compressed_size(kBenchPageSize);
  std::vector<std::byte> out(pages * slot);
  std::vector<std::uint32_t> lengths(pages);
  RawFigures f{spec};
  Progress cp("raw " + spec + " compress", pages);
  const PhaseResult comp =
      run_phase(pages, threads, 0, cp, [&](std::uint64_t p, auto, PhaseTally& t) {
        const auto n =
            c.compress(corpus.page(p), std::span<std::byte>(out).subspan(p * slot, slot));
        if (!n) return t.fail(p, "compress", n.error());
        lengths[p] = static_cast<std::uint32_t>(*n);
      });
  Progress dp("raw " + spec + " decompress", pages);
  const PhaseResult dec =
      run_phase(pages, threads, kBenchPageSize, dp,
                [&](std::uint64_t p, std::span<std::byte> page, PhaseTally& t) {
                  const Error e = c.decompress(
                      std::span<const std::byte>(out).subspan(p * slot, lengths[p]), page);
                  if (e != Error::ok) return t.fail(p, "decompress", e);
                  if (std::memcmp(page.data(), corpus.page(p).data(), page.size()) != 0)
                    t.mismatch(p);
                });
  f.compress_seconds = comp.seconds;
  f.decompress_seconds = dec.seconds;
  for (const std::uint32_t n : lengths) f.compressed_bytes += n;
  f.errors = comp.tally.errors() + dec.tally.errors();
  return f;
}

std::vector<std::string> raw_compressors(const std::string& store_compressor) {
  std::vector<std::string> specs = {"lz4", "zstd"};
  if (store_compressor != "lz4" && store_compressor != "zstd") specs.push_back(store_compressor);
  return specs;
}

// zram's name for the store's algorithm ("lz4:3" -> "lz4", "lzo1x" -> "lzo").
std::string zram_algorithm(const std::string& spec) {
  const std::string name = spec.substr(0, spec.find(':'));
  return name == "lzo1x" ? "lzo" : name;
}

// ---- JSON ------------------------------------------------------------------------------------

Json mm_stat_object(const StoreStats& s) {
  return {{"orig_data_size", s.orig_data_size},    {"compr_data_size", s.compr_data_size},
          {"mem_used_total", s.mem_used_total},    {"mem_limit", s.mem_limit},
          {"mem_used_max", s.mem_used_max},        {"same_pages", s.same_pages},
          {"pages_compacted", s.pages_compacted},  {"huge_pages", s.huge_pages},
          {"huge_pages_since", s.huge_pages_since}};
}

Json mm_stat_object(const MmStat& s) {
  Json j = Json::object();
  for (std::size_t i = 0; i < s.size(); ++i) j[std::string(kMmStatFields[i])] = s[i];
  return j;
}

double efficiency(const StoreStats& s) {
  return safe_ratio(static_cast<double>(s.compr_data_size), static_cast<double>(s.mem_used_total));
}

// The figures every engine reports, from its timings and its mm_stat snapshots.
template <typename Stat>
Json engine_json(std::uint64_t pages, std::uint64_t discarded, double write_s, double read_s,
                 double discard_s, double compact_s, const Stat& fill, const Stat& discard,
                 const Stat& compact, double eff_fill, double eff_discard, double eff_compact,
                 std::uint64_t errors) {
  return {{"write_MBps", mb_per_second(pages, write_s)},
          {"read_MBps", mb_per_second(pages, read_s)},
          {"write_seconds", write_s},
          {"read_seconds", read_s},
          {"discard_seconds", discard_s},
          {"discarded_pages", discarded},
          {"compact_seconds", compact_s},
          {"efficiency_after_fill", eff_fill},
          {"efficiency_after_discard", eff_discard},
          {"efficiency_after_compact", eff_compact},
          {"mm_stat_after_fill", mm_stat_object(fill)},
          {"mm_stat_after_discard", mm_stat_object(discard)},
          {"mm_stat_after_compact", mm_stat_object(compact)},
          {"errors", errors}};
}

Json store_json(const StoreFigures& f, std::uint64_t pages, std::uint64_t discarded) {
  return engine_json(pages, discarded, f.write_seconds, f.read_seconds, f.discard_seconds,
                     f.compact_seconds, f.after_fill, f.after_discard, f.after_compact,
                     efficiency(f.after_fill), efficiency(f.after_discard),
                     efficiency(f.after_compact), f.errors);
}

Json zram_json(const ZramOutcome& z, std::uint64_t pages, std::uint64_t discarded) {
  if (!z.ran) return {{"ran", false}, {"why_not", z.why_not}};
  const ZramFigures& f = z.figures;
  Json j = engine_json(pages, discarded, f.write_seconds, f.read_seconds, f.discard_seconds,
                       f.compact_seconds, f.after_fill, f.after_discard, f.after_compact,
                       mm_stat_efficiency(f.after_fill), mm_stat_efficiency(f.after_discard),
                       mm_stat_efficiency(f.after_compact), f.errors);
  j["ran"] = true;
  return j;
}

Json raw_json(const RawFigures& f, std::uint64_t pages) {
  return {{"compressor", f.compressor},
          {"compress_MBps", mb_per_second(pages, f.compress_seconds)},
          {"decompress_MBps", mb_per_second(pages, f.decompress_seconds)},
          {"compress_seconds", f.compress_seconds},
          {"decompress_seconds", f.decompress_seconds},
          {"compressed_bytes", f.compressed_bytes},
          {"ratio", safe_ratio(static_cast<double>(pages * kBenchPageSize),
                               static_cast<double>(f.compressed_bytes))},
          {"errors", f.errors}};
}

Json store_vs_raw_json(const Json& store, const Json& raw, const std::string& compressor) {
  for (const Json& r : raw) {
    if (r["compressor"] != compressor) continue;
    return {{"compressor", compressor},
            {"write", safe_ratio(store["write_MBps"], r["compress_MBps"])},
            {"read", safe_ratio(store["read_MBps"], r["decompress_MBps"])}};
  }
  return Json::object();
}

// ---- text ------------------------------------------------------------------------------------

void print_engine_header(std::ostream& out) {
  out << fmt::format("{:<18} {:>11} {:>11} {:>11} {:>11} {:>13} {:>11} {:>11}\n", "", "write MB/s",
                     "read MB/s", "eff. fill", "eff. half", "eff. compact", "discard ms",
                     "compact ms");
}

void print_engine(const std::string& name, const Json& e, std::ostream& out) {
  out << fmt::format("{:<18} {:>11.1f} {:>11.1f} {:>11} {:>11} {:>13} {:>11.1f} {:>11.1f}\n", name,
                     e["write_MBps"].get<double>(), e["read_MBps"].get<double>(),
                     percent(e["efficiency_after_fill"]), percent(e["efficiency_after_discard"]),
                     percent(e["efficiency_after_compact"]),
                     1e3 * e["discard_seconds"].get<double>(),
                     1e3 * e["compact_seconds"].get<double>());
}

void print_text(const Json& j, std::ostream& out) {
  out << fmt::format("corpus     {}\n", j["corpus_text"].get<std::string>());
  out << fmt::format("threads    {}   compressor {}   discard: random half (seed {})\n\n",
                     j["threads"].get<unsigned>(), j["compressor"].get<std::string>(),
                     j["seed"].get<std::uint64_t>());
  print_engine_header(out);
  print_engine("zspool store", j["store"], out);
  if (j.contains("zram")) {
    if (j["zram"]["ran"]) {
      print_engine("zram (kernel)", j["zram"], out);
    } else {
      out << "zram (kernel)      skipped: " << j["zram"]["why_not"].get<std::string>() << "\n";
    }
  }
  out << fmt::format("\n{:<18} {:>14} {:>16} {:>8}\n", "raw, same pages", "compress MB/s",
                     "decompress MB/s", "ratio");
  for (const Json& r : j["raw"]) {
    out << fmt::format("{:<18} {:>14.1f} {:>16.1f} {:>8.2f}\n", r["compressor"].get<std::string>(),
                       r["compress_MBps"].get<double>(), r["decompress_MBps"].get<double>(),
                       r["ratio"].get<double>());
  }
  const Json& v = j["store_vs_raw"];
  if (!v.empty()) {
    out << fmt::format("\nstore / raw {}:  write {:.2f}x   read {:.2f}x\n",
                       v["compressor"].get<std::string>(), v["write"].get<double>(),
                       v["read"].get<double>());
  }
  if (j.contains("zram") && j["zram"]["ran"]) {
    out << fmt::format("store / zram:     write {:.2f}x   read {:.2f}x\n",
                       safe_ratio(j["store"]["write_MBps"], j["zram"]["write_MBps"]),
                       safe_ratio(j["store"]["read_MBps"], j["zram"]["read_MBps"]));
  }
}

// ---- the verb --------------------------------------------------------------------------------

std::uint64_t total_errors(const Json& j) {
  std::uint64_t errors = j["store"]["errors"];
  for (const Json& r : j["raw"]) errors += r["errors"].get<std::uint64_t>();
  if (j.contains("zram") && j["zram"]["ran"]) errors += j["zram"]["errors"].get<std::uint64_t>();
  return errors;
}

void run_bench_store(const BenchStoreOptions& options) {
  const BenchCorpus bc = load_bench_corpus(options.corpus);
  const Corpus& corpus = bc.corpus;
  const std::uint64_t pages = corpus.page_count();
  const std::vector<std::uint64_t> half = random_half(pages, options.seed);
  Json j = {{"corpus", bench_corpus_json(bc)},
            {"threads", options.threads},
            {"compressor", options.compressor},
            {"max_chain", options.max_chain},
            {"seed", options.seed}};
  j["store"] = store_json(bench_store(options, corpus, half), pages, half.size());
  j["raw"] = Json::array();
  for (const std::string& spec : raw_compressors(options.compressor))
    j["raw"].push_back(raw_json(bench_raw(spec, corpus, options.threads), pages));
  j["store_vs_raw"] = store_vs_raw_json(j["store"], j["raw"], options.compressor);
  if (options.vs_zram) {
    const ZramOutcome z =
        bench_zram(corpus, half, options.threads, zram_algorithm(options.compressor));
    j["zram"] = zram_json(z, pages, half.size());
  }
  if (options.json) {
    std::cout << j.dump(2) << '\n';
  } else {
    j["corpus_text"] = describe_bench_corpus(bc);
    print_text(j, std::cout);
  }
  std::cout.flush();
  if (const std::uint64_t errors = total_errors(j); errors != 0)
    command_failed(fmt::format("{} pages failed or read back different bytes", errors));
}

// Rejects a spec make_compressor rejects.
CLI::Validator compressor_validator() {
  return CLI::Validator(
      [](std::string& spec) -> std::string {
        if (make_compressor(spec)) return "";
        return fmt::format("'{}' is not a compressor (lz4, lz4:N, zstd, zstd:N, lzo1x)", spec);
      },
      "");
}

}  // namespace

void setup_bench_store(CLI::App& app) {
  auto options = std::make_shared<BenchStoreOptions>();
  add_bench_corpus_options(app, options->corpus);
  app.add_option("--threads", options->threads, "threads writing, reading and compressing")
      ->check(CLI::Range(1u, kMaxThreads).description(""))
      ->type_name("N")
      ->capture_default_str();
  app.add_option("--compressor", options->compressor, "lz4, lz4:N, zstd, zstd:N, lzo1x")
      ->check(compressor_validator())
      ->type_name("SPEC")
      ->capture_default_str();
  app.add_option("--max-chain", options->max_chain,
                 fmt::format("most pages per zspage: 1 .. {}", kMaxChain))
      ->check(CLI::Range(1u, kMaxChain).description(""))
      ->type_name("N")
      ->capture_default_str();
  app.add_option("--seed", options->seed, "which random half is discarded")->capture_default_str();
  app.add_flag("--vs-zram", options->vs_zram,
               "run the same sequence on /dev/zram0 (root; zram0 unused) and reset it after");
  app.add_flag("--json", options->json, "print one JSON object instead of tables");
  app.callback([options] { run_bench_store(*options); });
}

}  // namespace zspool::tools
