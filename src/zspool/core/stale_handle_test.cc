// Stale handles (pool_state.h, "Handle"): a freed handle stays stale when its slot is handed to a
// newer object, however the slot came back (LIFO reuse, compaction moves, writeback); mapped
// objects cannot be freed; there is no unmap by handle; reservations follow reserve_for.
// Shard moves: shard_test.cc. The C API and a random model of it: zsmalloc_test.cc,
// zsmalloc_property_test.cc.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "zspool/core/internal/pool_state.h"
#include "zspool/core/pool.h"
#include "zspool/testing/test_util.h"

namespace zspool {
namespace {

using test::matches;
using test::pattern;

std::unique_ptr<Pool> make_pool(PoolOptions o = {}) {
  auto p = Pool::create(std::move(o));
  EXPECT_TRUE(p.ok());
  return std::move(*p);
}

Handle alloc_filled(Pool& pool, std::size_t size, std::uint64_t seed) {
  Handle h = pool.malloc(size).value();
  EXPECT_EQ(pool.write(h, pattern(seed, size)), Error::ok);
  return h;
}

bool holds(Pool& pool, Handle h, std::size_t size, std::uint64_t seed) {
  std::vector<std::byte> got(size);
  return pool.read(h, got) == Error::ok && matches(got, seed);
}

#ifndef ZSPOOL_CHECKED

// Every access through a stale handle fails as stale, and changes nothing.
void expect_stale(Pool& pool, Handle stale) {
  std::vector<std::byte> buf(16);
  EXPECT_EQ(pool.write(stale, pattern(99, 16)), Error::stale_handle);
  EXPECT_EQ(pool.read(stale, buf), Error::stale_handle);
  EXPECT_EQ(pool.map(stale, MapMode::read_write).error(), Error::stale_handle);
  EXPECT_EQ(pool.capacity(stale).error(), Error::stale_handle);
  EXPECT_EQ(pool.free(stale), Error::stale_handle);
}

// The case: b takes a's slot (LIFO); a must not reach b's object.
TEST(StaleHandle, AFreedHandleWhoseSlotIsReissuedStaysStale) {
  auto pool = make_pool();
  const Handle a = alloc_filled(*pool, 100, 1);
  ASSERT_EQ(pool->free(a), Error::ok);
  const Handle b = alloc_filled(*pool, 100, 2);
  EXPECT_EQ(pool->handle_index(b), pool->handle_index(a)) << "the slot was reused";
  EXPECT_NE(b, a) << "but the handle differs: a newer generation";
  expect_stale(*pool, a);
  EXPECT_TRUE(holds(*pool, b, 100, 2)) << "the stale handle changed the new object";
  EXPECT_EQ(pool->stats().objects, 1u);
  EXPECT_EQ(pool->free(b), Error::ok);
}

TEST(StaleHandle, EveryEarlierGenerationOfASlotStaysStale) {
  auto pool = make_pool();
  std::vector<Handle> earlier;
  Handle h = alloc_filled(*pool, 200, 0);
  for (int i = 1; i <= 50; ++i) {
    ASSERT_EQ(pool->free(h), Error::ok);
    earlier.push_back(h);
    h = alloc_filled(*pool, 200, i);
    ASSERT_EQ(pool->handle_index(h), pool->handle_index(earlier[0]));
  }
  for (Handle old : earlier) expect_stale(*pool, old);
  EXPECT_TRUE(holds(*pool, h, 200, 50));
}

// Compaction moves live objects and rewrites their slots; freed slots are reissued afterwards.
TEST(StaleHandle, StaysStaleAcrossCompactionMoves) {
  auto pool = make_pool();
  std::vector<Handle> hs;
  for (int i = 0; i < 3000; ++i) hs.push_back(alloc_filled(*pool, 300, i));
  std::vector<Handle> freed;
  for (std::size_t i = 0; i < hs.size(); ++i)
    if (i % 3 != 0) {
      ASSERT_EQ(pool->free(hs[i]), Error::ok);
      freed.push_back(hs[i]);
    }
  ASSERT_GT(pool->compact(), 0u) << "objects moved";
  std::vector<Handle> fresh;
  for (std::size_t i = 0; i < freed.size(); ++i)
    fresh.push_back(alloc_filled(*pool, 300, 10000 + i));
  for (Handle old : freed) expect_stale(*pool, old);
  for (std::size_t i = 0; i < hs.size(); i += 3) ASSERT_TRUE(holds(*pool, hs[i], 300, i));
  for (std::size_t i = 0; i < fresh.size(); ++i)
    ASSERT_TRUE(holds(*pool, fresh[i], 300, 10000 + i));
  // And once more after compaction has moved the new objects too.
  for (std::size_t i = 0; i < fresh.size(); i += 2) ASSERT_EQ(pool->free(fresh[i]), Error::ok);
  pool->compact();
  for (Handle old : freed) expect_stale(*pool, old);
  for (std::size_t i = 0; i < fresh.size(); i += 2) expect_stale(*pool, fresh[i]);
  for (std::size_t i = 1; i < fresh.size(); i += 2)
    ASSERT_TRUE(holds(*pool, fresh[i], 300, 10000 + i));
}

// Writeback releases the evicted objects' handles (deferred ones at the end of reclaim); the
// slots go to new objects; the evicted handles stay stale.
TEST(StaleHandle, StaysStaleAfterWriteback) {
  std::vector<Handle> evicted;
  PoolOptions o;
  o.evict = [&](Pool& p, Handle h) {
    evicted.push_back(h);
    return p.free(h);
  };
  auto pool = make_pool(std::move(o));
  std::vector<Handle> hs;
  for (int i = 0; i < 64; ++i) hs.push_back(alloc_filled(*pool, 1000, i));
  ASSERT_EQ(pool->reclaim_page(), Error::ok);
  ASSERT_FALSE(evicted.empty());
  std::vector<Handle> fresh;
  for (std::size_t i = 0; i < evicted.size(); ++i)
    fresh.push_back(alloc_filled(*pool, 1000, 500 + i));
  for (Handle old : evicted) expect_stale(*pool, old);
  for (std::size_t i = 0; i < fresh.size(); ++i) ASSERT_TRUE(holds(*pool, fresh[i], 1000, 500 + i));
}

// A mapped object cannot be freed (its Mapping would otherwise see another object's bytes once
// the slot is reused): busy, nothing changes, and free works once the mapping is gone.
TEST(StaleHandle, FreeOfAMappedObjectIsBusy) {
  auto pool = make_pool();
  const Handle a = alloc_filled(*pool, 100, 1);
  const Handle b = alloc_filled(*pool, 100, 2);
  {
    auto m = pool->map(a, MapMode::read_only);
    ASSERT_TRUE(m.ok());
    auto nested = pool->map(a, MapMode::read_only);
    ASSERT_TRUE(nested.ok());
    EXPECT_EQ(pool->free(a), Error::busy);
    nested->reset();
    EXPECT_EQ(pool->free(a), Error::busy) << "one mapping is still live";
    auto neighbour = pool->map(b, MapMode::read_only);
    EXPECT_EQ(pool->free(b), Error::busy);
    EXPECT_TRUE(matches(std::span(m->data(), 100), 1));
  }
  EXPECT_TRUE(holds(*pool, a, 100, 1));
  EXPECT_EQ(pool->free(a), Error::ok);
  EXPECT_EQ(pool->free(b), Error::ok);
  EXPECT_EQ(pool->total_pages(), 0u);
}

TEST(StaleHandle, AHandleIsMappedAtMost63TimesAtOnce) {
  auto pool = make_pool();
  const Handle a = alloc_filled(*pool, 100, 1);
  std::vector<Mapping> maps;
  for (std::uint32_t i = 0; i < kMaxMapsPerHandle; ++i) {
    auto m = pool->map(a, MapMode::read_only);
    ASSERT_TRUE(m.ok()) << i;
    maps.push_back(std::move(*m));
  }
  EXPECT_EQ(pool->map(a, MapMode::read_only).error(), Error::busy);
  maps.pop_back();
  EXPECT_TRUE(pool->map(a, MapMode::read_only).ok());
  maps.clear();
  EXPECT_EQ(pool->free(a), Error::ok);
}

#else  // checked builds stop on misuse, naming the handle

using StaleHandleDeathTest = ::testing::Test;

std::string hex(Handle h) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(h));
  return buf;
}

