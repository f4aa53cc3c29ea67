#include "zspool/workload/trace.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace zspool::tools {
namespace {

Trace parse_ok(std::string_view text) {
  TraceParse parsed = parse_trace(text);
  if (auto* error = std::get_if<TraceError>(&parsed)) {
    ADD_FAILURE() << "line " << error->line << ": " << error->message << "\nin:\n" << text;
    return {};
  }
  return std::get<Trace>(std::move(parsed));
}

TraceError parse_error(std::string_view text) {
  TraceParse parsed = parse_trace(text);
  if (std::holds_alternative<Trace>(parsed)) {
    ADD_FAILURE() << "parsed, expected an error:\n" << text;
    return {};
  }
  return std::get<TraceError>(std::move(parsed));
}

// The trace's one op, with only verb and line checked by the caller's expectations.
TraceOp only_op(std::string_view text) {
  const Trace trace = parse_ok(text);
  EXPECT_EQ(trace.ops.size(), 1u) << text;
  return trace.ops.empty() ? TraceOp{} : trace.ops.front();
}

void expect_error(std::string_view text, std::size_t line, std::string_view mentions) {
  const TraceError error = parse_error(text);
  EXPECT_EQ(error.line, line) << text;
  EXPECT_NE(error.message.find(mentions), std::string::npos)
      << "message: " << error.message << "\nexpected to mention: " << mentions;
  EXPECT_EQ(error.message.find('\n'), std::string::npos) << error.message;
}

// ---- every command ---------------------------------------------------------------------------

TEST(TraceParser, WriteWithAndWithoutSource) {
  EXPECT_EQ(only_op("write 7"),
            (TraceOp{.verb = TraceVerb::write, .line = 1, .page = 7, .source = 7}));
  EXPECT_EQ(only_op("write 7 3"),
            (TraceOp{.verb = TraceVerb::write, .line = 1, .page = 7, .source = 3}));
}

TEST(TraceParser, ReadDiscardCompactWritebackStats) {
  EXPECT_EQ(only_op("read 12"), (TraceOp{.verb = TraceVerb::read, .line = 1, .page = 12}));
  EXPECT_EQ(only_op("discard 0"), (TraceOp{.verb = TraceVerb::discard, .line = 1, .page = 0}));
  EXPECT_EQ(only_op("compact"), (TraceOp{.verb = TraceVerb::compact, .line = 1}));
  EXPECT_EQ(only_op("writeback 64"),
            (TraceOp{.verb = TraceVerb::writeback, .line = 1, .count = 64}));
  EXPECT_EQ(only_op("stats"), (TraceOp{.verb = TraceVerb::stats, .line = 1}));
}

TEST(TraceParser, VerbNames) {
  EXPECT_EQ(trace_verb_name(TraceVerb::write), "write");
  EXPECT_EQ(trace_verb_name(TraceVerb::read), "read");
  EXPECT_EQ(trace_verb_name(TraceVerb::discard), "discard");
  EXPECT_EQ(trace_verb_name(TraceVerb::compact), "compact");
  EXPECT_EQ(trace_verb_name(TraceVerb::writeback), "writeback");
  EXPECT_EQ(trace_verb_name(TraceVerb::stats), "stats");
}

TEST(TraceParser, OpsKeepOrderAndLineNumbers) {
  const Trace trace = parse_ok("write 1\n\n# note\nread 1\ndiscard 1\ncompact\nstats\n");
  ASSERT_EQ(trace.ops.size(), 5u);
  const std::vector<std::pair<TraceVerb, std::size_t>> expected = {{TraceVerb::write, 1},
                                                                   {TraceVerb::read, 4},
                                                                   {TraceVerb::discard, 5},
                                                                   {TraceVerb::compact, 6},
                                                                   {TraceVerb::stats, 7}};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(trace.ops[i].verb, expected[i].first) << i;
    EXPECT_EQ(trace.ops[i].line, expected[i].second) << i;
  }
}

// ---- the pages a trace needs -----------------------------------------------------------------

TEST(TraceParser, PagesNeededIsLargestPagePlusOne) {
  const Trace trace = parse_ok("write 3 10\nread 9\ndiscard 4\nwriteback 100\n");
  EXPECT_EQ(trace.pages_needed, 10u);
  EXPECT_EQ(trace.source_pages_needed, 11u);
}

