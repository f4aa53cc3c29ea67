#include "zspool/platform/internal/per_cpu.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <thread>
#include <vector>

namespace zspool {
namespace {

TEST(PerCpu, HasOneSlotPerCpuAndAtLeastOne) {
  EXPECT_EQ(PerCpu<int>(4).slot_count(), 4u);
  EXPECT_EQ(PerCpu<int>(1).slot_count(), 1u);
  EXPECT_EQ(PerCpu<int>(0).slot_count(), 1u);
  EXPECT_EQ(PerCpu<int>().slot_count(), os::cpu_count());
  EXPECT_GE(os::cpu_count(), 1u);
}

TEST(PerCpu, ASlotKeepsWhatItsHolderMadeForTheNextHolder) {
  PerCpu<std::unique_ptr<int>> cache(1);
  {
    auto lease = cache.acquire();
    EXPECT_EQ(*lease, nullptr);  // nothing made yet
    *lease = std::make_unique<int>(7);
  }
  auto lease = cache.acquire();
  ASSERT_NE(*lease, nullptr);
  EXPECT_EQ(**lease, 7);
}

// Leases held at once by one thread take distinct slots (never the same T twice).
TEST(PerCpu, LeasesHeldAtOnceGetDistinctSlots) {
  PerCpu<int> cache(3);
  {
    auto a = cache.acquire();
    auto b = cache.acquire();
    auto c = cache.acquire();
    *a = 1;
    *b = 2;
    *c = 3;
    EXPECT_NE(&*a, &*b);
    EXPECT_NE(&*b, &*c);
    EXPECT_NE(&*a, &*c);
  }
  std::multiset<int> seen;
  cache.for_each_idle([&](int& v) { seen.insert(v); });
  EXPECT_EQ(seen, (std::multiset<int>{1, 2, 3}));
  EXPECT_EQ(cache.waits(), 0u);
}

TEST(PerCpu, ForEachIdleSkipsALentSlot) {
  PerCpu<int> cache(2);
  auto held = cache.acquire();
  *held = 5;
  int visited = 0;
  cache.for_each_idle([&](int& v) {
    ++visited;
    EXPECT_NE(&v, &*held);
  });
  EXPECT_EQ(visited, 1);
}

// With every slot taken, acquire() waits (it never hands out a taken slot) and gets the slot
// once it is released.
TEST(PerCpu, WhenEverySlotIsTakenAcquireWaitsForARelease) {
  PerCpu<int> cache(1);
  std::atomic<bool> acquired{false};
  std::thread waiter;
  {
    auto held = cache.acquire();
    *held = 41;
    waiter = std::thread([&] {
      auto lease = cache.acquire();
      acquired.store(true);
      *lease += 1;
    });
    // However long this thread waits here, the waiter cannot have the slot.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_FALSE(acquired.load());
  }
  waiter.join();
  EXPECT_TRUE(acquired.load());
  EXPECT_EQ(cache.waits(), 1u);
  auto lease = cache.acquire();
  EXPECT_EQ(*lease, 42);
}

// Many threads, few slots: a slot's T is only ever used by one holder at a time (the plain
// counters below would be a data race for TSan otherwise), and every lease is counted once.
TEST(PerCpu, ConcurrentLeasesNeverShareASlot) {
  struct Work {
    int holders = 0;
    std::uint64_t uses = 0;
  };
  constexpr int kThreads = 8;
  constexpr int kLeases = 20'000;
  PerCpu<Work> cache(2);
  std::atomic<int> overlaps{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kLeases; ++i) {
        auto lease = cache.acquire();
        if (++lease->holders != 1) overlaps.fetch_add(1);
        ++lease->uses;
        --lease->holders;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(overlaps.load(), 0);
  std::uint64_t uses = 0;
  cache.for_each_idle([&](Work& w) { uses += w.uses; });
  EXPECT_EQ(uses, std::uint64_t{kThreads} * kLeases);
}

}  // namespace
}  // namespace zspool
