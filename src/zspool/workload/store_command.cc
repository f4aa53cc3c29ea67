#include "zspool/workload/store_command.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>

#include <fmt/format.h>

namespace zspool::tools {
namespace {

std::string pages(std::uint64_t n) {
  return fmt::format("{} page{}", n, n == 1 ? "" : "s");
}

void writeback(Store& store, const TraceOp& op, StoreCommandOutcome& out) {
  if (!op.writeback_kind) {
    const auto written_back = store.writeback(op.count);
    if (!written_back)
      out.error = written_back.error();
    else
      out.done = "wrote back " + pages(*written_back);
    return;
  }
  const std::size_t max_pages =
      op.has_count ? static_cast<std::size_t>(op.count) : static_cast<std::size_t>(-1);
  const auto written_back = store.writeback(*op.writeback_kind, max_pages);
  if (written_back)
    out.done = "wrote back " + pages(*written_back);
  else if (written_back.error() == Error::limit_reached)
    out.done = "the writeback budget is spent";
  else
    out.error = written_back.error();
}

void mark_idle(Store& store, const TraceOp& op, StoreCommandOutcome& out) {
  const std::size_t marked =
      op.has_count
          ? store.mark_idle(std::chrono::seconds(static_cast<std::int64_t>(
                std::min<std::uint64_t>(op.count, std::numeric_limits<std::int64_t>::max()))))
          : store.mark_idle();
  out.done = "marked " + pages(marked) + " idle";
}

void recompress(Store& store, const TraceOp& op, StoreCommandOutcome& out) {
  const auto done = store.recompress(op.kind, op.threshold, 0, op.priority);
  if (!done) {
    out.error = done.error();
    return;
  }
  out.done = fmt::format("recompressed {} of {} tried, {} bytes saved", pages(done->recompressed),
                         done->attempted, done->saved_bytes);
}

}  // namespace

bool is_store_command(TraceVerb verb) {
  switch (verb) {
    case TraceVerb::compact:
    case TraceVerb::writeback:
    case TraceVerb::writeback_limit:
    case TraceVerb::idle:
    case TraceVerb::recompress:
      return true;
    case TraceVerb::write:
    case TraceVerb::read:
    case TraceVerb::discard:
    case TraceVerb::stats:
      return false;
  }
  return false;
}

StoreCommandOutcome run_store_command(Store& store, const TraceOp& op) {
  StoreCommandOutcome out;
  out.command = format_trace_op(op);
  switch (op.verb) {
    case TraceVerb::compact:
      out.done = "compacted: " + pages(store.compact()) + " freed";
      break;
    case TraceVerb::writeback:
      writeback(store, op, out);
      break;
    case TraceVerb::writeback_limit:
      store.set_writeback_limit(op.count);
      out.done = "writeback budget: " + pages(op.count);
      break;
    case TraceVerb::idle:
      mark_idle(store, op, out);
      break;
    case TraceVerb::recompress:
      recompress(store, op, out);
      break;
    case TraceVerb::write:
    case TraceVerb::read:
    case TraceVerb::discard:
    case TraceVerb::stats:
      out.error = Error::invalid_argument;
      break;
  }
  return out;
}

}  // namespace zspool::tools