TEST(TraceParser, WriteWithoutSourceNeedsTheSamePageOfTheFile) {
  const Trace trace = parse_ok("write 5\n");
  EXPECT_EQ(trace.pages_needed, 6u);
  EXPECT_EQ(trace.source_pages_needed, 6u);
}

TEST(TraceParser, NoPagedCommandsNeedNoPages) {
  const Trace trace = parse_ok("compact\nstats\nwriteback 5\n");
  EXPECT_EQ(trace.pages_needed, 0u);
  EXPECT_EQ(trace.source_pages_needed, 0u);
  EXPECT_EQ(trace.ops.size(), 3u);
}

TEST(TraceParser, ReadsAloneNeedNoDataFilePages) {
  const Trace trace = parse_ok("read 8\n");
  EXPECT_EQ(trace.pages_needed, 9u);
  EXPECT_EQ(trace.source_pages_needed, 0u);
}

TEST(TraceParser, LargestPageNumberIsAccepted) {
  const std::string max = std::to_string(kMaxTracePage);
  const Trace trace = parse_ok("write " + max + " " + max + "\n");
  EXPECT_EQ(trace.pages_needed, kMaxTracePage + 1);
  EXPECT_EQ(trace.source_pages_needed, kMaxTracePage + 1);
}

// ---- comments and whitespace -----------------------------------------------------------------

TEST(TraceParser, EmptyTextAndOnlyCommentsGiveNoOps) {
  EXPECT_TRUE(parse_ok("").ops.empty());
  EXPECT_TRUE(parse_ok("\n\n\n").ops.empty());
  EXPECT_TRUE(parse_ok("# a trace\n   # indented comment\n\t\n#\n").ops.empty());
}

TEST(TraceParser, CommentsEndTheLineAnywhere) {
  EXPECT_EQ(only_op("write 1 2 # then 3").source, 2u);
  EXPECT_EQ(only_op("read 4#no blank before the comment").page, 4u);
  EXPECT_EQ(only_op("stats# compact").verb, TraceVerb::stats);
}

TEST(TraceParser, BlanksAroundAndBetweenWords) {
  EXPECT_EQ(only_op("   write\t\t8   9  ").source, 9u);
  EXPECT_EQ(only_op("\tdiscard 3\t").page, 3u);
  EXPECT_EQ(only_op("read 2\r").page, 2u);  // CRLF line endings
  EXPECT_EQ(parse_ok("write 1\r\nread 1\r\n").ops.size(), 2u);
}

TEST(TraceParser, LastLineNeedsNoNewline) {
  const Trace trace = parse_ok("write 1\nread 1");
  ASSERT_EQ(trace.ops.size(), 2u);
  EXPECT_EQ(trace.ops[1].line, 2u);
}

TEST(TraceParser, LeadingZerosAreDecimal) {
  EXPECT_EQ(only_op("read 010").page, 10u);
  EXPECT_EQ(only_op("writeback 0").count, 0u);
}

TEST(TraceParser, WritebackCountMayUseAll64Bits) {
  EXPECT_EQ(only_op("writeback 18446744073709551615").count, 18446744073709551615ull);
}

// ---- errors, each with its line --------------------------------------------------------------

TEST(TraceErrors, UnknownCommand) {
  expect_error("frob 1\n", 1, "unknown command 'frob'");
  expect_error("write 1\nWRITE 2\n", 2, "unknown command 'WRITE'");
  expect_error("# c\n\nreads 1\n", 3, "unknown command 'reads'");
  expect_error("write1\n", 1, "unknown command 'write1'");
}

TEST(TraceErrors, MissingArguments) {
  expect_error("write\n", 1, "'write' takes 1 or 2 arguments, got 0");
  expect_error("stats\nread\n", 2, "'read' takes 1 argument, got 0");
  expect_error("discard # 4\n", 1, "'discard' takes 1 argument, got 0");
  expect_error("writeback\n", 1, "usage: writeback N");
}