TEST(StaleHandleDeathTest, AccessThroughAReissuedHandleStopsNamingIt) {
  auto pool = make_pool();
  const Handle a = alloc_filled(*pool, 100, 1);
  ASSERT_EQ(pool->free(a), Error::ok);
  const Handle b = alloc_filled(*pool, 100, 2);
  ASSERT_EQ(pool->handle_index(b), pool->handle_index(a));
  EXPECT_DEATH((void)pool->write(a, pattern(3, 100)),
               "write of handle 0x" + hex(a) + ".*stale_handle");
  EXPECT_DEATH((void)pool->free(a), "free of handle 0x" + hex(a) + ".*stale_handle");
  EXPECT_TRUE(holds(*pool, b, 100, 2));
}

#endif

TEST(StaleHandle, MapRejectsAnUnknownMode) {
  auto pool = make_pool();
  const Handle a = alloc_filled(*pool, 100, 1);
  EXPECT_EQ(pool->map(a, static_cast<MapMode>(9)).error(), Error::invalid_argument);
  EXPECT_EQ(pool->map(a, static_cast<MapMode>(3)).error(), Error::invalid_argument);
  EXPECT_EQ(pool->free(a), Error::ok) << "the refused map left no pin or map count behind";
  EXPECT_EQ(pool->total_pages(), 0u);
}

