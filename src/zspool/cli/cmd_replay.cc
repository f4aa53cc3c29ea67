// zspool replay: run a block-level trace against a compressed page store.
//
//   zspool replay TRACE --data FILE [--pages N] [--compressor SPEC] [--limit SIZE]
//                 [--backing FILE] [--page-size SIZE] [--max-chain N] [--json]
//                 [--recompress-with SPEC[,SPEC...]]
//
// TRACE holds one command per line (the format is in trace.h): write P [Q] · read P ·
// discard P · compact · writeback N · stats · idle [SECONDS] · writeback KIND [N] ·
// writeback-limit N · recompress huge|idle|all [THRESHOLD] [PRIORITY] (needs --recompress-with).
// `write P Q` stores page Q of FILE (read with pread, one page at a time) as page P; `read P`
// loads page P and compares it with what was last written there (page Q of FILE again, or
// zeros when never written or discarded).
//
// Validation comes first, execution after, so a bad trace changes nothing: the whole trace is
// parsed, then every P is checked against the capacity (--pages; default the largest P + 1),
// every Q against FILE's length in pages, and `writeback` against the presence of --backing.
// The first problem stops the verb with "zspool: TRACE:LINE: message" and exit status 2.
//
// Output (stdout): for each `stats`, one line "mm_stat" and the nine numbers in zram's order,
// one line "bd_stat" and zram's three (bd_count bd_reads bd_writes), and one line "policy_stat"
// with the writeback policy's counters as name=value; at the end "reads N verified M
// mismatches K". With --json, each `stats` prints one JSON object on one line (the nine mm_stat
// names, the bd_stat names and the policy's counters as keys), and the end one object {"reads",
// "verified", "mismatches", "errors"}. Exit status 1 when a read mismatched or a store call
// failed (one line on stderr says how many and names the first), 0 otherwise.
//
// FILE must not change while the trace runs: reads are verified against it, and every read of
// it checks its size and modification time, so a change is reported as such (exit 1), never as
// a mismatch blamed on the store.
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "zspool/bench/replay.h"
#include "zspool/cli/command.h"
#include "zspool/cli/options.h"
#include "zspool/cli/progress.h"
#include "zspool/cli/render.h"
#include "zspool/cli/store_args.h"
#include "zspool/store/store.h"
#include "zspool/workload/corpus.h"
#include "zspool/workload/page_file.h"
#include "zspool/workload/trace.h"