TEST(TraceErrors, ExtraArguments) {
  expect_error("write 1 2 3\n", 1, "'write' takes 1 or 2 arguments, got 3");
  expect_error("read 1 2\n", 1, "'read' takes 1 argument, got 2");
  expect_error("discard 1 1\n", 1, "'discard' takes 1 argument");
  expect_error("compact\ncompact now\n", 2, "'compact' takes no arguments, got 1");
  expect_error("stats 1\n", 1, "'stats' takes no arguments");
  expect_error("writeback 1 2\n", 1, "'1' is not a writeback kind");
}

TEST(TraceErrors, NonNumericArguments) {
  expect_error("read x\n", 1, "'x' is not a number");
  expect_error("write 1 two\n", 1, "'two' is not a number");
  expect_error("write 0x10\n", 1, "'0x10' is not a number");
  expect_error("read 1.5\n", 1, "'1.5' is not a number");
  expect_error("read +1\n", 1, "'+1' is not a number");
  expect_error("writeback 4K\n", 1, "'4K' is not a number");
  expect_error("read 1,\n", 1, "'1,' is not a number");
}

TEST(TraceErrors, NegativeNumbers) {
  expect_error("read -1\n", 1, "negative number '-1'");
  expect_error("write 1 -2\n", 1, "negative number '-2'");
  expect_error("writeback -5\n", 1, "negative number '-5'");
  expect_error("discard -\n", 1, "negative number '-'");
}

TEST(TraceErrors, Overflow) {
  expect_error("writeback 18446744073709551616\n", 1, "is too large (numbers fit in 64 bits)");
  expect_error("read 99999999999999999999999\n", 1, "is too large");
  expect_error("read " + std::to_string(kMaxTracePage + 1) + "\n", 1,
               "page number 1099511627776 is too large");
  expect_error("write 1 18446744073709551615\n", 1, "is too large");
}

TEST(TraceErrors, FirstBadLineWins) {
  expect_error("write 1\nread 1\nbogus\nread -1\n", 3, "unknown command");
}

TEST(TraceErrors, UnprintableBytesAreEscapedAndLongWordsCut) {
  const TraceError control =
      parse_error(std::string("re\x01"
                              "ad 1\n"));
  EXPECT_NE(control.message.find("'re\\x01ad'"), std::string::npos) << control.message;
  const TraceError nul = parse_error(std::string("read 1\0", 7));
  EXPECT_NE(nul.message.find("NUL byte at column 7"), std::string::npos) << nul.message;
  const TraceError long_word = parse_error(std::string(500, 'z'));
  EXPECT_LT(long_word.message.size(), 200u);
  EXPECT_NE(long_word.message.find("..."), std::string::npos);
}

TEST(TraceErrors, LineNumbersCountEveryLine) {
  std::string text;
  for (int i = 0; i < 99; ++i) text += (i % 3 == 0) ? "\n" : (i % 3 == 1 ? "# c\n" : "stats\n");
  text += "read\n";
  expect_error(text, 100, "'read'");
}

TEST(TraceErrors, ParseLineReportsTheGivenLineNumber) {
  auto parsed = parse_trace_line("read", 42);
  ASSERT_TRUE(std::holds_alternative<TraceError>(parsed));
  EXPECT_EQ(std::get<TraceError>(parsed).line, 42u);
  auto blank = parse_trace_line("  # nothing", 7);
  ASSERT_TRUE(std::holds_alternative<std::optional<TraceOp>>(blank));
  EXPECT_FALSE(std::get<std::optional<TraceOp>>(blank).has_value());
}

// ---- limits: store capacity and data-file length ---------------------------------------------

TEST(TraceLimits, EverythingInsideIsFine) {
  const Trace trace = parse_ok("write 3 1\nread 3\ndiscard 3\n");
  EXPECT_EQ(check_trace_limits(trace, 4, 2), std::nullopt);
  EXPECT_EQ(check_trace_limits(trace, trace.pages_needed, trace.source_pages_needed), std::nullopt);
}

TEST(TraceLimits, PageBeyondTheStore) {
  const Trace trace = parse_ok("write 0\n# x\nread 5\n");
  const auto error = check_trace_limits(trace, 5, 100);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->line, 3u);
  EXPECT_EQ(error->message, "page 5 is beyond the store's 5 pages");
}

