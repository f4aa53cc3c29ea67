// The C API (zsmalloc.h), exercised from C++: every function, its error values, map/unmap pins
// under compaction and from several threads, and writeback through zpool_ops.evict.
#include "zspool/core/zsmalloc.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>
#include <vector>

#include "zspool/core/size_class.h"
#include "zspool/testing/proc_maps.h"
#include "zspool/testing/test_util.h"

namespace {

using zspool::test::matches;
using zspool::test::pattern;
using zspool::test::Rng;

// Handle misuse is an error value in release builds and a stop with a message in checked ones.
#ifdef ZSPOOL_CHECKED
#define EXPECT_MISUSE(call, expected, message) EXPECT_DEATH((void)(call), message)
#define EXPECT_MISUSE_VOID(call, message) EXPECT_DEATH(call, message)
#else
#define EXPECT_MISUSE(call, expected, message) EXPECT_EQ(call, expected)
#define EXPECT_MISUSE_VOID(call, message) call
#endif

unsigned long err(int e) {
  return static_cast<unsigned long>(-static_cast<long>(e));
}

struct PoolDeleter {
  void operator()(zs_pool* p) const { zs_destroy_pool(p); }
};
using PoolPtr = std::unique_ptr<zs_pool, PoolDeleter>;

PoolPtr make_pool(const zs_pool_config& cfg = {}) {
  PoolPtr p(zs_create_pool_ex(&cfg));
  EXPECT_NE(p, nullptr);
  return p;
}

unsigned long alloc_filled(zs_pool* pool, std::size_t size, std::uint64_t seed) {
  const unsigned long h = zs_malloc(pool, size, 0);
  EXPECT_FALSE(zs_is_error(h)) << "zs_malloc(" << size << ") = " << static_cast<long>(h);
  if (zs_is_error(h)) return 0;
  const auto bytes = pattern(seed, size);
  EXPECT_EQ(zs_obj_write(pool, h, bytes.data(), 0, size), 0);
  return h;
}

bool holds(zs_pool* pool, unsigned long h, std::size_t size, std::uint64_t seed) {
  std::vector<std::byte> got(size);
  if (zs_obj_read(pool, h, got.data(), 0, size) != 0) return false;
  return matches(got, seed);
}

struct zs_pool_stats stats_of(zs_pool* pool) {
  struct zs_pool_stats s;
  std::memset(&s, 0xff, sizeof(s));  // every field must be written
  zs_pool_stats(pool, &s);
  return s;
}

const zspool::SizeClass& class_for(std::size_t size, std::uint32_t page_size = 4096,
                                   std::uint32_t chain = zspool::kDefaultChain) {
  static auto table = zspool::SizeClassTable::make(page_size, chain);
  return table->class_for_request(size);
}

// ── creation ─────────────────────────────────────────────────────────────────────────────────

TEST(ZsMalloc, CreateAndDestroy) {
  zs_pool* pool = zs_create_pool("zram0");
  ASSERT_NE(pool, nullptr);
  EXPECT_STREQ(zs_pool_name(pool), "zram0");
  EXPECT_EQ(zs_get_total_pages(pool), 0u);
  EXPECT_EQ(zs_huge_class_size(pool), 3625u) << "4 KiB pages, chain 8 (the kernel's default)";
  zs_destroy_pool(pool);
  zs_destroy_pool(nullptr);
  EXPECT_STREQ(zs_pool_name(nullptr), "");

  PoolPtr unnamed(zs_create_pool(nullptr));
  ASSERT_NE(unnamed, nullptr);
  EXPECT_STREQ(zs_pool_name(unnamed.get()), "");
}

TEST(ZsMalloc, CreateExHonoursAndChecksItsConfiguration) {
  EXPECT_EQ(zs_create_pool_ex(nullptr), nullptr);
  const std::pair<unsigned, std::size_t> chains[] = {{4, 3257}, {8, 3625}, {16, 3833}};
  for (auto [chain, huge] : chains) {
    PoolPtr p(zs_create_pool_ex(
        std::make_unique<zs_pool_config>(zs_pool_config{.name = "c", .max_chain = chain}).get()));
    ASSERT_NE(p, nullptr) << chain;
    EXPECT_EQ(zs_huge_class_size(p.get()), huge) << "chain " << chain;
    EXPECT_EQ(stats_of(p.get()).max_chain, chain);
  }
  {
    zs_pool_config cfg{.page_size = 65536};
    PoolPtr p(zs_create_pool_ex(&cfg));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(stats_of(p.get()).page_size, 65536u);
    EXPECT_FALSE(zs_is_error(alloc_filled(p.get(), 65536, 1)));
    EXPECT_EQ(zs_malloc(p.get(), 65537, 0), err(ENOSPC));
  }
  for (std::size_t bad_page :
       {std::size_t{3000}, std::size_t{2048}, std::size_t{1} << 17, std::size_t{1} << 33}) {
    zs_pool_config cfg{.page_size = bad_page};
    EXPECT_EQ(zs_create_pool_ex(&cfg), nullptr) << bad_page;
  }
  zs_pool_config bad_chain{.max_chain = 17};
  EXPECT_EQ(zs_create_pool_ex(&bad_chain), nullptr);
  for (unsigned long bad_handles : {31ul, (1ul << 32) + 1}) {
    zs_pool_config bad{.max_handles = bad_handles};
    EXPECT_EQ(zs_create_pool_ex(&bad), nullptr) << bad_handles;
  }
  zs_pool_config bad_zspages{.max_zspages = 1ul << 32};
  EXPECT_EQ(zs_create_pool_ex(&bad_zspages), nullptr);
  {
    // 100 handle slots: the pool's spare slots take some, so fewer than 100 objects fit.
    zs_pool_config small{.max_handles = 100};
    PoolPtr p(zs_create_pool_ex(&small));
    ASSERT_NE(p, nullptr);
    std::vector<unsigned long> hs;
    for (unsigned long h; !zs_is_error(h = zs_malloc(p.get(), 64, 0));) hs.push_back(h);
    EXPECT_GT(hs.size(), 50u);
    EXPECT_LT(hs.size(), 100u);
    EXPECT_EQ(zs_malloc(p.get(), 64, 0), err(ENOMEM));
    for (unsigned long h : hs) EXPECT_EQ(zs_free_checked(p.get(), h), 0);
  }
  // ops without an evict function: a pool without writeback.
  zpool_ops no_evict{};
  zs_pool_config cfg{.ops = &no_evict};
  PoolPtr p(zs_create_pool_ex(&cfg));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(zs_reclaim_page(p.get(), 1), -EOPNOTSUPP);
}

// ── zs_malloc / zs_free ──────────────────────────────────────────────────────────────────────

TEST(ZsMalloc, IsErrorHasIsErrValueSemantics) {
  EXPECT_FALSE(zs_is_error(0));
  EXPECT_FALSE(zs_is_error(1));
  EXPECT_FALSE(zs_is_error(err(4096)));
  EXPECT_TRUE(zs_is_error(err(4095)));
  EXPECT_TRUE(zs_is_error(err(EINVAL)));
  EXPECT_TRUE(zs_is_error(err(1)));
}

TEST(ZsMalloc, MallocErrorsAreEncodedErrnos) {
  PoolPtr pool = make_pool();
  EXPECT_EQ(zs_malloc(pool.get(), 0, 0), err(EINVAL));
  EXPECT_EQ(zs_malloc(pool.get(), 4097, 0), err(ENOSPC));
  EXPECT_EQ(zs_malloc(pool.get(), static_cast<std::size_t>(-1), 0), err(ENOSPC));
  EXPECT_EQ(zs_malloc(nullptr, 100, 0), err(EINVAL));
  EXPECT_EQ(stats_of(pool.get()).objects, 0u);
  const unsigned long h = zs_malloc(pool.get(), 4096, 0xffffffffu);  // gfp is ignored
  EXPECT_FALSE(zs_is_error(h));
  EXPECT_NE(h, 0u);
  EXPECT_EQ(zs_free_checked(pool.get(), h), 0);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ZSPOOL_TEST_SANITIZED 1
#endif

// The OS refusing memory: a forked child caps its address space just above what it uses, so the
// pool's next arena cannot be mapped, then lifts the cap again.
TEST(ZsMalloc, OutOfMemoryIsENOMEMAndThePoolRecovers) {
#ifdef ZSPOOL_TEST_SANITIZED
  GTEST_SKIP() << "sanitizer runtimes reserve address space and do not run under RLIMIT_AS";
#else
  EXPECT_EXIT(
      {
        zs_pool* pool = zs_create_pool("oom");
        if (pool == nullptr) std::_Exit(10);
        rlimit old{};
        if (!zspool::test::cap_address_space_above_use(std::size_t{8} << 20, &old)) std::_Exit(12);
        const unsigned long refused = zs_malloc(pool, 4096, 0);
        setrlimit(RLIMIT_AS, &old);
        if (refused != err(ENOMEM)) std::_Exit(13);
        struct zs_pool_stats s;
        zs_pool_stats(pool, &s);
        if (s.alloc_failures != 1 || s.objects != 0) std::_Exit(14);
        const unsigned long h = zs_malloc(pool, 4096, 0);
        if (zs_is_error(h) || zs_free_checked(pool, h) != 0) std::_Exit(15);
        zs_destroy_pool(pool);
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(0), "");
#endif
}

// Reservations follow the configuration: under an address-space limit far below the defaults'
// 1.1 GiB, zs_create_pool fails (NULL) and a pool configured for what it will hold works.
// Runs in a forked child; returns its exit code (0: as expected).
int sized_pool_under_a_low_limit() {
  if (!zspool::test::cap_address_space_above_use(std::size_t{256} << 20)) return 12;
  if (zs_pool* p = zs_create_pool("default")) {
    zs_destroy_pool(p);
    return 13;  // the defaults fit: the limit proves nothing
  }
  zs_pool_config cfg{.name = "sized", .max_handles = 1ul << 16};
  zs_pool* pool = zs_create_pool_ex(&cfg);
  if (pool == nullptr) return 14;
  std::vector<unsigned long> hs;
  for (int i = 0; i < 10000; ++i) {
    const unsigned long h = zs_malloc(pool, 1 + i % 4000, 0);
    if (zs_is_error(h)) return 15;
    hs.push_back(h);
  }
  for (unsigned long h : hs)
    if (zs_free_checked(pool, h) != 0) return 16;
  zs_destroy_pool(pool);
  return 0;
}

TEST(ZsMalloc, ASizedPoolWorksUnderALowAddressSpaceLimit) {
  if (const std::string why = zspool::os::census_unreliable_reason(); !why.empty())
    GTEST_SKIP() << "RLIMIT_AS is unreliable here: " << why;
  EXPECT_EXIT(std::_Exit(sized_pool_under_a_low_limit()), ::testing::ExitedWithCode(0), "");
}

TEST(ZsMalloc, FreeRejectsDoubleFreeAndUnknownHandles) {
  PoolPtr pool = make_pool();
  const unsigned long a = alloc_filled(pool.get(), 100, 1);
  const unsigned long b = alloc_filled(pool.get(), 100, 2);
  EXPECT_EQ(zs_free_checked(pool.get(), a), 0);
  EXPECT_MISUSE(zs_free_checked(pool.get(), a), -EINVAL, "already freed");
  EXPECT_MISUSE(zs_free_checked(pool.get(), 0), -EINVAL, "never issued");
  EXPECT_MISUSE(zs_free_checked(pool.get(), 123456789), -EINVAL, "never issued");
  EXPECT_MISUSE(zs_free_checked(pool.get(), err(EINVAL)), -EINVAL, "never issued");
  EXPECT_EQ(zs_free_checked(nullptr, b), -EINVAL);
  EXPECT_MISUSE_VOID(zs_free(pool.get(), a), "already freed");  // void: ignored, no crash
  zs_free(nullptr, b);
  EXPECT_TRUE(holds(pool.get(), b, 100, 2)) << "misuse must not corrupt other objects";
  const struct zs_pool_stats s = stats_of(pool.get());
  EXPECT_EQ(s.objects, 1u);
  EXPECT_EQ(s.handle_slots_in_use, 1u);
  zs_free(pool.get(), b);
  EXPECT_EQ(stats_of(pool.get()).objects, 0u);
  EXPECT_EQ(zs_get_total_pages(pool.get()), 0u);
}

// ── copy access ──────────────────────────────────────────────────────────────────────────────

TEST(ZsMalloc, ObjReadWriteRoundTripAndBounds) {
  PoolPtr pool = make_pool();
  const std::size_t cap = class_for(1000).capacity();
  ASSERT_GE(cap, 1000u);
  const unsigned long h = alloc_filled(pool.get(), 1000, 5);
  EXPECT_TRUE(holds(pool.get(), h, 1000, 5));
  // Offsets: write the middle, read it back, check the rest is untouched.
  const auto mid = pattern(99, 300);
  ASSERT_EQ(zs_obj_write(pool.get(), h, mid.data(), 400, mid.size()), 0);
  std::vector<std::byte> got(300);
  ASSERT_EQ(zs_obj_read(pool.get(), h, got.data(), 400, got.size()), 0);
  EXPECT_EQ(got, mid);
  std::vector<std::byte> head(400);
  ASSERT_EQ(zs_obj_read(pool.get(), h, head.data(), 0, head.size()), 0);
  EXPECT_TRUE(matches(head, 5));
  // The whole capacity is addressable; one byte more is ERANGE and changes nothing.
  std::vector<std::byte> full(cap + 1);
  EXPECT_EQ(zs_obj_read(pool.get(), h, full.data(), 0, cap), 0);
  EXPECT_MISUSE(zs_obj_read(pool.get(), h, full.data(), 0, cap + 1), -ERANGE, "past the end");
  EXPECT_MISUSE(zs_obj_read(pool.get(), h, full.data(), cap, 1), -ERANGE, "past the end");
  EXPECT_MISUSE(zs_obj_read(pool.get(), h, full.data(), static_cast<std::size_t>(-1), 1), -ERANGE,
                "past the end");
  EXPECT_MISUSE(zs_obj_write(pool.get(), h, full.data(), 1, cap), -ERANGE, "past the end");
  EXPECT_EQ(zs_obj_read(pool.get(), h, nullptr, cap, 0), 0) << "an empty access at the end";
  EXPECT_EQ(zs_obj_write(pool.get(), h, nullptr, 0, 0), 0);
  // Bad arguments.
  EXPECT_EQ(zs_obj_read(pool.get(), h, nullptr, 0, 1), -EINVAL);
  EXPECT_EQ(zs_obj_write(pool.get(), h, nullptr, 0, 1), -EINVAL);
  EXPECT_EQ(zs_obj_read(nullptr, h, got.data(), 0, 1), -EINVAL);
  EXPECT_EQ(zs_obj_write(nullptr, h, got.data(), 0, 1), -EINVAL);
  EXPECT_MISUSE(zs_obj_read(pool.get(), 0, got.data(), 0, 1), -EINVAL, "never issued");
  ASSERT_EQ(zs_obj_write(pool.get(), h, mid.data(), 400, mid.size()), 0);
  ASSERT_EQ(zs_free_checked(pool.get(), h), 0);
  EXPECT_MISUSE(zs_obj_read(pool.get(), h, got.data(), 0, 1), -EINVAL, "already freed");
  EXPECT_MISUSE(zs_obj_write(pool.get(), h, got.data(), 0, 1), -EINVAL, "already freed");
}

TEST(ZsMalloc, HugeObjectsTakeAPageEach) {
  PoolPtr pool = make_pool();
  const std::size_t huge = zs_huge_class_size(pool.get());
  EXPECT_EQ(zs_huge_class_size(nullptr), 0u);
  std::vector<unsigned long> hs;
  for (int i = 0; i < 5; ++i) hs.push_back(alloc_filled(pool.get(), huge + i * 100, i));
  EXPECT_EQ(zs_get_total_pages(pool.get()), 5u);
  EXPECT_FALSE(zs_is_error(alloc_filled(pool.get(), huge - 1, 9)));
  EXPECT_GT(zs_get_total_pages(pool.get()), 5u) << "below huge_class_size: a shared zspage";
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(holds(pool.get(), hs[i], huge + i * 100, i));
}

// ── map / unmap ──────────────────────────────────────────────────────────────────────────────

TEST(ZsMalloc, MapModesGiveInPlaceAccess) {
  PoolPtr pool = make_pool();
  // Size 1000 straddles page boundaries inside its zspage: fill one zspage's worth.
  const std::uint32_t objs = class_for(1000).objs_per_zspage;
  std::vector<unsigned long> hs;
  for (std::uint32_t i = 0; i < objs; ++i) {
    const unsigned long h = zs_malloc(pool.get(), 1000, 0);
    ASSERT_FALSE(zs_is_error(h));
    auto* w = static_cast<std::byte*>(zs_map_object(pool.get(), h, ZS_MM_WO));
    ASSERT_NE(w, nullptr);
    const auto bytes = pattern(i, 1000);
    std::memcpy(w, bytes.data(), bytes.size());
    zs_unmap_object(pool.get(), h);
    hs.push_back(h);
  }
  for (std::uint32_t i = 0; i < objs; ++i) {
    auto* r = static_cast<const std::byte*>(zs_map_object(pool.get(), hs[i], ZS_MM_RO));
    ASSERT_NE(r, nullptr);
    EXPECT_TRUE(matches(std::span(r, 1000), i)) << i;
    zs_unmap_object(pool.get(), hs[i]);
    EXPECT_TRUE(holds(pool.get(), hs[i], 1000, i)) << "copy API sees the mapped writes";
  }
  auto* rw = static_cast<std::byte*>(zs_map_object(pool.get(), hs[0], ZS_MM_RW));
  ASSERT_NE(rw, nullptr);
  rw[999] = std::byte{0x5a};
  zs_unmap_object(pool.get(), hs[0]);
  std::byte last{};
  ASSERT_EQ(zs_obj_read(pool.get(), hs[0], &last, 999, 1), 0);
  EXPECT_EQ(last, std::byte{0x5a});
  EXPECT_EQ(stats_of(pool.get()).mapped_objects, 0u);
}

TEST(ZsMalloc, MapRejectsBadArguments) {
  PoolPtr pool = make_pool();
  const unsigned long h = alloc_filled(pool.get(), 64, 1);
  EXPECT_EQ(zs_map_object(nullptr, h, ZS_MM_RO), nullptr);
  EXPECT_EQ(zs_map_object(pool.get(), h, static_cast<zs_mapmode>(7)), nullptr);
  EXPECT_MISUSE(zs_map_object(pool.get(), 0, ZS_MM_RO), nullptr, "never issued");
  EXPECT_MISUSE(zs_map_object(pool.get(), 987654, ZS_MM_RO), nullptr, "never issued");
  zs_unmap_object(nullptr, h);
  EXPECT_MISUSE_VOID(zs_unmap_object(pool.get(), h), "not mapped");
  EXPECT_EQ(stats_of(pool.get()).mapped_objects, 0u);
  ASSERT_EQ(zs_free_checked(pool.get(), h), 0);
  EXPECT_MISUSE(zs_map_object(pool.get(), h, ZS_MM_RO), nullptr, "already freed");
}

TEST(ZsMalloc, FreeOfAMappedObjectIsEBUSYUntilEveryMapIsUndone) {
  PoolPtr pool = make_pool();
  const unsigned long h = alloc_filled(pool.get(), 300, 3);
  void* a = zs_map_object(pool.get(), h, ZS_MM_RO);
  void* b = zs_map_object(pool.get(), h, ZS_MM_RO);  // nested
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a, b);
  EXPECT_EQ(stats_of(pool.get()).mapped_objects, 2u);
  EXPECT_MISUSE(zs_free_checked(pool.get(), h), -EBUSY, "busy");
  zs_unmap_object(pool.get(), h);
  EXPECT_MISUSE(zs_free_checked(pool.get(), h), -EBUSY, "busy");
  zs_unmap_object(pool.get(), h);
  EXPECT_EQ(stats_of(pool.get()).mapped_objects, 0u);
  EXPECT_EQ(zs_free_checked(pool.get(), h), 0);
  EXPECT_EQ(zs_get_total_pages(pool.get()), 0u) << "no pin outlived the unmaps";
}

// The case through the C API: b reuses a's slot, a must not reach b's object.
TEST(ZsMalloc, AFreedHandleStaysInvalidWhenItsSlotIsReissued) {
  PoolPtr pool = make_pool();
  const unsigned long a = alloc_filled(pool.get(), 100, 1);
  zs_free(pool.get(), a);
  const unsigned long b = alloc_filled(pool.get(), 100, 2);
  EXPECT_NE(b, a);
  const auto bytes = pattern(3, 100);
  std::vector<std::byte> got(100);
  EXPECT_MISUSE(zs_obj_write(pool.get(), a, bytes.data(), 0, 100), -EINVAL, "already freed");
  EXPECT_MISUSE(zs_obj_read(pool.get(), a, got.data(), 0, 100), -EINVAL, "already freed");
  EXPECT_MISUSE(zs_map_object(pool.get(), a, ZS_MM_RW), nullptr, "already freed");
  EXPECT_MISUSE(zs_free_checked(pool.get(), a), -EINVAL, "already freed");
  EXPECT_MISUSE_VOID(zs_free(pool.get(), a), "already freed");
  EXPECT_TRUE(holds(pool.get(), b, 100, 2)) << "the stale handle reached the new object";
  EXPECT_EQ(stats_of(pool.get()).objects, 1u);
  EXPECT_EQ(zs_free_checked(pool.get(), b), 0);
}

// zs_free cannot return -EBUSY: a mapped handle is dead from the zs_free on and its object is
// freed by the unmap that ends its last mapping (it used to stay allocated forever).
TEST(ZsMalloc, ZsFreeOfAMappedObjectFreesItAtItsLastUnmap) {
  PoolPtr pool = make_pool();
  const unsigned long h = alloc_filled(pool.get(), 300, 3);
  const unsigned long other = alloc_filled(pool.get(), 300, 4);
  void* a = zs_map_object(pool.get(), h, ZS_MM_RO);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(zs_map_object(pool.get(), h, ZS_MM_RO), nullptr);
#ifdef ZSPOOL_CHECKED
  (void)a;  // the mapping's bytes are checked in the unchecked build
  EXPECT_DEATH(zs_free(pool.get(), h), "free \\(still mapped\\) of handle .*busy");
  zs_unmap_object(pool.get(), h);
  zs_unmap_object(pool.get(), h);
#else
  zs_free(pool.get(), h);
  EXPECT_EQ(stats_of(pool.get()).objects, 2u) << "still mapped: not freed yet";
  EXPECT_TRUE(matches(std::span(static_cast<std::byte*>(a), 300), 3)) << "the mapping is intact";
  std::vector<std::byte> got(300);
  EXPECT_EQ(zs_obj_read(pool.get(), h, got.data(), 0, 300), -EINVAL) << "the handle is dead";
  EXPECT_EQ(zs_obj_write(pool.get(), h, got.data(), 0, 300), -EINVAL);
  EXPECT_EQ(zs_map_object(pool.get(), h, ZS_MM_RO), nullptr);
  EXPECT_EQ(zs_free_checked(pool.get(), h), -EINVAL) << "a second free is a double free";
  zs_free(pool.get(), h);  // ignored, as zs_free ignores misuse
  EXPECT_EQ(stats_of(pool.get()).mapped_objects, 2u);
  zs_unmap_object(pool.get(), h);
  EXPECT_EQ(stats_of(pool.get()).objects, 2u);
  zs_unmap_object(pool.get(), h);  // the last mapping: frees the object
  EXPECT_EQ(stats_of(pool.get()).objects, 1u);
  EXPECT_EQ(stats_of(pool.get()).handle_slots_in_use, 1u);
  EXPECT_EQ(zs_free_checked(pool.get(), h), -EINVAL);
  EXPECT_TRUE(holds(pool.get(), other, 300, 4));
  const unsigned long again = alloc_filled(pool.get(), 300, 5);  // reuses h's slot
  EXPECT_NE(again, h);
  EXPECT_TRUE(holds(pool.get(), again, 300, 5));
#endif
}

// A layout where compaction moves `target` unless its zspage is pinned: zspage A holds only
// target, zspage B is full but for one object. Unpinned, compaction empties A into B (target
// moves); with A pinned it empties B into A instead (target stays).
struct Layout {
  PoolPtr pool;
  unsigned long target = 0;
  void* where = nullptr;  // target's address before compaction
};

constexpr std::size_t kLayoutSize = 500;

Layout make_layout() {
  Layout l;
  l.pool = make_pool();
  const std::uint32_t objs = class_for(kLayoutSize).objs_per_zspage;
  std::vector<unsigned long> hs;
  for (std::uint32_t i = 0; i < 2 * objs; ++i)
    hs.push_back(alloc_filled(l.pool.get(), kLayoutSize, i));
  l.target = hs[0];
  for (std::uint32_t i = 1; i < objs + 1; ++i) EXPECT_EQ(zs_free_checked(l.pool.get(), hs[i]), 0);
  l.where = zs_map_object(l.pool.get(), l.target, ZS_MM_RO);
  zs_unmap_object(l.pool.get(), l.target);
  return l;
}

// Compacts and reports whether the target stayed put (checking its bytes either way).
bool target_stays(Layout& l) {
  EXPECT_GT(zs_compact(l.pool.get()), 0u);
  void* now = zs_map_object(l.pool.get(), l.target, ZS_MM_RO);
  EXPECT_NE(now, nullptr);
  if (now != nullptr) {
    EXPECT_TRUE(matches(std::span(static_cast<std::byte*>(now), kLayoutSize), 0));
  }
  zs_unmap_object(l.pool.get(), l.target);
  return now == l.where;
}

TEST(ZsMalloc, UnpinnedObjectsMoveUnderCompaction) {
  Layout l = make_layout();
  EXPECT_FALSE(target_stays(l)) << "the layout must move an unpinned target";
}

TEST(ZsMalloc, AMapPinsTheObjectUntilItsUnmap) {
  Layout l = make_layout();
  ASSERT_EQ(zs_map_object(l.pool.get(), l.target, ZS_MM_RO), l.where);
  EXPECT_TRUE(target_stays(l));
  zs_unmap_object(l.pool.get(), l.target);
  EXPECT_EQ(stats_of(l.pool.get()).mapped_objects, 0u);
}

TEST(ZsMalloc, NestedMapsPinUntilTheLastUnmap) {
  Layout l = make_layout();
  ASSERT_NE(zs_map_object(l.pool.get(), l.target, ZS_MM_RO), nullptr);
  ASSERT_NE(zs_map_object(l.pool.get(), l.target, ZS_MM_RW), nullptr);
  zs_unmap_object(l.pool.get(), l.target);
  EXPECT_TRUE(target_stays(l)) << "one map is still live";
  zs_unmap_object(l.pool.get(), l.target);
}

TEST(ZsMalloc, AllMapsUndoneLeavesNoPin) {
  Layout l = make_layout();
  ASSERT_NE(zs_map_object(l.pool.get(), l.target, ZS_MM_RO), nullptr);
  ASSERT_NE(zs_map_object(l.pool.get(), l.target, ZS_MM_RO), nullptr);
  zs_unmap_object(l.pool.get(), l.target);
  zs_unmap_object(l.pool.get(), l.target);
  EXPECT_FALSE(target_stays(l));
}

TEST(ZsMalloc, MapOnOneThreadUnmapOnAnother) {
  Layout l = make_layout();
  std::thread([&] { EXPECT_EQ(zs_map_object(l.pool.get(), l.target, ZS_MM_RO), l.where); }).join();
  EXPECT_EQ(stats_of(l.pool.get()).mapped_objects, 1u);
  EXPECT_MISUSE(zs_free_checked(l.pool.get(), l.target), -EBUSY, "busy");
  std::thread([&] { zs_unmap_object(l.pool.get(), l.target); }).join();
  EXPECT_EQ(stats_of(l.pool.get()).mapped_objects, 0u);
  EXPECT_FALSE(target_stays(l));
}

TEST(ZsMalloc, DestroyingThePoolReleasesLiveMappings) {
  PoolPtr pool = make_pool();
  for (int i = 0; i < 100; ++i) {
    const unsigned long h = alloc_filled(pool.get(), 50 + i * 30, i);
    ASSERT_NE(zs_map_object(pool.get(), h, ZS_MM_RW), nullptr);
  }
  EXPECT_EQ(stats_of(pool.get()).mapped_objects, 100u);
  pool.reset();  // ASan / LSan builds check that nothing leaks or touches freed memory
}

// Several threads map and unmap the same handles, checking the bytes each time, while another
// thread compacts and a third churns the same class (so compaction has work, and moves the
// shared objects whenever no map pins them).
TEST(ZsMalloc, ConcurrentMapUnmapOfTheSameHandles) {
  PoolPtr pool = make_pool();
  zs_pool* p = pool.get();
  constexpr int kShared = 8;
  constexpr std::size_t kSize = 700;
  std::vector<unsigned long> shared;
  for (int i = 0; i < kShared; ++i) shared.push_back(alloc_filled(p, kSize, 1000 + i));
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::atomic<std::uint64_t> maps{0};

  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Rng rng(t);
      for (int i = 0; i < 20000; ++i) {
        const int k = static_cast<int>(rng.below(kShared));
        const zs_mapmode mode = i % 2 ? ZS_MM_RO : ZS_MM_RW;
        auto* first = static_cast<std::byte*>(zs_map_object(p, shared[k], mode));
        auto* nested = i % 16 == 0 ? zs_map_object(p, shared[k], ZS_MM_RO) : first;
        if (first == nullptr || nested != first || !matches(std::span(first, kSize), 1000 + k)) {
          bad.fetch_add(1);
        }
        if (i % 16 == 0) zs_unmap_object(p, shared[k]);
        zs_unmap_object(p, shared[k]);
        maps.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  std::thread compactor([&] {
    while (!stop.load()) zs_compact(p);
  });
  std::thread churn([&] {
    Rng rng(77);
    std::vector<unsigned long> mine;
    while (!stop.load()) {
      if (mine.size() < 2000 && rng.below(3) != 0) {
        mine.push_back(zs_malloc(p, kSize - 10 + rng.below(20), 0));
      } else if (!mine.empty()) {
        const std::size_t i = rng.below(mine.size());
        if (zs_free_checked(p, mine[i]) != 0) bad.fetch_add(1);
        mine[i] = mine.back();
        mine.pop_back();
      }
    }
    for (unsigned long h : mine)
      if (zs_free_checked(p, h) != 0) bad.fetch_add(1);
  });
  for (auto& t : threads) t.join();
  stop.store(true);
  compactor.join();
  churn.join();

  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(maps.load(), 4u * 20000u);
  const struct zs_pool_stats s = stats_of(p);
  EXPECT_EQ(s.mapped_objects, 0u);
  EXPECT_EQ(s.objects, static_cast<unsigned long>(kShared));
  for (int i = 0; i < kShared; ++i) {
    EXPECT_TRUE(holds(p, shared[i], kSize, 1000 + i));
    EXPECT_EQ(zs_free_checked(p, shared[i]), 0);
  }
  EXPECT_EQ(zs_get_total_pages(p), 0u) << "a leaked pin would keep an empty zspage alive";
}

// Races one handle between two threads, a round at a time: `prepare(r)` returns the round's
// handle, then `other(h)` runs on a second thread while this one spins a varying while and runs
// `act(h)`; `stale(h)` counts handles still live after both. zs_free of a mapped handle stops a
// checked build, so the tests below run unchecked.
void spin_for(int iterations) {
  volatile int k = 0;
  while (k < iterations) k = k + 1;
}

template <class Prepare, class Other, class Act>
int race_rounds(zs_pool* p, int rounds, Prepare prepare, Other other, Act act) {
  std::atomic<int> round{0}, done{0};
  std::atomic<unsigned long> handle{0};
  auto spin_until = [](const std::atomic<int>& step, int value) {
    while (step.load(std::memory_order_acquire) != value) std::this_thread::yield();
  };
  std::thread second([&] {
    for (int r = 1; r <= rounds; ++r) {
      spin_until(round, r);
      other(handle.load());
      done.store(r, std::memory_order_release);
    }
  });
  int live = 0;
  for (int r = 1; r <= rounds; ++r) {
    const unsigned long h = prepare(r);
    handle.store(h);
    round.store(r, std::memory_order_release);
    spin_for(r % 200);  // varies where the other thread's call lands
    act(h);
    spin_until(done, r);
    char c;
    if (zs_obj_read(p, h, &c, 0, 1) == 0) ++live;
  }
  second.join();
  return live;
}

// A zs_map_object of a zs_free'd handle racing the zs_unmap_object that ends its last mapping
// used to succeed now and then (Pool::map pinned the object between the unmap's look at the
// table and its Pool::free, which failed busy and was dropped): the dead handle was revived and
// its object never freed. Now the map is refused and every object is freed.
TEST(ZsMalloc, AMapRacingTheLastUnmapOfAFreedHandleNeverRevivesIt) {
#ifdef ZSPOOL_CHECKED
  GTEST_SKIP() << "zs_free of a mapped handle stops a checked build";
#else
  PoolPtr pool = make_pool();
  zs_pool* p = pool.get();
  std::atomic<int> revived{0};
  const int live = race_rounds(
      p, 20000,
      [&](int r) {
        const unsigned long h = alloc_filled(p, 100, r);
        EXPECT_NE(zs_map_object(p, h, ZS_MM_RW), nullptr);
        zs_free(p, h);  // dead from here on; freed by the unmap in act
        return h;
      },
      [&](unsigned long h) {
        if (zs_map_object(p, h, ZS_MM_RO) == nullptr) return;
        revived.fetch_add(1);
        zs_unmap_object(p, h);
      },
      [&](unsigned long h) { zs_unmap_object(p, h); });
  EXPECT_EQ(revived.load(), 0) << "zs_map_object mapped a handle zs_free'd before it";
  EXPECT_EQ(live, 0) << "freed handles still reached their objects";
  EXPECT_EQ(stats_of(p).objects, 0u) << "objects leaked";
  EXPECT_EQ(zs_get_total_pages(p), 0u);
#endif
}

// A zs_free overlapping another thread's zs_map_object/zs_unmap_object of the handle used to be
// lost now and then (its fallback found no C mapping, called Pool::free, met the next map's pin
// and dropped the busy): the object stayed allocated forever. Either order must free it.
TEST(ZsMalloc, AZsFreeOverlappingMapsOfTheHandleIsNeverLost) {
#ifdef ZSPOOL_CHECKED
  GTEST_SKIP() << "zs_free of a mapped handle stops a checked build";
#else
  PoolPtr pool = make_pool();
  zs_pool* p = pool.get();
  const int live = race_rounds(
      p, 20000, [&](int r) { return alloc_filled(p, 100, r); },
      [&](unsigned long h) {
        for (int k = 0; k < 50 && zs_map_object(p, h, ZS_MM_RO) != nullptr; ++k)
          zs_unmap_object(p, h);
      },
      [&](unsigned long h) { zs_free(p, h); });
  EXPECT_EQ(live, 0) << "zs_free'd handles were still live after their last unmap";
  EXPECT_EQ(stats_of(p).objects, 0u) << "objects leaked";
  EXPECT_EQ(zs_get_total_pages(p), 0u);
#endif
}

// ── compaction and statistics ────────────────────────────────────────────────────────────────

TEST(ZsMalloc, CompactFreesPagesAndStatsAddUp) {
  PoolPtr pool = make_pool();
  zs_pool* p = pool.get();
  EXPECT_EQ(zs_compact(nullptr), 0u);
  EXPECT_EQ(zs_get_total_pages(nullptr), 0u);
  EXPECT_EQ(zs_compact(p), 0u) << "nothing to compact in an empty pool";

  std::vector<unsigned long> all;
  for (std::uint64_t i = 0; i < 20000; ++i) all.push_back(alloc_filled(p, 100 + i % 13 * 150, i));
  std::vector<std::pair<unsigned long, std::uint64_t>> kept;
  Rng rng(3);
  for (std::uint64_t i = 0; i < all.size(); ++i) {
    if (rng.below(2) != 0) {
      kept.emplace_back(all[i], i);
    } else {
      ASSERT_EQ(zs_free_checked(p, all[i]), 0);
    }
  }
  struct zs_pool_stats s = stats_of(p);
  // stats_of pre-fills the struct with 0xff bytes: every field must have been written.
  static_assert(sizeof(s) % sizeof(unsigned long) == 0);
  unsigned long words[sizeof(s) / sizeof(unsigned long)];
  std::memcpy(words, &s, sizeof(s));
  for (std::size_t i = 0; i < std::size(words); ++i) EXPECT_NE(words[i], ~0ul) << "field " << i;
  EXPECT_EQ(s.page_size, 4096u);
  EXPECT_EQ(s.max_chain, 8u);
  EXPECT_EQ(s.huge_class_size, zs_huge_class_size(p));
  EXPECT_EQ(s.objects, kept.size());
  EXPECT_EQ(s.handle_slots_in_use, kept.size());
  EXPECT_EQ(s.pages, zs_get_total_pages(p));
  EXPECT_GE(s.pages_max, s.pages);
  EXPECT_GT(s.metadata_bytes, 0u);
  EXPECT_GE(s.metadata_bytes, s.handle_slot_bytes + s.descriptor_bytes);
  EXPECT_EQ(s.pages_compacted, 0u);
  EXPECT_EQ(s.mapped_objects, 0u);
  EXPECT_EQ(s.reclaim_attempts, 0u);
  EXPECT_EQ(s.alloc_failures, 0u);

  const unsigned long before = zs_get_total_pages(p);
  const unsigned long freed = zs_compact(p);
  EXPECT_GT(freed, before / 4);
  EXPECT_EQ(zs_get_total_pages(p), before - freed);
  s = stats_of(p);
  EXPECT_EQ(s.pages_compacted, freed);
  EXPECT_EQ(s.pages, before - freed);
  EXPECT_EQ(zs_compact(p), 0u) << "a compacted pool has nothing left to free";
  for (auto& [h, seed] : kept) ASSERT_TRUE(holds(p, h, 100 + seed % 13 * 150, seed));

  struct zs_pool_stats zero;
  std::memset(&zero, 0xff, sizeof(zero));
  zs_pool_stats(nullptr, &zero);
  const struct zs_pool_stats all_zero {};
  EXPECT_EQ(std::memcmp(&zero, &all_zero, sizeof(zero)), 0);
  zs_pool_stats(p, nullptr);  // ignored
}

// ── writeback: zpool_ops.evict and zs_reclaim_page ───────────────────────────────────────────

// The owner's side of writeback: a "swap device" that evict copies objects into.
struct Backend {
  std::map<unsigned long, std::pair<std::size_t, std::uint64_t>> live;  // handle -> size, seed
  std::map<std::uint64_t, std::vector<std::byte>> written;              // seed -> bytes
  bool use_map = false;
  int fail_with = 0;  // nonzero: every evict fails with this
  int calls = 0;
  int errors = 0;
};

int evict(zs_pool* pool, unsigned long handle, void* ctx) {
  auto* b = static_cast<Backend*>(ctx);
  ++b->calls;
  if (b->fail_with != 0) return b->fail_with;
  auto it = b->live.find(handle);
  if (it == b->live.end()) {
    ++b->errors;
    return -ENOENT;
  }
  const auto [size, seed] = it->second;
  std::vector<std::byte> bytes(size);
  if (b->use_map) {
    const void* src = zs_map_object(pool, handle, ZS_MM_RO);
    if (src == nullptr) {
      ++b->errors;
      return -EIO;
    }
    std::memcpy(bytes.data(), src, size);
    zs_unmap_object(pool, handle);
  } else if (zs_obj_read(pool, handle, bytes.data(), 0, size) != 0) {
    ++b->errors;
    return -EIO;
  }
  if (zs_free_checked(pool, handle) != 0) ++b->errors;
  b->written[seed] = std::move(bytes);
  b->live.erase(it);
  return 0;
}

void writeback_round_trip(bool use_map) {
  Backend backend;
  backend.use_map = use_map;
  const zpool_ops ops{.evict = evict, .ctx = &backend};
  PoolPtr pool = make_pool({.name = "zswap", .ops = &ops});
  zs_pool* p = pool.get();
  EXPECT_EQ(zs_reclaim_page(p, 8), -ENOENT) << "an empty pool has nothing to reclaim";

  for (std::uint64_t i = 0; i < 3000; ++i) {
    const std::size_t size = 200 + i % 11 * 300;
    backend.live[alloc_filled(p, size, i)] = {size, i};
  }
  const unsigned long pages = zs_get_total_pages(p);
  int reclaimed = 0;
  while (zs_get_total_pages(p) > pages / 2) {
    ASSERT_EQ(zs_reclaim_page(p, 8), 0);
    ++reclaimed;
  }
  EXPECT_EQ(backend.errors, 0);
  EXPECT_GT(backend.written.size(), 0u);
  EXPECT_EQ(backend.written.size() + backend.live.size(), 3000u);
  EXPECT_EQ(backend.calls, static_cast<int>(backend.written.size()));
  for (auto& [seed, bytes] : backend.written)
    EXPECT_TRUE(matches(bytes, seed)) << "evicted object " << seed;
  for (auto& [h, sz] : backend.live) ASSERT_TRUE(holds(p, h, sz.first, sz.second));

  const struct zs_pool_stats s = stats_of(p);
  EXPECT_EQ(s.zspages_reclaimed, static_cast<unsigned long>(reclaimed));
  EXPECT_EQ(s.reclaim_attempts, static_cast<unsigned long>(reclaimed));
  EXPECT_EQ(s.evict_calls, backend.written.size());
  EXPECT_EQ(s.evict_failures, 0u);
  EXPECT_EQ(s.deferred_handles_created, backend.written.size()) << "evict frees defer handles";
  EXPECT_EQ(s.deferred_handles_released, backend.written.size());
  EXPECT_EQ(s.objects, backend.live.size());
  EXPECT_EQ(s.handle_slots_in_use, backend.live.size());
  EXPECT_EQ(s.mapped_objects, 0u);

  // Reclaim everything: the pool drains to nothing.
  while (zs_reclaim_page(p, 8) == 0) {
  }
  EXPECT_EQ(zs_reclaim_page(p, 8), -ENOENT);
  EXPECT_EQ(zs_get_total_pages(p), 0u);
  EXPECT_EQ(backend.written.size(), 3000u);
  EXPECT_EQ(backend.errors, 0);
}

TEST(ZsMalloc, ReclaimEvictsThroughOpsWithObjRead) {
  writeback_round_trip(false);
}

TEST(ZsMalloc, ReclaimEvictsThroughOpsWithMap) {
  writeback_round_trip(true);
}

TEST(ZsMalloc, FailedEvictionsAreEAGAINAndKeepTheObjects) {
  Backend backend;
  backend.fail_with = -EIO;
  const zpool_ops ops{.evict = evict, .ctx = &backend};
  PoolPtr pool = make_pool({.ops = &ops});
  zs_pool* p = pool.get();
  for (std::uint64_t i = 0; i < 500; ++i) backend.live[alloc_filled(p, 900, i)] = {900, i};
  const unsigned long pages = zs_get_total_pages(p);

  EXPECT_EQ(zs_reclaim_page(p, 3), -EAGAIN);
  EXPECT_EQ(backend.calls, 3) << "one failed evict per attempt, then the next zspage";
  EXPECT_EQ(zs_reclaim_page(p, 0), -EINVAL);
  EXPECT_EQ(zs_reclaim_page(nullptr, 1), -EINVAL);
  EXPECT_EQ(zs_get_total_pages(p), pages);
  const struct zs_pool_stats s = stats_of(p);
  EXPECT_EQ(s.reclaim_attempts, 3u);
  EXPECT_EQ(s.evict_failures, 3u);
  EXPECT_EQ(s.zspages_reclaimed, 0u);
  for (auto& [h, sz] : backend.live) ASSERT_TRUE(holds(p, h, sz.first, sz.second));

  backend.fail_with = 0;  // the device is back: reclaim works again
  EXPECT_EQ(zs_reclaim_page(p, 8), 0);
  EXPECT_LT(zs_get_total_pages(p), pages);
  EXPECT_EQ(backend.errors, 0);
}

TEST(ZsMalloc, PoolWithoutOpsCannotReclaim) {
  PoolPtr pool = make_pool();
  alloc_filled(pool.get(), 100, 1);
  EXPECT_EQ(zs_reclaim_page(pool.get(), 8), -EOPNOTSUPP);
}

}  // namespace
