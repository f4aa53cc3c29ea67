// zspool bench alloc: zram's allocations replayed through zspool, glibc, jemalloc and mimalloc.
//
//   zspool bench alloc [--input PATH...] [--max-bytes SIZE] [--seed N] [--max-chain N]
//                      [--kernel-like] [--json]
//
//   corpus ──AllocTrace (lz4 sizes, same-filled skipped, huge raw)──▶ for each allocator:
//       fork ─▶ child: fill · free_half · compact · refill (bench_alloc.h) ─▶ JSON ─▶ parent
//
// Allocators, one child each: zspool (lazy commit, chain --max-chain: by default the store's
// 16), zspool-kernel-like (PoolOptions::lazy_commit = false and the kernel's chain 8: the
// kernel's memory behaviour), glibc, jemalloc, mimalloc. The trace stores raw the pages that
// compress to at least huge_class_size of the --max-chain table. --kernel-like runs only the
// kernel-like zspool, which then is the reference row. A library that cannot be loaded is reported
// as unavailable, with dlerror's reason.
//
// Output: the trace, then per allocator and phase ops/s (and relative to glibc), bytes
// requested, memory held (child RSS over its baseline; relative to zspool) and efficiency
// (requested / held); then zspool's pool view and zspool's efficiency the zram way
// (compr_data_size / mem_used_total) beside the kernel's figures (ZSMALLOC.md section 7).
// --json: one object {"corpus", "trace", "seed", "allocators": [...], "zram_efficiency"}.
#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "zspool/core/size_class.h"
#include "zspool/store/store.h"
#include "zspool/tools/bench_alloc.h"
#include "zspool/tools/bench_child.h"
#include "zspool/tools/bench_common.h"
#include "zspool/tools/bench_trace.h"
#include "zspool/tools/bench_verbs.h"
#include "zspool/tools/command.h"
#include "zspool/tools/progress.h"
#include "zspool/tools/size_arg.h"

