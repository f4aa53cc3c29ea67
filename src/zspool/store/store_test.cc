#include "zspool/store/store.h"
#include "zspool/platform/internal/os_page_source.h"
#include "zspool/store/internal/store_internals.h"
#include "zspool/testing/store_test_util.h"
#include "zspool/workload/rng.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "zspool/testing/proc_maps.h"
#include "zspool/testing/test_util.h"

namespace zspool {
namespace {

using test::make_store;
using test::reads_back;
using test::TempFile;

constexpr std::uint32_t kPage = 4096;

std::uint64_t mix(std::uint64_t x) {
  return splitmix64_at(x);
}

enum class Flavour { text, zeros, random, pointers, same };

// A page whose contents are determined by (index, version) and a flavour; the first 16 bytes
// of every non-uniform page carry index and version so a reader can tell which it got.
std::vector<std::byte> make_page(std::uint64_t index, std::uint64_t version, Flavour f) {
  std::vector<std::byte> p(kPage);
  std::uint64_t s = mix(index * 1000003 + version);
  switch (f) {
    case Flavour::zeros:
      return p;
    case Flavour::same:
      for (std::size_t i = 0; i < kPage; i += 8) std::memcpy(&p[i], &s, 8);
      return p;
    case Flavour::text: {
      static const char* words[] = {"the ",        "store ", "keeps ",  "pages ",
                                    "compressed ", "in ",    "memory ", "and ",
                                    "writes ",     "cold ",  "ones ",   "back. "};
      std::string t;
      while (t.size() < kPage) t += words[(s = mix(s)) % 12];
      std::memcpy(p.data(), t.data(), kPage);
      break;
    }
    case Flavour::random:
      for (std::size_t i = 0; i < kPage; i += 8) {
        s = mix(s);
        std::memcpy(&p[i], &s, 8);
      }
      break;
    case Flavour::pointers:
      for (std::size_t i = 0; i < kPage; i += 8) {
        const std::uint64_t v = 0x00007f0000000000ull + (mix(s + i / 64) % 4096) * 16;
        std::memcpy(&p[i], &v, 8);
      }
      break;
  }
  std::memcpy(&p[0], &index, 8);
  std::memcpy(&p[8], &version, 8);
  return p;
}

Flavour flavour_of(std::uint64_t i) {
  return static_cast<Flavour>(i % 5);
}

TEST(Store, RoundTripsEveryCompressor) {
  for (const char* c : {"lz4", "zstd", "zstd:9", "lzo1x"}) {
    auto s = make_store({.pages = 100, .compressor = c});
    ASSERT_NE(s, nullptr);
    for (std::uint64_t i = 0; i < 100; ++i)
      ASSERT_EQ(s->write(i, make_page(i, 1, flavour_of(i))), Error::ok) << c;
    for (std::uint64_t i = 0; i < 100; ++i)
      ASSERT_TRUE(reads_back(*s, i, make_page(i, 1, flavour_of(i)))) << c << " page " << i;
    auto st = s->stats();
    EXPECT_EQ(st.orig_data_size, 100u * kPage);
    EXPECT_GT(st.compr_data_size, 0u);
    EXPECT_LT(st.compr_data_size, st.orig_data_size);
  }
}

// A page whose first `random_bytes` bytes are random and the rest zeros: it compresses to about
// random_bytes, so a spread of them lands in every size class.
std::vector<std::byte> page_compressing_to(std::uint64_t random_bytes, std::uint64_t seed) {
  std::vector<std::byte> p(kPage);
  for (std::size_t i = 0; i + 8 <= random_bytes; i += 8) {
    seed = mix(seed);
    std::memcpy(&p[i], &seed, 8);
  }
  return p;
}

// The store's default chain (16) packs denser than the kernel's (8): the same pages, all sizes.
TEST(Store, DefaultChainPacksDenserThanTheKernelsChain) {
  EXPECT_EQ(StoreOptions{}.max_chain, kStoreDefaultChain);
  auto efficiency = [](std::uint32_t max_chain) {
    auto s = make_store({.max_chain = max_chain, .pages = 20000});
    for (std::uint64_t i = 0; i < 20000; ++i) {
      const auto page = page_compressing_to(64 + mix(i) % 3500, i);
      EXPECT_EQ(s->write(i, page), Error::ok);
    }
    const StoreStats st = s->stats();
    return static_cast<double>(st.compr_data_size) / static_cast<double>(st.mem_used_total);
  };
  const double store_default = efficiency(StoreOptions{}.max_chain);
  const double kernels = efficiency(kDefaultChain);
  EXPECT_GT(store_default, kernels + 0.005) << store_default << " vs " << kernels;
}

// A capacity whose page table the machine cannot hold is an error value, never an exception
// out of create() (which took the process down before).
TEST(Store, CapacityBeyondMaxPagesIsTooLargeNotACrash) {
  ASSERT_GT(Store::max_pages(), 0u);
  for (const std::uint64_t pages : {Store::max_pages() + 1, ~std::uint64_t{0}}) {
    auto s = Store::create({.pages = pages});
    ASSERT_FALSE(s.ok()) << pages;
    EXPECT_EQ(s.error(), Error::too_large) << pages;
  }
  EXPECT_TRUE(Store::create({.pages = 1}).ok());
}

// The pool's reservations follow the capacity: a pool used to reserve 1.1 GiB of address space
// whatever the store's size, so under `ulimit -v 1100000` not even a 1-page store could be
// made. Runs in a forked child under a limit of what it uses plus 256 MiB; returns its exit
// code (0: as expected). The second store rewrites every page under a tight limit with a
// backing file: writeback defers handles and rewrites hold two at once, within the reservation.
int small_stores_under_a_low_limit() {
  if (!test::cap_address_space_above_use(std::size_t{256} << 20)) return 12;
  auto one = Store::create({.pages = 1});
  if (!one) return 13;
  const auto page = make_page(0, 1, Flavour::text);
  if ((*one)->write(0, page) != Error::ok || !reads_back(**one, 0, page)) return 14;
  TempFile backing;
  constexpr std::uint64_t kPages = 2048;
  auto small =
      Store::create({.pages = kPages, .mem_limit = 64 * kPage, .backing_path = backing.path});
  if (!small) return 15;
  for (std::uint64_t version = 1; version <= 3; ++version)
    for (std::uint64_t i = 0; i < kPages; ++i)
      if ((*small)->write(i, make_page(i, version, flavour_of(i))) != Error::ok) return 16;
  for (std::uint64_t i = 0; i < kPages; ++i)
    if (!reads_back(**small, i, make_page(i, 3, flavour_of(i)))) return 17;
  if ((*small)->stats().written_back_pages == 0) return 18;
  return 0;
}

TEST(Store, SmallStoresWorkUnderALowAddressSpaceLimit) {
  if (const std::string why = os::census_unreliable_reason(); !why.empty())
    GTEST_SKIP() << "RLIMIT_AS is unreliable here: " << why;
  EXPECT_EXIT(std::_Exit(small_stores_under_a_low_limit()), ::testing::ExitedWithCode(0), "");
}

TEST(Store, RejectsBadOptionsAndArguments) {
  EXPECT_EQ(Store::create({.pages = 0}).error(), Error::invalid_argument);
  EXPECT_EQ(Store::create({.pages = 8, .compressor = "nope"}).error(), Error::invalid_argument);
  EXPECT_EQ(Store::create({.pages = 8, .backing_path = "/nonexistent/dir/f"}).error(),
            Error::invalid_argument);
  // A bad page size or chain is refused before anything is sized by it: with a backing file a
  // page size of 2^31 made a batch buffer of 64 GiB first (out_of_memory, or worse).
  TempFile f;
  for (const std::uint32_t page_size : {0u, 1000u, 512u, 1u << 20, 1u << 31, ~0u}) {
    EXPECT_EQ(Store::create({.page_size = page_size, .pages = 8}).error(), Error::invalid_argument)
        << page_size;
    EXPECT_EQ(Store::create({.page_size = page_size, .pages = 8, .backing_path = f.path}).error(),
              Error::invalid_argument)
        << page_size;
    EXPECT_EQ(std::filesystem::file_size(f.path), 0u) << "the given empty file is left empty";
  }
  for (const std::uint32_t chain : {0u, kMaxChain + 1})
    EXPECT_EQ(Store::create({.max_chain = chain, .pages = 8, .backing_path = f.path}).error(),
              Error::invalid_argument);
  auto s = make_store({.pages = 8});
  std::vector<std::byte> small(100), page(kPage);
  EXPECT_EQ(s->write(8, page), Error::invalid_argument);
  EXPECT_EQ(s->write(0, small), Error::invalid_argument);
  EXPECT_EQ(s->read(8, page), Error::invalid_argument);
  EXPECT_EQ(s->discard(9), Error::invalid_argument);
  EXPECT_EQ(s->writeback(1).error(), Error::unsupported);
}

TEST(Store, SameFilledPagesTakeNoPoolMemory) {
  auto s = make_store({.pages = 64});
  for (std::uint64_t i = 0; i < 64; ++i)
    ASSERT_EQ(s->write(i, make_page(i, 0, i % 2 ? Flavour::same : Flavour::zeros)), Error::ok);
  auto st = s->stats();
  EXPECT_EQ(st.same_pages, 64u);
  EXPECT_EQ(st.mem_used_total, 0u);
  EXPECT_EQ(st.compr_data_size, 0u);
  for (std::uint64_t i = 0; i < 64; ++i)
    ASSERT_TRUE(reads_back(*s, i, make_page(i, 0, i % 2 ? Flavour::same : Flavour::zeros)));
}

TEST(Store, WriteSameFilledStoresTheWordAndNothingElse) {
  auto s = make_store({.pages = 8});
  ASSERT_EQ(s->write(2, make_page(2, 1, Flavour::text)), Error::ok);
  ASSERT_EQ(s->write_same_filled(2, 0), Error::ok);  // replaces the compressed page
  ASSERT_EQ(s->write_same_filled(3, 0x0102030405060708ull), Error::ok);
  EXPECT_EQ(s->write_same_filled(8, 0), Error::invalid_argument);
  EXPECT_TRUE(reads_back(*s, 2, std::vector<std::byte>(kPage)));
  std::vector<std::byte> words(kPage);
  for (std::size_t i = 0; i < kPage; i += 8) {
    const std::uint64_t w = 0x0102030405060708ull;
    std::memcpy(&words[i], &w, 8);
  }
  EXPECT_TRUE(reads_back(*s, 3, words));
  auto st = s->stats();
  EXPECT_EQ(st.same_pages, 2u);
  EXPECT_EQ(st.stored_pages, 2u);
  EXPECT_EQ(st.compr_data_size, 0u);
  EXPECT_EQ(st.pool.handle_slots_in_use, 0u) << "the compressed page was freed";
}

TEST(Store, PageStateTellsHolesZeroPagesAndData) {
  TempFile f;
  auto s = make_store({.pages = 8, .backing_path = f.path});
  using S = Store::PageState;
  EXPECT_EQ(s->page_state(0), S::hole) << "never written";
  ASSERT_EQ(s->write(0, make_page(0, 1, Flavour::zeros)), Error::ok);
  EXPECT_EQ(s->page_state(0), S::zero) << "an all-zero page is a zero page, not a hole";
  ASSERT_EQ(s->write(1, make_page(1, 1, Flavour::same)), Error::ok);
  EXPECT_EQ(s->page_state(1), S::data) << "same-filled with a nonzero word";
  ASSERT_EQ(s->write(2, make_page(2, 1, Flavour::text)), Error::ok);
  ASSERT_EQ(s->write(3, make_page(3, 1, Flavour::random)), Error::ok);
  EXPECT_EQ(s->page_state(2), S::data);
  EXPECT_EQ(s->page_state(3), S::data) << "huge";
  ASSERT_EQ(s->writeback(64).value(), 2u);
  EXPECT_EQ(s->page_state(2), S::data) << "written back";
  ASSERT_EQ(s->discard(2), Error::ok);
  EXPECT_EQ(s->page_state(2), S::hole) << "discarded";
  EXPECT_EQ(s->page_state(8), S::hole) << "past the end";
  EXPECT_EQ(s->sync_backing(), Error::ok);
  EXPECT_EQ(make_store({.pages = 1})->sync_backing(), Error::ok) << "no backing file";
}

TEST(Store, IncompressiblePagesAreStoredRaw) {
  auto s = make_store({.pages = 10});
  for (std::uint64_t i = 0; i < 10; ++i)
    ASSERT_EQ(s->write(i, make_page(i, 1, Flavour::random)), Error::ok);
  auto st = s->stats();
  EXPECT_EQ(st.huge_pages, 10u);
  EXPECT_EQ(st.huge_pages_since, 10u);
  EXPECT_EQ(st.reject_compress_poor, 10u);
  EXPECT_EQ(st.compr_data_size, 10u * kPage);
  EXPECT_EQ(st.mem_used_total, 10u * kPage);
  for (std::uint64_t i = 0; i < 10; ++i)
    ASSERT_TRUE(reads_back(*s, i, make_page(i, 1, Flavour::random)));
  ASSERT_EQ(s->write(3, make_page(3, 2, Flavour::text)), Error::ok);
  EXPECT_EQ(s->stats().huge_pages, 9u);
  EXPECT_EQ(s->stats().huge_pages_since, 10u);
}

TEST(Store, OverwriteAndDiscard) {
  auto s = make_store({.pages = 4});
  ASSERT_EQ(s->write(1, make_page(1, 1, Flavour::text)), Error::ok);
  ASSERT_EQ(s->write(1, make_page(1, 2, Flavour::pointers)), Error::ok);
  EXPECT_TRUE(reads_back(*s, 1, make_page(1, 2, Flavour::pointers)));
  ASSERT_EQ(s->discard(1), Error::ok);
  EXPECT_TRUE(reads_back(*s, 1, std::vector<std::byte>(kPage)));
  EXPECT_TRUE(reads_back(*s, 2, std::vector<std::byte>(kPage))) << "never written: zeros";
  auto st = s->stats();
  EXPECT_EQ(st.orig_data_size, 0u);
  EXPECT_EQ(st.compr_data_size, 0u);
  EXPECT_EQ(st.mem_used_total, 0u);
  EXPECT_EQ(st.pool.handle_slots_in_use, 0u);
}

TEST(Store, LimitWithoutBackingRefusesWritesAndKeepsWhatWasThere) {
  auto s = make_store({.pages = 2000, .mem_limit = 256 * 1024});
  std::uint64_t stored = 0;
  Error e = Error::ok;
  for (; stored < 2000; ++stored) {
    e = s->write(stored, make_page(stored, 1, Flavour::text));
    if (e != Error::ok) break;
  }
  ASSERT_EQ(e, Error::limit_reached);
  EXPECT_LE(s->stats().mem_used_total, 256u * 1024) << "one writer stays within the limit";
  // Overwriting a stored page past the limit fails and leaves its old contents.
  const Error again = s->write(0, make_page(0, 2, Flavour::random));
  EXPECT_EQ(again, Error::limit_reached);
  for (std::uint64_t i = 0; i < stored; ++i)
    ASSERT_TRUE(reads_back(*s, i, make_page(i, 1, Flavour::text))) << i;
  EXPECT_GT(s->stats().pool_limit_hit, 0u);
  EXPECT_GT(s->stats().rejected_writes, 0u);
}

// At the limit, a write that needs no new pool pages (here: into the slot a discard freed) is
// stored.
TEST(Store, AtTheLimitAWriteIntoFreedRoomSucceeds) {
  constexpr std::uint64_t kLimit = 256 * 1024;
  auto s = make_store({.pages = 2000, .mem_limit = kLimit});
  std::uint64_t stored = 0;
  while (s->write(stored, make_page(stored, 1, Flavour::pointers)) == Error::ok) ++stored;
  ASSERT_GT(stored, 10u);
  const std::uint64_t held = s->stats().mem_used_total;
  EXPECT_LE(held, kLimit);
  for (std::uint64_t i = 0; i < 10; ++i) {
    ASSERT_EQ(s->discard(i), Error::ok);
    ASSERT_EQ(s->write(i, make_page(i, 1, Flavour::pointers)), Error::ok) << i;
  }
  EXPECT_EQ(s->stats().mem_used_total, held) << "the freed slots were reused";
  for (std::uint64_t i = 0; i < stored; ++i)
    ASSERT_TRUE(reads_back(*s, i, make_page(i, 1, Flavour::pointers))) << i;
}

// Pages of `random` random bytes then zeros: their compressed length follows `random`.
std::vector<std::byte> random_prefix_page(std::mt19937_64& rng, std::size_t random) {
  std::vector<std::byte> page(kPage, std::byte{0});
  for (std::size_t k = 0; k < random; ++k) page[k] = static_cast<std::byte>(rng());
  return page;
}

// A write refused for the limit commits nothing. Before, a refused allocation left the page it
// had committed, the next one took it for free and was kept, and the next was refused on a fresh
// page: one page gained per refusal, until each size class in use filled a whole zspage (16
// pages held under a 4-page limit with one class; 117 under 16 with many).
TEST(Store, RefusedWritesNeverTakeThePoolPastTheLimit) {
  for (const bool one_class : {true, false}) {
    SCOPED_TRACE(one_class ? "one size class" : "every size class");
    const std::uint64_t limit_pages = one_class ? 4 : 16;
    auto s = make_store({.pages = 4096, .mem_limit = limit_pages * kPage});
    std::mt19937_64 rng(1);
    std::uint64_t kept = 0, refused = 0, most_held = 0;
    for (std::uint64_t n = 0; n < 20000; ++n) {
      const std::size_t random = one_class ? 1000 : rng() % kPage;
      const Error e =
          s->write(one_class ? n % 4096 : rng() % 4096, random_prefix_page(rng, random));
      ASSERT_TRUE(e == Error::ok || e == Error::limit_reached) << error_name(e);
      ++(e == Error::ok ? kept : refused);
      most_held = std::max<std::uint64_t>(most_held, s->pool().total_pages());
    }
    EXPECT_GT(kept, 0u);
    EXPECT_GT(refused, 0u);
    EXPECT_LE(most_held, limit_pages) << "pages held past a " << limit_pages << "-page limit";
  }
}

// With a backing file, a write that finds the pool within a page of its limit makes room by
// writing back (the policy's choice of cold pages), as one that passes the limit does; the new
// page goes straight to the backing file only when writeback cannot make room. The pool's
// budget of new pages first refused such writes without writing back, and sent each one
// straight to the file.
TEST(Store, AtTheLimitWithBackingWritesBackRatherThanSendingNewPagesToTheFile) {
  TempFile f;
  // Not a whole number of pages: the pool can be within a page of it and not over it.
  auto s = make_store({.pages = 4096,
                       .mem_limit = 64 * kPage + kPage / 2,
                       .backing_path = f.path,
                       .background_writer = false});
  std::mt19937_64 rng(7);
  std::vector<std::vector<std::byte>> want(4096);
  for (std::uint64_t n = 0; n < 4096; ++n) {
    want[n] = random_prefix_page(rng, rng() % (kPage / 2));
    ASSERT_EQ(s->write(n, want[n]), Error::ok) << n;
  }
  const auto st = s->stats();
  ASSERT_GT(st.written_back_pages, 0u);
  EXPECT_EQ(st.bd_writes, st.written_back_pages) << "pages sent straight to the backing file";
  EXPECT_LE(st.mem_used_total, 64 * kPage + kPage / 2);
  for (std::uint64_t n = 0; n < 4096; ++n) ASSERT_TRUE(reads_back(*s, n, want[n])) << n;
}

TEST(Store, LimitWithBackingWritesBackAndEverythingReadsBack) {
  TempFile f;
  auto s = make_store({.pages = 3000, .mem_limit = 512 * 1024, .backing_path = f.path});
  for (std::uint64_t i = 0; i < 3000; ++i)
    ASSERT_EQ(s->write(i, make_page(i, 1, flavour_of(i))), Error::ok) << i;
  auto st = s->stats();
  EXPECT_GT(st.written_back_pages, 0u);
  EXPECT_GT(st.bd_count, 0u);
  EXPECT_LE(st.mem_used_total, 512u * 1024);
  for (std::uint64_t i = 0; i < 3000; ++i)
    ASSERT_TRUE(reads_back(*s, i, make_page(i, 1, flavour_of(i)))) << i;
  EXPECT_GT(s->stats().bd_reads, 0u);
  EXPECT_EQ(s->stats().bd_read_failures, 0u);
}

TEST(Store, ExplicitWritebackThenReadBack) {
  TempFile f;
  auto s = make_store({.pages = 500, .backing_path = f.path});
  for (std::uint64_t i = 0; i < 500; ++i)
    ASSERT_EQ(s->write(i, make_page(i, 1, flavour_of(i))), Error::ok);
  const std::size_t held = s->stats().pool.pages;
  auto wb = s->writeback(held);
  ASSERT_TRUE(wb.ok());
  EXPECT_GT(*wb, 0u);
  EXPECT_EQ(s->stats().mem_used_total, 0u) << "every zspage went to the backing file";
  for (std::uint64_t i = 0; i < 500; ++i)
    ASSERT_TRUE(reads_back(*s, i, make_page(i, 1, flavour_of(i)))) << i;
  // Overwriting and discarding written-back pages releases their slots.
  ASSERT_EQ(s->write(7, make_page(7, 2, Flavour::text)), Error::ok);
  ASSERT_EQ(s->discard(8), Error::ok);
  EXPECT_TRUE(reads_back(*s, 7, make_page(7, 2, Flavour::text)));
  EXPECT_EQ(StoreInternals::backing_file(*s)->stats().slots_in_use, s->stats().bd_count);
}

TEST(Store, FailingBackingWritesKeepTheDataInMemory) {
  TempFile f;
  auto s = make_store({.pages = 400, .backing_path = f.path});
  for (std::uint64_t i = 0; i < 400; ++i)
    ASSERT_EQ(s->write(i, make_page(i, 1, flavour_of(i))), Error::ok);
  StoreInternals::backing_file(*s)->fail_writes_from(1);
  auto wb = s->writeback(s->stats().pool.pages);
  ASSERT_TRUE(wb.ok());
  EXPECT_EQ(*wb, 0u);
  auto st = s->stats();
  EXPECT_GT(st.bd_write_failures, 0u);
  EXPECT_EQ(st.bd_count, 0u);
  EXPECT_GT(st.mem_used_total, 0u);
  for (std::uint64_t i = 0; i < 400; ++i)
    ASSERT_TRUE(reads_back(*s, i, make_page(i, 1, flavour_of(i)))) << i;
  StoreInternals::backing_file(*s)->clear_faults();
  EXPECT_GT(*s->writeback(st.pool.pages), 0u) << "works again once the file does";
  for (std::uint64_t i = 0; i < 400; ++i)
    ASSERT_TRUE(reads_back(*s, i, make_page(i, 1, flavour_of(i)))) << i;
}

TEST(Store, CorruptBackingSlotIsAnErrorNeverWrongData) {
  TempFile f;
  auto s = make_store({.pages = 50, .backing_path = f.path});
  for (std::uint64_t i = 0; i < 50; ++i)
    ASSERT_EQ(s->write(i, make_page(i, 1, Flavour::text)), Error::ok);
  ASSERT_GT(*s->writeback(s->stats().pool.pages), 0u);
  ASSERT_EQ(StoreInternals::backing_file(*s)->corrupt_slot_on_disk(0, 5), Error::ok);
  std::size_t bad = 0;
  for (std::uint64_t i = 0; i < 50; ++i) {
    std::vector<std::byte> got(kPage);
    const Error e = s->read(i, got);
    if (e == Error::ok) {
      ASSERT_EQ(got, make_page(i, 1, Flavour::text)) << "page " << i;
    } else {
      EXPECT_EQ(e, Error::checksum_mismatch);
      ++bad;
    }
  }
  EXPECT_EQ(bad, 1u);
  EXPECT_EQ(s->stats().bd_read_failures, 1u);
}

// Readers and writers on the same few pages: every read returns some complete version of that
// page (its header names the index and a version that was written), never a torn or foreign one.
void hammer(Store& s, std::uint64_t pages, int threads, int ops) {
  std::atomic<std::uint64_t> version{1}, bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      std::uint64_t r = mix(t);
      std::vector<std::byte> got(kPage);
      for (int op = 0; op < ops; ++op) {
        r = mix(r);
        const std::uint64_t i = r % pages;
        if (r % 3 == 0) {
          const std::uint64_t v = version.fetch_add(1);
          if (s.write(i, make_page(i, v, flavour_of(i + v))) != Error::ok) bad.fetch_add(1);
        } else if (r % 17 == 1) {
          if (s.discard(i) != Error::ok) bad.fetch_add(1);
        } else {
          if (s.read(i, got) != Error::ok) {
            bad.fetch_add(1);
            continue;
          }
          std::uint64_t idx, v;
          std::memcpy(&idx, &got[0], 8);
          std::memcpy(&v, &got[8], 8);
          const bool zeros =
              std::all_of(got.begin(), got.end(), [](std::byte b) { return b == std::byte{0}; });
          if (zeros) continue;
          // same-filled pages carry no header; check them by regenerating every candidate
          if (idx == i && v < version.load() && got == make_page(i, v, flavour_of(i + v))) continue;
          bool same_ok = false;
          for (std::uint64_t cand = 1; cand < version.load() && !same_ok; ++cand)
            same_ok =
                flavour_of(i + cand) == Flavour::same && got == make_page(i, cand, Flavour::same);
          if (!same_ok) bad.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0u);
}

TEST(Store, ConcurrentReadersAndWritersOnTheSamePages) {
  auto s = make_store({.pages = 16});
  hammer(*s, 16, 4, 3000);
}

TEST(Store, ConcurrentReadersAndWritersWithWritebackUnderATightLimit) {
  TempFile f;
  auto s = make_store({.pages = 600, .mem_limit = 128 * 1024, .backing_path = f.path});
  hammer(*s, 600, 4, 3000);
  EXPECT_GT(s->stats().written_back_pages, 0u);
}

TEST(Store, ConcurrentWritebackOfASmallSetOfPages) {
  TempFile f;
  auto s = make_store({.pages = 32, .mem_limit = 16 * 1024, .backing_path = f.path});
  hammer(*s, 32, 4, 3000);
  EXPECT_GT(s->stats().bd_writes, 0u);
}

// Each thread owns its own pages and remembers the version it last stored in each, so every
// read is checked against exactly one expected page, while another thread compacts (and writes
// back) the whole time.
void hammer_disjoint(Store& s, int threads, std::uint64_t pages_each, int ops, bool writeback) {
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> bad{0};
  std::thread background([&] {
    while (!done.load()) {
      s.compact();
      if (writeback) (void)s.writeback(2);
      std::this_thread::yield();
    }
  });
  auto expected = [](std::uint64_t i, std::uint64_t v) {
    return v == 0 ? std::vector<std::byte>(kPage) : make_page(i, v, flavour_of(i + v));
  };
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      const std::uint64_t first = static_cast<std::uint64_t>(t) * pages_each;
      std::vector<std::uint64_t> version(pages_each, 0);  // 0: empty
      std::uint64_t r = mix(100 + t);
      for (int op = 1; op <= ops; ++op) {
        r = mix(r);
        const std::uint64_t k = r % pages_each;
        const std::uint64_t i = first + k;
        if (r % 4 == 0) {
          if (s.write(i, expected(i, op)) != Error::ok) bad.fetch_add(1);
          version[k] = op;
        } else if (r % 13 == 1) {
          if (s.discard(i) != Error::ok) bad.fetch_add(1);
          version[k] = 0;
        } else if (!reads_back(s, i, expected(i, version[k]))) {
          bad.fetch_add(1);
        }
      }
      for (std::uint64_t k = 0; k < pages_each; ++k)
        if (!reads_back(s, first + k, expected(first + k, version[k]))) bad.fetch_add(1);
    });
  }
  for (auto& t : ts) t.join();
  done.store(true);
  background.join();
  EXPECT_EQ(bad.load(), 0u);
}