namespace zspool::tools {
namespace {

// A trace is text a person wrote or a script generated; anything larger is a mistake (or a
// device file) rather than a trace.
constexpr std::uintmax_t kMaxTraceBytes = std::uintmax_t{1} << 30;

struct ReplayOptions {
  StoreArgs store;
  std::string trace_path;
  std::string data_path;
  std::uint64_t pages = 0;  // 0: the largest P in the trace + 1
  bool json = false;
};

// ---- loading and validating ------------------------------------------------------------------

[[noreturn]] void trace_error(const std::string& path, const TraceError& error) {
  usage_error(format_trace_error(path, error));
}

// The trace, parsed as it is read (a file of NULs or a device fails at once, without being
// read whole): a bad file or line stops with "TRACE:LINE: message".
Trace parse_trace_file(const std::string& path) {
  TraceParse parsed = read_trace_file(path);
  if (const auto* error = std::get_if<TraceError>(&parsed)) trace_error(path, *error);
  return std::get<Trace>(std::move(parsed));
}

PageFile open_data_file(const ReplayOptions& options) {
  std::string why;
  auto file = PageFile::open(options.data_path,
                             static_cast<std::uint32_t>(options.store.geometry.page_size), &why);
  if (!file) usage_error("--data: " + why);
  return std::move(*file);
}

// The first `writeback` when there is nowhere to write back to.
std::optional<TraceError> writeback_without_backing(const Trace& trace, const StoreArgs& store) {
  if (!store.backing.empty()) return std::nullopt;
  for (const TraceOp& op : trace.ops) {
    if (op.verb == TraceVerb::writeback)
      return TraceError{op.line, "'writeback' needs a backing file (--backing FILE)"};
  }
  return std::nullopt;
}

// The first `recompress` with no secondary compressor to use (none given, or fewer than its
// PRIORITY).
std::optional<TraceError> recompress_without_secondaries(const Trace& trace,
                                                         const StoreArgs& store) {
  const std::size_t given = store.recompress_with.size();
  for (const TraceOp& op : trace.ops) {
    if (op.verb != TraceVerb::recompress) continue;
    if (given == 0) {
      return TraceError{
          op.line, "'recompress' needs secondary compressors (--recompress-with SPEC[,SPEC...])"};
    }
    if (op.priority > given) {
      return TraceError{op.line,
                        fmt::format("'recompress' priority {}, but --recompress-with names {}",
                                    op.priority, count_of(given, "compressor"))};
    }
  }
  return std::nullopt;
}

// --pages, or the capacity the trace implies; a trace page beyond what this process may hold is
// an error on the line that names it.
std::uint64_t store_capacity(const ReplayOptions& options, const Trace& trace) {
  if (options.pages != 0) return options.pages;
  if (const auto error = check_trace_capacity(trace, Store::max_pages()))
    trace_error(options.trace_path, *error);
  return std::max<std::uint64_t>(trace.pages_needed, 1);
}

void validate(const ReplayOptions& options, const Trace& trace, const PageFile& data,
              std::uint64_t capacity) {
  auto error = check_trace_limits(trace, capacity, data.page_count());
  if (!error) error = writeback_without_backing(trace, options.store);
  if (!error) error = recompress_without_secondaries(trace, options.store);
  if (error) trace_error(options.trace_path, *error);
}

// ---- reporting -------------------------------------------------------------------------------

void print_summary(const ReplayTally& t, bool json) {
  if (json) {
    const nlohmann::ordered_json j = {{"reads", t.reads},
                                      {"verified", t.verified},
                                      {"mismatches", t.mismatches},
                                      {"errors", t.errors}};
    print_output(j.dump() + "\n");
  } else {
    print_output(
        fmt::format("reads {} verified {} mismatches {}\n", t.reads, t.verified, t.mismatches));
  }
}

void fail_if_anything_went_wrong(const ReplayTally& t) {
  if (t.mismatches != 0) {
    command_failed(fmt::format(
        "{} of {} reads did not match what was written (first: {}){}", t.mismatches, t.reads,
        t.first_mismatch, t.errors != 0 ? fmt::format("; {} store calls failed", t.errors) : ""));
  }
  if (t.errors != 0)
    command_failed(fmt::format("{} calls failed (first: {})", t.errors, t.first_error));
}

void run_replay(const ReplayOptions& options) {
  const Trace trace = parse_trace_file(options.trace_path);
  const PageFile data = open_data_file(options);
  const std::uint64_t capacity = store_capacity(options, trace);
  validate(options, trace, data, capacity);
  const std::unique_ptr<Store> store =
      open_store(options.store, capacity, {options.trace_path, options.data_path});
  const ReplayContext context{
      options.trace_path,
      [&options](const StoreStats& stats) { print_output(mm_stat_text(stats, options.json)); },
      terminal_progress()};
  const ReplayTally tally = execute_trace(context, trace, *store, data);
  print_summary(tally, options.json);
  fail_if_anything_went_wrong(tally);
}

void setup_replay(CLI::App& app) {
  auto options = std::make_shared<ReplayOptions>();
  app.add_option("TRACE", options->trace_path, "the trace: one command per line")->required();
  app.add_option("--data", options->data_path, "the file whose pages `write` stores")
      ->required()
      ->type_name("FILE");
  add_count_option(app, "--pages", options->pages,
                   "store capacity in pages (default: the trace's largest page + 1)", 1,
                   kMaxTracePage + 1);
  add_store_options(app, options->store);
  app.add_flag("--json", options->json, "print JSON objects (one a line) instead of text");
  app.callback([options] { run_replay(*options); });
}

[[maybe_unused]] const bool registered = register_command(
    {"replay", "replay a block-level trace (write/read/discard/...) against a page store",
     setup_replay});

}  // namespace
}  // namespace zspool::tools
