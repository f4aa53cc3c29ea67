// Writeback: reclaim through the evict handler, deferred handles, restore_freelist.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <stdexcept>
#include <thread>

#include "zspool/core/internal/sync_point.h"
#include "zspool/core/pool.h"
#include "zspool/testing/test_util.h"

namespace zspool {
namespace {

using test::matches;
using test::pattern;

struct Object {
  std::size_t size;
  std::uint64_t seed;
};

// A pool whose evict handler copies each object into `evicted` and frees it, unless `fail_on`
// says otherwise. It records what it saw so tests can check every byte.
class WritebackFixture : public ::testing::Test {
 protected:
  void SetUp() override { make_pool({}); }
  void TearDown() override { testing::clear_sync_points(); }

  void make_pool(PoolOptions o) {
    o.evict = [this](Pool& p, Handle h) { return evict(p, h); };
    pool = std::move(*Pool::create(std::move(o)));
  }

  Error evict(Pool& p, Handle h) {
    ++evict_calls;
    if (fail_on && fail_on(h)) return Error::evict_failed;
    auto it = live.find(h);
    EXPECT_NE(it, live.end()) << "evict of a handle the test does not own: " << h;
    if (it == live.end()) return Error::evict_failed;
    std::vector<std::byte> copy(it->second.size);
    const Error e = p.read(h, copy);
    EXPECT_EQ(e, Error::ok) << "handler could not read handle " << h;
    if (e != Error::ok) return Error::evict_failed;
    const bool intact = matches(copy, it->second.seed);
    EXPECT_TRUE(intact) << "handler saw wrong contents through handle " << h;
    if (intact) ++intact_reads;
    evicted[h] = it->second;
    live.erase(it);
    // An owner frees what it evicted, unless it already freed it meanwhile (then the object is
    // gone from its view, as a zswap entry would be).
    if (freed_mid_reclaim.count(h) == 0) {
      EXPECT_EQ(p.free(h), Error::ok);
    }
    return Error::ok;
  }

  Handle alloc(std::size_t size) {
    Handle h = *pool->malloc(size);
    const std::uint64_t seed = ++next_seed;
    EXPECT_EQ(pool->write(h, pattern(seed, size)), Error::ok);
    live[h] = {size, seed};
    return h;
  }

  void expect_live_intact() {
    for (auto& [h, o] : live) {
      std::vector<std::byte> got(o.size);
      ASSERT_EQ(pool->read(h, got), Error::ok) << h;
      ASSERT_TRUE(matches(got, o.seed)) << h;
    }
  }

