#include "zspool/platform/internal/spin_mutex.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace zspool {
namespace {

// More threads than this machine has cores, each adding to counters that only the lock
// protects, with a read-modify-write of several words per section so that two holders at once
// would lose updates or leave the words unequal. (Run under TSan in CI, which also reports any
// section that the lock failed to order.)
TEST(SpinThenBlockMutex, ExcludesOversubscribedThreads) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 50'000;
  SpinThenBlockMutex m;
  std::uint64_t a = 0, b = 0;
  std::uint64_t mismatches = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kRounds; ++i) {
        std::lock_guard lock(m);
        const std::uint64_t seen = a;
        if (b != seen) ++mismatches;
        a = seen + 1;
        std::this_thread::yield();  // widen the section: a second holder would get in here
        b = seen + 1;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(a, std::uint64_t{kThreads} * kRounds);
  EXPECT_EQ(b, a);
  EXPECT_EQ(mismatches, 0u);
}

TEST(SpinThenBlockMutex, TryLockFailsWhileHeldAndSucceedsAfter) {
  SpinThenBlockMutex m;
  m.lock();
  bool got = true;
  std::thread([&] { got = m.try_lock(); }).join();
  EXPECT_FALSE(got);
  m.unlock();
  std::thread([&] {
    got = m.try_lock();
    if (got) m.unlock();
  }).join();
  EXPECT_TRUE(got);
}

// A holder that keeps the lock well past the spinning and yielding phases: the waiter goes to
// its sleeping backoff, still gets the lock once it is released, and sees the holder's writes.
TEST(SpinThenBlockMutex, AWaiterOutlastsALongHoldAndSeesItsWrites) {
  SpinThenBlockMutex m;
  int value = 0;
  m.lock();
  std::thread waiter([&] {
    std::lock_guard lock(m);
    value += 1;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  value = 41;
  m.unlock();
  waiter.join();
  std::lock_guard lock(m);
  EXPECT_EQ(value, 42);
}

}  // namespace
}  // namespace zspool
