// libFuzzer target: the replay-trace parser. Any input either parses or yields one error with a
// line number inside the text and a one-line message; a parsed trace re-serialised parses to
// the same operations (round trip), and its page bounds are what the operations name.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "zspool/workload/trace.h"

namespace {

using zspool::tools::Trace;
using zspool::tools::TraceError;
using zspool::tools::TraceOp;
using zspool::tools::TraceVerb;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "trace_fuzz: %s\n", what);
  std::abort();
}

std::size_t count_lines(std::string_view text) {
  std::size_t n = 1;
  for (char c : text) n += c == '\n';
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto parsed = zspool::tools::parse_trace(text);
  if (const auto* error = std::get_if<TraceError>(&parsed)) {
    if (error->line == 0 || error->line > count_lines(text)) fail("error line out of range");
    if (error->message.empty() || error->message.find('\n') != std::string::npos)
      fail("error message is not one line");
    return 0;
  }
  const Trace& trace = std::get<Trace>(parsed);
  std::uint64_t pages = 0, sources = 0;
  std::string again;
  for (const TraceOp& op : trace.ops) {
    if (op.line == 0 || op.line > count_lines(text)) fail("op line out of range");
    if (op.verb == TraceVerb::write || op.verb == TraceVerb::read || op.verb == TraceVerb::discard)
      pages = std::max(pages, op.page + 1);
    if (op.verb == TraceVerb::write) sources = std::max(sources, op.source + 1);
    again += zspool::tools::format_trace_op(op) + "\n";
  }
  if (pages != trace.pages_needed || sources != trace.source_pages_needed)
    fail("pages_needed/source_pages_needed disagree with the ops");
  const auto reparsed = zspool::tools::parse_trace(again);
  const auto* round = std::get_if<Trace>(&reparsed);
  if (round == nullptr || round->ops.size() != trace.ops.size()) fail("round trip failed");
  for (std::size_t i = 0; i < trace.ops.size(); ++i) {
    TraceOp a = trace.ops[i], b = round->ops[i];
    a.line = b.line = 0;
    if (!(a == b)) fail("round trip changed an op");
  }
  if (zspool::tools::check_trace_limits(trace, trace.pages_needed, trace.source_pages_needed))
    fail("a trace does not fit the bounds it computed itself");
  return 0;
}
