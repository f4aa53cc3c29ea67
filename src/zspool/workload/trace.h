// Block-level traces for `zspool replay`: text in, a list of operations out.
//
// One command per line; `#` starts a comment that runs to the end of the line; blank lines and
// comment-only lines are ignored. Words are separated by spaces or tabs (a trailing "\r" is
// ignored, so CRLF files parse). Numbers are plain decimal: digits only, no sign, no prefix,
// each fitting in 64 bits.
//
//   write P [Q]     store page Q of the data file (default Q = P) as page P of the store
//   read P          load page P and verify it against what was last written there
//                   (zeros when never written or discarded)
//   discard P       drop page P
//   compact         compact the pool
//   writeback N     write back up to N pages to the backing file
//   stats           print the nine mm_stat numbers
//
// The parser is pure (text in, ops or the first error out) so it can be fuzzed: it never
// throws on any input, touches no file, and the line of every error is 1-based. A second pure
// step, check_trace_limits, checks the page numbers against the store's capacity and the data
// file's length, so a trace is validated as a whole before anything is executed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace zspool::tools {

// The largest page number a trace may name: 2^40 - 1 (4 PiB of 4 KiB pages), so the capacity a
// trace needs (largest P + 1) always fits and stays sane.
inline constexpr std::uint64_t kMaxTracePage = (std::uint64_t{1} << 40) - 1;

enum class TraceVerb : std::uint8_t { write, read, discard, compact, writeback, stats };

// "write", "read", "discard", "compact", "writeback", "stats".
std::string_view trace_verb_name(TraceVerb verb);

struct TraceOp {
  TraceVerb verb = TraceVerb::stats;
  std::size_t line = 0;      // 1-based line of the trace it came from
  std::uint64_t page = 0;    // P: write, read, discard
  std::uint64_t source = 0;  // Q: write (the data file's page)
  std::uint64_t count = 0;   // N: writeback

  bool operator==(const TraceOp&) const = default;
};

struct TraceError {
  std::size_t line = 0;  // 1-based
  std::string message;   // one line, no "TRACE:LINE:" prefix

  bool operator==(const TraceError&) const = default;
};

struct Trace {
  std::vector<TraceOp> ops;
  // The store capacity the trace needs: the largest P in it + 1 (0 with no paged commands).
  std::uint64_t pages_needed = 0;
  // The data file pages the trace reads: the largest Q + 1 (0 with no write).
  std::uint64_t source_pages_needed = 0;
};

using TraceParse = std::variant<Trace, TraceError>;

// Parses a whole trace, stopping at the first malformed line.
TraceParse parse_trace(std::string_view text);

// Parses one line (comment and blanks allowed); nullopt-in-variant means nothing on it.
std::variant<std::optional<TraceOp>, TraceError> parse_trace_line(std::string_view line,
                                                                  std::size_t line_number);

// The first op (in trace order) whose P is not below `store_pages` or whose Q is not below
// `source_pages`, as an error on its line; nullopt when every op fits.
std::optional<TraceError> check_trace_limits(const Trace& trace, std::uint64_t store_pages,
                                             std::uint64_t source_pages);

}  // namespace zspool::tools
