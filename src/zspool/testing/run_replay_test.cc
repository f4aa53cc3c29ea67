// End-to-end tests of `zspool run` and `zspool replay`: each runs ZSPOOL_BINARY_DIR/zspool in a
// child process and checks its exit status, stdout and stderr.
#include <gtest/gtest.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "zspool/store/store.h"
#include "zspool/testing/cli_test_util.h"

namespace zspool::tools {
namespace {

using test::describe;
using test::expect_one_line_error;
using test::Outcome;
using test::run_zspool;
using test::TempDir;
using test::write_file;

std::vector<std::vector<std::uint64_t>> mm_stat_lines(const std::string& out);

namespace fs = std::filesystem;

constexpr std::uint64_t kPageSize = 4096;

const char* const kMmStatNames[] = {"orig_data_size",  "compr_data_size", "mem_used_total",
                                    "mem_limit",       "mem_used_max",    "same_pages",
                                    "pages_compacted", "huge_pages",      "huge_pages_since"};

// `pages` pages with distinct, compressible-but-not-same-filled content: page p repeats a
// line naming p; every fourth page is incompressible noise.
std::string data_pages(std::uint64_t pages) {
  std::string bytes;
  std::uint64_t state = 88172645463325252ull;
  for (std::uint64_t p = 0; p < pages; ++p) {
    std::string page;
    while (page.size() < kPageSize) {
      if (p % 4 == 3) {
        state ^= state << 13, state ^= state >> 7, state ^= state << 17;
        page.push_back(static_cast<char>(state));
      } else {
        page += "page " + std::to_string(p) + " of the replay data file; line " +
                std::to_string(page.size()) + "\n";
      }
    }
    bytes += page.substr(0, kPageSize);
  }
  return bytes;
}

// ---- run ---------------------------------------------------------------------------------------

nlohmann::json run_json(const std::vector<std::string>& extra, int expected_status = 0) {
  std::vector<std::string> args = {"run", "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  const Outcome o = run_zspool(args);
  EXPECT_TRUE(o.exited) << describe(args, o);
  EXPECT_EQ(o.status, expected_status) << describe(args, o);
  if (expected_status == 0) {
    EXPECT_EQ(o.err, "") << describe(args, o);
  }
  try {
    return nlohmann::json::parse(o.out);  // throws unless stdout is exactly one JSON value
  } catch (const std::exception& e) {
    ADD_FAILURE() << e.what() << "\n" << describe(args, o);
    return nlohmann::json::object();
  }
}

void expect_consistent_run(const nlohmann::json& j) {
  ASSERT_TRUE(j.is_object());
  for (const char* name : kMmStatNames) EXPECT_TRUE(j.contains(name)) << name;
  for (const char* name : {"pages", "efficiency", "write_MBps", "read_MBps", "errors", "compressor",
                           "threads", "written_back_pages", "bd_count"}) {
    EXPECT_TRUE(j.contains(name)) << name;
  }
  EXPECT_EQ(j["errors"], 0);
  EXPECT_GT(j["efficiency"].get<double>(), 0.0);
  EXPECT_LE(j["efficiency"].get<double>(), 1.0);
  EXPECT_GT(j["write_MBps"].get<double>(), 0.0);
  EXPECT_GT(j["read_MBps"].get<double>(), 0.0);
  EXPECT_LE(j["compr_data_size"].get<std::uint64_t>(), j["mem_used_total"].get<std::uint64_t>());
  EXPECT_LE(j["mem_used_total"].get<std::uint64_t>(), j["mem_used_max"].get<std::uint64_t>());
}

TEST(RunVerb, JsonOnTheBuiltinCorpus) {
  const nlohmann::json j = run_json({"--pages", "2048"});
  expect_consistent_run(j);
  EXPECT_EQ(j["pages"], 2048);
  EXPECT_EQ(j["orig_data_size"], 2048 * kPageSize);
  EXPECT_EQ(j["compressor"], "lz4");
  EXPECT_EQ(j["threads"], 1);
  EXPECT_EQ(j["corpus"]["source"], "builtin");
  // The builtin mix: 10% zero and 5% other same-filled pages, 10% random (stored huge).
  EXPECT_EQ(j["corpus"]["kinds"]["zero"], 205);
  EXPECT_EQ(j["same_pages"], j["corpus"]["kinds"]["zero"].get<int>() +
                                 j["corpus"]["kinds"]["same_filled"].get<int>());
  EXPECT_GE(j["huge_pages"].get<int>(), j["corpus"]["kinds"]["random"].get<int>());
  EXPECT_GT(j["ratio"].get<double>(), 1.5);
  EXPECT_FALSE(j["pool"]["classes"].empty());
}

TEST(RunVerb, SizeNamesTheCorpusInBytes) {
  const nlohmann::json j = run_json({"--size", "2M"});
  EXPECT_EQ(j["pages"], 512);
  EXPECT_EQ(j["orig_data_size"], 2u << 20);
}

TEST(RunVerb, EveryCompressor) {
  for (const std::string spec : {"lz4", "zstd", "zstd:7", "lzo1x"}) {
    const nlohmann::json j = run_json({"--pages", "512", "--compressor", spec});
    SCOPED_TRACE(spec);
    expect_consistent_run(j);
    EXPECT_EQ(j["compressor"], spec);
    EXPECT_EQ(j["orig_data_size"], 512 * kPageSize);
  }
}

TEST(RunVerb, ThreadsSplitThePages) {
  const nlohmann::json j = run_json({"--pages", "3001", "--threads", "4"});
  expect_consistent_run(j);
  EXPECT_EQ(j["threads"], 4);
  EXPECT_EQ(j["orig_data_size"], 3001 * kPageSize);
}

TEST(RunVerb, OtherGeometry) {
  const nlohmann::json j = run_json({"--pages", "256", "--page-size", "16K", "--max-chain", "4"});
  expect_consistent_run(j);
  EXPECT_EQ(j["page_size"], 16384);
  EXPECT_EQ(j["max_chain"], 4);
  EXPECT_EQ(j["orig_data_size"], 256 * 16384);
}

TEST(RunVerb, InputFilesAndDirectories) {
  TempDir dir;
  fs::create_directories(dir.path() / "sub");
  write_file(dir / "a.txt", data_pages(5));                     // 5 pages
  write_file(dir / "sub/b.bin", data_pages(3) + "tail");        // 4 pages, the last padded
  write_file(dir / "zeros", std::string(2 * kPageSize, '\0'));  // 2 zero pages
  write_file(dir / "single", data_pages(1));
  const nlohmann::json j = run_json({"--input", dir.path().string()});
  expect_consistent_run(j);
  EXPECT_EQ(j["pages"], 12);
  EXPECT_EQ(j["corpus"]["source"], "paths");
  EXPECT_EQ(j["corpus"]["files_read"], 4);
  EXPECT_EQ(j["orig_data_size"], 12 * kPageSize);
  EXPECT_GE(j["same_pages"].get<int>(), 2);

  const nlohmann::json two = run_json({"--input", dir / "a.txt", dir / "single"});
  EXPECT_EQ(two["pages"], 6);
}

TEST(RunVerb, MaxBytesCapsTheInput) {
  TempDir dir;
  write_file(dir / "big", data_pages(40));
  const nlohmann::json j = run_json({"--input", dir / "big", "--max-bytes", "64K"});
  EXPECT_EQ(j["pages"], 16);
  EXPECT_EQ(j["corpus"]["truncated"], true);
}

TEST(RunVerb, TextSummary) {
  const std::vector<std::string> args = {"run", "--pages", "512"};
  const Outcome o = run_zspool(args);
  ASSERT_TRUE(o.exited && o.status == 0) << describe(args, o);
  EXPECT_EQ(o.err, "");
  for (const char* text :
       {"corpus", "mix", "zero", "ALGORITHM", "DISKSIZE", "DATA", "COMPR", "TOTAL", "STREAMS",
        "efficiency", "ratio", "mm_stat", "writeback", "throughput", "MB/s", "verified"}) {
    EXPECT_NE(o.out.find(text), std::string::npos) << text << "\n" << o.out;
  }
  const std::vector<std::vector<std::uint64_t>> stats = mm_stat_lines(o.out);
  ASSERT_FALSE(stats.empty()) << o.out;
  EXPECT_EQ(stats.front().size(), 9u) << o.out;
  EXPECT_NE(o.out.find("lz4"), std::string::npos);
}

TEST(RunVerb, LimitWithBackingWritesBack) {
  TempDir dir;
  const nlohmann::json j =
      run_json({"--pages", "2048", "--limit", "2M", "--backing", dir / "backing"});
  expect_consistent_run(j);
  EXPECT_GT(j["written_back_pages"].get<std::uint64_t>(), 0u) << j.dump(2);
  EXPECT_EQ(j["mem_limit"], 2u << 20);
  EXPECT_EQ(j["rejected_writes"], 0);
}

// Without a backing file, the pages that do not fit under the limit are write errors: the
// summary still prints, then one line on stderr, exit status 1.
TEST(RunVerb, LimitWithoutBackingReportsErrors) {
  const std::vector<std::string> args = {"run", "--json", "--pages", "2048", "--limit", "1M"};
  const Outcome o = expect_one_line_error(args, 1, "pages failed");
  const nlohmann::json j = nlohmann::json::parse(o.out);
  EXPECT_GT(j["errors"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(j["errors"], j["write_errors"]);
  EXPECT_EQ(j["mismatches"], 0);
  EXPECT_EQ(j["write_errors"], j["rejected_writes"]);
  EXPECT_EQ(j["mem_limit"], 1u << 20);
}

TEST(RunVerb, BadInput) {
  expect_one_line_error({"run", "--compressor", "nope"}, 2, "--compressor");
  expect_one_line_error({"run", "--compressor", "zstd:99"}, 2, "--compressor");
  expect_one_line_error({"run", "--limit", "12Q"}, 2, "--limit");
  expect_one_line_error({"run", "--pages", "0"}, 2, "--pages");
  expect_one_line_error({"run", "--pages", "-5"}, 2, "--pages");
  expect_one_line_error({"run", "--pages", "lots"}, 2, "--pages");
  expect_one_line_error({"run", "--pages", "99999999999999999999"}, 2, "--pages");
  expect_one_line_error({"run", "--size", "100"}, 2, "--size");
  expect_one_line_error({"run", "--size", "1Q"}, 2, "--size");
  expect_one_line_error({"run", "--pages", "10", "--size", "1M"}, 2, "--size");
  expect_one_line_error({"run", "--threads", "0"}, 2, "--threads");
  expect_one_line_error({"run", "--page-size", "3000"}, 2, "--page-size");
  expect_one_line_error({"run", "--input", "/nonexistent/zspool/input"}, 2, "--input");
  expect_one_line_error({"run", "--max-bytes", "1M"}, 2, "--input");
  expect_one_line_error({"run", "--input", "/etc/hostname", "--max-bytes", "100"}, 2, "--input");
  expect_one_line_error({"run", "--backing", "/nonexistent/dir/backing", "--pages", "16"}, 2,
                        "backing file /nonexistent/dir/backing: its directory does not exist: "
                        "No such file or directory");
}

TEST(RunVerb, EmptyInputIsAFailure) {
  TempDir dir;
  write_file(dir / "empty", "");
  expect_one_line_error({"run", "--input", dir.path().string()}, 1, "--input");
}

// ---- replay ------------------------------------------------------------------------------------

class ReplayTest : public ::testing::Test {
 protected:
  void SetUp() override { write_file(data_, data_pages(16)); }

  std::string trace(const std::string& text) {
    const std::string path = dir_ / ("trace" + std::to_string(++traces_));
    write_file(path, text);
    return path;
  }

  std::vector<std::string> replay_args(const std::string& trace_path,
                                       const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> args = {"replay", trace_path, "--data", data_};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  TempDir dir_;
  std::string data_ = dir_ / "data";
  int traces_ = 0;
};

// The nine numbers of each "mm_stat" line.
std::vector<std::vector<std::uint64_t>> mm_stat_lines(const std::string& out) {
  std::vector<std::vector<std::uint64_t>> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("mm_stat", 0) != 0) continue;
    std::istringstream words(line.substr(7));
    std::vector<std::uint64_t> numbers;
    for (std::string w; words >> w;) {
      EXPECT_EQ(w.find_first_not_of("0123456789"), std::string::npos) << line;
      numbers.push_back(std::stoull(w));
    }
    lines.push_back(numbers);
  }
  return lines;
}

// One JSON value per line of `out`.
std::vector<nlohmann::json> json_lines(const std::string& out) {
  std::istringstream in(out);
  std::vector<nlohmann::json> objects;
  for (std::string line; std::getline(in, line);) objects.push_back(nlohmann::json::parse(line));
  return objects;
}

constexpr const char* kSmallTrace = R"(# a small trace
write 0
write 1 5        # page 5 of the data file as page 1
write 2 3
read 0
read 1
read 2
read 9           # never written: zeros
stats
discard 1
read 1           # discarded: zeros
write 3 3
write 3 4        # overwritten
read 3
compact
stats
)";

TEST_F(ReplayTest, SmallTraceVerifiesEveryRead) {
  const auto args = replay_args(trace(kSmallTrace));
  const Outcome o = run_zspool(args);
  ASSERT_TRUE(o.exited && o.status == 0) << describe(args, o);
  EXPECT_EQ(o.err, "");
  const auto stats = mm_stat_lines(o.out);
  ASSERT_EQ(stats.size(), 2u) << o.out;
  ASSERT_EQ(stats[0].size(), 9u);
  ASSERT_EQ(stats[1].size(), 9u);
  EXPECT_EQ(stats[0][0], 3 * kPageSize);  // orig_data_size: three pages written
  EXPECT_EQ(stats[1][0], 3 * kPageSize);  // pages 0, 2, 3
  EXPECT_NE(o.out.find("reads 6 verified 6 mismatches 0\n"), std::string::npos) << o.out;
}

TEST_F(ReplayTest, JsonPrintsOneObjectPerLine) {
  const auto args = replay_args(trace(kSmallTrace), {"--json"});
  const Outcome o = run_zspool(args);
  ASSERT_TRUE(o.exited && o.status == 0) << describe(args, o);
  std::istringstream in(o.out);
  std::vector<nlohmann::json> objects;
  for (std::string line; std::getline(in, line);) objects.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(objects.size(), 3u) << o.out;
  // The nine mm_stat names, zram's bd_stat three, and the writeback policy's counters.
#define ZSPOOL_COUNT_ONE(name, desc) +1
  constexpr std::size_t kPolicyCounters = 0 ZSPOOL_STORE_POLICY_COUNTERS(ZSPOOL_COUNT_ONE);
#undef ZSPOOL_COUNT_ONE
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(objects[i].size(), 9u + 3u + kPolicyCounters) << objects[i].dump();
    for (const char* name : kMmStatNames) EXPECT_TRUE(objects[i].contains(name)) << name;
    for (const char* name : {"bd_count", "bd_reads", "bd_writes", "idle_pages", "writeback_limit"})
      EXPECT_TRUE(objects[i].contains(name)) << name;
  }
  EXPECT_EQ(objects[0]["orig_data_size"], 3 * kPageSize);
  EXPECT_EQ(objects[2]["reads"], 6);
  EXPECT_EQ(objects[2]["verified"], 6);
  EXPECT_EQ(objects[2]["mismatches"], 0);
}

TEST_F(ReplayTest, WritebackToABackingFile) {
  std::string text;
  for (int p = 0; p < 16; ++p) text += "write " + std::to_string(p) + "\n";
  text += "writeback 1000\nstats\n";
  for (int p = 0; p < 16; ++p) text += "read " + std::to_string(p) + "\n";
  text += "discard 0\nread 0\nstats\n";
  const auto args = replay_args(trace(text), {"--backing", dir_ / "backing", "--json"});
  const Outcome o = run_zspool(args);
  ASSERT_TRUE(o.exited && o.status == 0) << describe(args, o);
  std::istringstream in(o.out);
  std::vector<nlohmann::json> objects;
  for (std::string line; std::getline(in, line);) objects.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(objects.size(), 3u) << o.out;
  // Written back, pages leave memory: orig_data_size counts only the pages still in it, as
  // zram's does.
  EXPECT_LT(objects[0]["orig_data_size"].get<std::uint64_t>(), 16 * kPageSize);
  EXPECT_EQ(objects[2]["reads"], 17);
  EXPECT_EQ(objects[2]["verified"], 17);
  EXPECT_GT(objects[0]["bd_writes"].get<std::uint64_t>(), 0u);
  // The backing file holds nothing of use once the store is gone: zspool made it, so it removes
  // it, and the same command can run again.
  EXPECT_FALSE(fs::exists(dir_ / "backing"));
  const Outcome again = run_zspool(args);
  EXPECT_TRUE(again.exited && again.status == 0) << describe(args, again);
  EXPECT_FALSE(fs::exists(dir_ / "backing"));
}

TEST_F(ReplayTest, AnEmptyBackingFileGivenIsLeftEmpty) {
  std::string text;
  for (int p = 0; p < 16; ++p) text += "write " + std::to_string(p) + "\n";
  text += "writeback 1000\nstats\n";
  std::ofstream(dir_ / "given").close();
  const auto args = replay_args(trace(text), {"--backing", dir_ / "given", "--json"});
  for (int run = 0; run < 2; ++run) {
    const Outcome o = run_zspool(args);
    ASSERT_TRUE(o.exited && o.status == 0) << describe(args, o);
    EXPECT_NE(o.out.find("\"bd_writes\":16"), std::string::npos) << o.out;
    ASSERT_TRUE(fs::exists(dir_ / "given"));
    EXPECT_EQ(fs::file_size(dir_ / "given"), 0u);
  }
}

TEST_F(ReplayTest, PagesSetsTheCapacity) {
  const auto args = replay_args(trace("write 3\nread 3\nread 99\n"), {"--pages", "100"});
  const Outcome o = run_zspool(args);
  ASSERT_TRUE(o.exited && o.status == 0) << describe(args, o);
  EXPECT_NE(o.out.find("reads 2 verified 2 mismatches 0"), std::string::npos) << o.out;
}

TEST_F(ReplayTest, EveryCompressorAndAnEmptyTrace) {
  for (const std::string spec : {"lz4", "zstd:1", "lzo1x"}) {
    const auto args = replay_args(trace(kSmallTrace), {"--compressor", spec});
    const Outcome o = run_zspool(args);
    EXPECT_TRUE(o.exited && o.status == 0) << describe(args, o);
  }
  const auto args = replay_args(trace("# nothing\n"));
  const Outcome o = run_zspool(args);
  ASSERT_TRUE(o.exited && o.status == 0) << describe(args, o);
  EXPECT_EQ(o.out, "reads 0 verified 0 mismatches 0\n");
}

// A bad trace stops before anything runs: one line "zspool: TRACE:LINE: ...", exit 2, and no
// stats line printed for the commands before the bad one.
TEST_F(ReplayTest, MalformedTraceStopsWithItsLine) {
  const std::string bad = trace("write 0\nstats\nread 0\nfrobnicate 3\n");
  const Outcome o = expect_one_line_error(replay_args(bad), 2, bad + ":4: unknown command");
  EXPECT_EQ(o.out, "");
  expect_one_line_error(replay_args(trace("stats\n\nread -1\n")), 2, ":3: negative number");
  expect_one_line_error(replay_args(trace("write 1 2 3\n")), 2, ":1: 'write' takes 1 or 2");
  expect_one_line_error(replay_args(trace("read 99999999999999999999\n")), 2, ":1:");
  expect_one_line_error(replay_args(trace("compact 1\n")), 2, ":1: 'compact' takes no");
}

TEST_F(ReplayTest, PagesBeyondTheDataFileOrTheStore) {
  const Outcome o = expect_one_line_error(replay_args(trace("stats\nwrite 0 16\n")), 2,
                                          ":2: page 16 is beyond the data file's 16 pages");
  EXPECT_EQ(o.out, "");
  expect_one_line_error(replay_args(trace("write 0 15\nwrite 20\n")), 2, ":2: page 20");
  expect_one_line_error(replay_args(trace("write 5\nread 8\n"), {"--pages", "8"}), 2,
                        ":2: page 8 is beyond the store's 8 pages");
}

// Issue 14's commands end to end: idle marking, selective writeback of the idle pages under a
// budget, a spent budget refusing (not a failure), writeback of the coldest; bd_stat in stats.
TEST_F(ReplayTest, IdleSelectiveWritebackAndTheBudget) {
  std::string text;
  for (int p = 0; p < 16; ++p) text += "write " + std::to_string(p) + "\n";
  text += "idle\nread 0\nread 1\nwriteback-limit 10\nwriteback idle\nstats\n";
  text += "writeback idle\nstats\n";
  text += "writeback-limit 100\nwriteback all 2\nidle 0\nstats\n";
  for (int p = 0; p < 16; ++p) text += "read " + std::to_string(p) + "\n";
  const auto args = replay_args(trace(text), {"--backing", dir_ / "backing", "--json"});
  const Outcome o = run_zspool(args);
  ASSERT_TRUE(o.exited && o.status == 0) << describe(args, o);
  const std::vector<nlohmann::json> objects = json_lines(o.out);
  ASSERT_EQ(objects.size(), 4u) << o.out;
  EXPECT_EQ(objects[0]["bd_count"], 10) << objects[0].dump();
  EXPECT_EQ(objects[0]["bd_writes"], 10);
  EXPECT_EQ(objects[0]["wb_idle_pages"], 10);
  EXPECT_EQ(objects[0]["writeback_limit"], 0);
  EXPECT_EQ(objects[0]["idle_pages"], 4);  // 14 marked idle and not read, 10 of them went
  EXPECT_EQ(objects[1]["bd_count"], 10) << objects[1].dump();
  EXPECT_GE(objects[1]["writeback_limit_refused"], 1);
  EXPECT_EQ(objects[2]["bd_count"], 12) << objects[2].dump();
  EXPECT_EQ(objects[2]["wb_all_pages"], 2);
  EXPECT_EQ(objects[2]["idle_pages"], 4);  // the pages left in memory, none read since
  EXPECT_EQ(objects[3]["verified"], 18);
  EXPECT_EQ(objects[3]["errors"], 0);
  const auto text_args = replay_args(trace("write 0\nwriteback all\nread 0\nstats\n"),
                                     {"--backing", dir_ / "backing2"});
  const Outcome t = run_zspool(text_args);
  ASSERT_TRUE(t.exited && t.status == 0) << describe(text_args, t);
  EXPECT_NE(t.out.find("\nbd_stat 1 1 1\npolicy_stat "), std::string::npos) << t.out;
}

// --writeback-batch: batch 1 is one write call a page; the default batches adjacent slots.
TEST_F(ReplayTest, WritebackBatchSetsTheWriteCalls) {
  std::string text;
  for (int p = 0; p < 16; ++p) text += "write " + std::to_string(p) + "\n";
  text += "idle\nwriteback idle\nstats\n";
  for (const char* batch : {"1", "32"}) {
    const auto args =
        replay_args(trace(text), {"--backing", dir_ / (std::string("backing") + batch), "--json",
                                  "--writeback-batch", batch});
    const Outcome o = run_zspool(args);
    ASSERT_TRUE(o.exited && o.status == 0) << describe(args, o);
    const std::vector<nlohmann::json> objects = json_lines(o.out);
    ASSERT_EQ(objects.size(), 2u) << o.out;
    EXPECT_EQ(objects[0]["bd_writes"], 16) << objects[0].dump();
    EXPECT_EQ(objects[0]["bd_write_ios"], std::string(batch) == "1" ? 16 : 1) << objects[0].dump();
  }
  for (const char* bad : {"0", "1025", "-1", "x"})
    expect_one_line_error(replay_args(trace(text), {"--writeback-batch", bad}), 2,
                          "--writeback-batch");
}

TEST_F(ReplayTest, WritebackNeedsABackingFile) {
  expect_one_line_error(replay_args(trace("write 0\nwriteback 4\n")), 2,
                        ":2: 'writeback' needs a backing file");
}

// A store call that fails (here: writes past a tiny memory limit with nowhere to write back)
// is counted and gives exit status 1 after the summary.
TEST_F(ReplayTest, FailedStoreCallsExitOne) {
  std::string text;
  for (int round = 0; round < 64; ++round) {
    for (int p = 3; p < 16; p += 4)
      text += "write " + std::to_string(round * 16 + p) + " " + std::to_string(p) + "\n";
  }
  const auto args = replay_args(trace(text), {"--limit", "64K"});
  const Outcome o = expect_one_line_error(args, 1, "calls failed");
  EXPECT_NE(o.out.find("reads 0 verified 0 mismatches 0"), std::string::npos) << o.out;
}

// A mismatch needs a store that returns wrong data; with a correct store no trace produces
// one, so exit status 1 for mismatches is covered only by the failed-call path above.

TEST_F(ReplayTest, BadArguments) {
  const std::string good = trace("write 0\n");
  expect_one_line_error({"replay", good}, 2, "--data");
  expect_one_line_error({"replay", "--data", data_}, 2, "TRACE");
  expect_one_line_error(replay_args(dir_ / "no-such-trace"), 2, "No such file or directory");
  expect_one_line_error(replay_args(dir_.path().string()), 2, "not a regular file");
  expect_one_line_error({"replay", good, "--data", dir_ / "no-such-data"}, 2, "--data");
  expect_one_line_error(replay_args(good, {"--compressor", "nope"}), 2, "--compressor");
  expect_one_line_error(replay_args(good, {"--limit", "12Q"}), 2, "--limit");
  expect_one_line_error(replay_args(good, {"--pages", "0"}), 2, "--pages");
  if (::geteuid() != 0) {  // root reads anything
    const std::string unreadable = trace("write 0\n");
    fs::permissions(unreadable, fs::perms::none);
    expect_one_line_error(replay_args(unreadable), 2, "cannot open trace");
  }
}

// ---- recompression -----------------------------------------------------------------------------

// lz4 first, zstd after: recompress shrinks what is held and every page still reads back (a
// page decoded with the wrong compressor would be an error).
TEST_F(ReplayTest, RecompressShrinksAndEveryPageReadsBack) {
  std::string text;
  for (int p = 0; p < 16; ++p) text += "write " + std::to_string(p) + "\n";
  text += "stats\nrecompress all\nstats\nrecompress huge 0 1\n";
  for (int p = 0; p < 16; ++p) text += "read " + std::to_string(p) + "\n";
  const auto args = replay_args(trace(text), {"--recompress-with", "zstd,zstd:9", "--json"});
  const Outcome o = run_zspool(args);
  ASSERT_TRUE(o.exited && o.status == 0) << describe(args, o);
  std::istringstream in(o.out);
  std::vector<nlohmann::json> objects;
  for (std::string line; std::getline(in, line);) objects.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(objects.size(), 3u) << o.out;
  EXPECT_LT(objects[1]["compr_data_size"].get<std::uint64_t>(),
            objects[0]["compr_data_size"].get<std::uint64_t>());
  EXPECT_EQ(objects[2]["verified"], 16);
}

TEST_F(ReplayTest, RecompressNeedsSecondaryCompressors) {
  expect_one_line_error(replay_args(trace("write 0\nrecompress all\n")), 2,
                        ":2: 'recompress' needs secondary compressors (--recompress-with");
  expect_one_line_error(
      replay_args(trace("write 0\nstats\nrecompress huge 0 2\n"), {"--recompress-with", "zstd"}), 2,
      ":3: 'recompress' priority 2, but --recompress-with names 1 compressor");
  expect_one_line_error(replay_args(trace("recompress warm\n"), {"--recompress-with", "zstd"}), 2,
                        ":1: 'warm' is not a page kind");
  const std::string good = trace("write 0\n");
  expect_one_line_error(replay_args(good, {"--recompress-with", "zstd,nope"}), 2,
                        "--recompress-with");
  expect_one_line_error(replay_args(good, {"--recompress-with", "zstd,zstd:2,zstd:3,zstd:4"}), 2,
                        "--recompress-with: 4 compressors, at most 3");
}

}  // namespace
}  // namespace zspool::tools