  std::unique_ptr<Pool> pool;
  std::map<Handle, Object> live;
  std::map<Handle, Object> evicted;
  std::set<Handle> freed_mid_reclaim;
  std::function<bool(Handle)> fail_on;
  std::uint64_t next_seed = 0;
  int evict_calls = 0;
  int intact_reads = 0;
};

// The seed's race, forced: reclaim has read handle A from A's header and not yet called the
// handler; another thread frees A, and also B of the same zspage; then the handler runs and must
// still reach A's original contents through A's handle. Under the pre-fix design (deferred
// handles chained through the handle slots; build with -DZSPOOL_PREFIX_RACE=ON) free(A)
// overwrites A's slot and this test fails.
TEST_F(WritebackFixture, SeedRaceFreeBetweenHandleReadAndEvict) {
  ASSERT_TRUE(testing::sync_points_enabled()) << "core tests need the sync-point build";
  std::vector<Handle> hs;
  for (int i = 0; i < 8; ++i) hs.push_back(alloc(500));
  ASSERT_EQ(pool->total_pages(), pool->classes().class_for_request(500).pages_per_zspage);
  const Handle a = hs[0], b = hs[5];
  bool raced = false;
  testing::set_sync_point("reclaim.handle_read", [&](std::uint64_t h) {
    if (h != a || raced) return;
    raced = true;
    std::thread other([&] {
      EXPECT_EQ(pool->free(a), Error::ok);
      EXPECT_EQ(pool->free(b), Error::ok);
    });
    other.join();
    freed_mid_reclaim.insert(a);
    live.erase(b);  // B was freed by its owner before reclaim reached it: never evicted
  });
  const Object a_obj = live[a];
  ASSERT_EQ(pool->reclaim_page(1), Error::ok);
  EXPECT_TRUE(raced);
  ASSERT_EQ(evicted.count(a), 1u) << "the handler ran for A";
  EXPECT_EQ(evicted[a].seed, a_obj.seed);
  EXPECT_EQ(intact_reads, 7) << "A and the six others read intact; B was skipped";
  EXPECT_EQ(evicted.count(b), 0u);
  auto s = pool->stats();
  EXPECT_EQ(s.deferred_handles_created, 8u) << "A, B, and the six freed by the handler";
  EXPECT_EQ(s.deferred_handles_released, 8u);
  EXPECT_EQ(s.zspages_reclaimed, 1u);
  EXPECT_EQ(pool->total_pages(), 0u);
  EXPECT_EQ(s.handle_slots_in_use, 0u);
#ifndef ZSPOOL_CHECKED
  EXPECT_EQ(pool->free(a), Error::stale_handle) << "released handle: double free detected";
#endif
}

// Eviction fails at the first, a middle, or the last object; objects are freed before reclaim
// and during it. Afterwards: every survivor reads back, the freelist is whole, no slot leaked.
class ReclaimFailure : public WritebackFixture, public ::testing::WithParamInterface<int> {};

TEST_P(ReclaimFailure, RestoresTheZspage) {
  const std::size_t size = 700;
  const SizeClass& cls = pool->classes().class_for_request(size);
  const std::uint32_t objs = cls.objs_per_zspage;
  ASSERT_GE(objs, 6u);
  std::vector<Handle> hs;
  for (std::uint32_t i = 0; i < objs; ++i) hs.push_back(alloc(size));
  ASSERT_EQ(pool->total_pages(), cls.pages_per_zspage);
  // Freed before reclaim: objects 1 and objs-2 (never evicted, stay on the freelist).
  for (std::uint32_t i : {1u, objs - 2}) {
    ASSERT_EQ(pool->free(hs[i]), Error::ok);
    live.erase(hs[i]);
  }
  std::vector<Handle> allocated_order;
  for (Handle h : hs)
    if (live.count(h)) allocated_order.push_back(h);
  const int where = GetParam();  // 0 first, 1 middle, 2 last allocated object
  const Handle failing = where == 0   ? allocated_order.front()
                         : where == 1 ? allocated_order[allocated_order.size() / 2]
                                      : allocated_order.back();
  // Freed during reclaim by another thread, before the walk reaches it (unless it is first).
  const Handle freed_during = where == 2 ? allocated_order[1] : allocated_order.back();
  bool freed_it = false;
  testing::set_sync_point("reclaim.handle_read", [&](std::uint64_t) {
    if (freed_it || freed_during == failing) return;
    freed_it = true;
    std::thread([&] { EXPECT_EQ(pool->free(freed_during), Error::ok); }).join();
    live.erase(freed_during);
  });
  fail_on = [&](Handle h) { return h == failing; };
  EXPECT_EQ(pool->reclaim_page(1), Error::evict_failed);
  EXPECT_TRUE(freed_it);

  expect_live_intact();
  auto s = pool->stats();
  EXPECT_EQ(s.handle_slots_in_use, live.size()) << "deferred handles were released";
  EXPECT_EQ(s.deferred_handles_created, s.deferred_handles_released);
  EXPECT_EQ(s.objects, live.size());
  EXPECT_EQ(s.evict_failures, 1u);
  EXPECT_EQ(pool->total_pages(), cls.pages_per_zspage) << "the zspage stayed";
  // The freelist is whole: the zspage takes exactly objs - live more objects.
  const std::size_t room = objs - live.size();
  for (std::size_t i = 0; i < room; ++i) alloc(size);
  EXPECT_EQ(pool->total_pages(), cls.pages_per_zspage) << "refilled without a new zspage";
  alloc(size);
  EXPECT_GT(pool->total_pages(), cls.pages_per_zspage) << "the next object opens a new zspage";
  EXPECT_EQ(pool->stats().classes[cls.index].zspages, 2u);
  expect_live_intact();
  // And it can still be reclaimed for real.
  fail_on = nullptr;
  const std::size_t held = pool->total_pages();
  EXPECT_EQ(pool->shrink(held), held);
  EXPECT_TRUE(live.empty());
  EXPECT_EQ(pool->total_pages(), 0u);
  EXPECT_EQ(pool->stats().handle_slots_in_use, 0u);
}

INSTANTIATE_TEST_SUITE_P(FirstMiddleLast, ReclaimFailure, ::testing::Values(0, 1, 2));

TEST_F(WritebackFixture, HugeZspageReclaimSucceedsAndFails) {
  Handle h1 = alloc(4096);
  Handle h2 = alloc(4000);
  ASSERT_EQ(pool->total_pages(), 2u);
  fail_on = [&](Handle h) { return h == h1; };  // h1 is the LRU tail (allocated first)
  EXPECT_EQ(pool->reclaim_page(1), Error::evict_failed);
  expect_live_intact();
  EXPECT_EQ(pool->total_pages(), 2u);
  // h1's zspage went back to the LRU head; h2 is now the tail and is reclaimed.
  EXPECT_EQ(pool->reclaim_page(1), Error::ok);
  EXPECT_EQ(evicted.count(h2), 1u);
  fail_on = nullptr;
  EXPECT_EQ(pool->reclaim_page(1), Error::ok);
  EXPECT_EQ(evicted.count(h1), 1u);
  EXPECT_EQ(pool->total_pages(), 0u);
  EXPECT_EQ(pool->stats().handle_slots_in_use, 0u);
  EXPECT_EQ(pool->reclaim_page(1), Error::not_found);
}

TEST_F(WritebackFixture, HugeObjectFreedMidReclaimIsDeferred) {
  Handle h = alloc(4096);
  testing::set_sync_point("reclaim.handle_read", [&](std::uint64_t) {
    std::thread([&] { EXPECT_EQ(pool->free(h), Error::ok); }).join();
    freed_mid_reclaim.insert(h);
  });
  EXPECT_EQ(pool->reclaim_page(1), Error::ok);
  EXPECT_EQ(evicted.count(h), 1u);
  EXPECT_EQ(intact_reads, 1);
  EXPECT_EQ(pool->stats().handle_slots_in_use, 0u);
}

TEST_F(WritebackFixture, ThrowingHandlerIsAFailedEviction) {
  pool = std::move(*Pool::create(
      {.evict = [](Pool&, Handle) -> Error { throw std::runtime_error("disk on fire"); }}));
  Handle h = *pool->malloc(100);
  ASSERT_EQ(pool->write(h, pattern(3, 100)), Error::ok);
  EXPECT_EQ(pool->reclaim_page(3), Error::evict_failed);
  std::vector<std::byte> got(100);
  ASSERT_EQ(pool->read(h, got), Error::ok);
  EXPECT_TRUE(matches(got, 3));
  EXPECT_EQ(pool->stats().evict_failures, 3u) << "the one zspage was retried three times";
}

TEST_F(WritebackFixture, RetriesMoveOnToTheNextZspage) {
  std::vector<Handle> small;
  for (int i = 0; i < 4; ++i) small.push_back(alloc(100));
  Handle big = alloc(3000);
  fail_on = [&](Handle h) { return h == small[0]; };
  EXPECT_EQ(pool->reclaim_page(2), Error::ok) << "first zspage fails, the second is reclaimed";
  EXPECT_EQ(evicted.count(big), 1u);
  for (Handle h : small) EXPECT_EQ(evicted.count(h), 0u);
  expect_live_intact();
}

TEST(Writeback, NeedsAnEvictHandler) {
  auto pool = std::move(*Pool::create({}));
  EXPECT_EQ(pool->reclaim_page(1), Error::unsupported);
  EXPECT_EQ(pool->shrink(10), 0u);
}

TEST_F(WritebackFixture, LruOrderFollowsAllocation) {
  Handle a = alloc(100);   // zspage of class 112
  Handle b = alloc(1000);  // zspage of class 1008
  alloc(100);              // touches a's zspage again: b's zspage is now the coldest
  ASSERT_EQ(pool->reclaim_page(1), Error::ok);
  EXPECT_EQ(evicted.count(b), 1u);
  EXPECT_EQ(evicted.count(a), 0u);
}

}  // namespace
}  // namespace zspool
