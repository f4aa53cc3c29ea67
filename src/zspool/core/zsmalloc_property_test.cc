// Property test of the C API's handles (handle_model_test.h): long fixed-seed random runs mixing
// valid handles, freed ones (most with their slots reissued to newer objects), handles freed
// while mapped and values never issued. A stale or never-issued value never succeeds; a valid
// handle always does, with the right bytes. The fuzzer zsmalloc_fuzz.cc drives the same model.
#include <gtest/gtest.h>

#include "zspool/core/handle_model_test.h"
#include "zspool/testing/test_util.h"

namespace zspool {
namespace {

// Operation weights: mostly allocation and probes, so the pool keeps a few thousand objects
// and every freed slot is soon reissued.
std::uint8_t pick_op(test::Rng& rng) {
  static constexpr std::uint8_t kTable[] = {0, 0, 0, 0, 1, 1, 2, 3, 4, 5,
                                            6, 6, 7, 7, 7, 7, 8, 8, 9, 10};
  return kTable[rng.below(sizeof kTable)];
}

void run(bool writeback, std::uint64_t seed, int steps) {
  test::HandleModel model(writeback);
  test::Rng rng(seed);
  for (int i = 0; i < steps; ++i) {
    const std::uint8_t op = pick_op(rng);
    const std::string failure = model.step(op, static_cast<std::uint32_t>(rng.next()));
    ASSERT_EQ(failure, "") << "step " << i << ", op " << int{op};
  }
  ASSERT_EQ(model.finish(), "");
  const auto& c = model.counts();
  EXPECT_GT(c.reissued_probes, 1000u) << "freed handles whose slot held a newer object";
  EXPECT_GT(c.never_issued_probes, 1000u);
  EXPECT_GT(c.pending_frees, 100u) << "zs_free of mapped objects";
  if (writeback) {
    EXPECT_GT(c.evictions, 100u);
  }
}

TEST(ZsMallocProperty, StaleAndNeverIssuedHandlesNeverSucceed) {
  ZSPOOL_RELEASE_BUILD_ONLY();
  run(false, 12, 100000);
}

TEST(ZsMallocProperty, StaleHandlesNeverSucceedWithWriteback) {
  ZSPOOL_RELEASE_BUILD_ONLY();
  run(true, 34, 100000);
}

}  // namespace
}  // namespace zspool
