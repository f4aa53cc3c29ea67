#include "zspool/bench/replay.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "zspool/workload/store_command.h"

namespace zspool::tools {
namespace {

class Replayer {
 public:
  Replayer(const ReplayContext& context, Store& store, const PageFile& data)
      : context_(context),
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
      case TraceVerb::stats:
        return print_stats();
      case TraceVerb::compact:
      case TraceVerb::writeback:
      case TraceVerb::idle:
      case TraceVerb::writeback_limit:
      case TraceVerb::recompress:
        return store_command(op);
    }
  }

  const ReplayTally& tally() const { return tally_; }

 private:
  void write(const TraceOp& op) {
    std::string why;
    if (const Error e = data_.read_page(op.source, page_, &why); e != Error::ok)
      return fail(op, data_file_problem(op.source, why), e);
    if (const Error e = store_.write(op.page, page_); e != Error::ok)
      return fail(op, fmt::format("write {}", op.page), e);
    source_of_[op.page] = op.source;
  }

  void read(const TraceOp& op) {
    ++tally_.reads;
    if (const Error e = store_.read(op.page, page_); e != Error::ok)
      return fail(op, fmt::format("read {}", op.page), e);
    if (const Error e = load_expected(op.page); e != Error::ok)
      return fail(op, data_file_problem(source_of_[op.page], data_why_), e);
    if (std::memcmp(page_.data(), expected_.data(), page_.size()) == 0) {
      ++tally_.verified;
    } else if (std::string why; data_.changed_since_open(&why)) {
      // The data file, not the store, changed: say so rather than count a mismatch.
      return fail(op, why, Error::io_error);
    } else if (tally_.mismatches++ == 0) {
      tally_.first_mismatch = fmt::format("{}:{}: read {}", context_.trace_path, op.line, op.page);
    }
  }

  void discard(const TraceOp& op) {
    if (const Error e = store_.discard(op.page); e != Error::ok)
      return fail(op, fmt::format("discard {}", op.page), e);
    source_of_.erase(op.page);
  }

  // compact, writeback, idle, writeback-limit, recompress (workload/store_command.h).
  void store_command(const TraceOp& op) {
    const StoreCommandOutcome outcome = run_store_command(store_, op);
    if (outcome.error != Error::ok) fail(op, outcome.command, outcome.error);
  }

  void print_stats() {
    if (context_.on_stats) context_.on_stats(store_.stats());
  }

  // What page P should hold: the data file's page last written there, or zeros.
  Error load_expected(std::uint64_t page) {
    const auto it = source_of_.find(page);
    if (it == source_of_.end()) {
      std::fill(expected_.begin(), expected_.end(), std::byte{0});
      return Error::ok;
    }
    return data_.read_page(it->second, expected_, &data_why_);
  }

  // "reading page Q of FILE: FILE changed since it was opened (...)".
  std::string data_file_problem(std::uint64_t source, const std::string& why) const {
    if (why.empty()) return fmt::format("reading page {} of {}", source, data_.path());
    return fmt::format("reading page {}: {}", source, why);
  }

  void fail(const TraceOp& op, const std::string& what, Error e) {
    if (tally_.errors++ == 0) {
      tally_.first_error =
          fmt::format("{}:{}: {}: {}", context_.trace_path, op.line, what, error_message(e));
    }
  }

  const ReplayContext& context_;
  Store& store_;
  const PageFile& data_;
  std::vector<std::byte> page_;
  std::vector<std::byte> expected_;
  std::string data_why_;                                        // why the last load_expected failed
  std::unordered_map<std::uint64_t, std::uint64_t> source_of_;  // P -> Q of its last write
  ReplayTally tally_;
};

}  // namespace

ReplayTally execute_trace(const ReplayContext& context, const Trace& trace, Store& store,
                          const PageFile& data) {
  Replayer replayer(context, store, data);
  const auto bar = context.progress("replay", trace.ops.size());
  for (const TraceOp& op : trace.ops) {
    replayer.execute(op);
    bar->advance();
  }
  bar->finish();
  return replayer.tally();
}

}  // namespace zspool::tools
