// Compaction under lazy commit: at most one partly-used zspage per class, condensed so that the
// pages past its last live object go back to the OS. Kernel-like pools (lazy_commit off) keep
// Linux's rule. The pool's page count is checked against the OS's own (mincore).
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "zspool/core/internal/sync_point.h"
#include "zspool/core/pool.h"
#include "zspool/platform/internal/os_page_source.h"
#include "zspool/testing/test_util.h"

namespace zspool {
namespace {

using test::matches;
using test::pattern;

constexpr std::size_t kOsPage = 4096;

struct Object {
  Handle handle;
  std::size_t size;
  std::uint64_t seed;
};

std::unique_ptr<Pool> make_pool(std::shared_ptr<PageSource> source, bool lazy = true) {
  auto p = Pool::create({.page_source = std::move(source), .lazy_commit = lazy});
  EXPECT_TRUE(p.ok());
  return std::move(*p);
}

Object put(Pool& pool, std::size_t size, std::uint64_t seed) {
  auto h = pool.malloc(size);
  EXPECT_TRUE(h.ok());
  if (!h) return {0, size, seed};
  EXPECT_EQ(pool.write(*h, pattern(seed, size)), Error::ok);
  return {*h, size, seed};
}

bool intact(Pool& pool, const Object& o) {
  std::vector<std::byte> got(o.size);
  return pool.read(o.handle, got) == Error::ok && matches(got, o.seed);
}

// The zspages of `cls` that are neither empty nor full.
std::uint64_t partly_used_zspages(const PoolStats& s, const SizeClass& cls) {
  for (const ClassStats& c : s.classes) {
    if (c.index != cls.index) continue;
    std::uint64_t n = 0;
    for (int g = kFullnessEmpty + 1; g < kFullnessFull; ++g) n += c.fullness[g];
    return n;
  }
  return 0;
}

// One 8-page zspage of 9 objects of 3632 bytes; objects 0..5 freed, 6..8 kept. Packed low, the
// three survivors reach ceil(3 * 3632 / 4096) = 3 pages, so 5 pages can go back to the OS.
struct HoleyZspage {
  static constexpr std::size_t kRequest = 3600;
  static constexpr std::uint32_t kKeptPages = 3;
  std::vector<Object> kept;
};

HoleyZspage make_holey_zspage(Pool& pool) {
  const SizeClass& cls = pool.classes().class_for_request(HoleyZspage::kRequest);
  EXPECT_EQ(cls.pages_per_zspage, 8u);
  EXPECT_EQ(cls.objs_per_zspage, 9u);
  std::vector<Object> all;
  for (std::uint32_t i = 0; i < cls.objs_per_zspage; ++i)
    all.push_back(put(pool, HoleyZspage::kRequest, i));
  EXPECT_EQ(pool.total_pages(), 8u);
  HoleyZspage z;
  for (std::uint32_t i = 0; i < all.size(); ++i) {
    if (i < 6) {
      EXPECT_EQ(pool.free(all[i].handle), Error::ok);
    } else {
      z.kept.push_back(all[i]);
    }
  }
  EXPECT_EQ(pool.total_pages(), 8u) << "holes in committed pages are still held";
  return z;
}

TEST(Condense, GivesThePagesPastTheLastLiveObjectBackToTheOS) {
  auto source = std::make_shared<OsPageSource>(0);
  auto pool = make_pool(source);
  HoleyZspage z = make_holey_zspage(*pool);
  EXPECT_EQ(pool->compact(), 8u - HoleyZspage::kKeptPages);
  EXPECT_EQ(pool->total_pages(), HoleyZspage::kKeptPages);
  EXPECT_EQ(pool->stats().pages_compacted, 8u - HoleyZspage::kKeptPages);
  EXPECT_EQ(source->resident_bytes(), pool->total_bytes()) << "mincore agrees with the pool";
  for (const Object& o : z.kept) EXPECT_TRUE(intact(*pool, o));
  // Refilling the zspage commits its pages again, and the OS still agrees.
  for (std::uint64_t i = 100; i < 106; ++i) z.kept.push_back(put(*pool, HoleyZspage::kRequest, i));
  EXPECT_EQ(pool->total_pages(), 8u);
  EXPECT_EQ(source->resident_bytes(), pool->total_bytes());
  for (const Object& o : z.kept) EXPECT_TRUE(intact(*pool, o));
  for (const Object& o : z.kept) ASSERT_EQ(pool->free(o.handle), Error::ok);
  EXPECT_EQ(pool->total_pages(), 0u);
  EXPECT_EQ(source->resident_bytes(), 0u);
}

TEST(Condense, SkipsAMappedZspageUntilItIsUnmapped) {
  auto source = std::make_shared<OsPageSource>(0);
  auto pool = make_pool(source);
  HoleyZspage z = make_holey_zspage(*pool);
  auto m = pool->map(z.kept.back().handle, MapMode::read_write);
  ASSERT_TRUE(m.ok());
  std::byte* where = m->data();
  EXPECT_EQ(pool->compact(), 0u);
  EXPECT_EQ(pool->total_pages(), 8u);
  EXPECT_EQ(m->data(), where);
  EXPECT_TRUE(matches(std::span(where, HoleyZspage::kRequest), z.kept.back().seed));
  m->reset();
  EXPECT_EQ(pool->compact(), 8u - HoleyZspage::kKeptPages);
  EXPECT_EQ(source->resident_bytes(), pool->total_bytes());
  for (const Object& o : z.kept) EXPECT_TRUE(intact(*pool, o));
}

TEST(Condense, KernelLikePoolsKeepEveryPage) {
  auto source = std::make_shared<OsPageSource>(0);
  auto pool = make_pool(source, /*lazy=*/false);
  HoleyZspage z = make_holey_zspage(*pool);
  EXPECT_EQ(pool->compact(), 0u);
  EXPECT_EQ(pool->total_pages(), 8u);
  EXPECT_EQ(source->resident_bytes(), pool->total_bytes());
  for (const Object& o : z.kept) EXPECT_TRUE(intact(*pool, o));
}

// 20 full zspages of one class (112 bytes, 256 objects in 7 pages), then 4 objects freed in each
// of the first 10: 40 free objects, fewer than one zspage holds, so Linux's rule does not
// compact. Lazy commit drains the holes into each other until one partly-used zspage is left
// and condenses it: its 40 holes (4480 bytes) cover at least one page.
TEST(Compaction, LeavesAtMostOnePartlyUsedZspagePerClassUnderLazyCommit) {
  constexpr std::uint32_t kHolesPerZspage = 4;
  for (bool lazy : {true, false}) {
    auto source = std::make_shared<OsPageSource>(0);
    auto pool = make_pool(source, lazy);
    const SizeClass& cls = pool->classes().class_for_request(100);
    ASSERT_EQ(cls.objs_per_zspage, 256u);
    std::vector<Object> objects;
    for (std::uint32_t i = 0; i < 20 * cls.objs_per_zspage; ++i)
      objects.push_back(put(*pool, 100, i));
    std::vector<Object> kept;
    for (std::uint32_t i = 0; i < objects.size(); ++i) {
      if (i % cls.objs_per_zspage < kHolesPerZspage && i < 10 * cls.objs_per_zspage) {
        ASSERT_EQ(pool->free(objects[i].handle), Error::ok);
      } else {
        kept.push_back(objects[i]);
      }
    }
    ASSERT_EQ(partly_used_zspages(pool->stats(), cls), 10u);
    const std::size_t before = pool->total_pages();
    const std::size_t freed = pool->compact();
    EXPECT_EQ(pool->total_pages(), before - freed) << "lazy " << lazy;
    if (lazy) {
      EXPECT_EQ(partly_used_zspages(pool->stats(), cls), 1u);
      EXPECT_EQ(freed, 1u) << "ceil((256 - 40) * 112 / 4096) = 6 of 7 pages";
    } else {
      EXPECT_EQ(partly_used_zspages(pool->stats(), cls), 10u) << "Linux's rule: nothing to do";
      EXPECT_EQ(freed, 0u);
    }
    EXPECT_EQ(source->resident_bytes(), pool->total_bytes()) << "lazy " << lazy;
    for (const Object& o : kept) ASSERT_TRUE(intact(*pool, o));
  }
}

// Random sizes and a random half freed: after compaction every class holds, under lazy commit,
// at most one partly-used zspage, and the pool's page count equals what the OS holds.
TEST(Compaction, PoolCountMatchesTheOSAfterCondensingEveryClass) {
  auto source = std::make_shared<OsPageSource>(0);
  auto pool = make_pool(source);
  test::Rng rng(21);
  std::vector<Object> kept;
  for (std::uint64_t i = 0; i < 20000; ++i) {
    Object o = put(*pool, 1 + rng.below(3000), i);
    if (rng.below(2)) {
      ASSERT_EQ(pool->free(o.handle), Error::ok);
    } else {
      kept.push_back(o);
    }
  }
  const std::size_t before = pool->total_pages();
  const std::size_t freed = pool->compact();
  EXPECT_EQ(pool->total_pages(), before - freed);
  EXPECT_EQ(source->resident_bytes(), pool->total_bytes());
  const PoolStats s = pool->stats();
  for (const ClassStats& c : s.classes) {
    if (c.huge) continue;
    std::uint64_t partial = 0;
    for (int g = kFullnessEmpty + 1; g < kFullnessFull; ++g) partial += c.fullness[g];
    EXPECT_LE(partial, 1u) << "class " << c.size;
    // The partly-used zspage holds no page its objects do not reach.
    if (partial == 1) {
      const std::uint64_t full = c.zspages - partial;
      const std::uint64_t partial_objs = c.obj_used - full * c.objs_per_zspage;
      const std::uint64_t reached = (partial_objs * c.size + kOsPage - 1) / kOsPage;
      EXPECT_EQ(c.pages_used, full * c.pages_per_zspage + reached) << "class " << c.size;
    }
  }
  for (const Object& o : kept) ASSERT_TRUE(intact(*pool, o));
}

// ── spill: a class's last page into the rooms of larger classes (lazy commit only) ──

// Class A (800-byte requests): one object more than its first page holds, so that object alone
// makes A hold a second page; class B, the next class up: one object, so its first page has room.
struct SpillSetup {
  const SizeClass* a = nullptr;
  const SizeClass* b = nullptr;
  std::vector<Object> in_a;  // the last one reaches A's second page
  Object in_b{};
};

SpillSetup make_spill_setup(Pool& pool) {
  SpillSetup s;
  s.a = &pool.classes().class_for_request(800);
  s.b = &pool.classes().at(s.a->index + 1u);
  EXPECT_FALSE(s.b->huge);
  const std::size_t on_first_page = kOsPage / s.a->size;
  for (std::size_t i = 0; i <= on_first_page; ++i) s.in_a.push_back(put(pool, 800, i));
  s.in_b = put(pool, s.b->capacity(), 1000);
  EXPECT_EQ(pool.total_pages(), 3u) << "A: 2 pages, B: 1";
  return s;
}

TEST(Spill, MovesTheObjectsOfAClassesLastPageIntoRoomInTheNextClassUp) {
  auto source = std::make_shared<OsPageSource>(0);
  auto pool = make_pool(source);
  SpillSetup s = make_spill_setup(*pool);
  const Object moved = s.in_a.back();
  EXPECT_EQ(*pool->capacity(moved.handle), s.a->capacity());
  EXPECT_EQ(pool->compact(), 1u) << "A's second page went back";
  EXPECT_EQ(pool->total_pages(), 2u);
  EXPECT_EQ(source->resident_bytes(), pool->total_bytes()) << "mincore agrees with the pool";
  EXPECT_EQ(*pool->capacity(moved.handle), s.b->capacity()) << "it lives in B now";
  EXPECT_EQ(*pool->capacity(s.in_a.front().handle), s.a->capacity()) << "the others stay";
  for (const Object& o : s.in_a) EXPECT_TRUE(intact(*pool, o));
  EXPECT_TRUE(intact(*pool, s.in_b));
  const PoolStats st = pool->stats();
  EXPECT_EQ(st.classes[s.b->index].obj_used, 2u);
  EXPECT_EQ(st.classes[s.a->index].obj_used, s.in_a.size() - 1);
  // The moved handle works as any other: written, read, freed once (then stale).
  EXPECT_EQ(pool->write(moved.handle, pattern(77, 800)), Error::ok);
  EXPECT_TRUE(intact(*pool, {moved.handle, 800, 77}));
  EXPECT_EQ(pool->free(moved.handle), Error::ok);
#ifndef ZSPOOL_CHECKED  // a checked build stops at the double free
  EXPECT_EQ(pool->free(moved.handle), Error::stale_handle);
#endif
  for (std::size_t i = 0; i + 1 < s.in_a.size(); ++i)
    ASSERT_EQ(pool->free(s.in_a[i].handle), Error::ok);
  ASSERT_EQ(pool->free(s.in_b.handle), Error::ok);
  EXPECT_EQ(pool->total_pages(), 0u);
  EXPECT_EQ(pool->stats().objects, 0u);
  EXPECT_EQ(source->resident_bytes(), 0u);
}

TEST(Spill, KernelLikePoolsKeepTheKernelsClasses) {
  auto source = std::make_shared<OsPageSource>(0);
  auto pool = make_pool(source, /*lazy=*/false);
  const SizeClass& a = pool->classes().class_for_request(800);
  std::vector<Object> objects;
  for (std::size_t i = 0; i <= kOsPage / a.size; ++i) objects.push_back(put(*pool, 800, i));
  objects.push_back(put(*pool, pool->classes().at(a.index + 1u).capacity(), 1000));
  EXPECT_EQ(pool->compact(), 0u);
  EXPECT_EQ(*pool->capacity(objects[objects.size() - 2].handle), a.capacity());
  for (const Object& o : objects) EXPECT_TRUE(intact(*pool, o));
}

TEST(Spill, NeverMovesAMappedZspage) {
  auto source = std::make_shared<OsPageSource>(0);
  auto pool = make_pool(source);
  SpillSetup s = make_spill_setup(*pool);
  auto m = pool->map(s.in_a.back().handle, MapMode::read_only);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(pool->compact(), 0u);
  EXPECT_EQ(*pool->capacity(s.in_a.back().handle), s.a->capacity());
  m->reset();
  EXPECT_EQ(pool->compact(), 1u);
  for (const Object& o : s.in_a) EXPECT_TRUE(intact(*pool, o));
}

// Only whole pages: if the rooms above cannot take every object reaching the last page, nothing
// moves. Here A's last page holds two objects and the four classes above have room for one.
TEST(Spill, MovesNothingUnlessTheRoomsTakeTheWholeLastPage) {
  auto source = std::make_shared<OsPageSource>(0);
  auto pool = make_pool(source);
  const SizeClass& a = pool->classes().class_for_request(800);
  std::vector<Object> in_a, objects;
  for (std::size_t i = 0; i <= kOsPage / a.size + 1; ++i) in_a.push_back(put(*pool, 800, i));
  for (std::uint32_t k = 1; k <= 4; ++k) {  // B's first page one object short, the others full
    const SizeClass& up = pool->classes().at(a.index + k);
    for (std::size_t i = 0; i < kOsPage / up.size - (k == 1 ? 1 : 0); ++i)
      objects.push_back(put(*pool, up.capacity(), 100 * k + i));
  }
  const std::size_t before = pool->total_pages();
  EXPECT_EQ(pool->compact(), 0u);
  EXPECT_EQ(pool->total_pages(), before);
  for (const Object& o : in_a) EXPECT_EQ(*pool->capacity(o.handle), a.capacity()) << "none moved";
  for (const Object& o : in_a) EXPECT_TRUE(intact(*pool, o));
  for (const Object& o : objects) EXPECT_TRUE(intact(*pool, o));
}

// A free that looked up its object's class just before compaction spilled the object into a
// larger class follows it there (lock_object re-reads the slot under the lock it took).
TEST(Spill, AFreeFollowsAnObjectSpilledWhileItWaited) {
  if (!testing::sync_points_enabled()) GTEST_SKIP() << "needs sync points";
  auto source = std::make_shared<OsPageSource>(0);
  auto pool = make_pool(source);
  SpillSetup s = make_spill_setup(*pool);
  const Handle moving = s.in_a.back().handle;
  bool compacted = false;
  testing::set_sync_point("lock_object.state_read", [&](std::uint64_t h) {
    if (h != moving || compacted) return;
    compacted = true;
    std::thread([&] { EXPECT_EQ(pool->compact(), 1u); }).join();  // A -> B, under our feet
  });
  const Error freed = pool->free(moving);
  testing::clear_sync_points();
  ASSERT_TRUE(compacted);
  EXPECT_EQ(freed, Error::ok);
  EXPECT_EQ(pool->stats().classes[s.b->index].obj_used, 1u) << "freed from B, where it lived";
#ifndef ZSPOOL_CHECKED
  EXPECT_EQ(pool->free(moving), Error::stale_handle);
#endif
  for (std::size_t i = 0; i + 1 < s.in_a.size(); ++i) EXPECT_TRUE(intact(*pool, s.in_a[i]));
}

}  // namespace
}  // namespace zspool
