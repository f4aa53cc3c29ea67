// The measurements in process (no binary, no CLI): each returns a typed result whose figures
// agree with the store's own statistics.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "zspool/bench/run_job.h"
#include "zspool/bench/store_bench.h"
#include "zspool/workload/corpus.h"

namespace zspool::tools {
namespace {

std::unique_ptr<Store> small_store(std::uint64_t pages, std::uint64_t limit = 0) {
  auto s = Store::create({.pages = pages, .mem_limit = limit});
  EXPECT_TRUE(s.ok());
  return s ? std::move(*s) : nullptr;
}

TEST(RunJob, StoresVerifiesAndReportsEveryPage) {
  const Corpus corpus = Corpus::builtin(512, 4096);
  auto store = small_store(corpus.page_count());
  const RunReport r = run_job(*store, corpus, 2, no_progress());
  EXPECT_EQ(r.pages, 512u);
  EXPECT_EQ(r.errors(), 0u);
  EXPECT_EQ(r.verified(), 512u);
  EXPECT_EQ(r.stats.orig_data_size, r.stats.stored_pages * 4096) << "every page in memory";
  EXPECT_GT(efficiency(r.stats), 0.5);
  EXPECT_GT(compression_ratio(r.stats), 1.0);
}

TEST(RunJob, PagesThatDoNotFitAreCountedNotVerified) {
  const Corpus corpus = Corpus::builtin(2048, 4096);
  auto store = small_store(corpus.page_count(), 256 * 1024);  // no backing file
  const RunReport r = run_job(*store, corpus, 1, no_progress());
  EXPECT_GT(r.write.tally.failed, 0u);
  EXPECT_EQ(r.read.tally.errors(), 0u) << "only pages that were written are read back";
  EXPECT_EQ(r.verified(), r.pages - r.write.tally.failed);
  EXPECT_NE(r.failure_summary().find("writes"), std::string::npos);
}

// With secondary compressors the job recompresses every page before reading it back: the
// reads verify pages a secondary encoded.
TEST(RunJob, RecompressesWithSecondariesBeforeVerifying) {
  const Corpus corpus = Corpus::builtin(512, 4096);
  auto store = Store::create({.pages = corpus.page_count(), .recompress_with = {"zstd"}});
  ASSERT_TRUE(store.ok());
  const RunReport r = run_job(**store, corpus, 2, no_progress());
  EXPECT_EQ(r.errors(), 0u);
  EXPECT_EQ(r.verified(), 512u);
  EXPECT_GT(r.stats.recompressed_pages, 0u);
  auto plain = small_store(8);
  EXPECT_EQ(run_job(*plain, Corpus::builtin(8, 4096), 1, no_progress()).stats.recompressed_pages,
            0u)
      << "no secondaries: no recompression";
}

TEST(StoreBench, MeasuresTheStoreAndRawCompressorsOnTheSamePages) {
  const Corpus corpus = Corpus::builtin(256, kBenchPageSize);
  const auto r = run_store_bench(corpus, {.threads = 2, .compressor = "zstd"}, no_progress());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->errors(), 0u);
  EXPECT_EQ(r->discarded_pages, 128u);
  ASSERT_EQ(r->raw.size(), 2u);  // lz4 and zstd; the store's zstd is one of them
  ASSERT_NE(r->store_compressor_raw(), nullptr);
  EXPECT_EQ(r->store_compressor_raw()->compressor, "zstd");
  EXPECT_GT(mm_stat_efficiency(r->store.after_fill), 0.5);
  EXPECT_LT(r->store.after_discard[0], r->store.after_fill[0]) << "orig_data_size drops";
  EXPECT_FALSE(r->zram.has_value());
}

TEST(StoreBench, ABadCompressorIsAnErrorValue) {
  const Corpus corpus = Corpus::builtin(8, kBenchPageSize);
  EXPECT_EQ(run_store_bench(corpus, {.compressor = "gzip"}, no_progress()).error(),
            Error::invalid_argument);
}

}  // namespace
}  // namespace zspool::tools
