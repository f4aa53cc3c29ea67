// The store's writeback policy (issue 14): idle marking, selective writeback by kind, the
// budget, per-page recency with second chance against the zspage LRU, the background writer,
// and all of it at once under TSan (StoreConcurrency*).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "zspool/store/internal/store_internals.h"
#include "zspool/store/store.h"
#include "zspool/testing/store_test_util.h"
#include "zspool/testing/test_util.h"

namespace zspool {
namespace {

using test::make_store;
using test::reads_back;

constexpr std::uint32_t kPage = 4096;

// Text-like page (index, version): compresses to roughly a third, differently per page.
std::vector<std::byte> text_page(std::uint64_t index, std::uint64_t version) {
  static const char* words[] = {"alpha ", "beta ",  "gamma ",  "delta ", "pages ",  "cold ",
                                "hot ",   "store ", "memory ", "disk ",  "second ", "chance "};
  std::vector<std::byte> p(kPage);
  std::uint64_t s = test::mix(index * 7919 + version);
  std::string t;
  while (t.size() < kPage) t += words[(s = test::mix(s)) % 12];
  std::memcpy(p.data(), t.data(), kPage);
  std::memcpy(&p[0], &index, 8);
  std::memcpy(&p[8], &version, 8);
  return p;
}

// The first `random_bytes` bytes random, the rest zeros: compresses to about random_bytes.
std::vector<std::byte> random_prefix_page(std::size_t random_bytes, std::uint64_t seed) {
  std::vector<std::byte> p(kPage);
  for (std::size_t i = 0; i + 8 <= random_bytes; i += 8) {
    seed = test::mix(seed);
    std::memcpy(&p[i], &seed, 8);
  }
  return p;
}

struct TempDir {
  std::string path;
  TempDir() {
    char p[] = "/tmp/zspool-policy-test-XXXXXX";
    path = mkdtemp(p) != nullptr ? p : "";
  }
  ~TempDir() {
    if (!path.empty()) std::filesystem::remove_all(path);
  }
  std::string file(const char* name) const { return path + "/" + name; }
};

// Whether page i is served from memory: a read that does not touch the backing file.
bool served_from_memory(Store& s, std::uint64_t index, const std::vector<std::byte>& want) {
  const std::uint64_t before = s.stats().bd_reads;
  return reads_back(s, index, want) && s.stats().bd_reads == before;
}

TEST(StorePolicy, NamesParseBack) {
  for (auto p : {WritebackPolicy::page, WritebackPolicy::zspage})
    EXPECT_EQ(parse_writeback_policy(writeback_policy_name(p)), p);
  for (auto k : {WritebackKind::idle, WritebackKind::huge, WritebackKind::incompressible,
                 WritebackKind::idle_huge, WritebackKind::all})
    EXPECT_EQ(parse_writeback_kind(writeback_kind_name(k)), k);
  EXPECT_EQ(writeback_kind_name(WritebackKind::idle_huge), "idle+huge");
  EXPECT_FALSE(parse_writeback_kind("cold"));
  EXPECT_FALSE(parse_writeback_policy("lru"));
  // A value outside the enum (a cast from a bad integer) names itself "?", not memory past the
  // table of names.
  EXPECT_EQ(writeback_policy_name(static_cast<WritebackPolicy>(2)), "?");
  EXPECT_EQ(writeback_policy_name(static_cast<WritebackPolicy>(255)), "?");
  EXPECT_EQ(writeback_kind_name(static_cast<WritebackKind>(5)), "?");
  EXPECT_EQ(writeback_kind_name(static_cast<WritebackKind>(200)), "?");
  EXPECT_EQ(StoreOptions{}.writeback_policy, WritebackPolicy::page);
}

TEST(StorePolicy, WatermarksAreChecked) {
  EXPECT_EQ(Store::create({.pages = 8, .accept_percent = 90, .high_watermark_percent = 80}).error(),
            Error::invalid_argument);
  EXPECT_EQ(Store::create({.pages = 8, .high_watermark_percent = 101}).error(),
            Error::invalid_argument);
}

TEST(StorePolicy, SelectiveWritebackNeedsABackingFile) {
  auto s = make_store({.pages = 8});
  ASSERT_EQ(s->write(0, text_page(0, 1)), Error::ok);
  EXPECT_EQ(s->writeback(WritebackKind::all).error(), Error::unsupported);
  EXPECT_EQ(s->mark_idle(), 1u);  // idle marking needs no backing file
}

// Write N pages, mark them idle, read a known subset: writeback(idle) takes exactly the others.
TEST(StorePolicy, WritebackIdleTakesExactlyThePagesNotReadSinceMarking) {
  constexpr std::uint64_t kN = 96;
  TempDir dir;
  auto s = make_store({.pages = kN, .backing_path = dir.file("wb")});
  for (std::uint64_t i = 0; i < kN; ++i) ASSERT_EQ(s->write(i, text_page(i, 1)), Error::ok);
  EXPECT_EQ(s->mark_idle(), kN);
  EXPECT_EQ(s->stats().idle_pages, kN);
  EXPECT_EQ(s->mark_idle(), 0u) << "already idle";
  std::uint64_t read = 0;
  for (std::uint64_t i = 0; i < kN; i += 3, ++read) ASSERT_TRUE(reads_back(*s, i, text_page(i, 1)));
  ASSERT_EQ(s->write(1, text_page(1, 2)), Error::ok);  // a write is an access too
  ++read;
  EXPECT_EQ(s->stats().idle_pages, kN - read);
  auto wb = s->writeback(WritebackKind::idle);
  ASSERT_TRUE(wb.ok()) << error_name(wb.error());
  EXPECT_EQ(*wb, kN - read);
  const StoreStats st = s->stats();
  EXPECT_EQ(st.bd_count, kN - read);
  EXPECT_EQ(st.wb_idle_pages, kN - read);
  EXPECT_EQ(st.idle_pages, 0u);
  for (std::uint64_t i = 0; i < kN; ++i) {
    const auto want = text_page(i, i == 1 ? 2 : 1);
    const bool accessed = i % 3 == 0 || i == 1;
    EXPECT_EQ(served_from_memory(*s, i, want), accessed) << "page " << i;
    EXPECT_TRUE(reads_back(*s, i, want));
  }
}

// Batched writeback (writeback_batch_pages): adjacent backing slots go out in one pwritev, so
// far fewer write calls than pages; batch 1 is one call a page. Both write back the same pages.
TEST(StorePolicy, BatchedWritebackWritesFewerCallsThanPagesAndEveryPageReadsBack) {
  constexpr std::uint64_t kN = 256;
  for (const std::uint32_t batch : {1u, 32u}) {
    TempDir dir;
    auto s =
        make_store({.pages = kN, .backing_path = dir.file("wb"), .writeback_batch_pages = batch});
    for (std::uint64_t i = 0; i < kN; ++i) ASSERT_EQ(s->write(i, text_page(i, 1)), Error::ok);
    ASSERT_EQ(s->mark_idle(), kN);
    auto wb = s->writeback(WritebackKind::idle);
    ASSERT_TRUE(wb.ok()) << error_name(wb.error());
    EXPECT_EQ(*wb, kN);
    const StoreStats st = s->stats();
    EXPECT_EQ(st.bd_writes, kN);
    if (batch == 1) {
      EXPECT_EQ(st.bd_write_ios, kN);
    } else {
      EXPECT_LE(st.bd_write_ios, kN / batch) << "fresh slots are adjacent: one call a batch";
    }
    for (std::uint64_t i = 0; i < kN; ++i) {
      EXPECT_FALSE(s->in_memory(i));
      EXPECT_TRUE(reads_back(*s, i, text_page(i, 1))) << "batch " << batch << " page " << i;
    }
  }
}

TEST(StorePolicy, WritebackBatchSizeIsChecked) {
  EXPECT_EQ(Store::create({.pages = 8, .writeback_batch_pages = 0}).error(),
            Error::invalid_argument);
  EXPECT_EQ(Store::create({.pages = 8, .writeback_batch_pages = kMaxWritebackBatch + 1}).error(),
            Error::invalid_argument);
}

// A page that changes while its batch is on the way to the disk keeps its new state: the staged
// copy is dropped, its slot freed and its page of the budget returned. A page only read meanwhile
// goes to the backing file as staged.
TEST(StorePolicy, PageChangedWhileItsBatchIsInFlightKeepsItsNewState) {
  TempDir dir;
  auto s = make_store({.pages = 8, .backing_path = dir.file("wb")});
  for (std::uint64_t i = 0; i < 8; ++i) ASSERT_EQ(s->write(i, text_page(i, 1)), Error::ok);
  s->set_writeback_limit(100);
  const std::vector<std::uint64_t> staged = {0, 1, 2, 3, 4};
  Error failed = Error::ok;
  const std::size_t published = StoreInternals::stage_then_flush(
      *s, staged,
      [&] {
        ASSERT_EQ(s->write(1, text_page(1, 2)), Error::ok);  // overwritten
        ASSERT_EQ(s->discard(2), Error::ok);                 // discarded
        ASSERT_EQ(s->write(3, text_page(1, 2)), Error::ok);  // overwritten with page 1's bytes
        ASSERT_TRUE(reads_back(*s, 4, text_page(4, 1)));     // read: still in memory
      },
      &failed);
  EXPECT_EQ(failed, Error::ok);
  EXPECT_EQ(published, 2u);  // pages 0 and 4
  const StoreStats st = s->stats();
  EXPECT_EQ(st.bd_count, 2u);
  EXPECT_EQ(StoreInternals::backing_file(*s)->stats().slots_in_use, 2u) << "dropped slots freed";
  EXPECT_EQ(st.writeback_limit, 98u) << "dropped pages give their budget back";
  EXPECT_FALSE(s->in_memory(0));
  EXPECT_FALSE(s->in_memory(4));
  EXPECT_TRUE(s->in_memory(1));
  EXPECT_TRUE(s->in_memory(3));
  EXPECT_EQ(s->page_state(2), Store::PageState::hole);
  EXPECT_TRUE(reads_back(*s, 0, text_page(0, 1)));
  EXPECT_TRUE(reads_back(*s, 1, text_page(1, 2)));
  EXPECT_TRUE(reads_back(*s, 3, text_page(1, 2)));
  EXPECT_TRUE(reads_back(*s, 4, text_page(4, 1)));
  for (std::uint64_t i = 5; i < 8; ++i) EXPECT_TRUE(reads_back(*s, i, text_page(i, 1)));
}

// A backing write that fails in the middle of a batch keeps exactly those pages in memory.
TEST(StorePolicy, FailedWriteInABatchKeepsThosePagesInMemory) {
  TempDir dir;
  auto s = make_store({.pages = 64, .backing_path = dir.file("wb")});
  for (std::uint64_t i = 0; i < 64; ++i) ASSERT_EQ(s->write(i, text_page(i, 1)), Error::ok);
  StoreInternals::backing_file(*s)->fail_write_at(3);
  ASSERT_EQ(s->mark_idle(), 64u);
  auto wb = s->writeback(WritebackKind::idle, 10);
  ASSERT_TRUE(wb.ok()) << error_name(wb.error());
  EXPECT_EQ(*wb, 9u);
  const StoreStats st = s->stats();
  EXPECT_EQ(st.bd_count, 9u);
  EXPECT_EQ(st.bd_write_failures, 1u);
  EXPECT_TRUE(s->in_memory(2)) << "the third page's write failed";
  EXPECT_EQ(StoreInternals::backing_file(*s)->stats().slots_in_use, 9u);
  for (std::uint64_t i = 0; i < 64; ++i) EXPECT_TRUE(reads_back(*s, i, text_page(i, 1)));
}

// mark_idle(age) marks only the pages not accessed for `age` seconds.
TEST(StorePolicy, MarkIdleWithAnAgeSkipsRecentlyUsedPages) {
  constexpr std::uint64_t kN = 40;
  auto s = make_store({.pages = kN});
  for (std::uint64_t i = 0; i < kN; ++i) ASSERT_EQ(s->write(i, text_page(i, 1)), Error::ok);
  StoreInternals::advance_clock(*s, 600);
  for (std::uint64_t i = 0; i < 10; ++i) ASSERT_TRUE(reads_back(*s, i, text_page(i, 1)));
  StoreInternals::advance_clock(*s, 100);
  EXPECT_EQ(s->mark_idle(std::chrono::seconds(300)), kN - 10);
  EXPECT_EQ(s->mark_idle(std::chrono::seconds(50)), 10u);
  EXPECT_EQ(s->stats().idle_pages, kN);
  ASSERT_EQ(s->discard(0), Error::ok);  // a page that leaves memory is no longer idle
  EXPECT_EQ(s->stats().idle_pages, kN - 1);
}

// Huge (stored raw) and incompressible (did not compress at all) pages are chosen exactly, and
// idle+huge takes the huge pages not read since marking.
TEST(StorePolicy, HugeAndIncompressibleKindsAreChosenExactly) {
  TempDir dir;
  auto s = make_store({.pages = 90, .backing_path = dir.file("wb")});
  const std::size_t huge_but_compressible = (s->huge_class_size() + kPage) / 2;
  ASSERT_LT(huge_but_compressible + 64, kPage);
  auto page = [&](std::uint64_t i) {
    switch (i % 3) {
      case 0:
        return text_page(i, 1);
      case 1:
        return random_prefix_page(kPage, i);  // incompressible (and huge)
      default:
        return random_prefix_page(huge_but_compressible, i);  // huge only
    }
  };
  for (std::uint64_t i = 0; i < 90; ++i) ASSERT_EQ(s->write(i, page(i)), Error::ok);
  StoreStats st = s->stats();
  ASSERT_EQ(st.huge_pages, 60u);
  ASSERT_EQ(st.incompressible_pages, 30u);

  EXPECT_EQ(*s->writeback(WritebackKind::incompressible, 10), 10u) << "max_pages";
  EXPECT_EQ(*s->writeback(WritebackKind::incompressible), 20u);
  for (std::uint64_t i = 1; i < 90; i += 3) EXPECT_FALSE(served_from_memory(*s, i, page(i)));
  EXPECT_EQ(s->stats().incompressible_pages, 0u);

  EXPECT_EQ(s->mark_idle(), 60u);
  for (std::uint64_t i = 2; i < 90; i += 6) ASSERT_TRUE(served_from_memory(*s, i, page(i)));
  EXPECT_EQ(*s->writeback(WritebackKind::idle_huge), 15u);
  for (std::uint64_t i = 0; i < 90; ++i) {
    const bool in_memory = i % 3 == 0 || i % 6 == 2;
    EXPECT_EQ(served_from_memory(*s, i, page(i)), in_memory) << "page " << i;
  }
  EXPECT_EQ(*s->writeback(WritebackKind::huge), 15u);
  st = s->stats();
  EXPECT_EQ(st.huge_pages, 0u);
  EXPECT_EQ(st.wb_incompressible_pages, 30u);
  EXPECT_EQ(st.wb_idle_huge_pages, 15u);
  EXPECT_EQ(st.wb_huge_pages, 15u);
  EXPECT_EQ(st.bd_count, 60u);
  for (std::uint64_t i = 0; i < 90; ++i) EXPECT_TRUE(reads_back(*s, i, page(i)));
}

// The budget stops writeback at its count, refuses when spent, and goes when lifted.
TEST(StorePolicy, WritebackBudgetStopsAtItsCount) {
  TempDir dir;
  auto s = make_store({.pages = 64, .backing_path = dir.file("wb")});
  for (std::uint64_t i = 0; i < 64; ++i) ASSERT_EQ(s->write(i, text_page(i, 1)), Error::ok);
  s->set_writeback_limit(5);
  EXPECT_EQ(s->stats().writeback_limit_enable, 1u);
  EXPECT_EQ(*s->writeback(WritebackKind::all), 5u);
  StoreStats st = s->stats();
  EXPECT_EQ(st.writeback_limit, 0u);
  EXPECT_EQ(st.bd_count, 5u);
  EXPECT_EQ(s->writeback(WritebackKind::all).error(), Error::limit_reached);
  EXPECT_EQ(s->mark_idle(), 59u);
  EXPECT_EQ(s->writeback(WritebackKind::idle).error(), Error::limit_reached);
  EXPECT_EQ(*s->writeback(std::size_t{1000}), 0u) << "the zspage writeback obeys it too";
  EXPECT_GE(s->stats().writeback_limit_refused, 2u);
  s->set_writeback_limit(std::nullopt);
  EXPECT_EQ(*s->writeback(WritebackKind::idle, 7), 7u);
  EXPECT_EQ(s->stats().bd_count, 12u);
  for (std::uint64_t i = 0; i < 64; ++i) EXPECT_TRUE(reads_back(*s, i, text_page(i, 1)));
}

// With a spent budget, a write over the limit cannot go to the backing file: limit_reached.
TEST(StorePolicy, SpentBudgetRefusesWritesOverTheLimit) {
  TempDir dir;
  auto s = make_store({.pages = 512, .mem_limit = 64 * kPage, .backing_path = dir.file("wb")});
  s->set_writeback_limit(0);
  Error last = Error::ok;
  for (std::uint64_t i = 0; i < 512 && last == Error::ok; ++i)
    last = s->write(i, random_prefix_page(kPage, i));
  EXPECT_EQ(last, Error::limit_reached);
  EXPECT_EQ(s->stats().bd_writes, 0u);
}

// promote_on_read: a written-back page read comes back into memory and leaves the backing file;
// without it (zram's way) it stays there.
TEST(StorePolicy, PromoteOnReadBringsAWrittenBackPageBack) {
  for (const bool promote : {false, true}) {
    TempDir dir;
    auto s = make_store({.pages = 16, .backing_path = dir.file("wb"), .promote_on_read = promote});
    for (std::uint64_t i = 0; i < 16; ++i) ASSERT_EQ(s->write(i, text_page(i, 1)), Error::ok);
    ASSERT_EQ(*s->writeback(WritebackKind::all), 16u);
    EXPECT_FALSE(s->in_memory(3));
    EXPECT_TRUE(reads_back(*s, 3, text_page(3, 1)));
    EXPECT_EQ(s->in_memory(3), promote);
    EXPECT_EQ(served_from_memory(*s, 3, text_page(3, 1)), promote);
    const StoreStats st = s->stats();
    EXPECT_EQ(st.bd_count, promote ? 15u : 16u);
    EXPECT_EQ(st.promoted_pages, promote ? 1u : 0u);
    EXPECT_EQ(st.stored_pages, promote ? 1u : 0u);
    for (std::uint64_t i = 0; i < 16; ++i) EXPECT_TRUE(reads_back(*s, i, text_page(i, 1)));
  }
}

// The pool's memory for the pages text_page(0..n) fill, with no limit.
std::uint64_t memory_for(std::uint64_t n) {
  auto s = make_store({.pages = n});
  for (std::uint64_t i = 0; i < n; ++i) EXPECT_EQ(s->write(i, text_page(i, 1)), Error::ok);
  return s->stats().mem_used_total;
}

struct HotSetRun {
  std::uint64_t hot_reads = 0;
  std::uint64_t hot_reads_from_backing = 0;
  std::uint64_t written_back = 0;
};

// Under a limit that holds half the pages, a hot set is read between writes of cold pages.
HotSetRun run_hot_set(WritebackPolicy policy) {
  constexpr std::uint64_t kPages = 1024, kHot = 32;
  const std::uint64_t limit = memory_for(kPages) / 2;
  TempDir dir;
  auto s = make_store({.pages = kPages,
                       .mem_limit = limit,
                       .backing_path = dir.file("wb"),
                       .writeback_policy = policy});
  HotSetRun run;
  auto read_hot = [&] {
    for (std::uint64_t h = 0; h < kHot; ++h) {
      const std::uint64_t page = h * (kPages / kHot);  // spread over the table and its zspages
      ++run.hot_reads;
      EXPECT_TRUE(reads_back(*s, page, text_page(page, 1)));
    }
  };
  for (std::uint64_t h = 0; h < kHot; ++h) {
    const std::uint64_t page = h * (kPages / kHot);
    EXPECT_EQ(s->write(page, text_page(page, 1)), Error::ok);
  }
  for (int round = 0; round < 4; ++round) {
    for (std::uint64_t i = 0; i < kPages; ++i) {
      if (i % (kPages / kHot) == 0) continue;
      EXPECT_EQ(s->write(i, text_page(i, 1)), Error::ok);
      if (i % 8 == 7) read_hot();
    }
  }
  // The hot reads are the only reads so far: every backing read was one of them.
  run.hot_reads_from_backing = s->stats().bd_reads;
  run.written_back = s->stats().written_back_pages;
  for (std::uint64_t i = 0; i < kPages; ++i) EXPECT_TRUE(reads_back(*s, i, text_page(i, 1)));
  return run;
}

TEST(StorePolicy, SecondChanceKeepsAHotSetInMemoryWhereTheZspageLruDoesNot) {
  const HotSetRun page = run_hot_set(WritebackPolicy::page);
  const HotSetRun zspage = run_hot_set(WritebackPolicy::zspage);
  EXPECT_GT(page.written_back, 1024u) << "the limit made it write back";
  EXPECT_EQ(page.hot_reads, 4u * 1024 / 8 * 32);
  EXPECT_GT(zspage.written_back, 1024u);
  EXPECT_EQ(page.hot_reads_from_backing, 0u) << "of " << page.hot_reads << " hot reads";
  EXPECT_GT(zspage.hot_reads_from_backing, 0u) << "of " << zspage.hot_reads << " hot reads";
}

// The page policy keeps the pool below the limit after a write (it compacts what it freed).
TEST(StorePolicy, PagePolicyKeepsThePoolWithinTheLimit) {
  constexpr std::uint64_t kPages = 2048;
  const std::uint64_t limit = memory_for(kPages) / 3;
  TempDir dir;
  auto s = make_store({.pages = kPages, .mem_limit = limit, .backing_path = dir.file("wb")});
  for (std::uint64_t i = 0; i < kPages; ++i) {
    ASSERT_EQ(s->write(i, text_page(i, 1)), Error::ok);
    ASSERT_LE(s->pool().total_bytes(), limit) << "after page " << i;
  }
  const StoreStats st = s->stats();
  EXPECT_GT(st.wb_page_policy_pages, 0u);
  EXPECT_GT(st.writer_stalls, 0u) << "no background writer: writers wrote back themselves";
  for (std::uint64_t i = 0; i < kPages; ++i) EXPECT_TRUE(reads_back(*s, i, text_page(i, 1)));
}

// The background writer: writers under a tight limit never fail while a backing file exists,
// the pool stays within the limit plus the slack of writes in flight, every page reads back.
// Slack: a writer allocates before it looks at the limit, and an allocation may open a new
// zspage of up to max_chain pages: at most kThreads * max_chain pages above the limit.
TEST(StorePolicy, BackgroundWriterKeepsWritersGoing) {
  constexpr std::uint64_t kPages = 4096;
  constexpr int kThreads = 4;
  const std::uint64_t limit = memory_for(kPages) / 4;
  TempDir dir;
  auto s = make_store({.pages = kPages,
                       .mem_limit = limit,
                       .backing_path = dir.file("wb"),
                       .background_writer = true});
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (std::uint64_t i = t; i < kPages; i += kThreads)
        if (s->write(i, text_page(i, 1)) != Error::ok) failures.fetch_add(1);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  const StoreStats st = s->stats();
  const std::uint64_t slack = std::uint64_t{kThreads} * kStoreDefaultChain * kPage;
  EXPECT_LE(st.mem_used_max, limit + slack);
  EXPECT_GT(st.bd_count, 0u);
  EXPECT_GT(st.bg_writeback_runs, 0u);
  EXPECT_EQ(st.rejected_writes, 0u);
  for (std::uint64_t i = 0; i < kPages; ++i) EXPECT_TRUE(reads_back(*s, i, text_page(i, 1)));
}

// Background compaction: freeing most pages leaves freeable pages; the thread compacts them.
TEST(StorePolicy, BackgroundCompactionRunsPastTheThreshold) {
  constexpr std::uint64_t kPages = 4096;
  auto s = make_store({.pages = kPages, .compact_threshold_pages = 16});
  for (std::uint64_t i = 0; i < kPages; ++i) ASSERT_EQ(s->write(i, text_page(i, 1)), Error::ok);
  for (std::uint64_t i = 0; i < kPages; ++i) {
    if (i % 4 != 0) {
      ASSERT_EQ(s->discard(i), Error::ok);
    }
  }
  while (s->stats().bg_compactions == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GT(s->stats().pages_compacted, 0u);
  for (std::uint64_t i = 0; i < kPages; i += 4) EXPECT_TRUE(reads_back(*s, i, text_page(i, 1)));
}

// Writes, reads, discards, idle marking, selective and background writeback and compaction at
// once; every thread verifies its own pages. Run under TSan in CI.
TEST(StoreConcurrency, PolicyStressWritesReadsIdleSelectiveAndBackgroundWriteback) {
  constexpr std::uint64_t kPagesEach = 256;
  constexpr int kThreads = 4, kOps = 3000;
  const std::uint64_t limit = memory_for(kPagesEach * kThreads) / 3;
  TempDir dir;
  auto s = make_store({.pages = kPagesEach * kThreads,
                       .mem_limit = limit,
                       .backing_path = dir.file("wb"),
                       .background_writer = true,
                       .compact_threshold_pages = 8,
                       .promote_on_read = true});
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::thread control([&] {
    const WritebackKind kinds[] = {WritebackKind::idle, WritebackKind::huge, WritebackKind::all,
                                   WritebackKind::idle_huge, WritebackKind::incompressible};
    for (unsigned n = 0; !done.load(); ++n) {
      s->mark_idle(std::chrono::seconds(n % 2));
      (void)s->writeback(kinds[n % 5], 8);
      if (n % 7 == 0) (void)s->compact();
      if (n % 11 == 0)
        s->set_writeback_limit(n % 22 == 0 ? std::optional<std::uint64_t>(50) : std::nullopt);
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      test::Rng rng(t + 1);
      std::vector<std::uint64_t> version(kPagesEach, 0);  // 0: empty
      const std::uint64_t base = t * kPagesEach;
      for (int op = 0; op < kOps; ++op) {
        const std::uint64_t k = rng.below(kPagesEach), page = base + k;
        switch (rng.below(8)) {
          case 0:
            if (s->discard(page) == Error::ok) version[k] = 0;
            break;
          case 1:
          case 2:
          case 3: {
            const Error e = s->write(page, text_page(page, op + 1));
            if (e == Error::ok)
              version[k] = op + 1;
            else if (e != Error::limit_reached)
              bad.fetch_add(1);  // a spent budget may refuse
            break;
          }
          default: {
            const auto want =
                version[k] == 0 ? std::vector<std::byte>(kPage) : text_page(page, version[k]);
            if (!reads_back(*s, page, want)) bad.fetch_add(1);
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  done.store(true);
  control.join();
  EXPECT_EQ(bad.load(), 0);
  const StoreStats st = s->stats();
  EXPECT_GT(st.bd_writes, 0u);
}

}  // namespace
}  // namespace zspool
