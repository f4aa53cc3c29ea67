// Misuse of the API. Release builds detect cheaply what they can and return an error (and the
// pool stays intact); checked builds (-DZSPOOL_CHECKED=ON) stop with a message naming the
// handle and the mistake. What each build detects, and how: docs in RELIABILITY.md.
#include <gtest/gtest.h>

#include "zspool/core/pool.h"
#include "zspool/testing/test_util.h"

namespace zspool {
namespace {

using test::matches;
using test::pattern;

struct PoolWithObjects {
  std::unique_ptr<Pool> pool = std::move(*Pool::create({}));
  Handle a = *pool->malloc(100);
  Handle b = *pool->malloc(100);
  PoolWithObjects() {
    EXPECT_EQ(pool->write(a, pattern(1, 100)), Error::ok);
    EXPECT_EQ(pool->write(b, pattern(2, 100)), Error::ok);
  }
  void expect_b_intact() {
    std::vector<std::byte> got(100);
    ASSERT_EQ(pool->read(b, got), Error::ok);
    EXPECT_TRUE(matches(got, 2));
  }
};

#ifndef ZSPOOL_CHECKED

TEST(Misuse, ReleaseBuildReturnsErrorsAndKeepsThePoolIntact) {
  PoolWithObjects t;
  ASSERT_EQ(t.pool->free(t.a), Error::ok);
  EXPECT_EQ(t.pool->free(t.a), Error::stale_handle) << "double free";
  EXPECT_EQ(t.pool->map(t.a, MapMode::read_only).error(), Error::stale_handle);
  EXPECT_EQ(t.pool->free(0), Error::invalid_handle) << "never issued";
  EXPECT_EQ(t.pool->free(1u << 30), Error::invalid_handle) << "never issued";
  std::vector<std::byte> big(4096);
  EXPECT_EQ(t.pool->write(t.b, big), Error::out_of_bounds) << "past the class capacity";
  // A handle that was issued to a class but is free in its free-slot list.
  EXPECT_EQ(t.pool->free(t.b + 5), Error::stale_handle);
  t.expect_b_intact();
  Handle c = *t.pool->malloc(100);
  EXPECT_EQ(t.pool->write(c, pattern(3, 100)), Error::ok);
  t.expect_b_intact();
}

#else

using MisuseDeathTest = ::testing::Test;

TEST(MisuseDeathTest, DoubleFreeNamesTheHandle) {
  PoolWithObjects t;
  ASSERT_EQ(t.pool->free(t.a), Error::ok);
  const std::string handle = "handle 0x" + [&] {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(t.a));
    return std::string(buf);
  }();
  EXPECT_DEATH((void)t.pool->free(t.a), "free of " + handle + ".*stale_handle");
}

TEST(MisuseDeathTest, NeverIssuedHandle) {
  PoolWithObjects t;
  EXPECT_DEATH((void)t.pool->map(123456789, MapMode::read_only), "map of handle .*invalid_handle");
}

TEST(MisuseDeathTest, WritePastTheRequestedSize) {
  PoolWithObjects t;
  std::vector<std::byte> n(101);  // the class holds 104 bytes; 100 were asked for
  EXPECT_DEATH((void)t.pool->write(t.b, n), "write of handle .*out_of_bounds");
}

TEST(MisuseDeathTest, FreeWhileMapped) {
  PoolWithObjects t;
  auto m = t.pool->map(t.a, MapMode::read_only);
  ASSERT_TRUE(m.ok());
  EXPECT_DEATH((void)t.pool->free(t.a), "free \\(still mapped\\) of handle .*busy");
}

TEST(MisuseDeathTest, CorrectUseDoesNotStop) {
  PoolWithObjects t;
  { auto m = t.pool->map(t.a, MapMode::read_write); }
  EXPECT_EQ(t.pool->write(t.a, pattern(9, 100)), Error::ok);
  EXPECT_EQ(t.pool->free(t.a), Error::ok);
  t.expect_b_intact();
}

#endif

}  // namespace
}  // namespace zspool
