// zspool replay: run a block-level trace against a compressed page store.
//
//   zspool replay TRACE --data FILE [--pages N] [--compressor SPEC] [--limit SIZE]
//                 [--backing FILE] [--page-size SIZE] [--max-chain N] [--json]
//
// TRACE holds one command per line (the format is in trace.h): write P [Q] · read P ·
// discard P · compact · writeback N · stats. `write P Q` stores page Q of FILE (read with
// pread, one page at a time) as page P; `read P` loads page P and compares it with what was
// last written there (page Q of FILE again, or zeros when never written or discarded).
//
// Validation comes first, execution after, so a bad trace changes nothing: the whole trace is
// parsed, then every P is checked against the capacity (--pages; default the largest P + 1),
// every Q against FILE's length in pages, and `writeback` against the presence of --backing.
// The first problem stops the verb with "zspool: TRACE:LINE: message" and exit status 2.
//
// Output (stdout): for each `stats`, one line "mm_stat" and the nine numbers in zram's order;
// at the end "reads N verified M mismatches K". With --json, each `stats` prints one JSON
// object on one line (the nine mm_stat names as keys), and the end one object {"reads",
// "verified", "mismatches", "errors"}. Exit status 1 when a read mismatched or a store call
// failed (one line on stderr says how many and names the first), 0 otherwise.
//
// FILE must not change while the trace runs: reads are verified against it.
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

#include "zspool/store/store.h"
#include "zspool/tools/command.h"
#include "zspool/tools/page_file.h"
#include "zspool/tools/progress.h"
#include "zspool/tools/store_args.h"
#include "zspool/tools/trace.h"

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

// What the replay saw; the first failure is kept to name it.
struct ReplayTally {
  std::uint64_t reads = 0;
  std::uint64_t verified = 0;
  std::uint64_t mismatches = 0;
  std::uint64_t errors = 0;  // store or data-file calls that failed
  std::string first_mismatch;
  std::string first_error;
};

// ---- loading and validating ------------------------------------------------------------------

std::string read_trace_text(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (status.type() == fs::file_type::not_found) usage_error("no such trace file: " + path);
  if (ec) usage_error("cannot access trace " + path + ": " + ec.message());
  if (status.type() != fs::file_type::regular) usage_error("trace is not a regular file: " + path);
  if (fs::file_size(path, ec) > kMaxTraceBytes)
    usage_error(fmt::format("trace {} is larger than {} bytes", path, kMaxTraceBytes));
  std::ifstream in(path, std::ios::binary);
  if (!in) usage_error("cannot open trace " + path + ": " + std::strerror(errno));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) usage_error("cannot read trace " + path);
  return text;
}

[[noreturn]] void trace_error(const std::string& path, const TraceError& error) {
  usage_error(fmt::format("{}:{}: {}", path, error.line, error.message));
}

