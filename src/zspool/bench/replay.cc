#include "zspool/bench/replay.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

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
      case TraceVerb::compact:
        store_.compact();
        return;
      case TraceVerb::writeback:
        return writeback(op);
      case TraceVerb::stats:
        return print_stats();
      case TraceVerb::idle:
        return mark_idle(op);
      case TraceVerb::writeback_limit:
        store_.set_writeback_limit(op.count);
        return;
      case TraceVerb::recompress:
        return recompress(op);
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

  void writeback(const TraceOp& op) {
    if (op.writeback_kind) return selective_writeback(op, *op.writeback_kind);
    const auto written_back = store_.writeback(op.count);
    if (!written_back) fail(op, fmt::format("writeback {}", op.count), written_back.error());
  }

  // writeback KIND [N]. A spent budget refusing it is what the budget is for, not a failure
  // (the stats count it: writeback_limit_refused).
  void selective_writeback(const TraceOp& op, WritebackKind kind) {
    const std::size_t max_pages =
        op.has_count ? static_cast<std::size_t>(op.count) : static_cast<std::size_t>(-1);
    const auto written_back = store_.writeback(kind, max_pages);
    if (!written_back && written_back.error() != Error::limit_reached)
      fail(op, fmt::format("writeback {}", writeback_kind_name(kind)), written_back.error());
  }

  void mark_idle(const TraceOp& op) {
    if (op.has_count) {
      store_.mark_idle(std::chrono::seconds(static_cast<std::int64_t>(
          std::min<std::uint64_t>(op.count, std::numeric_limits<std::int64_t>::max()))));
    } else {
      store_.mark_idle();
    }
  }

  void recompress(const TraceOp& op) {
    const auto done = store_.recompress(op.kind, op.threshold, 0, op.priority);
    if (!done) {
      fail(op, fmt::format("recompress {}", recompress_kind_name(op.kind)), done.error());
    }
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