TEST(TraceLimits, SourcePageBeyondTheDataFile) {
  const Trace trace = parse_ok("write 0 0\nwrite 1 1\nwrite 2 7\n");
  const auto error = check_trace_limits(trace, 100, 7);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->line, 3u);
  EXPECT_EQ(error->message, "page 7 is beyond the data file's 7 pages");
}

TEST(TraceLimits, EmptyDataFileRejectsEveryWrite) {
  const auto error = check_trace_limits(parse_ok("read 0\nwrite 0\n"), 1, 0);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->line, 2u);
}

TEST(TraceLimits, CommandsWithoutPagesNeverExceed) {
  EXPECT_EQ(check_trace_limits(parse_ok("compact\nwriteback 9\nstats\n"), 0, 0), std::nullopt);
}

// ---- text, not binary: NUL bytes and endless lines ---------------------------------------------

TEST(TraceErrors, NulByteIsAnErrorOnItsLineEvenInAComment) {
  expect_error(std::string("write 1\n# a \0 comment\n", 22), 2, "NUL byte at column 5");
}

TEST(TraceErrors, LineLongerThanTheMaximumIsAnError) {
  const std::string comment = "# " + std::string(kMaxTraceLineBytes, 'x');
  expect_error("stats\n" + comment + "\nstats\n", 2, "line longer than 4096 bytes");
  EXPECT_EQ(parse_ok("stats #" + std::string(kMaxTraceLineBytes - 7, 'x')).ops.size(), 1u);
}

TEST(TraceCapacity, NamesTheLineThatAsksForTooLargeAStore) {
  const Trace trace = parse_ok("write 5\nread 100\nwrite 7 3\nread 1000\n");
  EXPECT_EQ(check_trace_capacity(trace, 1001), std::nullopt);
  const auto error = check_trace_capacity(trace, 50);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->line, 2u);
  EXPECT_NE(error->message.find("page 100 needs a store of 101 pages"), std::string::npos)
      << error->message;
  EXPECT_EQ(format_trace_error("t.txt", *error).rfind("t.txt:2: page 100", 0), 0u);
  EXPECT_EQ(format_trace_error("t.txt", TraceError{0, "cannot open: x"}), "t.txt: cannot open: x");
}

// ---- read_trace_file: parsed as it is read ----------------------------------------------------

class TraceFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "zspool_trace_XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string put(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  static TraceError file_error(const std::string& path) {
    TraceParse parsed = read_trace_file(path);
    if (std::holds_alternative<Trace>(parsed)) {
      ADD_FAILURE() << path << " parsed";
      return {};
    }
    return std::get<TraceError>(std::move(parsed));
  }

  std::string dir_;
};

// Lines cross the 64 KiB reads at every offset; the result is parse_trace's.
TEST_F(TraceFileTest, ParsesAsParseTraceDoesAcrossReadBoundaries) {
  std::string text;
  for (int i = 0; text.size() < 300000; ++i) {
    text += i % 7 == 0 ? "# comment " + std::to_string(i) + "\r\n"
                       : "write " + std::to_string(i) + " " + std::to_string(i / 3) + "\n";
  }
  text += "read 17";  // no final newline
  TraceParse parsed = read_trace_file(put("t", text));
  ASSERT_TRUE(std::holds_alternative<Trace>(parsed)) << std::get<TraceError>(parsed).message;
  const Trace& got = std::get<Trace>(parsed);
  const Trace want = parse_ok(text);
  EXPECT_EQ(got.ops, want.ops);
  EXPECT_EQ(got.pages_needed, want.pages_needed);
  EXPECT_EQ(got.source_pages_needed, want.source_pages_needed);
}

TEST_F(TraceFileTest, ErrorsKeepTheirLines) {
  const TraceError error = file_error(put("t", "write 1\nread 1\nbogus\n"));
  EXPECT_EQ(error.line, 3u);
  EXPECT_NE(error.message.find("unknown command"), std::string::npos);
}

// The peak resident memory (VmHWM), after resetting it; 0 when the kernel cannot reset it.
std::uint64_t reset_peak_resident() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
  clear.close();
  return clear.fail() ? 0 : 1;
}

std::uint64_t peak_resident_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