// An unmap by handle cannot know whose pin it drops (an extra one let compaction move a mapped
// object): only a Mapping ends a mapping. This fails to compile if Pool grows one again.
template <class P>
concept HasUnmapByHandle = requires(P& p, Handle h) {
  p.unmap(h);
};
static_assert(!HasUnmapByHandle<Pool>, "Pool::unmap(Handle) is not part of the API");

TEST(StaleHandle, TheHandleBudgetWrapsAGenerationOnlyAfterItsLastValue) {
  HandleTable table(std::uint64_t{1} << 27);
  ASSERT_TRUE(table.ok());
  EXPECT_EQ(table.index_bits(), 27);
  const std::uint64_t last_generation = (std::uint64_t{1} << 35) - 1;
  const Handle newest = table.make_handle(5, last_generation);
  EXPECT_LT(newest, std::uint64_t{1} << 62) << "fits an object header beside its 2 tag bits";
  EXPECT_EQ(table.index_of(newest), 5u);
  // Released: the slot's next handle wraps to generation 0, i.e. the handle value 5.
  const std::uint64_t word = table.free_word_after(newest, 7);
  EXPECT_TRUE(slot_is_free(word));
  EXPECT_EQ(table.free_word_next(word), 7u);
  EXPECT_EQ(table.handle_from_free_word(5, word), 5u);
  EXPECT_EQ(table.handle_from_free_word(5, table.free_word_after(5, 0)), table.make_handle(5, 1));
  EXPECT_EQ(HandleTable(kMaxHandles / 1024).index_bits(), 22);  // 42 generation bits
}

// A count near 2^64 saturates at what a pool can have: it used to wrap to a few thousand.
TEST(StaleHandle, ReserveForSaturatesInsteadOfWrapping) {
  for (const std::uint64_t objects :
       {kMaxHandles - 1, kMaxHandles, kMaxHandles + 1, ~std::uint64_t{0} - 1, ~std::uint64_t{0}}) {
    PoolOptions o;
    o.reserve_for(objects);
    EXPECT_EQ(o.max_handles, kMaxHandles) << objects;
    EXPECT_EQ(o.max_zspages, UINT32_MAX) << objects;
  }
}

