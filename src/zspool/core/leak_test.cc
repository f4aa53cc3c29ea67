// Leak checks: a pool, once destroyed, leaves no mapping behind (counted from /proc/self/maps,
// in a forked child so that nothing else changes the count), and a pool whose objects were all
// freed holds no page and no handle slot. ASan's LSan and valgrind memcheck (CI) see heap
// leaks; these see mapping leaks, which they do not.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "zspool/core/pool.h"
#include "zspool/core/zsmalloc.h"
#include "zspool/testing/proc_maps.h"
#include "zspool/testing/test_util.h"

namespace zspool {
namespace {

using test::pattern;

// Fills a pool with objects of every size, frees every other one and compacts: every kind of
// mapping a pool makes gets made. Returns what went wrong, or "".
std::string exercise(Pool& pool, std::vector<Handle>& live) {
  for (std::size_t i = 0; i < 4000; ++i) {
    const std::size_t size = 1 + (i * 997) % pool.page_size();
    auto h = pool.malloc(size);
    if (!h) return "malloc(" + std::to_string(size) + ") failed";
    if (pool.write(*h, pattern(i, size)) != Error::ok) return "write failed";
    live.push_back(*h);
  }
  std::vector<Handle> kept;
  for (std::size_t i = 0; i < live.size(); ++i) {
    if (i % 2 == 1) {
      kept.push_back(live[i]);
    } else if (pool.free(live[i]) != Error::ok) {
      return "free failed";
    }
  }
  live = std::move(kept);
  pool.compact();
  return "";
}

TEST(Leaks, ADestroyedPoolLeavesNoMapping) {
  for (std::uint32_t page_size : {4096u, 65536u}) {
    EXPECT_EQ(os::mapping_leak_in_child([page_size]() -> std::string {
                auto pool = std::move(*Pool::create({.page_size = page_size}));
                std::vector<Handle> live;
                return exercise(*pool, live);  // destroyed with live objects: they go too
              }),
              "")
        << "page size " << page_size;
  }
}

TEST(Leaks, AfterReclaimAndFreeingEverythingNoPageNoSlot) {
  EXPECT_EQ(os::mapping_leak_in_child([]() -> std::string {
              std::set<Handle> evicted;
              PoolOptions o;
              o.evict = [&evicted](Pool& p, Handle h) {  // evict = drop
                evicted.insert(h);
                return p.free(h);
              };
              auto pool = std::move(*Pool::create(std::move(o)));
              std::vector<Handle> live;
              if (std::string e = exercise(*pool, live); !e.empty()) return e;
              for (int i = 0; i < 10; ++i)
                if (pool->reclaim_page(1) != Error::ok) return "reclaim_page failed";
              if (evicted.empty()) return "reclaim evicted nothing";
              for (Handle h : live)  // freeing an evicted handle again would be a double free
                if (!evicted.contains(h) && pool->free(h) != Error::ok) return "free failed";
              const PoolStats s = pool->stats();
              if (s.objects != 0) return "objects left";
              if (s.handle_slots_in_use != 0) return "a handle slot was never released";
              if (s.pages != 0) return "pages left";
              if (s.deferred_handles_created != s.deferred_handles_released)
                return "a deferred handle was never released";
              return "";
            }),
            "");
}

TEST(Leaks, TheCApiDestroyLeavesNoMapping) {
  EXPECT_EQ(os::mapping_leak_in_child([]() -> std::string {
              zs_pool* pool = zs_create_pool("leak-check");
              if (pool == nullptr) return "zs_create_pool failed";
              for (std::size_t i = 0; i < 1000; ++i)
                if (zs_is_error(zs_malloc(pool, 100 + i % 3000, 0))) return "zs_malloc failed";
              zs_destroy_pool(pool);
              return "";
            }),
            "");
}

}  // namespace
}  // namespace zspool