TEST(Store, ConcurrentThreadsOnDisjointPagesReadTheirLastWrite) {
  auto s = make_store({.pages = 4 * 64});
  hammer_disjoint(*s, 4, 64, 3000, false);
  EXPECT_EQ(s->stats().written_back_pages, 0u);
}

TEST(Store, ConcurrentThreadsOnDisjointPagesWithWritebackReadTheirLastWrite) {
  TempFile f;
  auto s = make_store({.pages = 4 * 64, .mem_limit = 96 * 1024, .backing_path = f.path});
  hammer_disjoint(*s, 4, 64, 3000, true);
  const auto st = s->stats();
  EXPECT_GT(st.written_back_pages, 0u);
  EXPECT_GT(st.bd_reads, 0u);
  EXPECT_EQ(st.bd_read_failures, 0u);
  EXPECT_EQ(StoreInternals::backing_file(*s)->stats().slots_in_use, st.bd_count)
      << "no slot leaked";
}

// With the backing file failing, the pool cannot get under its limit: a write either stores its
// page or returns limit_reached, and then the page still holds what it held before.
TEST(Store, FailingBackingUnderTheLimitNeverLosesAWrite) {
  TempFile f;
  constexpr std::uint64_t kPages = 300;
  auto s = make_store({.pages = kPages, .mem_limit = 128 * 1024, .backing_path = f.path});
  std::vector<std::uint64_t> version(kPages, 1);
  for (std::uint64_t i = 0; i < kPages; ++i)
    ASSERT_EQ(s->write(i, make_page(i, 1, Flavour::text)), Error::ok) << i;
  ASSERT_GT(s->stats().written_back_pages, 0u);
  StoreInternals::backing_file(*s)->fail_writes_from(1);
  std::size_t refused = 0;
  for (std::uint64_t i = 0; i < kPages; ++i) {
    const Error e = s->write(i, make_page(i, 2, Flavour::pointers));
    if (e == Error::ok) {
      version[i] = 2;
    } else {
      ASSERT_EQ(e, Error::limit_reached) << i;  // an I/O failure, not a full device
      ++refused;
    }
  }
  EXPECT_GT(refused, 0u);
  const auto st = s->stats();
  EXPECT_GT(st.bd_write_failures, 0u);
  EXPECT_EQ(st.rejected_writes, refused);
  EXPECT_LE(st.mem_used_total, 128u * 1024);
  for (std::uint64_t i = 0; i < kPages; ++i) {
    const Flavour fl = version[i] == 1 ? Flavour::text : Flavour::pointers;
    ASSERT_TRUE(reads_back(*s, i, make_page(i, version[i], fl))) << i;
  }
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ZSPOOL_TEST_SANITIZED 1
#endif

// A backing device that is full is no_space, named with the errno text, not "memory limit
// reached". The kernel refuses room for real here: a forked child sets RLIMIT_FSIZE to 0, so
// every write to the backing file fails with EFBIG.
TEST(Store, FullBackingDeviceIsNoSpaceNotAMemoryLimit) {
  TempFile f;
  EXPECT_EXIT(
      {
        std::signal(SIGXFSZ, SIG_IGN);
        auto s = Store::create({.pages = 64, .mem_limit = 16 * 1024, .backing_path = f.path});
        if (!s) std::_Exit(10);
        rlimit none{};
        getrlimit(RLIMIT_FSIZE, &none);
        none.rlim_cur = 0;
        if (setrlimit(RLIMIT_FSIZE, &none) != 0) std::_Exit(11);
        Error last = Error::ok;
        std::uint64_t stored = 0;
        for (std::uint64_t i = 0; i < 64 && last == Error::ok; ++i) {
          last = (*s)->write(i, make_page(i, 1, Flavour::random));
          stored += last == Error::ok;
        }
        if (last != Error::no_space) std::_Exit(12);
        const std::string why = (*s)->backing_failure();
        if (why.find("backing file " + f.path) == std::string::npos ||
            why.find("File too large") == std::string::npos)
          std::_Exit(13);
        if ((*s)->stats().bd_write_failures == 0) std::_Exit(14);
        for (std::uint64_t i = 0; i < stored; ++i) {
          if (!reads_back(**s, i, make_page(i, 1, Flavour::random))) std::_Exit(15);
        }
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

// A backing target zspool did not create is refused with the reason, and left as it was.
TEST(Store, BackingTargetThatIsNotNewOrEmptyIsRefusedWithTheReason) {
  TempFile f;
  { std::ofstream(f.path) << "somebody's data"; }
  std::string why;
  auto s = Store::create({.pages = 8, .backing_path = f.path}, &why);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error(), Error::invalid_argument);
  EXPECT_NE(why.find("backing file " + f.path + ": not empty (15 bytes)"), std::string::npos)
      << why;
  EXPECT_EQ(std::filesystem::file_size(f.path), 15u);
  auto first = make_store({.pages = 8, .backing_path = f.path + ".new"});
  EXPECT_EQ(Store::create({.pages = 8, .backing_path = f.path + ".new"}, &why).error(),
            Error::busy);
  EXPECT_NE(why.find("in use by another process"), std::string::npos) << why;
  std::filesystem::remove(f.path + ".new");
}

// The resident memory of this process (VmRSS), in bytes.
std::uint64_t resident_bytes_now() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

// `zspool replay --pages 700000000` on a 2-line trace built an 11 GB zero-filled page table and
// was SIGKILLed in a 512 MiB cgroup. The table is made as pages are written.
TEST(Store, PageTableIsMadeAsPagesAreWrittenNotAtCreation) {
  constexpr std::uint64_t kPages = std::uint64_t{64} << 20;  // an eager table: 1 GiB
  ASSERT_GE(Store::max_pages(), kPages);
  const std::uint64_t before = resident_bytes_now();
  auto s = make_store({.pages = kPages});
  ASSERT_NE(s, nullptr);
  EXPECT_LT(resident_bytes_now(), before + (std::uint64_t{64} << 20)) << "an eager page table";
  // The directories only: the entries' and the access words' (8 bytes per 4096 pages each).
  constexpr std::uint64_t kDirectories = 2 * (kPages / 4096 * 8 + 8);
  EXPECT_EQ(s->page_table_bytes(), kDirectories);
  const std::vector<std::byte> page = make_page(7, 1, Flavour::text);
  ASSERT_EQ(s->write(kPages - 1, page), Error::ok);
  ASSERT_EQ(s->write(0, page), Error::ok);
  // Two chunks: 4096 entries of 16 bytes and 4096 access words of 4 bytes each.
  EXPECT_EQ(s->page_table_bytes(), kDirectories + 2 * 4096 * (16 + 4));
  EXPECT_TRUE(reads_back(*s, kPages - 1, page));
  EXPECT_TRUE(reads_back(*s, 0, page));
  EXPECT_TRUE(reads_back(*s, kPages / 2, std::vector<std::byte>(kPage)));  // never written
  EXPECT_EQ(s->discard(kPages / 2), Error::ok);  // nothing to drop, and no chunk made for it
  EXPECT_EQ(s->page_table_bytes(), kDirectories + 2 * 4096 * (16 + 4));
  ASSERT_EQ(s->discard(0), Error::ok);
  EXPECT_TRUE(reads_back(*s, 0, std::vector<std::byte>(kPage)));
  EXPECT_EQ(s->stats().stored_pages, 1u);
}

// The page table growing past what the OS gives is out_of_memory from write(), never an
// exception, and the pages stored so far stay readable. A forked child caps its address space
// just above what it maps, then writes a page into each of many untouched chunks.
TEST(Store, PageTableThatCannotGrowIsOutOfMemoryNotACrash) {
#ifdef ZSPOOL_TEST_SANITIZED
  GTEST_SKIP() << "sanitizer runtimes reserve address space and do not run under RLIMIT_AS";
#else
  EXPECT_EXIT(
      {
        constexpr std::uint64_t kChunks = 4096;
        auto s = Store::create({.pages = kChunks * 4096});
        if (!s) std::_Exit(10);
        const std::vector<std::byte> page = make_page(1, 1, Flavour::text);
        if ((*s)->write(0, page) != Error::ok) std::_Exit(11);  // the scratch buffers, made
        unsigned long vm_pages = 0;
        if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
          if (std::fscanf(f, "%lu", &vm_pages) != 1) std::_Exit(12);
          std::fclose(f);
        }
        rlimit capped{};
        getrlimit(RLIMIT_AS, &capped);
        capped.rlim_cur = vm_pages * sysconf(_SC_PAGESIZE) + (std::size_t{4} << 20);
        if (setrlimit(RLIMIT_AS, &capped) != 0) std::_Exit(13);
        std::uint64_t written = 1;
        Error e = Error::ok;
        try {
          for (std::uint64_t c = 1; c < kChunks && e == Error::ok; ++c) {
            e = (*s)->write(c * 4096, page);  // 64 KiB of table each: 256 MiB in all
            written += e == Error::ok;
          }
        } catch (...) {
          std::_Exit(16);  // the store threw
        }
        if (e != Error::out_of_memory) std::_Exit(14);
        capped.rlim_cur = RLIM_INFINITY;
        if (setrlimit(RLIMIT_AS, &capped) != 0) std::_Exit(17);
        for (std::uint64_t c = 0; c < written; ++c) {
          if (!reads_back(**s, c * 4096, page)) std::_Exit(15);
        }
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(0), "");
#endif
}

TEST(Store, FailingBackingReadIsAnErrorAndTheNextReadWorks) {
  TempFile f;
  auto s = make_store({.pages = 20, .backing_path = f.path});
  for (std::uint64_t i = 0; i < 20; ++i)
    ASSERT_EQ(s->write(i, make_page(i, 1, Flavour::text)), Error::ok);
  ASSERT_EQ(*s->writeback(s->stats().pool.pages), 20u);
  StoreInternals::backing_file(*s)->fail_reads_at(1);
  std::vector<std::byte> got(kPage);
  EXPECT_EQ(s->read(4, got), Error::io_error);
  EXPECT_EQ(s->stats().bd_read_failures, 1u);
  for (std::uint64_t i = 0; i < 20; ++i)
    ASSERT_TRUE(reads_back(*s, i, make_page(i, 1, Flavour::text))) << i;
  EXPECT_EQ(s->stats().bd_reads, 20u);
}

// An OsPageSource (no cache) that counts the bytes the pool asks it to populate.
class PopulateCountingSource final : public PageSource {
 public:
  void* acquire(std::size_t bytes, bool* resident) override {
    return inner_.acquire(bytes, resident);
  }
  void release(void* p, std::size_t bytes) override { inner_.release(p, bytes); }
  void populate(void* p, std::size_t bytes) override {
    populated_ += bytes;
    inner_.populate(p, bytes);
  }
  std::size_t resident_bytes() const override { return inner_.resident_bytes(); }
  std::size_t mapping_count() const override { return inner_.mapping_count(); }
  std::size_t populated() const { return populated_; }

 private:
  OsPageSource inner_{0};
  std::size_t populated_ = 0;
};

// Writes fill fresh zspages: each page an object reaches is populated in one call before it is
// written (no page fault per page), and only those pages, so the pool's count stays the OS's.
TEST(Store, WritesPopulateEachPoolPageTheyReachAndNoOther) {
  auto source = std::make_shared<PopulateCountingSource>();
  auto s = make_store({.pages = 512, .page_source = source});
  for (std::uint64_t i = 0; i < 512; ++i)
    ASSERT_EQ(s->write(i, make_page(i, 0, flavour_of(i))), Error::ok);
  const StoreStats st = s->stats();
  ASSERT_GT(st.mem_used_total, 0u);
  EXPECT_EQ(source->populated(), st.mem_used_total);
  EXPECT_EQ(source->resident_bytes(), st.mem_used_total) << "mincore agrees with the pool";
  for (std::uint64_t i = 0; i < 512; ++i)
    ASSERT_TRUE(reads_back(*s, i, make_page(i, 0, flavour_of(i))));
}

TEST(Store, StatsPrintAsMmStatTableAndJson) {
  auto s = make_store({.pages = 10});
  for (std::uint64_t i = 0; i < 10; ++i)
    ASSERT_EQ(s->write(i, make_page(i, 1, flavour_of(i))), Error::ok);
  const auto st = s->stats();
  std::istringstream line(mm_stat_line(st));
  std::vector<std::uint64_t> nums;
  for (std::uint64_t n; line >> n;) nums.push_back(n);
  ASSERT_EQ(nums.size(), 9u);
  EXPECT_EQ(nums[0], st.orig_data_size);
  EXPECT_EQ(nums[2], st.mem_used_total);
  EXPECT_EQ(nums[5], st.same_pages);
  auto j = nlohmann::json::parse(format_store_stats_json(st));
  EXPECT_EQ(j["orig_data_size"], 10u * kPage);
  EXPECT_EQ(j["compressor"], "lz4");
  EXPECT_TRUE(j["pool"].contains("pages"));
  EXPECT_NE(format_store_stats_table(st).find("huge_pages_since"), std::string::npos);
}

}  // namespace
}  // namespace zspool