// A 1 GiB file of NULs (sparse: no disk) took 8 s and 2 GB to be rejected at line 1.
TEST_F(TraceFileTest, GigabyteOfNulsIsRejectedAtLineOneWithoutBeingReadWhole) {
  const std::string path = put("nuls", "");
  ASSERT_EQ(::truncate(path.c_str(), std::int64_t{1} << 30), 0);
  if (reset_peak_resident() == 0) GTEST_SKIP() << "cannot reset VmHWM here";
  const std::uint64_t before = peak_resident_bytes();
  const TraceError error = file_error(path);
  EXPECT_LT(peak_resident_bytes(), before + (std::uint64_t{64} << 20)) << "the file was held";
  EXPECT_EQ(error.line, 1u);
  EXPECT_NE(error.message.find("NUL byte at column 1"), std::string::npos) << error.message;
}

TEST_F(TraceFileTest, WhatIsNotARegularFileIsRefusedWithoutBlocking) {
  const std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (const std::string& path : {fifo, std::string("/dev/zero"), dir_}) {
    const TraceError error = file_error(path);
    EXPECT_EQ(error.line, 0u) << path;
    EXPECT_NE(error.message.find("not a regular file"), std::string::npos) << error.message;
  }
  // The OS would open "good", the part before the NUL.
  const TraceError nul = file_error(put("good", "write 0\n") + std::string("\0/elsewhere", 11));
  EXPECT_EQ(nul.line, 0u);
  EXPECT_NE(nul.message.find("NUL byte"), std::string::npos) << nul.message;
  const TraceError missing = file_error(dir_ + "/missing");
  EXPECT_EQ(missing.line, 0u);
  EXPECT_NE(missing.message.find("cannot open: No such file or directory"), std::string::npos)
      << missing.message;
}

// ---- robustness: random bytes never throw, and errors stay one line --------------------------

TEST(TraceParser, RandomTextNeverThrows) {
  std::mt19937_64 rng(12345);
  const std::string alphabet = "writedsacmpkbo0123456789 -#\t\n\r\x01\xff";
  for (int round = 0; round < 2000; ++round) {
    std::string text(rng() % 64, ' ');
    for (char& c : text) c = alphabet[rng() % alphabet.size()];
    TraceParse parsed;
    ASSERT_NO_THROW(parsed = parse_trace(text));
    if (const auto* error = std::get_if<TraceError>(&parsed)) {
      EXPECT_GE(error->line, 1u);
      EXPECT_EQ(error->message.find('\n'), std::string::npos);
    }
  }
}

// ---- recompress ------------------------------------------------------------------------------

TEST(TraceParser, RecompressTakesAKindAThresholdAndAPriority) {
  EXPECT_EQ(only_op("recompress huge"),
            (TraceOp{.verb = TraceVerb::recompress, .line = 1, .kind = RecompressKind::huge}));
  EXPECT_EQ(only_op("recompress all 2048"), (TraceOp{.verb = TraceVerb::recompress,
                                                     .line = 1,
                                                     .kind = RecompressKind::all,
                                                     .threshold = 2048}));
  EXPECT_EQ(
      only_op("recompress idle 0 3"),
      (TraceOp{
          .verb = TraceVerb::recompress, .line = 1, .kind = RecompressKind::idle, .priority = 3}));
  EXPECT_EQ(trace_verb_name(TraceVerb::recompress), "recompress");
  EXPECT_EQ(parse_ok("recompress all\n").pages_needed, 0u) << "names no page";
}

TEST(TraceParser, RecompressRejectsBadArguments) {
  expect_error("recompress", 1, "usage: recompress huge|idle|all [THRESHOLD] [PRIORITY]");
  expect_error("recompress all 1 1 1", 1, "takes 1 to 3 arguments, got 4");
  expect_error("compact\nrecompress cold", 2, "'cold' is not a page kind");
  expect_error("recompress huge -5", 1, "negative number");
  expect_error("recompress huge 4294967296", 1, "threshold 4294967296 is too large");
  expect_error("recompress huge 0 4", 1, "priority 4 is too large (at most 3)");
  expect_error("recompress huge 0 x", 1, "'x' is not a number");
}

}  // namespace
}  // namespace zspool::tools

