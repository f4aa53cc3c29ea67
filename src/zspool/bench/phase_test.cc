#include "zspool/bench/phase.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

namespace zspool::tools {
namespace {

// Counts what a phase reports.
class CountingProgress final : public PhaseProgress {
 public:
  void advance(std::uint64_t n) override { done_ += n; }
  void finish() override { finished_ = true; }
  std::uint64_t done() const { return done_.load(); }
  bool finished() const { return finished_.load(); }

 private:
  std::atomic<std::uint64_t> done_{0};
  std::atomic<bool> finished_{false};
};

TEST(ThreadRange, RangesTileThePagesInOrder) {
  for (const std::uint64_t pages : {0ull, 1ull, 7ull, 64ull, 1001ull}) {
    for (const unsigned threads : {1u, 2u, 3u, 8u}) {
      std::uint64_t next = 0;
      for (unsigned t = 0; t < threads; ++t) {
        const PageRange r = thread_range(pages, threads, t);
        EXPECT_EQ(r.begin, next) << pages << " pages, thread " << t << " of " << threads;
        EXPECT_LE(r.end - r.begin, pages / threads + 1);
        EXPECT_GE(r.end - r.begin, pages / threads);
        next = r.end;
      }
      EXPECT_EQ(next, pages) << pages << " pages, " << threads << " threads";
    }
  }
}

TEST(RunPhase, VisitsEveryPageOnceWithAScratchBufferPerThread) {
  for (const unsigned threads : {1u, 3u, 16u}) {
    constexpr std::uint64_t kPages = 1000;
    std::vector<std::atomic<int>> visits(kPages);
    CountingProgress progress;
    const PhaseResult result =
        run_phase(kPages, threads, 64, progress,
                  [&](std::uint64_t page, std::span<std::byte> scratch, PhaseTally&) {
                    EXPECT_EQ(scratch.size(), 64u);
                    visits[page].fetch_add(1);
                  });
    for (std::uint64_t p = 0; p < kPages; ++p) ASSERT_EQ(visits[p].load(), 1) << p;
    EXPECT_EQ(progress.done(), kPages);
    EXPECT_EQ(result.tally.errors(), 0u);
    EXPECT_FALSE(result.tally.first_failure.has_value());
    EXPECT_GE(result.seconds, 0.0);
  }
}

TEST(RunPhase, MoreThreadsThanPagesAndNoPages) {
  CountingProgress progress;
  std::atomic<int> calls = 0;
  run_phase(2, 8, 0, progress, [&](std::uint64_t, std::span<std::byte>, PhaseTally&) { ++calls; });
  EXPECT_EQ(calls.load(), 2);
  CountingProgress none;
  run_phase(0, 4, 0, none, [&](std::uint64_t, std::span<std::byte>, PhaseTally&) { ++calls; });
  EXPECT_EQ(calls.load(), 2);
}

TEST(RunPhase, TalliesSumAndTheLowestPageFailureIsFirst) {
  CountingProgress progress;
  const PhaseResult result =
      run_phase(100, 4, 0, progress, [](std::uint64_t page, std::span<std::byte>, PhaseTally& t) {
        if (page % 10 == 7) t.fail(page, "write", Error::limit_reached);
        if (page % 25 == 3) t.mismatch(page);
      });
  EXPECT_EQ(result.tally.failed, 10u);
  EXPECT_EQ(result.tally.mismatched, 4u);
  EXPECT_EQ(result.tally.errors(), 14u);
  ASSERT_TRUE(result.tally.first_failure.has_value());
  EXPECT_EQ(result.tally.first_failure->page, 3u);
  EXPECT_EQ(result.tally.first_failure->what, "verify");
}

TEST(PhaseTally, MergeKeepsTheLowestPage) {
  PhaseTally a, b;
  a.fail(50, "read", Error::io_error);
  b.fail(20, "write", Error::out_of_memory);
  b.fail(90, "write", Error::out_of_memory);
  a.merge(b);
  EXPECT_EQ(a.failed, 3u);
  EXPECT_EQ(a.first_failure->page, 20u);
  EXPECT_EQ(a.first_failure->error, Error::out_of_memory);
  PhaseTally empty;
  a.merge(empty);
  EXPECT_EQ(a.first_failure->page, 20u);
}

}  // namespace
}  // namespace zspool::tools
