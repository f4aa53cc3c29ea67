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
//   stats           print the nine mm_stat numbers (and bd_stat, the policy's counters)
//   idle [SECONDS]  mark idle the pages in memory (not accessed for SECONDS, when given)
//   writeback KIND [N]
//                   selective writeback: KIND is idle, huge, incompressible, idle+huge or all;
//                   at most N pages (default: every page of that kind)
//   writeback-limit N
//                   the writeback budget: at most N more pages go to the backing file
//   recompress huge|idle|all [THRESHOLD] [PRIORITY]
//                   recompress pages of that kind whose stored size is >= THRESHOLD bytes
//                   (default 0: any) with the secondary compressors, or only the one of
//                   PRIORITY (1..3; default 0: each in turn) (Store::recompress)
//
// A trace is text: a NUL byte, or a line longer than kMaxTraceLineBytes, is an error on its
// line (a binary file named by mistake is rejected at once, not parsed as one huge line).
//
// The parser is pure (text in, ops or the first error out) so it can be fuzzed: it never
// throws on any input, touches no file, and the line of every error is 1-based. A second pure
// step, check_trace_limits, checks the page numbers against the store's capacity and the data
// file's length, so a trace is validated as a whole before anything is executed.
//
// read_trace_file parses a file as it reads it, 64 KiB at a time, with the same TraceBuilder
// as parse_trace: the text is never held whole, and a bad line stops the reading (a 1 GiB
// file of NULs is rejected at line 1 after its first 64 KiB). It refuses anything but a regular
// file (a FIFO, a device) and reads with O_NONBLOCK, so a /proc file that would block, such as
// /proc/kmsg, is an error instead of a hang. Errors about the file itself have line 0.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "zspool/store/store.h"

namespace zspool::tools {

// The largest page number a trace may name: 2^40 - 1 (4 PiB of 4 KiB pages), so the capacity a
// trace needs (largest P + 1) always fits and stays sane.
inline constexpr std::uint64_t kMaxTracePage = (std::uint64_t{1} << 40) - 1;
// The longest line a trace may have (its commands need under 60 bytes; comments get the rest).
inline constexpr std::size_t kMaxTraceLineBytes = 4096;
// The largest trace file read_trace_file reads: anything larger is a mistake, not a trace.
inline constexpr std::uint64_t kMaxTraceFileBytes = std::uint64_t{1} << 30;

enum class TraceVerb : std::uint8_t {
  write,
  read,
  discard,
  compact,
  writeback,
  stats,
  idle,
  writeback_limit,
  recompress,
};

// "write", "read", "discard", "compact", "writeback", "stats", "idle", "writeback-limit",
// "recompress".
std::string_view trace_verb_name(TraceVerb verb);

struct TraceOp {
  TraceVerb verb = TraceVerb::stats;
  std::size_t line = 0;      // 1-based line of the trace it came from
  std::uint64_t page = 0;    // P: write, read, discard
  std::uint64_t source = 0;  // Q: write (the data file's page)
  std::uint64_t count = 0;   // N: writeback, writeback-limit; SECONDS: idle
  // writeback KIND [N]: the kind (nullopt: `writeback N`, the pool's zspage writeback).
  std::optional<WritebackKind> writeback_kind;
  bool has_count = false;  // idle SECONDS / writeback KIND N: the number was given
  // recompress KIND [THRESHOLD] [PRIORITY]
  RecompressKind kind = RecompressKind::all;
  std::uint32_t threshold = 0;  // bytes
  std::uint32_t priority = 0;   // 0: every secondary in turn; 1..kMaxSecondaryCompressors

  bool operator==(const TraceOp&) const = default;
};

struct TraceError {
  std::size_t line = 0;  // 1-based; 0: about the file itself (read_trace_file)
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

// Builds a Trace one line at a time, stopping at the first bad line: what parse_trace and
// read_trace_file share.
class TraceBuilder {
 public:
  // Adds the next line, without its '\n'; returns the error that ends the trace, if any (after
  // one, further lines are not taken).
  std::optional<TraceError> add_line(std::string_view line);
  // Checks the start of the next line before it is complete: a NUL byte or a line already too
  // long is its error without waiting for the rest.
  std::optional<TraceError> check_partial_line(std::string_view start) const;
  std::size_t lines() const { return line_number_; }
  Trace take() { return std::move(trace_); }

 private:
  Trace trace_;
  std::size_t line_number_ = 0;
};

// Parses a whole trace, stopping at the first malformed line.
TraceParse parse_trace(std::string_view text);

// Reads and parses the trace file at `path` (see the top of this file).
TraceParse read_trace_file(const std::string& path);

// "PATH:LINE: message", or "PATH: message" for an error about the file (line 0).
std::string format_trace_error(const std::string& path, const TraceError& error);

// The first op (in trace order) whose page P needs more than `max_store_pages` pages, as an
// error on its line; nullopt when the trace's capacity (pages_needed) is within it. For the
// capacity a trace implies when none is given, so the error names the line that asks for it.
std::optional<TraceError> check_trace_capacity(const Trace& trace, std::uint64_t max_store_pages);

// The op as one trace line (no newline) that parses back to the same op (line aside): the
// fuzzer's round trip, and how the replay and the nbdkit control FIFO name a command.
std::string format_trace_op(const TraceOp& op);

// Parses one line (comment and blanks allowed); nullopt-in-variant means nothing on it.
std::variant<std::optional<TraceOp>, TraceError> parse_trace_line(std::string_view line,
                                                                  std::size_t line_number);

// The first op (in trace order) whose P is not below `store_pages` or whose Q is not below
// `source_pages`, as an error on its line; nullopt when every op fits.
std::optional<TraceError> check_trace_limits(const Trace& trace, std::uint64_t store_pages,
                                             std::uint64_t source_pages);

}  // namespace zspool::tools