// Issue 14's commands: idle [SECONDS], writeback KIND [N], writeback-limit N.
namespace zspool::tools {
namespace {

TEST(TracePolicyCommands, ParseWithTheirArguments) {
  EXPECT_EQ(only_op("idle"), (TraceOp{.verb = TraceVerb::idle, .line = 1}));
  EXPECT_EQ(only_op("idle 3600"),
            (TraceOp{.verb = TraceVerb::idle, .line = 1, .count = 3600, .has_count = true}));
  EXPECT_EQ(
      only_op("writeback idle"),
      (TraceOp{.verb = TraceVerb::writeback, .line = 1, .writeback_kind = WritebackKind::idle}));
  EXPECT_EQ(only_op("writeback idle+huge 12"), (TraceOp{.verb = TraceVerb::writeback,
                                                        .line = 1,
                                                        .count = 12,
                                                        .writeback_kind = WritebackKind::idle_huge,
                                                        .has_count = true}));
  for (const char* kind : {"huge", "incompressible", "all"})
    EXPECT_EQ(only_op(std::string("writeback ") + kind).writeback_kind, parse_writeback_kind(kind));
  EXPECT_EQ(only_op("writeback-limit 0"),
            (TraceOp{.verb = TraceVerb::writeback_limit, .line = 1, .count = 0}));
  EXPECT_EQ(trace_verb_name(TraceVerb::idle), "idle");
  EXPECT_EQ(trace_verb_name(TraceVerb::writeback_limit), "writeback-limit");
  EXPECT_EQ(parse_ok("idle 5\nwriteback all 3\nwriteback-limit 9\n").pages_needed, 0u);
}

TEST(TracePolicyCommands, ValidateLikeTheOthers) {
  expect_error("writeback cold\n", 1, "'cold' is not a writeback kind");
  expect_error("writeback idle x\n", 1, "'x' is not a number");
  expect_error("writeback huge -1\n", 1, "negative number '-1'");
  expect_error("writeback all 1 2\n", 1, "'writeback' takes 1 or 2 arguments, got 3");
  expect_error("idle 1 2\n", 1, "'idle' takes 0 or 1 arguments, got 2");
  expect_error("idle 1h\n", 1, "'1h' is not a number");
  expect_error("writeback-limit\n", 1, "usage: writeback-limit N");
  expect_error("writeback-limit -3\n", 1, "negative number '-3'");
  expect_error("writeback-limit 18446744073709551616\n", 1, "is too large");
  expect_error("idles\n", 1,
               "expected write, read, discard, compact, writeback, stats, idle, writeback-limit "
               "or recompress");
}

}  // namespace
}  // namespace zspool::tools

namespace zspool::tools {
namespace {

// format_trace_op writes every command so that it parses back to the same op: the fuzzer's round
// trip, and the names the replay and the control FIFO give commands. `idle 71` once formatted
// as `idle` (trace_fuzz's finding in CI): the count is kept exactly when it was given.
TEST(FormatTraceOp, EveryCommandParsesBackToTheSameOp) {
  const char* lines[] = {"write 3 7",
                         "read 5",
                         "discard 9",
                         "compact",
                         "stats",
                         "writeback 4",
                         "writeback idle",
                         "writeback idle+huge 0",
                         "writeback all 12",
                         "writeback incompressible 1",
                         "writeback-limit 0",
                         "writeback-limit 18446744073709551615",
                         "idle",
                         "idle 71",
                         "idle 0",
                         "recompress all",
                         "recompress huge 100",
                         "recompress idle 0 2"};
  for (const char* line : lines) {
    const auto parsed = parse_trace_line(line, 1);
    ASSERT_TRUE(std::holds_alternative<std::optional<TraceOp>>(parsed)) << line;
    const TraceOp op = *std::get<std::optional<TraceOp>>(parsed);
    EXPECT_EQ(format_trace_op(op), line);
    const auto again = parse_trace_line(format_trace_op(op), 1);
    ASSERT_TRUE(std::holds_alternative<std::optional<TraceOp>>(again)) << line;
    EXPECT_EQ(*std::get<std::optional<TraceOp>>(again), op) << line;
  }
}

}  // namespace
}  // namespace zspool::tools
