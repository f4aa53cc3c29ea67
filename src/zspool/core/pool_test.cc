#include "zspool/core/pool.h"
#include "zspool/platform/internal/os_page_source.h"
#include "zspool/testing/failing_page_source.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "zspool/testing/test_util.h"

namespace zspool {
namespace {

using test::matches;
using test::pattern;
using test::Rng;

std::unique_ptr<Pool> make_pool(PoolOptions o = {}) {
  auto p = Pool::create(std::move(o));
  EXPECT_TRUE(p.ok());
  return std::move(*p);
}

Handle alloc_filled(Pool& pool, std::size_t size, std::uint64_t seed) {
  auto h = pool.malloc(size);
  EXPECT_TRUE(h.ok()) << "malloc(" << size << "): " << error_name(h.error());
  if (!h) return 0;
  EXPECT_EQ(pool.write(*h, pattern(seed, size)), Error::ok);
  return *h;
}

bool holds(Pool& pool, Handle h, std::size_t size, std::uint64_t seed) {
  std::vector<std::byte> got(size);
  if (pool.read(h, got) != Error::ok) return false;
  return matches(got, seed);
}

TEST(Pool, RejectsBadRequests) {
  ZSPOOL_RELEASE_BUILD_ONLY();
  auto pool = make_pool();
  EXPECT_EQ(pool->malloc(0).error(), Error::invalid_argument);
  EXPECT_EQ(pool->malloc(4097).error(), Error::too_large);
  EXPECT_EQ(pool->free(0), Error::invalid_handle);
  EXPECT_EQ(pool->free(12345678), Error::invalid_handle);
  EXPECT_EQ(Pool::create({.page_size = 3000}).error(), Error::invalid_argument);
  EXPECT_EQ(Pool::create({.max_chain = 17}).error(), Error::invalid_argument);
  EXPECT_EQ(pool->total_pages(), 0u);
}

TEST(Pool, DoubleFreeAndStaleHandlesAreErrorsNotCorruption) {
  ZSPOOL_RELEASE_BUILD_ONLY();
  auto pool = make_pool();
  Handle a = alloc_filled(*pool, 100, 1);
  Handle b = alloc_filled(*pool, 100, 2);
  ASSERT_EQ(pool->free(a), Error::ok);
  EXPECT_EQ(pool->free(a), Error::stale_handle);
  EXPECT_EQ(pool->map(a, MapMode::read_only).error(), Error::stale_handle);
  std::vector<std::byte> buf(10);
  EXPECT_EQ(pool->read(a, buf), Error::stale_handle);
  EXPECT_TRUE(holds(*pool, b, 100, 2));
}

TEST(Pool, CopyAccessIsBoundedByCapacity) {
  ZSPOOL_RELEASE_BUILD_ONLY();
  auto pool = make_pool();
  Handle h = alloc_filled(*pool, 100, 7);
  const std::size_t cap = *pool->capacity(h);
  EXPECT_GE(cap, 100u);
  std::vector<std::byte> big(cap + 1);
  EXPECT_EQ(pool->write(h, big), Error::out_of_bounds);
  EXPECT_EQ(pool->read(h, std::span(big).first(1), cap), Error::out_of_bounds);
  EXPECT_EQ(pool->read(h, std::span(big).first(0), cap), Error::ok);
  EXPECT_TRUE(holds(*pool, h, 100, 7)) << "a refused write must change nothing";
}

// Every class, at its smallest and largest request, for 4 KiB and 64 KiB pages; enough objects
// per class to fill more than one zspage, so objects straddle page boundaries.
void round_trip_every_class(std::uint32_t page_size) {
  auto pool = make_pool({.page_size = page_size});
  const auto classes = pool->classes().classes();
  std::vector<std::tuple<Handle, std::size_t, std::uint64_t>> live;
  std::size_t straddlers = 0;
  std::uint64_t seed = 0;
  std::size_t prev_capacity = 0;
  for (const SizeClass& c : classes) {
    const std::size_t sizes[] = {prev_capacity + 1, c.capacity()};
    prev_capacity = c.capacity();
    const std::size_t n = std::min<std::size_t>(c.objs_per_zspage + 1, 200);
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t size = sizes[i % 2];
      Handle h = alloc_filled(*pool, size, ++seed);
      ASSERT_NE(h, 0u);
      auto m = pool->map(h, MapMode::read_only);
      ASSERT_TRUE(m.ok());
      ASSERT_EQ(m->size(), c.capacity());
      auto start = reinterpret_cast<std::uintptr_t>(m->data());
      if (start / page_size != (start + size - 1) / page_size) ++straddlers;
      ASSERT_TRUE(matches(std::span(m->data(), size), seed));
      live.emplace_back(h, size, seed);
    }
  }
  EXPECT_GT(straddlers, 100u) << "objects straddling a page boundary must be exercised";
  for (auto& [h, size, s] : live) ASSERT_TRUE(holds(*pool, h, size, s));
  for (auto& [h, size, s] : live) ASSERT_EQ(pool->free(h), Error::ok);
  EXPECT_EQ(pool->total_pages(), 0u);
}

TEST(Pool, RoundTripsThroughEveryClass4K) {
  round_trip_every_class(4096);
}
TEST(Pool, RoundTripsThroughEveryClass64K) {
  round_trip_every_class(65536);
}
TEST(Pool, RoundTripsThroughEveryClass16K) {
  round_trip_every_class(16384);
}

// malloc_copy(data) leaves the pool as malloc(data.size()) + write(h, data) would: the same
// bytes in an object of the same class, for every size from 1 byte to a huge (headerless) page.
TEST(Pool, MallocCopyStoresTheBytesAsMallocThenWriteWould) {
  auto copied = make_pool();
  auto written = make_pool();
  std::vector<std::tuple<Handle, std::size_t, std::uint64_t>> live;
  for (std::size_t size : {std::size_t{1}, std::size_t{8}, std::size_t{100}, std::size_t{2000},
                           std::size_t{copied->huge_class_size()}, std::size_t{4096}}) {
    for (std::uint64_t seed = 0; seed < 40; ++seed) {
      const std::vector<std::byte> data = pattern(seed * 7919 + size, size);
      auto h = copied->malloc_copy(data);
      ASSERT_TRUE(h.ok()) << size << ": " << error_name(h.error());
      EXPECT_EQ(*copied->capacity(*h), copied->classes().class_for_request(size).capacity());
      alloc_filled(*written, size, seed * 7919 + size);
      live.emplace_back(*h, size, seed * 7919 + size);
    }
  }
  for (auto& [h, size, seed] : live) ASSERT_TRUE(holds(*copied, h, size, seed)) << size;
  EXPECT_EQ(copied->total_pages(), written->total_pages());
  EXPECT_EQ(copied->stats().objects, written->stats().objects);
  for (auto& [h, size, seed] : live) ASSERT_EQ(copied->free(h), Error::ok);
  EXPECT_EQ(copied->total_pages(), 0u);
}

TEST(Pool, MallocCopyRejectsWhatMallocRejects) {
  auto pool = make_pool();
  EXPECT_EQ(pool->malloc_copy({}).error(), Error::invalid_argument);
  const std::vector<std::byte> big(4097);
  EXPECT_EQ(pool->malloc_copy(big).error(), Error::too_large);
  EXPECT_EQ(pool->stats().handle_slots_in_use, 0u);
}

// malloc_copy's budget of new pages: within it the object is stored; past it nothing is
// allocated or committed (not a new zspage, not a page the frontier has not reached), and room
// the pool already counts (a freed slot, the rest of a reached page) costs nothing.
TEST(Pool, MallocCopyWithinABudgetOfNewPagesCommitsNothingPastIt) {
  auto pool = make_pool();
  const std::vector<std::byte> data = pattern(5, 1500);  // 2.7 objects a 4 KiB page
  EXPECT_EQ(pool->malloc_copy(data, 0).error(), Error::limit_reached) << "a new zspage";
  EXPECT_EQ(pool->total_pages(), 0u);
  std::uint64_t zspages = 0;
  for (const auto& c : pool->stats().classes) zspages += c.zspages;
  EXPECT_EQ(zspages, 0u) << "the zspage made for it is gone";
  EXPECT_EQ(pool->stats().handle_slots_in_use, 0u);
  EXPECT_EQ(pool->stats().alloc_failures, 0u) << "a refusal, not an allocation failure";

  std::vector<Handle> held;
  while (pool->total_pages() < 3) {  // the frontier reaches a page at a time
    auto h = pool->malloc_copy(data, 1);
    ASSERT_TRUE(h.ok()) << error_name(h.error());
    held.push_back(*h);
  }
  const std::size_t pages = pool->total_pages();
  std::size_t refused = 0;
  for (int i = 0; i < 8; ++i) {
    auto h = pool->malloc_copy(data, 0);
    if (h.ok()) {
      held.push_back(*h);
      EXPECT_EQ(pool->total_pages(), pages) << "budget 0 took a page";
    } else {
      EXPECT_EQ(h.error(), Error::limit_reached);
      ++refused;
    }
  }
  EXPECT_GT(refused, 0u) << "the frontier's room ran out";
  EXPECT_EQ(pool->total_pages(), pages);
  const Handle freed = held[0];
  ASSERT_EQ(pool->free(freed), Error::ok);
  auto again = pool->malloc_copy(data, 0);
  ASSERT_TRUE(again.ok()) << "a freed slot costs no new page";
  EXPECT_TRUE(holds(*pool, *again, data.size(), 5));
  held[0] = *again;
  for (Handle h : held) ASSERT_EQ(pool->free(h), Error::ok);
  EXPECT_EQ(pool->total_pages(), 0u);
}

TEST(Pool, MappedWritesAreVisibleToReads) {
  auto pool = make_pool();
  Handle h = *pool->malloc(3000);
  {
    auto m = pool->map(h, MapMode::write_only);
    ASSERT_TRUE(m.ok());
    auto p = pattern(99, 3000);
    std::memcpy(m->data(), p.data(), p.size());
  }
  EXPECT_TRUE(holds(*pool, h, 3000, 99));
}

// Long random sequences checked against a reference model (a map handle -> contents).
TEST(Pool, RandomOperationsMatchAReferenceModel) {
  for (std::uint32_t chain : {4u, 8u, 16u}) {
    auto pool = make_pool({.max_chain = chain});
    std::map<Handle, std::pair<std::size_t, std::uint64_t>> model;
    Rng rng(chain);
    std::uint64_t seed = 1000;
    for (int step = 0; step < 40000; ++step) {
      const auto op = rng.below(100);
      if (op < 45 || model.empty()) {
        const std::size_t size = 1 + (rng.below(4) == 0 ? rng.below(4096) : rng.below(2048));
        Handle h = alloc_filled(*pool, size, ++seed);
        ASSERT_NE(h, 0u);
        ASSERT_EQ(model.count(h), 0u) << "handle issued twice";
        model[h] = {size, seed};
      } else {
        auto it = model.begin();
        std::advance(it, static_cast<long>(rng.below(model.size())));
        auto [h, rec] = *it;
        if (op < 80) {
          ASSERT_TRUE(holds(*pool, h, rec.first, rec.second));
          ASSERT_EQ(pool->free(h), Error::ok);
          model.erase(it);
        } else if (op < 88) {
          ASSERT_EQ(pool->write(h, pattern(++seed, rec.first)), Error::ok);
          it->second.second = seed;
        } else if (op < 96) {
          auto m = pool->map(h, MapMode::read_only);
          ASSERT_TRUE(m.ok());
          ASSERT_TRUE(matches(std::span(m->data(), rec.first), rec.second));
        } else {
          pool->compact();
        }
      }
      if (step % 5000 == 0) {
        for (auto& [h, rec] : model) ASSERT_TRUE(holds(*pool, h, rec.first, rec.second));
      }
    }
    for (auto& [h, rec] : model) ASSERT_TRUE(holds(*pool, h, rec.first, rec.second));
    auto s = pool->stats();
    EXPECT_EQ(s.objects, model.size());
    EXPECT_EQ(s.handle_slots_in_use, model.size());
    for (auto& [h, rec] : model) ASSERT_EQ(pool->free(h), Error::ok);
    EXPECT_EQ(pool->total_pages(), 0u);
  }
}

TEST(Pool, FreedMemoryGoesBackToTheOS) {
  auto source = std::make_shared<OsPageSource>();
  auto pool = make_pool({.page_source = source});
  std::vector<Handle> hs;
  Rng rng(5);
  for (int i = 0; i < 20000; ++i) hs.push_back(alloc_filled(*pool, 1 + rng.below(4096), i));
  const std::size_t held = pool->total_bytes();
  const std::size_t resident = source->resident_bytes();
  EXPECT_GT(held, 20u << 20);
  EXPECT_LE(resident, held) << "the OS cannot hold more of our pages than the pool counts";
  EXPECT_GE(resident, held * 9 / 10) << "written objects make their pages resident";
  for (Handle h : hs) ASSERT_EQ(pool->free(h), Error::ok);
  EXPECT_EQ(pool->total_pages(), 0u);
  EXPECT_LE(source->resident_bytes(), source->cached_bytes()) << "mincore vs. the bounded cache";
  EXPECT_LE(source->cached_bytes(), kDefaultPageCacheBytes);
  EXPECT_EQ(pool->stats().cached_bytes, source->cached_bytes());
  pool->trim();
  EXPECT_EQ(source->resident_bytes(), 0u) << "mincore: every page went back to the OS";
  EXPECT_EQ(pool->stats().handle_slots_in_use, 0u);
}

// At pool pages larger than the OS page, a fresh zspage's objects make resident only the OS
// pages they reach: the frontier's unreached 4 KiB pages stay uncommitted (the pool still counts
// the whole pool page, an upper bound).
TEST(Pool, LargePoolPagesCommitOnlyTheOsPagesObjectsReach) {
  if (os::page_size() != 4096) GTEST_SKIP() << "sizes below assume 4 KiB OS pages";
  auto source = std::make_shared<OsPageSource>(0);
  auto pool = make_pool({.page_size = 32768, .max_chain = 1, .page_source = source});
  std::vector<Handle> hs = {alloc_filled(*pool, 1000, 0)};
  EXPECT_EQ(pool->total_bytes(), 32768u);
  EXPECT_EQ(source->resident_bytes(), 4096u) << "one object: one OS page, not the pool page";
  // k objects of the class (capacity .. capacity + 16 bytes each, the header included) that
  // reach past 8 KiB and at most 12 KiB: 3 OS pages.
  const std::size_t capacity = pool->capacity(hs[0]).value();
  const std::size_t k = 3 * 4096 / (capacity + 16);
  ASSERT_GT(k * capacity, 2 * 4096u);
  while (hs.size() < k) hs.push_back(alloc_filled(*pool, 1000, hs.size()));
  EXPECT_EQ(source->resident_bytes(), 3 * 4096u);
  EXPECT_EQ(pool->total_bytes(), 32768u) << "the pool counts the pool page";
  for (std::size_t i = 0; i < hs.size(); ++i) EXPECT_TRUE(holds(*pool, hs[i], 1000, i));
  for (Handle h : hs) ASSERT_EQ(pool->free(h), Error::ok);
  EXPECT_EQ(source->resident_bytes(), 0u);
}

TEST(Pool, WithoutACacheFreedPagesGoBackAtOnce) {
  auto source = std::make_shared<OsPageSource>(0);
  auto pool = make_pool({.page_source = source});
  std::vector<Handle> hs;
  for (int i = 0; i < 5000; ++i) hs.push_back(alloc_filled(*pool, 1 + i % 4096, i));
  EXPECT_GT(source->resident_bytes(), 0u);
  for (Handle h : hs) ASSERT_EQ(pool->free(h), Error::ok);
  EXPECT_EQ(source->resident_bytes(), 0u);
}

TEST(Pool, CompactionFreesPagesAndKeepsData) {
  auto pool = make_pool();
  std::vector<std::pair<Handle, std::uint64_t>> hs;
  for (int i = 0; i < 30000; ++i) hs.emplace_back(alloc_filled(*pool, 200 + i % 7 * 100, i), i);
  Rng rng(11);
  std::vector<std::pair<Handle, std::uint64_t>> kept;
  for (auto& [h, s] : hs) {
    if (rng.below(2)) {
      ASSERT_EQ(pool->free(h), Error::ok);
    } else {
      kept.emplace_back(h, s);
    }
  }
  const std::size_t before = pool->total_pages();
  const auto stats_before = pool->stats();
  std::uint64_t freeable = 0;
  for (auto& c : stats_before.classes) freeable += c.freeable;
  EXPECT_GT(freeable, 0u);
  const std::size_t freed = pool->compact();
  EXPECT_GT(freed, before / 3);
  EXPECT_EQ(pool->total_pages(), before - freed);
  EXPECT_EQ(pool->stats().pages_compacted, freed);
  for (auto& [h, s] : kept) ASSERT_TRUE(holds(*pool, h, 200 + s % 7 * 100, s));
  for (auto& c : pool->stats().classes) EXPECT_EQ(c.freeable, 0u) << "class " << c.size;
}

TEST(Pool, CompactionNeverMovesAMappedObject) {
  auto pool = make_pool();
  std::vector<Handle> hs;
  for (int i = 0; i < 2000; ++i) hs.push_back(alloc_filled(*pool, 500, i));
  // Keep one object per zspage-ish stretch and map the first survivor.
  for (std::size_t i = 0; i < hs.size(); ++i)
    if (i % 10 != 0) {
      ASSERT_EQ(pool->free(hs[i]), Error::ok);
    }
  auto m = pool->map(hs[0], MapMode::read_write);
  ASSERT_TRUE(m.ok());
  std::byte* where = m->data();
  pool->compact();
  EXPECT_EQ(m->data(), where);
  EXPECT_TRUE(matches(std::span(where, 500), 0)) << "mapped object's memory still valid";
  m->reset();
  auto again = pool->map(hs[0], MapMode::read_only);
  EXPECT_EQ(again->data(), where) << "its zspage was a compaction source and was skipped";
  again->reset();
  for (std::size_t i = 0; i < hs.size(); i += 10) ASSERT_TRUE(holds(*pool, hs[i], 500, i));
}

TEST(Pool, OutOfMemoryIsAnErrorAndThePoolStaysUsable) {
  auto failing = std::make_shared<FailingPageSource>(std::make_shared<OsPageSource>());
  auto pool = make_pool({.page_source = failing});
  std::vector<std::pair<Handle, std::uint64_t>> hs;
  for (int i = 0; i < 200; ++i) hs.emplace_back(alloc_filled(*pool, 3000, i), i);
  failing->fail_at(failing->requests() + 1, 1);  // every request from now on fails
  std::size_t failures = 0;
  for (int i = 0; i < 50; ++i) {
    auto h = pool->malloc(3000);
    if (!h) {
      EXPECT_EQ(h.error(), Error::out_of_memory);
      ++failures;
    } else {
      hs.emplace_back(*h, 0);
      ASSERT_EQ(pool->write(*h, pattern(0, 3000)), Error::ok);
    }
  }
  EXPECT_GT(failures, 0u);
  EXPECT_EQ(pool->stats().alloc_failures, failures);
  failing->fail_at(0);
  for (auto& [h, s] : hs) ASSERT_TRUE(holds(*pool, h, 3000, s));
  Handle more = alloc_filled(*pool, 3000, 77);
  EXPECT_TRUE(holds(*pool, more, 3000, 77));
  EXPECT_EQ(pool->stats().handle_slots_in_use, hs.size() + 1);
}

TEST(Pool, HandleCapacityExhaustionIsAnError) {
  auto pool = make_pool({.max_handles = 200});
  std::vector<Handle> hs;
  for (;;) {
    auto h = pool->malloc(64);
    if (!h) {
      EXPECT_EQ(h.error(), Error::out_of_memory);
      break;
    }
    hs.push_back(*h);
    ASSERT_LT(hs.size(), 1000u);
  }
  EXPECT_GT(hs.size(), 0u);
  for (Handle h : hs) ASSERT_EQ(pool->free(h), Error::ok);
  EXPECT_EQ(pool->total_pages(), 0u);
}

TEST(Pool, StatsAreConsistentAndPrintable) {
  auto pool = make_pool();
  std::vector<Handle> hs;
  for (int i = 0; i < 5000; ++i) hs.push_back(alloc_filled(*pool, 1 + i % 4000, i));
  auto s = pool->stats();
  std::uint64_t pages = 0, objects = 0;
  for (auto& c : s.classes) {
    std::uint64_t in_groups = 0;
    for (auto g : c.fullness) in_groups += g;
    EXPECT_EQ(in_groups, c.zspages);
    EXPECT_LE(c.pages_used, c.zspages * c.pages_per_zspage);
    EXPECT_LE(c.obj_used, c.obj_allocated);
    pages += c.pages_used;
    objects += c.obj_used;
  }
  EXPECT_EQ(pages, s.pages);
  EXPECT_EQ(objects, 5000u);
  EXPECT_LT(s.metadata_bytes, s.pages * 4096 / 30) << "metadata is counted and small";
  auto j = nlohmann::json::parse(format_stats_json(s));
  EXPECT_EQ(j["pages"], s.pages);
  EXPECT_EQ(j["huge_class_size"], 3625);
  EXPECT_FALSE(j["classes"].empty());
  const std::string table = format_stats_table(s);
  EXPECT_NE(table.find("obj_allocated"), std::string::npos);
  EXPECT_NE(table.find("pages_compacted"), std::string::npos);
}

// Handle slots, descriptors and the class table stay within 1% of the pool's memory when the
// objects are compressed pages (sizes spread over the classes, ~2 KiB on average, 5% huge).
TEST(Pool, MetadataIsAtMostOnePercentOfPoolMemory) {
  auto pool = make_pool();
  Rng rng(9);
  for (int i = 0; i < 16384; ++i) {
    const std::size_t size = rng.below(20) == 0 ? 4096 : 400 + rng.below(3000);
    ASSERT_TRUE(pool->malloc(size).ok());
  }
  const PoolStats s = pool->stats();
  const std::uint64_t pool_bytes = s.pages * std::uint64_t{s.page_size};
  EXPECT_LE(s.metadata_bytes * 100, pool_bytes)
      << "handle slots " << s.handle_slot_bytes << ", descriptors " << s.descriptor_bytes
      << ", all metadata " << s.metadata_bytes << " of " << pool_bytes;
}

TEST(Pool, DestroyingThePoolReleasesEverything) {
  auto source = std::make_shared<OsPageSource>();
  {
    auto pool = make_pool({.page_source = source});
    for (int i = 0; i < 3000; ++i) alloc_filled(*pool, 1000, i);
    EXPECT_GT(source->resident_bytes(), 0u);
  }
  EXPECT_EQ(source->resident_bytes(), 0u);
}

}  // namespace
}  // namespace zspool

