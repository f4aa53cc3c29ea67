// DescriptorTable (internal/pool_state.h): free descriptors kept per class shard, shards > 0
// carving them in groups that own whole cache lines, and no capacity stranded on a shard's list.
#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <thread>
#include <vector>

#include "zspool/core/internal/pool_state.h"

namespace zspool {
namespace {

constexpr std::uintptr_t kLine = 64;

std::uintptr_t line_of(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p) / kLine;
}

TEST(DescriptorTable, ShardZeroTakesFreshDescriptorsOneAtATime) {
  DescriptorTable t(64, false);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t.id_of(t.allocate(0)), 1u) << "id 0 is never used";
  EXPECT_EQ(t.id_of(t.allocate(0)), 2u);
  EXPECT_EQ(t.id_of(t.allocate(0)), 3u);
}

TEST(DescriptorTable, AShardAboveZeroGetsAGroupWhoseCacheLinesNoOtherShardTouches) {
  DescriptorTable t(256, false);
  ASSERT_TRUE(t.ok());
  std::vector<ZsPage*> zero, one;
  for (int i = 0; i < 5; ++i) zero.push_back(t.allocate(0));
  for (std::uint32_t i = 0; i < DescriptorTable::kGroup; ++i) one.push_back(t.allocate(1));
  for (int i = 0; i < 20; ++i) zero.push_back(t.allocate(0));  // the skipped ids, then fresh
  std::set<std::uintptr_t> lines_one;
  for (ZsPage* z : one) {
    ASSERT_NE(z, nullptr);
    EXPECT_EQ(t.id_of(z) / DescriptorTable::kGroup, t.id_of(one[0]) / DescriptorTable::kGroup)
        << "one group";
    lines_one.insert(line_of(z));
    lines_one.insert(line_of(reinterpret_cast<const std::byte*>(z + 1) - 1));
  }
  for (ZsPage* z : zero) {
    ASSERT_NE(z, nullptr);
    EXPECT_FALSE(lines_one.count(line_of(z)) ||
                 lines_one.count(line_of(reinterpret_cast<const std::byte*>(z + 1) - 1)))
        << "shard 0's descriptor " << t.id_of(z) << " shares a cache line with shard 1's group";
  }
  std::set<std::uint32_t> ids;
  for (ZsPage* z : zero) ids.insert(t.id_of(z));
  for (ZsPage* z : one) ids.insert(t.id_of(z));
  EXPECT_EQ(ids.size(), zero.size() + one.size()) << "no descriptor handed out twice";
  EXPECT_EQ(*ids.rbegin(), ids.size()) << "the ids skipped to align the group were used first";
}

TEST(DescriptorTable, ReleasedDescriptorsGoBackToTheirShard) {
  DescriptorTable t(256, false);
  ZsPage* a = t.allocate(2);
  ZsPage* b = t.allocate(0);
  t.release(a, 2);
  t.release(b, 0);
  EXPECT_EQ(t.allocate(2), a);
  EXPECT_EQ(t.allocate(0), b);
}

TEST(DescriptorTable, CapacityIsNeverStrandedOnAnotherShardsList) {
  constexpr std::uint32_t kCapacity = 40;
  DescriptorTable t(kCapacity, false);
  std::vector<ZsPage*> taken;
  while (ZsPage* z = t.allocate(3)) taken.push_back(z);
  EXPECT_EQ(taken.size(), kCapacity - 1u) << "every id but 0, whatever the grouping";
  for (ZsPage* z : taken) t.release(z, 3);
  for (std::uint32_t i = 1; i < kCapacity; ++i)
    EXPECT_NE(t.allocate(i % 2), nullptr) << "shards 0 and 1 take shard 3's spares, #" << i;
  EXPECT_EQ(t.allocate(0), nullptr);
  EXPECT_EQ(t.allocate(1), nullptr);
}

TEST(DescriptorTable, ConcurrentShardsNeverShareADescriptor) {
  constexpr std::uint32_t kPerThread = 2000;
  DescriptorTable t(4 * kPerThread + 64, false);
  std::vector<std::vector<ZsPage*>> got(kClassShards);
  std::vector<std::thread> threads;
  for (std::uint32_t s = 0; s < kClassShards; ++s)
    threads.emplace_back([&, s] {
      std::vector<ZsPage*>& mine = got[s];
      for (std::uint32_t round = 0; round < 4; ++round) {
        for (std::uint32_t i = 0; i < kPerThread / 4; ++i) mine.push_back(t.allocate(s));
        for (std::uint32_t i = 0; i < kPerThread / 8; ++i) {
          t.release(mine.back(), s);
          mine.pop_back();
        }
      }
    });
  for (auto& th : threads) th.join();
  std::set<ZsPage*> all;
  std::size_t count = 0;
  for (const auto& mine : got)
    for (ZsPage* z : mine) {
      ASSERT_NE(z, nullptr);
      all.insert(z);
      ++count;
    }
  EXPECT_EQ(all.size(), count);
}

}  // namespace
}  // namespace zspool