// A class keeps the slots its objects free, and that stranded them: objects of one class freed,
// then as many of another made, ran the table out of slots while almost none were in use (a
// store's pages change class as they are rewritten; with 4 threads the soak's store refused 8%
// of its writes as out_of_memory, 412 slots in use of 31,232 issued). Now a class that finds
// the table exhausted takes free slots from other classes.
TEST(StaleHandle, SlotsAClassFreedServeAnotherClass) {
  constexpr std::uint64_t kObjects = 3000;
  auto pool = make_pool({.max_handles = 4096});
  for (const std::size_t size : {100u, 2000u, 700u, 3000u, 100u}) {
    std::vector<Handle> hs;
    for (std::uint64_t i = 0; i < kObjects; ++i) {
      auto h = pool->malloc(size);
      ASSERT_TRUE(h.ok()) << "object " << i << " of size " << size << ": " << error_name(h.error());
      hs.push_back(*h);
    }
    for (Handle h : hs) ASSERT_EQ(pool->free(h), Error::ok);
    EXPECT_EQ(pool->stats().handle_slots_in_use, 0u);
  }
  EXPECT_LE(pool->stats().handle_slot_bytes, 4096u * 8) << "fresh slots past the table";
}

#ifndef ZSPOOL_CHECKED  // a checked build stops at the first stale access (StaleHandleDeathTest)
// Slots handed from class to class keep their generation: a handle freed in one class stays
// stale after its slot serves another class's object.
TEST(StaleHandle, ASlotThatChangedClassKeepsItsOldHandlesStale) {
  auto pool = make_pool({.max_handles = 64});  // large objects need slots small ones freed
  std::vector<Handle> small;
  for (int i = 0; i < 40; ++i) small.push_back(*pool->malloc(100));
  for (Handle h : small) ASSERT_EQ(pool->free(h), Error::ok);
  std::vector<Handle> large;
  for (int i = 0; i < 40; ++i) {
    auto h = pool->malloc(2000);
    ASSERT_TRUE(h.ok()) << i << ": " << error_name(h.error());
    large.push_back(*h);
  }
  std::vector<std::byte> out(8);
  for (Handle h : small) {
    EXPECT_EQ(pool->read(h, out), Error::stale_handle);
    EXPECT_EQ(pool->free(h), Error::stale_handle);
  }
  for (Handle h : large) ASSERT_EQ(pool->free(h), Error::ok);
}
#endif

// Four threads whose objects change class every round, in a table of 4,096 slots: fresh slots
// run out within a few rounds and every later round lives on slots other classes (and shards)
// freed, taken under try_lock while the thread holds its own class lock (TSan's target too).
TEST(StaleHandle, StressThreadsChangingClassesNeverRunOutOfSlots) {
  auto pool = make_pool({.max_handles = 4096});
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<Handle> hs;
      for (int round = 0; round < 60; ++round) {
        const std::size_t size = 64 + static_cast<std::size_t>((round * 4 + t) * 97 % 3900);
        for (int i = 0; i < 700; ++i) {
          auto h = pool->malloc(size);
          if (!h) {
            failures.fetch_add(1);
            break;
          }
          hs.push_back(*h);
        }
        for (Handle h : hs)
          if (pool->free(h) != Error::ok) failures.fetch_add(1);
        hs.clear();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0) << "mallocs that found no slot, or frees that failed";
  EXPECT_EQ(pool->stats().handle_slots_in_use, 0u);
}

TEST(StaleHandle, ReserveForHoldsThatManyObjectsInEveryClass) {
  PoolOptions o;
  o.reserve_for(3000);
  EXPECT_LT(o.max_handles, std::uint64_t{30000});
  EXPECT_EQ(o.max_zspages, o.max_handles);
  auto pool = make_pool(o);
  // Every class at once (each keeps a batch of spare slots), huge ones included.
  std::vector<Handle> hs;
  for (std::uint32_t i = 0; i < 3000; ++i) {
    auto h = pool->malloc(1 + (i * 37) % 4096);
    ASSERT_TRUE(h.ok()) << "object " << i << ": " << error_name(h.error());
    hs.push_back(*h);
  }
  for (Handle h : hs) ASSERT_EQ(pool->free(h), Error::ok);
  EXPECT_EQ(Pool::create({.max_handles = kMaxHandles + 1}).error(), Error::invalid_argument);
}

}  // namespace
}  // namespace zspool