namespace zspool {
namespace {

// Lazy commit: a zspage's pages are counted (and touched) only as objects reach them; the OS's
// own count (mincore) must agree with the pool's. With lazy_commit off, the kernel's behaviour.
TEST(Pool, LazyCommitCountsExactlyThePagesObjectsReach) {
  for (bool lazy : {true, false}) {
    auto source = std::make_shared<OsPageSource>(0);
    auto pool = make_pool({.page_source = source, .lazy_commit = lazy});
    const SizeClass& cls = pool->classes().class_for_request(3600);
    ASSERT_EQ(cls.pages_per_zspage, 8u);
    Handle h = alloc_filled(*pool, 3600, 1);
    const std::size_t expect_pages = lazy ? 1 : cls.pages_per_zspage;
    EXPECT_EQ(pool->total_pages(), expect_pages) << "lazy " << lazy;
    EXPECT_EQ(source->resident_bytes(), expect_pages * 4096) << "lazy " << lazy;
    Handle h2 = alloc_filled(*pool, 3600, 2);  // object 1 spans bytes 3632..7263: page 1 too
    EXPECT_EQ(pool->total_pages(), lazy ? 2u : cls.pages_per_zspage);
    EXPECT_EQ(source->resident_bytes(), pool->total_bytes());
    ASSERT_EQ(pool->free(h), Error::ok);
    ASSERT_EQ(pool->free(h2), Error::ok);
    EXPECT_EQ(pool->total_pages(), 0u);
    EXPECT_EQ(source->resident_bytes(), 0u);
  }
}

}  // namespace
}  // namespace zspool
