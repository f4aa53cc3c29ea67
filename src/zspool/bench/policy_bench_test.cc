// `zspool bench policy`'s measurement on a small corpus: every run sees the same reads, the
// exact LRU's counts add up, the stores read every page back right, and bad options are refused.
#include "zspool/bench/policy_bench.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "zspool/testing/cli_test_util.h"

namespace zspool::tools {
namespace {

using test::TempDir;

TEST(PolicyBench, RunsSeeTheSameReadsAndReadEveryPageBackRight) {
  const Corpus corpus = Corpus::builtin(1024, 4096);
  PolicyBenchOptions o;
  o.read_rounds = 2;
  auto r = run_policy_bench(corpus, o, no_progress());
  ASSERT_TRUE(r.ok()) << error_name(r.error());
  ASSERT_EQ(r->runs.size(), 4u);
  EXPECT_EQ(r->errors(), 0u);
  EXPECT_GT(r->compressed_bytes, 0u);
  EXPECT_LE(r->limit, r->compressed_bytes / 2 + 64 * 4096);
  for (const PolicyRun& run : r->runs) {
    EXPECT_EQ(run.reads, 2048u) << run.name;
    EXPECT_EQ(run.hot_reads, r->runs.front().hot_reads) << run.name;
    EXPECT_LE(run.hits, run.reads) << run.name;
    EXPECT_LE(run.hot_hits, run.hot_reads) << run.name;
    EXPECT_GT(run.backing_writes, 0u) << run.name << ": the limit made it write back";
  }
  const PolicyRun& lru = r->runs.back();
  EXPECT_EQ(lru.name, "exact-lru");
  EXPECT_EQ(lru.backing_reads, lru.reads - lru.hits);
  EXPECT_GT(r->runs.front().samples, 0u);
  EXPECT_GT(r->runs.front().min_efficiency, 0.0);
}

TEST(PolicyBench, BadOptionsAreInvalid) {
  const Corpus corpus = Corpus::builtin(64, 4096);
  PolicyBenchOptions o;
  o.limit_percent = 0;
  EXPECT_EQ(run_policy_bench(corpus, o, no_progress()).error(), Error::invalid_argument);
  o = {};
  o.read_rounds = 0;
  EXPECT_EQ(run_policy_bench(corpus, o, no_progress()).error(), Error::invalid_argument);
  o = {};
  o.compressor = "lz5";
  EXPECT_FALSE(run_policy_bench(corpus, o, no_progress()).ok());
  EXPECT_EQ(run_policy_bench(Corpus(4096), {}, no_progress()).error(), Error::invalid_argument);
}

// A backing directory that cannot be: one line naming it and the reason, found before any store
// is made.
TEST(PolicyBench, ABackingDirThatCannotBeIsNamedWithTheReason) {
  TempDir dir;
  test::write_file(dir / "file", "x");
  std::filesystem::create_directory(dir / "sub");
  std::filesystem::create_symlink(dir / "file", dir / "link-to-file");
  std::filesystem::create_symlink(dir / "sub", dir / "link-to-dir");
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);
  EXPECT_EQ(backing_dir_problem(dir / "nonexist"),
            dir / "nonexist" + ": No such file or directory");
  for (const char* name : {"file", "link-to-file", "fifo"})
    EXPECT_EQ(backing_dir_problem(dir / name), dir / name + ": not a directory") << name;
  EXPECT_EQ(backing_dir_problem("/dev/null"), "/dev/null: not a directory");
  EXPECT_EQ(backing_dir_problem(dir / "sub"), "");
  EXPECT_EQ(backing_dir_problem(dir / "link-to-dir"), "");

  PolicyBenchOptions o;
  o.backing_dir = dir / "nonexist";
  std::string why;
  EXPECT_EQ(run_policy_bench(Corpus::builtin(64, 4096), o, no_progress(), &why).error(),
            Error::io_error);
  EXPECT_EQ(why, "cannot make a directory for the backing files in " + dir / "nonexist" +
                     ": No such file or directory");
}

// When the backing device is full, the run keeps the first backing failure's line (the file and
// the reason) beside its error count. The kernel refuses room for real: a forked child sets
// RLIMIT_FSIZE to 0, so every write to a backing file fails with EFBIG.
TEST(PolicyBench, AFullBackingDeviceIsNamedWithTheReason) {
  TempDir dir;
  const std::string backing_dir = dir.path().string();
  EXPECT_EXIT(
      {
        std::signal(SIGXFSZ, SIG_IGN);
        rlimit none{};
        getrlimit(RLIMIT_FSIZE, &none);
        none.rlim_cur = 0;
        if (setrlimit(RLIMIT_FSIZE, &none) != 0) std::_Exit(10);
        PolicyBenchOptions o;
        o.read_rounds = 1;
        o.backing_dir = backing_dir;
        auto r = run_policy_bench(Corpus::builtin(1024, 4096), o, no_progress());
        if (!r) std::_Exit(11);
        if (r->errors() == 0) std::_Exit(12);
        const std::string why = r->backing_failure();
        if (why.rfind("backing file " + backing_dir + "/zspool-bench-policy-", 0) != 0)
          std::_Exit(13);
        if (why.find("File too large") == std::string::npos) std::_Exit(14);
        if (r->runs.front().backing_failure != why) std::_Exit(15);
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace zspool::tools
