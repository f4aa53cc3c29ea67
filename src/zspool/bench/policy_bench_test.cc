// `zspool bench policy`'s measurement on a small corpus: every run sees the same reads, the
// exact LRU's counts add up, the stores read every page back right, and bad options are refused.
#include "zspool/bench/policy_bench.h"

#include <gtest/gtest.h>

namespace zspool::tools {
namespace {

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

}  // namespace
}  // namespace zspool::tools