Trace parse_trace_file(const std::string& path) {
  TraceParse parsed = parse_trace(read_trace_text(path));
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

std::uint64_t store_capacity(const ReplayOptions& options, const Trace& trace) {
  if (options.pages != 0) return options.pages;
  return std::max<std::uint64_t>(trace.pages_needed, 1);
}

void validate(const ReplayOptions& options, const Trace& trace, const PageFile& data,
              std::uint64_t capacity) {
  auto error = check_trace_limits(trace, capacity, data.page_count());
  if (!error) error = writeback_without_backing(trace, options.store);
  if (error) trace_error(options.trace_path, *error);
}

// ---- executing -------------------------------------------------------------------------------

class Replayer {
 public:
  Replayer(const ReplayOptions& options, Store& store, const PageFile& data)
      : options_(options),
        store_(store),
        data_(data),
        page_(data.page_size()),
        expected_(data.page_size()) {}

  void execute(const TraceOp& op) {
    switch (op.verb) {
      case TraceVerb::write:
        return write(op);
      case TraceVerb::read:
        return read(op);
      case TraceVerb::discard:
        return discard(op);
      case TraceVerb::compact:
        store_.compact();
        return;
      case TraceVerb::writeback:
        return writeback(op);
      case TraceVerb::stats:
        return print_stats();
    }
  }

  const ReplayTally& tally() const { return tally_; }

 private:
  void write(const TraceOp& op) {
    if (const Error e = data_.read_page(op.source, page_); e != Error::ok)
      return fail(op, fmt::format("reading page {} of {}", op.source, data_.path()), e);
    if (const Error e = store_.write(op.page, page_); e != Error::ok)
      return fail(op, fmt::format("write {}", op.page), e);
    source_of_[op.page] = op.source;
  }

  void read(const TraceOp& op) {
    ++tally_.reads;
    if (const Error e = store_.read(op.page, page_); e != Error::ok)
      return fail(op, fmt::format("read {}", op.page), e);
    if (const Error e = load_expected(op.page); e != Error::ok)
      return fail(op, "reading the data file to verify", e);
    if (std::memcmp(page_.data(), expected_.data(), page_.size()) == 0) {
      ++tally_.verified;
    } else if (tally_.mismatches++ == 0) {
      tally_.first_mismatch = fmt::format("{}:{}: read {}", options_.trace_path, op.line, op.page);
    }
  }

  void discard(const TraceOp& op) {
    if (const Error e = store_.discard(op.page); e != Error::ok)
      return fail(op, fmt::format("discard {}", op.page), e);
    source_of_.erase(op.page);
  }

  void writeback(const TraceOp& op) {
    const auto written_back = store_.writeback(op.count);
    if (!written_back) fail(op, fmt::format("writeback {}", op.count), written_back.error());
  }

  void print_stats() {
    const StoreStats stats = store_.stats();
    if (options_.json) {
      std::cout << mm_stat_json(stats).dump() << '\n';
    } else {
      std::cout << "mm_stat " << mm_stat_line(stats) << '\n';
    }
  }

  // What page P should hold: the data file's page last written there, or zeros.
  Error load_expected(std::uint64_t page) {
    const auto it = source_of_.find(page);
    if (it == source_of_.end()) {
      std::fill(expected_.begin(), expected_.end(), std::byte{0});
      return Error::ok;
    }
    return data_.read_page(it->second, expected_);
  }

  void fail(const TraceOp& op, const std::string& what, Error e) {
    if (tally_.errors++ == 0) {
      tally_.first_error =
          fmt::format("{}:{}: {}: {}", options_.trace_path, op.line, what, error_message(e));
    }
  }

  const ReplayOptions& options_;
  Store& store_;
  const PageFile& data_;
  std::vector<std::byte> page_;
  std::vector<std::byte> expected_;
  std::unordered_map<std::uint64_t, std::uint64_t> source_of_;  // P -> Q of its last write
  ReplayTally tally_;
};

ReplayTally execute_trace(const ReplayOptions& options, const Trace& trace, Store& store,
                          const PageFile& data) {
  Replayer replayer(options, store, data);
  Progress progress("replay", trace.ops.size());
  for (const TraceOp& op : trace.ops) {
    replayer.execute(op);
    progress.advance();
  }
  progress.finish();
  return replayer.tally();
}

// ---- reporting -------------------------------------------------------------------------------

void print_summary(const ReplayTally& t, bool json) {
  if (json) {
    const nlohmann::ordered_json j = {{"reads", t.reads},
                                      {"verified", t.verified},
                                      {"mismatches", t.mismatches},
                                      {"errors", t.errors}};
    std::cout << j.dump() << '\n';
  } else {
    std::cout << fmt::format("reads {} verified {} mismatches {}\n", t.reads, t.verified,
                             t.mismatches);
  }
  std::cout.flush();
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
  const std::unique_ptr<Store> store = open_store(options.store, capacity);
  const ReplayTally tally = execute_trace(options, trace, *store, data);
  print_summary(tally, options.json);
  fail_if_anything_went_wrong(tally);
}

void setup_replay(CLI::App& app) {
  auto options = std::make_shared<ReplayOptions>();
  app.add_option("TRACE", options->trace_path, "the trace: one command per line")->required();
  app.add_option("--data", options->data_path, "the file whose pages `write` stores")
      ->required()
      ->type_name("FILE");
  app.add_option("--pages", options->pages,
                 "store capacity in pages (default: the trace's largest page + 1)")
      ->check(CLI::Range(std::uint64_t{1}, kMaxTracePage + 1).description(""))
      ->type_name("N");
  add_store_options(app, options->store);
  app.add_flag("--json", options->json, "print JSON objects (one a line) instead of text");
  app.callback([options] { run_replay(*options); });
}

[[maybe_unused]] const bool registered = register_command(
    {"replay", "replay a block-level trace (write/read/discard/...) against a page store",
     setup_replay});

}  // namespace
}  // namespace zspool::tools
