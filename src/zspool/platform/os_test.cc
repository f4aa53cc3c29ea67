#include "zspool/platform/internal/os.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace zspool::os {
namespace {

constexpr std::uint64_t kGiB = std::uint64_t{1} << 30;
constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;

// A fake /proc and /sys/fs/cgroup in a temporary directory, for memory_budget's sources.
class MemoryBudgetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "zspool_budget_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    sources_.proc = dir_ + "/proc";
    sources_.root = dir_;
    sources_.physical = 64 * kGiB;
    sources_.address_space_limit = UINT64_MAX;
    put("proc/meminfo", "MemTotal:       67108864 kB\nMemAvailable:   33554432 kB\n");
    put("proc/self/status", "Name:\tzspool\nVmSize:\t  1048576 kB\nVmRSS:\t 1024 kB\n");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void put(const std::string& relative, const std::string& text) {
    const std::filesystem::path path = std::filesystem::path(dir_) / relative;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }

  std::string dir_;
  MemorySources sources_;
};

TEST_F(MemoryBudgetTest, AvailableMemoryBindsWithoutOtherLimits) {
  const MemoryBudget b = memory_budget(sources_);
  EXPECT_EQ(b.physical, 64 * kGiB);
  EXPECT_EQ(b.available, 32 * kGiB);
  EXPECT_FALSE(b.cgroup.has_value());
  EXPECT_FALSE(b.address_space.has_value());
  EXPECT_EQ(b.bytes, 32 * kGiB);
  EXPECT_STREQ(b.limited_by, "available memory (MemAvailable)");
}

// The 512 MiB cgroup that SIGKILLed `zspool replay --pages 700000000`: v2, nested, with the
// tighter limit on the parent and memory.high below memory.max on the leaf.
TEST_F(MemoryBudgetTest, CgroupV2LimitIsTheLeastHeadroomUpToTheMount) {
  put("proc/self/mountinfo",
      "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
      "31 23 0:27 / /proc rw - proc proc rw\n");
  put("proc/self/cgroup", "0::/box/job\n");
  put("sys/fs/cgroup/box/memory.max", std::to_string(512 * kMiB) + "\n");
  put("sys/fs/cgroup/box/memory.current", std::to_string(200 * kMiB) + "\n");
  put("sys/fs/cgroup/box/job/memory.max", "max\n");
  put("sys/fs/cgroup/box/job/memory.high", std::to_string(1 * kGiB) + "\n");
  put("sys/fs/cgroup/box/job/memory.current", std::to_string(100 * kMiB) + "\n");
  MemoryBudget b = memory_budget(sources_);
  EXPECT_EQ(b.cgroup, 312 * kMiB);  // the parent: 512 - 200
  EXPECT_EQ(b.bytes, 312 * kMiB);
  EXPECT_STREQ(b.limited_by, "the memory cgroup's limit");

  put("sys/fs/cgroup/box/job/memory.high", std::to_string(150 * kMiB) + "\n");
  EXPECT_EQ(memory_budget(sources_).cgroup, 50 * kMiB);  // the leaf's memory.high: 150 - 100

  put("sys/fs/cgroup/box/job/memory.current", std::to_string(300 * kMiB) + "\n");
  EXPECT_EQ(memory_budget(sources_).cgroup, 0u);  // over the limit: nothing left, not a wrap
}

// A container: its own cgroup mounted as the root of /sys/fs/cgroup, /proc/self/cgroup naming
// the full path; and cgroup v1's "no limit" value ignored in favour of the ancestor's.
TEST_F(MemoryBudgetTest, CgroupV1AndAContainersMountedRootAreFound) {
  put("proc/self/mountinfo",
      "35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
      "36 31 0:33 /docker/abc /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n");
  put("proc/self/cgroup", "9:cpu:/docker/abc\n4:memory:/docker/abc/inner\n");
  put("sys/fs/cgroup/memory/memory.limit_in_bytes", std::to_string(2 * kGiB) + "\n");
  put("sys/fs/cgroup/memory/memory.usage_in_bytes", std::to_string(kGiB / 2) + "\n");
  put("sys/fs/cgroup/memory/inner/memory.limit_in_bytes", "9223372036854771712\n");
  put("sys/fs/cgroup/memory/inner/memory.usage_in_bytes", std::to_string(kGiB / 4) + "\n");
  const MemoryBudget b = memory_budget(sources_);
  EXPECT_EQ(b.cgroup, 2 * kGiB - kGiB / 2);
  EXPECT_EQ(b.bytes, 2 * kGiB - kGiB / 2);
}

// `ulimit -v 1G` made `zspool run --max-bytes 0` throw std::bad_alloc.
TEST_F(MemoryBudgetTest, AddressSpaceLimitLessWhatIsMappedBinds) {
  sources_.address_space_limit = 2 * kGiB;  // VmSize in the fake status: 1 GiB
  MemoryBudget b = memory_budget(sources_);
  EXPECT_EQ(b.address_space, 1 * kGiB);
  EXPECT_EQ(b.bytes, 1 * kGiB);
  EXPECT_STREQ(b.limited_by, "the address-space limit (RLIMIT_AS, ulimit -v)");
  sources_.address_space_limit = kGiB / 2;  // already past it
  EXPECT_EQ(memory_budget(sources_).bytes, 0u);
}

TEST_F(MemoryBudgetTest, UnreadableSourcesAreIgnoredNotZero) {
  sources_.proc = dir_ + "/no-proc-here";
  sources_.physical = 0;  // unknown
  const MemoryBudget b = memory_budget(sources_);
  EXPECT_FALSE(b.physical || b.available || b.cgroup || b.address_space);
  EXPECT_EQ(b.bytes, UINT64_MAX);
}

// The running process: whatever the machine, the figure is positive and no more than physical
// memory.
TEST(MemoryBudget, TheRunningProcessHasAPositiveBudgetWithinPhysicalMemory) {
  const MemoryBudget b = memory_budget();
  ASSERT_TRUE(b.physical.has_value());
  EXPECT_GT(b.bytes, 0u);
  EXPECT_LE(b.bytes, *b.physical);
}

TEST(VirtualRange, GrowToKeepsALongEnoughRangeAndReplacesAShortOne) {
  const std::size_t ps = page_size();
  VirtualRange range(ps);
  ASSERT_TRUE(range.ok());
  std::byte* const first = range.base();
  first[0] = std::byte{1};
  EXPECT_TRUE(range.grow_to(ps / 2));
  EXPECT_EQ(range.base(), first);  // long enough: untouched
  EXPECT_EQ(range.base()[0], std::byte{1});
  EXPECT_TRUE(range.grow_to(3 * ps + 1));
  ASSERT_TRUE(range.ok());
  EXPECT_EQ(range.size(), 4 * ps);
  range.base()[range.size() - 1] = std::byte{2};  // the whole new range is writable
  VirtualRange empty;
  EXPECT_TRUE(empty.grow_to(1));
  EXPECT_EQ(empty.size(), ps);
}

}  // namespace
}  // namespace zspool::os
