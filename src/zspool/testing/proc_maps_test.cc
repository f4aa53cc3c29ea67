#include "zspool/testing/proc_maps.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstdlib>

#include "zspool/platform/internal/os.h"

namespace zspool::os {
namespace {

TEST(CountMappings, SumsSpansAndSkipsSelfSizingMappings) {
  const auto census = count_mappings(
      "00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/dbus-daemon\n"
      "00e03000-00e24000 rw-p 00000000 00:00 0           [heap]\n"
      "7f0000000000-7f0000003000 rw-p 00000000 00:00 0 \n"
      "7ffc8a1d0000-7ffc8a1f1000 rw-p 00000000 00:00 0   [stack]\n"
      "7ffc8a1f2000-7ffc8a1f4000 r--p 00000000 00:00 0   [vvar]\n");
  ASSERT_TRUE(census.has_value());
  EXPECT_EQ(census->mappings, 2u);
  EXPECT_EQ(census->bytes, 0x52000u + 0x3000u);
}

TEST(CountMappings, GarbageIsNotACensus) {
  EXPECT_FALSE(count_mappings("not a maps line\n").has_value());
  EXPECT_FALSE(count_mappings("2000-1000 rw-p 0 0:0 0\n").has_value());
  EXPECT_EQ(count_mappings(""), MappingCensus{});
}

// A mapping made and not undone shows in the census: the leak checks built on it can fail.
TEST(CensusOfOwnMappings, SeesAMappingComeAndGo) {
  if (const std::string why = census_unreliable_reason(); !why.empty()) GTEST_SKIP() << why;
  const auto before = census_of_own_mappings();
  ASSERT_TRUE(before.has_value());
  {
    VirtualRange range(16 * page_size());
    ASSERT_TRUE(range.ok());
    const auto during = census_of_own_mappings();
    ASSERT_TRUE(during.has_value());
    EXPECT_EQ(during->bytes, before->bytes + 16 * page_size());
  }
  EXPECT_EQ(census_of_own_mappings(), before);
}

TEST(MappingLeakInChild, CatchesALeakTheBodysOwnFailureAndACrash) {
  EXPECT_EQ(mapping_leak_in_child([] { return std::string(); }), "");
  if (census_unreliable_reason().empty()) {
    const std::string leak = mapping_leak_in_child([] {
      new VirtualRange(4 * page_size());  // never unmapped
      return std::string();
    });
    EXPECT_NE(leak.find("bytes"), std::string::npos) << leak;
  }
  EXPECT_EQ(mapping_leak_in_child([] { return std::string("body said no"); }), "body said no");
  EXPECT_NE(mapping_leak_in_child([]() -> std::string { ::abort(); }).find("signal"),
            std::string::npos);
}

TEST(CensusUnreliableReason, NamesSanitizersAndPreloadedAllocators) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  EXPECT_NE(census_unreliable_reason().find("sanitizer"), std::string::npos);
#else
  const char* old = std::getenv("LD_PRELOAD");
  const std::string saved = old != nullptr ? old : "";
  ::setenv("LD_PRELOAD", "libjemalloc.so.2", 1);
  const std::string why = census_unreliable_reason();
  if (old != nullptr)
    ::setenv("LD_PRELOAD", saved.c_str(), 1);
  else
    ::unsetenv("LD_PRELOAD");
  EXPECT_NE(why.find("LD_PRELOAD"), std::string::npos) << why;
#endif
}

}  // namespace
}  // namespace zspool::os
