#include "zspool/cli/render.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "zspool/cli/command.h"
#include "zspool/cli/progress.h"
#include "zspool/cli/size_arg.h"
#include "zspool/core/internal/stats_json.h"
#include "zspool/core/size_class.h"
#include "zspool/store/internal/stats_json.h"

namespace zspool::tools {
namespace {

double ratio(double numerator, double denominator) {
  return denominator > 0 ? numerator / denominator : 0.0;
}

std::string percent(double fraction) {
  return fmt::format("{:.1f}%", 100.0 * fraction);
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

// ---- zspool run ------------------------------------------------------------------------------

std::string zramctl_summary(const RunReport& report) {
  const StoreStats& s = report.stats;
  std::string out;
  out += fmt::format("{:<10} {:>10} {:>10} {:>10} {:>10} {:>7}\n", "ALGORITHM", "DISKSIZE", "DATA",
                     "COMPR", "TOTAL", "STREAMS");
  out +=
      fmt::format("{:<10} {:>10} {:>10} {:>10} {:>10} {:>7}\n", report.compressor,
                  format_bytes(report.bytes), format_bytes(s.orig_data_size),
                  format_bytes(s.compr_data_size), format_bytes(s.mem_used_total), report.threads);
  out += fmt::format(
      "efficiency {:.1f}% (COMPR / TOTAL)   ratio {:.2f} (DATA / COMPR)   compacted {} pages\n",
      100.0 * efficiency(s), compression_ratio(s), report.pages_compacted);
  out += "mm_stat    " + mm_stat_line(s) + "\n";
  return out;
}

// The counters beyond mm_stat: the zswap-like ones, then the backing file's.
std::string store_counters_text(const StoreStats& s) {
  return fmt::format(
             "store      stored_pages {}  reject_compress_poor {}  pool_limit_hit {}  "
             "rejected_writes {}\n",
             s.stored_pages, s.reject_compress_poor, s.pool_limit_hit, s.rejected_writes) +
         fmt::format(
             "writeback  written_back_pages {}  bd_count {}  bd_writes {}  bd_reads {}  "
             "bd_write_failures {}  bd_read_failures {}\n",
             s.written_back_pages, s.bd_count, s.bd_writes, s.bd_reads, s.bd_write_failures,
             s.bd_read_failures);
}

std::string throughput_text(const RunReport& report) {
  const std::uint64_t bytes = report.bytes;
  return fmt::format(
             "throughput write {:.1f} MB/s ({:.3f} s)   read {:.1f} MB/s ({:.3f} s)   "
             "{} thread{}\n",
             megabytes_per_second(bytes, report.write.seconds), report.write.seconds,
             megabytes_per_second(bytes, report.read.seconds), report.read.seconds, report.threads,
             report.threads == 1 ? "" : "s") +
         fmt::format("verified   {} pages, {} errors\n", report.verified(), report.errors());
}

// ---- zspool bench store ----------------------------------------------------------------------

// The figures every engine reports, from its timings and its mm_stat snapshots.
Json engine_json(const EngineFigures& f, std::uint64_t pages, std::uint64_t discarded) {
  return {{"write_MBps", pages_mb_per_second(pages, f.write_seconds)},
          {"read_MBps", pages_mb_per_second(pages, f.read_seconds)},
          {"write_seconds", f.write_seconds},
          {"read_seconds", f.read_seconds},
          {"discard_seconds", f.discard_seconds},
          {"discarded_pages", discarded},
          {"compact_seconds", f.compact_seconds},
          {"efficiency_after_fill", mm_stat_efficiency(f.after_fill)},
          {"efficiency_after_discard", mm_stat_efficiency(f.after_discard)},
          {"efficiency_after_compact", mm_stat_efficiency(f.after_compact)},
          {"mm_stat_after_fill", mm_stat_json(f.after_fill)},
          {"mm_stat_after_discard", mm_stat_json(f.after_discard)},
          {"mm_stat_after_compact", mm_stat_json(f.after_compact)},
          {"errors", f.errors}};
}

Json raw_json(const RawFigures& f, std::uint64_t pages) {
  return {{"compressor", f.compressor},
          {"compress_MBps", pages_mb_per_second(pages, f.compress_seconds)},
          {"decompress_MBps", pages_mb_per_second(pages, f.decompress_seconds)},
          {"compress_seconds", f.compress_seconds},
          {"decompress_seconds", f.decompress_seconds},
          {"compressed_bytes", f.compressed_bytes},
          {"ratio", ratio(static_cast<double>(pages * kBenchPageSize),
                          static_cast<double>(f.compressed_bytes))},
          {"errors", f.errors}};
}

std::string engine_header() {
  return fmt::format("{:<18} {:>11} {:>11} {:>11} {:>11} {:>13} {:>11} {:>11}\n", "", "write MB/s",
                     "read MB/s", "eff. fill", "eff. half", "eff. compact", "discard ms",
                     "compact ms");
}

std::string engine_row(const std::string& name, const EngineFigures& f, std::uint64_t pages) {
  return fmt::format(
      "{:<18} {:>11.1f} {:>11.1f} {:>11} {:>11} {:>13} {:>11.1f} {:>11.1f}\n", name,
      pages_mb_per_second(pages, f.write_seconds), pages_mb_per_second(pages, f.read_seconds),
      percent(mm_stat_efficiency(f.after_fill)), percent(mm_stat_efficiency(f.after_discard)),
      percent(mm_stat_efficiency(f.after_compact)), 1e3 * f.discard_seconds,
      1e3 * f.compact_seconds);
}

// store rate / other rate, for the write and the read.
struct SpeedRatio {
  double write, read;
};
SpeedRatio store_vs_raw(const StoreBenchResult& r, const RawFigures& raw) {
  return {ratio(raw.compress_seconds, r.store.write_seconds),
          ratio(raw.decompress_seconds, r.store.read_seconds)};
}
SpeedRatio store_vs_zram(const StoreBenchResult& r) {
  const EngineFigures& z = r.zram->figures;
  return {ratio(z.write_seconds, r.store.write_seconds),
          ratio(z.read_seconds, r.store.read_seconds)};
}

// ---- zspool bench alloc ----------------------------------------------------------------------

Json trace_json(const AllocTrace& trace, std::uint32_t max_chain) {
  return {{"compressor", "lz4"},
          {"page_size", trace.page_size()},
          {"max_chain", max_chain},
          {"huge_class_size", trace.huge_class_size()},
          {"corpus_pages", trace.corpus_pages()},
          {"objects", trace.objects()},
          {"requested_bytes", trace.requested_bytes()},
          {"same_filled_pages_skipped", trace.same_filled_pages()},
          {"zero_pages_skipped", trace.zero_pages()},
          {"huge_objects", trace.huge_objects()}};
}

std::string ratio_text(const Json& phase, const char* key) {
  return phase.contains(key) ? fmt::format("{:.2f}x", phase[key].get<double>()) : "-";
}

std::string ops_text(const Json& phase) {
  if (!phase.contains("ops_per_sec"))
    return fmt::format("({:.1f} ms)", 1e3 * phase["seconds"].get<double>());
  return format_count(phase["ops_per_sec"].get<double>());
}

std::string alloc_trace_text(const LoadedCorpus& corpus, const AllocBenchResult& r) {
  const AllocTrace& trace = *r.trace;
  return "corpus     " + bench_corpus_text(corpus) + "\n" +
         fmt::format(
             "trace      {} objects, {} requested (lz4 of 4 KiB pages); {} same-filled pages "
             "skipped ({} zero); {} stored raw (>= huge_class_size {}); chain {} (kernel-like: "
             "{}); seed {}\n\n",
             trace.objects(), format_bytes(trace.requested_bytes()), trace.same_filled_pages(),
             trace.zero_pages(), trace.huge_objects(), trace.huge_class_size(), r.max_chain,
             kDefaultChain, r.seed);
}

std::string alloc_phase_table(const Json& allocators) {
  std::string out =
      fmt::format("{:<19} {:<10} {:>10} {:>9} {:>11} {:>11} {:>10} {:>10}\n", "allocator", "phase",
                  "ops/s", "vs glibc", "requested", "held", "vs zspool", "efficiency");
  for (const Json& a : allocators) {
    const std::string name = a["name"];
    if (!a.value("available", false)) {
      out += fmt::format("{:<19} unavailable: {}\n", name, a["error"].get<std::string>());
      continue;
    }
    for (const Json& p : a["phases"]) {
      out += fmt::format("{:<19} {:<10} {:>10} {:>9} {:>11} {:>11} {:>10} {:>10}\n", name,
                         p["phase"].get<std::string>(), ops_text(p), ratio_text(p, "ops_vs_glibc"),
                         format_bytes(p["live_bytes"]), format_bytes(p["held_bytes"]),
                         ratio_text(p, "held_vs_zspool"), percent(p["efficiency"]));
    }
    if (!a.value("verified", false)) out += fmt::format("{:<19} VERIFY FAILED\n", name);
  }
  return out;
}

std::string alloc_pool_view(const Json& allocators) {
  std::string out = fmt::format("\n{:<19} {:<10} {:>11} {:>11} {:>11} {:>16}\n", "pool view",
                                "phase", "mem_used", "metadata", "cached", "zram efficiency");
  for (const Json& a : allocators) {
    if (!a.value("available", false) || !a["phases"].front().contains("pool_bytes")) continue;
    for (const Json& p : a["phases"]) {
      out += fmt::format("{:<19} {:<10} {:>11} {:>11} {:>11} {:>16}\n",
                         a["name"].get<std::string>(), p["phase"].get<std::string>(),
                         format_bytes(p["pool_bytes"]), format_bytes(p["metadata_bytes"]),
                         format_bytes(p["cached_bytes"]), percent(p["zram_efficiency"]));
    }
  }
  return out;
}

std::string alloc_headline(const Json& zram_efficiency) {
  std::string out = "\nzram-way efficiency (compr_data_size / mem_used_total)\n";
  out += fmt::format("{:<24} {:>13} {:>16} {:>18} {:>13}\n", "", "after fill", "after free-half",
                     "after compaction", "after refill");
  for (const auto& [name, phases] : zram_efficiency.items()) {
    out += fmt::format("{:<24} {:>13} {:>16} {:>18} {:>13}\n", name, percent(phases["fill"]),
                       percent(phases["free_half"]), percent(phases["compact"]),
                       percent(phases["refill"]));
  }
  std::string kernel[3];
  for (int i = 0; i < 3; ++i) {
    kernel[i] = fmt::format("{:.1f}-{:.1f}%", 100 * kKernelEfficiency[i].low,
                            100 * kKernelEfficiency[i].high);
  }
  out += fmt::format("{:<24} {:>13} {:>16} {:>18} {:>13}\n", "kernel zsmalloc (3 corpora)",
                     kernel[0], kernel[1], kernel[2], "-");
  return out;
}

// ---- zspool classes -------------------------------------------------------------------------

double waste_percent(const SizeClass& c, std::uint32_t page_size) {
  const double zspage_bytes = static_cast<double>(c.pages_per_zspage) * page_size;
  return 100.0 * c.tail_waste(page_size) / zspage_bytes;
}

Json classes_json_impl(const SizeClassTable& table) {
  nlohmann::ordered_json classes = nlohmann::ordered_json::array();
  for (const SizeClass& c : table.classes()) {
    classes.push_back({{"index", c.index},
                       {"size", c.size},
                       {"pages_per_zspage", c.pages_per_zspage},
                       {"objs_per_zspage", c.objs_per_zspage},
                       {"huge", c.huge},
                       {"waste_bytes", c.tail_waste(table.page_size())}});
  }
  return {{"page_size", table.page_size()},
          {"max_chain", table.max_chain()},
          {"huge_class_size", table.huge_class_size()},
          {"classes", std::move(classes)}};
}

std::string classes_text_impl(const SizeClassTable& table) {
  std::string out =
      fmt::format("page_size {}  max_chain {}  classes {}  huge_class_size {}\n", table.page_size(),
                  table.max_chain(), table.classes().size(), table.huge_class_size());
  out += fmt::format("{:>5} {:>6} {:>6} {:>5} {:>5} {:>6} {:>7}\n", "index", "size", "pages",
                     "objs", "huge", "waste", "waste%");
  for (const SizeClass& c : table.classes()) {
    out += fmt::format("{:>5} {:>6} {:>6} {:>5} {:>5} {:>6} {:>7.2f}\n", c.index, c.size,
                       c.pages_per_zspage, c.objs_per_zspage, c.huge ? "yes" : "-",
                       c.tail_waste(table.page_size()), waste_percent(c, table.page_size()));
  }
  return out;
}

}  // namespace

void print_output(const std::string& text) {
  const bool wrote = std::fwrite(text.data(), 1, text.size(), stdout) == text.size();
  if (!wrote || std::fflush(stdout) != 0 || std::ferror(stdout)) {
    const int saved = errno;
    command_failed(
        fmt::format("cannot write the output: {}", std::strerror(saved != 0 ? saved : EIO)));
  }
}

// ---- corpora ---------------------------------------------------------------------------------

std::string run_corpus_text(const LoadedCorpus& info) {
  const Corpus& c = info.corpus;
  std::string text = fmt::format("corpus     {}, {} pages of {} bytes ({})",
                                 info.builtin() ? info.generator : "paths", c.page_count(),
                                 c.page_size(), format_bytes(c.size_bytes()));
  if (!info.builtin()) {
    text += fmt::format(" from {} files{}", info.load.files_read,
                        info.load.truncated ? ", truncated at --max-bytes" : "");
    if (info.load.entries_skipped > 0)
      text += fmt::format(", {} entries skipped", info.load.entries_skipped);
  }
  text += "\nmix        " + describe_mix(c) + "\n";
  for (const SkippedEntry& s : info.load.skipped)
    text += fmt::format("skipped    {}: {}\n", s.path, s.reason);
  if (info.load.entries_skipped > info.load.skipped.size())
    text += fmt::format("skipped    and {} more\n",
                        info.load.entries_skipped - info.load.skipped.size());
  return text;
}

Json run_corpus_json(const LoadedCorpus& info) {
  Json kinds = Json::object();
  for (std::size_t k = 0; k < kPageKindCount; ++k) {
    if (info.corpus.kind_counts()[k] != 0)
      kinds[std::string(page_kind_name(static_cast<PageKind>(k)))] = info.corpus.kind_counts()[k];
  }
  Json j = {{"source", info.builtin() ? info.generator : "paths"},
            {"pages", info.corpus.page_count()},
            {"bytes", info.corpus.size_bytes()},
            {"kinds", std::move(kinds)}};
  if (!info.builtin()) {
    j["files_read"] = info.load.files_read;
    j["entries_skipped"] = info.load.entries_skipped;
    j["truncated"] = info.load.truncated;
    Json skipped = Json::array();
    for (const SkippedEntry& s : info.load.skipped)
      skipped.push_back({{"path", s.path}, {"reason", s.reason}});
    j["skipped"] = std::move(skipped);
  }
  return j;
}

std::string corpus_file_text(const std::string& path, std::uint64_t seed, const LoadedCorpus& c) {
  return fmt::format("wrote      {} (seed {})\n", path, seed) + run_corpus_text(c);
}

Json corpus_file_json(const std::string& path, std::uint64_t seed, const LoadedCorpus& c) {
  return {{"path", path}, {"seed", seed}, {"corpus", run_corpus_json(c)}};
}

std::string bench_corpus_text(const LoadedCorpus& c) {
  const std::string size =
      fmt::format("{} pages ({})", c.corpus.page_count(), format_bytes(c.corpus.size_bytes()));
  if (c.builtin()) return c.generator + " corpus, " + size;
  return fmt::format("{}: {} from {} files{}", c.joined_paths(), size, c.load.files_read,
                     c.load.truncated ? ", truncated at --max-bytes" : "");
}

Json bench_corpus_json(const LoadedCorpus& c) {
  Json j = {{"source", c.builtin() ? c.generator : c.joined_paths()},
            {"pages", c.corpus.page_count()},
            {"bytes", c.corpus.size_bytes()}};
  if (!c.builtin()) {
    j["files_read"] = c.load.files_read;
    j["truncated"] = c.load.truncated;
  }
  return j;
}

// ---- zspool run ------------------------------------------------------------------------------

std::string run_text(const LoadedCorpus& corpus, const RunReport& report) {
  return run_corpus_text(corpus) + "\n" + zramctl_summary(report) + "\n" +
         format_stats_table(report.stats.pool, true) + "\n" + store_counters_text(report.stats) +
         throughput_text(report);
}

Json run_json(const LoadedCorpus& corpus, const RunReport& report) {
  const StoreStats& s = report.stats;
  Json j = {{"pages", report.pages},         {"page_size", s.page_size},
            {"max_chain", s.pool.max_chain}, {"compressor", report.compressor},
            {"threads", report.threads},     {"corpus", run_corpus_json(corpus)}};
  j.update(mm_stat_json(mm_stat(s)));
  j["efficiency"] = efficiency(s);
  j["ratio"] = compression_ratio(s);
  j["compacted_pages"] = report.pages_compacted;
  j.update(store_counters_json(s));
  j["write_seconds"] = report.write.seconds;
  j["read_seconds"] = report.read.seconds;
  j["write_MBps"] = megabytes_per_second(report.bytes, report.write.seconds);
  j["read_MBps"] = megabytes_per_second(report.bytes, report.read.seconds);
  j["write_errors"] = report.write.tally.failed;
  j["read_errors"] = report.read.tally.failed;
  j["mismatches"] = report.read.tally.mismatched;
  j["errors"] = report.errors();
  j["pool"] = pool_stats_json(s.pool, true);
  return j;
}

// ---- zspool replay ---------------------------------------------------------------------------

std::string mm_stat_text(const StoreStats& stats, bool json) {
  if (json) return trace_stats_json(stats).dump() + "\n";
  return "mm_stat " + mm_stat_line(stats) + "\nbd_stat " + bd_stat_line(stats) + "\npolicy_stat " +
         policy_stat_line(stats) + "\n";
}

// ---- zspool bench policy ---------------------------------------------------------------------

namespace {

std::string policy_row(const PolicyRun& run, std::uint32_t page_size) {
  const double mb_written = static_cast<double>(run.backing_writes) * page_size / 1e6;
  std::string row = fmt::format("{:<10} {:>8.2f} {:>8.2f} {:>10} {:>10} {:>9.1f}", run.name,
                                100.0 * run.hit_ratio(), 100.0 * run.hot_hit_ratio(),
                                run.backing_reads, run.backing_writes, mb_written);
  if (run.name == "exact-lru") return row + "\n";
  row += fmt::format(" {:>8.1f} {:>8.1f} {:>7}", run.write_p50_us, run.write_p99_us,
                     run.writer_stalls);
  if (run.samples == 0) return row + "   (no writeback)\n";
  return row + fmt::format(" {:>6.1f}/{:<5.1f} {:>6.1f}/{:<5.1f}\n", 100.0 * run.min_efficiency,
                           100.0 * run.mean_efficiency, 100.0 * run.min_fill,
                           100.0 * run.mean_fill);
}

}  // namespace

std::string policy_bench_text(const LoadedCorpus& corpus, const PolicyBenchResult& r) {
  const PolicyBenchOptions& o = r.options;
  std::string out = fmt::format("corpus     {}\n", bench_corpus_text(corpus));
  out += fmt::format(
      "compressor {}   compressed {}   limit {} ({}%)   reads {} x {} pages: {}% to a hot {}% "
      "(seed {})   writeback batch {}\n\n",
      o.compressor, format_bytes(r.compressed_bytes), format_bytes(r.limit), o.limit_percent,
      o.read_rounds, r.pages, o.hot_read_percent, o.hot_page_percent, o.seed, o.writeback_batch);
  out += fmt::format("{:<10} {:>8} {:>8} {:>10} {:>10} {:>9} {:>8} {:>8} {:>7} {:>12} {:>12}\n",
                     "policy", "hit %", "hot %", "bd reads", "bd writes", "MB wr", "w p50us",
                     "w p99us", "stalls", "eff min/avg", "fill min/avg");
  for (const PolicyRun& run : r.runs) out += policy_row(run, corpus.corpus.page_size());
  out +=
      "\neff = compr_data_size / mem_used_total, fill = mem_used_total / limit, sampled "
      "once writeback started\n";
  return out;
}

Json policy_bench_json(const LoadedCorpus& corpus, const PolicyBenchResult& r) {
  const PolicyBenchOptions& o = r.options;
  Json j = {{"corpus", bench_corpus_json(corpus)},
            {"compressor", o.compressor},
            {"seed", o.seed},
            {"read_rounds", o.read_rounds},
            {"hot_page_percent", o.hot_page_percent},
            {"hot_read_percent", o.hot_read_percent},
            {"limit_percent", o.limit_percent},
            {"writeback_batch", o.writeback_batch},
            {"pages", r.pages},
            {"compressed_bytes", r.compressed_bytes},
            {"limit", r.limit}};
  j["runs"] = Json::array();
  for (const PolicyRun& run : r.runs) {
    j["runs"].push_back({{"name", run.name},
                         {"reads", run.reads},
                         {"hits", run.hits},
                         {"hit_ratio", run.hit_ratio()},
                         {"hot_reads", run.hot_reads},
                         {"hot_hits", run.hot_hits},
                         {"hot_hit_ratio", run.hot_hit_ratio()},
                         {"backing_reads", run.backing_reads},
                         {"backing_writes", run.backing_writes},
                         {"backing_write_ios", run.backing_write_ios},
                         {"errors", run.errors},
                         {"write_p50_us", run.write_p50_us},
                         {"write_p99_us", run.write_p99_us},
                         {"write_max_us", run.write_max_us},
                         {"writer_stalls", run.writer_stalls},
                         {"bg_writeback_runs", run.bg_writeback_runs},
                         {"samples", run.samples},
                         {"min_efficiency", run.min_efficiency},
                         {"mean_efficiency", run.mean_efficiency},
                         {"min_fill", run.min_fill},
                         {"mean_fill", run.mean_fill}});
  }
  return j;
}

// ---- zspool bench store ----------------------------------------------------------------------

Json store_bench_json(const LoadedCorpus& corpus, const StoreBenchResult& r) {
  Json j = {{"corpus", bench_corpus_json(corpus)},
            {"threads", r.options.threads},
            {"compressor", r.options.compressor},
            {"max_chain", r.options.max_chain},
            {"seed", r.options.seed}};
  j["store"] = engine_json(r.store, r.pages, r.discarded_pages);
  j["raw"] = Json::array();
  for (const RawFigures& raw : r.raw) j["raw"].push_back(raw_json(raw, r.pages));
  j["store_vs_raw"] = Json::object();
  if (const RawFigures* raw = r.store_compressor_raw()) {
    const SpeedRatio v = store_vs_raw(r, *raw);
    j["store_vs_raw"] = {{"compressor", raw->compressor}, {"write", v.write}, {"read", v.read}};
  }
  if (r.zram) {
    if (r.zram->ran) {
      j["zram"] = engine_json(r.zram->figures, r.pages, r.discarded_pages);
      j["zram"]["ran"] = true;
    } else {
      j["zram"] = {{"ran", false}, {"why_not", r.zram->why_not}};
    }
  }
  return j;
}

std::string store_bench_text(const LoadedCorpus& corpus, const StoreBenchResult& r) {
  std::string out = fmt::format("corpus     {}\n", bench_corpus_text(corpus));
  out += fmt::format("threads    {}   compressor {}   discard: random half (seed {})\n\n",
                     r.options.threads, r.options.compressor, r.options.seed);
  out += engine_header();
  out += engine_row("zspool store", r.store, r.pages);
  if (r.zram) {
    out += r.zram->ran ? engine_row("zram (kernel)", r.zram->figures, r.pages)
                       : "zram (kernel)      skipped: " + r.zram->why_not + "\n";
  }
  out += fmt::format("\n{:<18} {:>14} {:>16} {:>8}\n", "raw, same pages", "compress MB/s",
                     "decompress MB/s", "ratio");
  for (const RawFigures& raw : r.raw) {
    out += fmt::format("{:<18} {:>14.1f} {:>16.1f} {:>8.2f}\n", raw.compressor,
                       pages_mb_per_second(r.pages, raw.compress_seconds),
                       pages_mb_per_second(r.pages, raw.decompress_seconds),
                       ratio(static_cast<double>(r.pages * kBenchPageSize),
                             static_cast<double>(raw.compressed_bytes)));
  }
  if (const RawFigures* raw = r.store_compressor_raw()) {
    const SpeedRatio v = store_vs_raw(r, *raw);
    out += fmt::format("\nstore / raw {}:  write {:.2f}x   read {:.2f}x\n", raw->compressor,
                       v.write, v.read);
  }
  if (r.zram && r.zram->ran) {
    const SpeedRatio v = store_vs_zram(r);
    out += fmt::format("store / zram:     write {:.2f}x   read {:.2f}x\n", v.write, v.read);
  }
  return out;
}

// ---- zspool bench alloc ----------------------------------------------------------------------

std::string alloc_bench_text(const LoadedCorpus& corpus, const AllocBenchResult& r) {
  return alloc_trace_text(corpus, r) + alloc_phase_table(r.allocators) +
         alloc_pool_view(r.allocators) + alloc_headline(r.zram_efficiency);
}

Json alloc_bench_json(const LoadedCorpus& corpus, const AllocBenchResult& r) {
  return {{"corpus", bench_corpus_json(corpus)},
          {"trace", trace_json(*r.trace, r.max_chain)},
          {"seed", r.seed},
          {"allocators", r.allocators},
          {"zram_efficiency", r.zram_efficiency}};
}

// ---- zspool soak -----------------------------------------------------------------------------

Json soak_json(const SoakResult& r) {
  Json j{{"seconds", r.seconds},
         {"threads", r.options.threads},
         {"ops", r.ops},
         {"writes", r.writes},
         {"reads", r.reads},
         {"verified", r.verified},
         {"discards", r.discards},
         {"compactions", r.compactions},
         {"writebacks", r.writebacks},
         {"recompressions", r.recompressions},
         {"recompressed_pages", r.recompressed_pages},
         {"faults_injected", r.faults},
         {"writes_refused", r.refused},
         {"bd_write_failures", r.bd_write_failures},
         {"page_source_failures", r.page_source_failures},
         {"written_back_pages", r.written_back_pages},
         {"errors", r.errors}};
  if (!r.first_error.empty()) j["first_error"] = r.first_error;
  return j;
}

std::string soak_text(const SoakResult& r) {
  const SoakOptions& o = r.options;
  const std::string secondaries =
      o.recompress_with.empty()
          ? ""
          : fmt::format(" (recompress with {})", fmt::join(o.recompress_with, ","));
  return fmt::format("soak: {:.1f} s, {} threads, {} pages, limit {} bytes, {}{}\n", r.seconds,
                     o.threads, o.pages, o.limit, o.compressor, secondaries) +
         fmt::format(
             "  ops {}  (writes {}, reads {} verified {}, discards {}, compactions {}, "
             "writebacks {}, recompressions {}: {} pages)\n",
             r.ops, r.writes, r.reads, r.verified, r.discards, r.compactions, r.writebacks,
             r.recompressions, r.recompressed_pages) +
         fmt::format(
             "  faults injected {}  (writes refused {}, backing write failures {}, "
             "allocation failures {}), written back {}\n",
             r.faults, r.refused, r.bd_write_failures, r.page_source_failures,
             r.written_back_pages) +
         fmt::format("  errors found {}{}\n", r.errors,
                     r.first_error.empty() ? "" : "  (first: " + r.first_error + ")");
}

// ---- zspool classes -------------------------------------------------------------------------

std::string classes_text(const SizeClassTable& table) {
  return classes_text_impl(table);
}

Json classes_json(const SizeClassTable& table) {
  return classes_json_impl(table);
}

// ---- zspool train-dict ------------------------------------------------------------------------

std::string trained_dictionary_text(const std::string& path, const TrainedDictionary& d,
                                    const LoadedCorpus& corpus) {
  return fmt::format("dictionary {}: {} bytes, id {}, trained on {} ({}) of {}\n", path,
                     d.bytes.size(), d.id, count_of(d.samples, "page"),
                     format_bytes(d.sample_bytes), bench_corpus_text(corpus));
}

Json trained_dictionary_json(const std::string& path, const TrainedDictionary& d,
                             const LoadedCorpus& corpus) {
  return {{"dictionary", path},
          {"bytes", d.bytes.size()},
          {"id", d.id},
          {"samples", d.samples},
          {"sample_bytes", d.sample_bytes},
          {"corpus", bench_corpus_json(corpus)}};
}

}  // namespace zspool::tools