namespace zspool::tools {
namespace {

using Json = nlohmann::ordered_json;

struct BenchAllocOptions {
  BenchCorpusArgs corpus;
  std::uint64_t seed = 1;
  std::uint32_t max_chain = kStoreDefaultChain;  // the store's; the kernel-like row uses 8
  bool kernel_like = false;
  bool json = false;
};

// The kernel's figures (ZSMALLOC.md section 7: lowest and highest of the three corpora), per
// phase of our sequence; refill has none.
struct KernelRange {
  std::string_view phase;
  double low, high;
};
constexpr KernelRange kKernelEfficiency[] = {
    {"fill", 0.891, 0.950}, {"free_half", 0.461, 0.497}, {"compact", 0.834, 0.924}};

std::vector<AllocatorKind> allocators_to_run(bool kernel_like) {
  if (kernel_like) {
    return {AllocatorKind::zspool_kernel_like, AllocatorKind::glibc, AllocatorKind::jemalloc,
            AllocatorKind::mimalloc};
  }
  return {AllocatorKind::zspool, AllocatorKind::zspool_kernel_like, AllocatorKind::glibc,
          AllocatorKind::jemalloc, AllocatorKind::mimalloc};
}

Json run_one(AllocatorKind kind, const AllocBenchConfig& config) {
  const ChildAnswer answer = run_in_child([&] { return measure_allocator(kind, config); });
  if (answer.error.empty()) return answer.value;
  return {{"name", allocator_name(kind)}, {"available", false}, {"error", answer.error}};
}

const Json* find_phase(const Json& allocator, std::string_view phase) {
  if (!allocator.value("available", false)) return nullptr;
  for (const Json& p : allocator["phases"]) {
    if (p["phase"] == phase) return &p;
  }
  return nullptr;
}

// Adds held_vs_zspool and ops_vs_glibc to every phase of every available allocator.
void add_ratios(Json& allocators) {
  const Json& reference = allocators.front();
  const Json* glibc = nullptr;
  for (const Json& a : allocators) {
    if (a["name"] == "glibc") glibc = &a;
  }
  for (Json& a : allocators) {
    if (!a.value("available", false)) continue;
    for (Json& p : a["phases"]) {
      const std::string phase = p["phase"];
      if (const Json* ref = find_phase(reference, phase))
        p["held_vs_zspool"] = safe_ratio(p["held_bytes"], (*ref)["held_bytes"]);
      const Json* g = glibc != nullptr ? find_phase(*glibc, phase) : nullptr;
      if (g != nullptr && p.contains("ops_per_sec") && g->contains("ops_per_sec"))
        p["ops_vs_glibc"] = safe_ratio(p["ops_per_sec"], (*g)["ops_per_sec"]);
    }
  }
}

// {"zspool": {"fill": 0.98, ...}, ...}: zspool's zram_efficiency per phase.
Json zram_efficiency_json(const Json& allocators) {
  Json j = Json::object();
  for (const Json& a : allocators) {
    if (!a.value("available", false) || !a["phases"].front().contains("zram_efficiency")) continue;
    Json phases = Json::object();
    for (const Json& p : a["phases"]) phases[p["phase"].get<std::string>()] = p["zram_efficiency"];
    j[a["name"].get<std::string>()] = std::move(phases);
  }
  return j;
}

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

// ---- text output -----------------------------------------------------------------------------

std::string ratio_text(const Json& phase, const char* key) {
  return phase.contains(key) ? fmt::format("{:.2f}x", phase[key].get<double>()) : "-";
}

std::string ops_text(const Json& phase) {
  if (!phase.contains("ops_per_sec"))
    return fmt::format("({:.1f} ms)", 1e3 * phase["seconds"].get<double>());
  return format_count(phase["ops_per_sec"].get<double>());
}

void print_trace(const BenchCorpus& corpus, const AllocTrace& trace, std::uint32_t max_chain,
                 std::uint64_t seed, std::ostream& out) {
  out << "corpus     " << describe_bench_corpus(corpus) << "\n";
  out << fmt::format(
      "trace      {} objects, {} requested (lz4 of 4 KiB pages); {} same-filled pages skipped "
      "({} zero); {} stored raw (>= huge_class_size {}); chain {} (kernel-like: {}); seed {}\n\n",
      trace.objects(), format_bytes(trace.requested_bytes()), trace.same_filled_pages(),
      trace.zero_pages(), trace.huge_objects(), trace.huge_class_size(), max_chain, kDefaultChain,
      seed);
}

void print_phase_table(const Json& allocators, std::ostream& out) {
  out << fmt::format("{:<19} {:<10} {:>10} {:>9} {:>11} {:>11} {:>10} {:>10}\n", "allocator",
                     "phase", "ops/s", "vs glibc", "requested", "held", "vs zspool", "efficiency");
  for (const Json& a : allocators) {
    const std::string name = a["name"];
    if (!a.value("available", false)) {
      out << fmt::format("{:<19} unavailable: {}\n", name, a["error"].get<std::string>());
      continue;
    }
    for (const Json& p : a["phases"]) {
      out << fmt::format("{:<19} {:<10} {:>10} {:>9} {:>11} {:>11} {:>10} {:>10}\n", name,
                         p["phase"].get<std::string>(), ops_text(p), ratio_text(p, "ops_vs_glibc"),
                         format_bytes(p["live_bytes"]), format_bytes(p["held_bytes"]),
                         ratio_text(p, "held_vs_zspool"), percent(p["efficiency"]));
    }
    if (!a.value("verified", false)) out << fmt::format("{:<19} VERIFY FAILED\n", name);
  }
}

void print_pool_view(const Json& allocators, std::ostream& out) {
  out << fmt::format("\n{:<19} {:<10} {:>11} {:>11} {:>11} {:>16}\n", "pool view", "phase",
                     "mem_used", "metadata", "cached", "zram efficiency");
  for (const Json& a : allocators) {
    if (!a.value("available", false) || !a["phases"].front().contains("pool_bytes")) continue;
    for (const Json& p : a["phases"]) {
      out << fmt::format("{:<19} {:<10} {:>11} {:>11} {:>11} {:>16}\n",
                         a["name"].get<std::string>(), p["phase"].get<std::string>(),
                         format_bytes(p["pool_bytes"]), format_bytes(p["metadata_bytes"]),
                         format_bytes(p["cached_bytes"]), percent(p["zram_efficiency"]));
    }
  }
}

void print_headline(const Json& zram_efficiency, std::ostream& out) {
  out << fmt::format("\nzram-way efficiency (compr_data_size / mem_used_total)\n");
  out << fmt::format("{:<24} {:>13} {:>16} {:>18} {:>13}\n", "", "after fill", "after free-half",
                     "after compaction", "after refill");
  for (const auto& [name, phases] : zram_efficiency.items()) {
    out << fmt::format("{:<24} {:>13} {:>16} {:>18} {:>13}\n", name, percent(phases["fill"]),
                       percent(phases["free_half"]), percent(phases["compact"]),
                       percent(phases["refill"]));
  }
  std::string kernel[3];
  for (int i = 0; i < 3; ++i) {
    kernel[i] = fmt::format("{:.1f}-{:.1f}%", 100 * kKernelEfficiency[i].low,
                            100 * kKernelEfficiency[i].high);
  }
  out << fmt::format("{:<24} {:>13} {:>16} {:>18} {:>13}\n", "kernel (ZSMALLOC.md 7)", kernel[0],
                     kernel[1], kernel[2], "-");
}

// Stops with a failure when an allocator read back different bytes: its figures are void.
void check_verified(const Json& allocators) {
  for (const Json& a : allocators) {
    if (a.value("available", false) && !a.value("verified", false))
      command_failed(
          fmt::format("{}: objects read back different bytes", a["name"].get<std::string>()));
  }
}

// ---- the verb --------------------------------------------------------------------------------

void run_bench_alloc(const BenchAllocOptions& options) {
  const std::string tls_problem = ensure_static_tls_surplus();  // may re-execute the program
  const BenchCorpus corpus = load_bench_corpus(options.corpus);
  const auto table = SizeClassTable::make(kBenchPageSize, options.max_chain);
  if (!table) usage_error(fmt::format("--max-chain {}: no size-class table", options.max_chain));
  const AllocTrace trace = AllocTrace::from_corpus(corpus.corpus, table->huge_class_size());
  if (trace.objects() < 2)
    command_failed("the corpus has fewer than 2 pages that are not same-filled");
  const std::vector<std::uint64_t> half = random_half(trace.objects(), options.seed);
  const AllocBenchConfig config{options.max_chain, &trace, half};

  Json allocators = Json::array();
  for (const AllocatorKind kind : allocators_to_run(options.kernel_like)) {
    allocators.push_back(run_one(kind, config));
    if (!tls_problem.empty() && kind == AllocatorKind::jemalloc && !allocators.back()["available"])
      allocators.back()["error"] =
          allocators.back()["error"].get<std::string>() + " (" + tls_problem + ")";
  }
  add_ratios(allocators);
  const Json zram = zram_efficiency_json(allocators);
  if (options.json) {
    std::cout << Json{{"corpus", bench_corpus_json(corpus)},
                      {"trace", trace_json(trace, options.max_chain)},
                      {"seed", options.seed},
                      {"allocators", allocators},
                      {"zram_efficiency", zram}}
                     .dump(2)
              << '\n';
  } else {
    print_trace(corpus, trace, options.max_chain, options.seed, std::cout);
    print_phase_table(allocators, std::cout);
    print_pool_view(allocators, std::cout);
    print_headline(zram, std::cout);
  }
  std::cout.flush();
  check_verified(allocators);
}

}  // namespace

void setup_bench_alloc(CLI::App& app) {
  auto options = std::make_shared<BenchAllocOptions>();
  add_bench_corpus_options(app, options->corpus);
  app.add_option("--seed", options->seed, "which random half is freed")->capture_default_str();
  app.add_option("--max-chain", options->max_chain,
                 fmt::format("most pages per zspage of the zspool row: 1 .. {} (the kernel-like "
                             "row always uses the kernel's {})",
                             kMaxChain, kDefaultChain))
      ->check(CLI::Range(1u, kMaxChain).description(""))
      ->type_name("N")
      ->capture_default_str();
  app.add_flag("--kernel-like", options->kernel_like,
               "run zspool only as the kernel does (lazy_commit off)");
  app.add_flag("--json", options->json, "print one JSON object instead of tables");
  app.callback([options] { run_bench_alloc(*options); });
}

}  // namespace zspool::tools
