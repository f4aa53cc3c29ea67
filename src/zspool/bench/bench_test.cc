// Tests of the benchmark harness in process: the allocation trace, the random half, the
// child-process plumbing. The verbs end to end: testing/bench_cli_test.cc.
#include <gtest/gtest.h>
#include <lz4.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "zspool/bench/alloc_trace.h"
#include "zspool/bench/child.h"
#include "zspool/workload/corpus.h"

namespace zspool::tools {
namespace {

using Json = nlohmann::json;

// ---- the trace -------------------------------------------------------------------------------

std::vector<std::byte> page_of(std::uint8_t seed, bool compressible) {
  std::vector<std::byte> page(4096);
  std::uint32_t x = seed * 2654435761u + 1;
  for (std::size_t i = 0; i < page.size(); ++i) {
    x = x * 1664525u + 1013904223u;
    page[i] = std::byte(compressible ? static_cast<std::uint8_t>("abcab"[i % 5] + (i / 512))
                                     : static_cast<std::uint8_t>(x >> 24));
  }
  return page;
}

Corpus mixed_corpus() {
  Corpus c(4096);
  c.append(std::vector<std::byte>(4096), PageKind::zero);  // zero: skipped
  std::vector<std::byte> same(4096);
  for (std::size_t i = 0; i < same.size(); ++i) same[i] = std::byte(i % 8 == 0 ? 7 : 0);
  c.append(same, PageKind::same_filled);          // same-filled: skipped
  c.append(page_of(1, true), PageKind::text);     // compresses
  c.append(page_of(2, false), PageKind::random);  // stored raw
  c.append(page_of(3, true), PageKind::text);
  return c;
}

TEST(AllocTrace, SkipsSameFilledAndStoresIncompressiblePagesRaw) {
  const Corpus corpus = mixed_corpus();
  const AllocTrace t = AllocTrace::from_corpus(corpus, 3625);
  EXPECT_EQ(t.corpus_pages(), 5u);
  EXPECT_EQ(t.same_filled_pages(), 2u);
  EXPECT_EQ(t.zero_pages(), 1u);
  ASSERT_EQ(t.objects(), 3u);
  EXPECT_EQ(t.huge_objects(), 1u);
  EXPECT_LT(t.size(0), 3625u);
  EXPECT_EQ(t.size(1), 4096u);
  EXPECT_TRUE(std::equal(t.object(1).begin(), t.object(1).end(), corpus.page(3).begin()));
  EXPECT_EQ(t.requested_bytes(), std::uint64_t{t.size(0)} + t.size(1) + t.size(2));
}

TEST(AllocTrace, CompressedObjectsDecompressToTheirPages) {
  const Corpus corpus = mixed_corpus();
  const AllocTrace t = AllocTrace::from_corpus(corpus, 3625);
  for (const auto& [object, page] : {std::pair{0, 2}, std::pair{2, 4}}) {
    std::vector<char> out(4096);
    const auto bytes = t.object(object);
    ASSERT_EQ(LZ4_decompress_safe(reinterpret_cast<const char*>(bytes.data()), out.data(),
                                  static_cast<int>(bytes.size()), 4096),
              4096);
    EXPECT_EQ(std::memcmp(out.data(), corpus.page(page).data(), 4096), 0);
  }
}

TEST(AllocTrace, HugeClassSizeIsTheThreshold) {
  const Corpus corpus = mixed_corpus();
  const AllocTrace strict = AllocTrace::from_corpus(corpus, 3625);
  const AllocTrace all_raw = AllocTrace::from_corpus(corpus, strict.size(0));
  EXPECT_EQ(all_raw.size(0), 4096u);  // a size equal to huge_class_size is huge
}

TEST(RandomHalf, HalfOfTheIndicesOnceEachDeterministicPerSeed) {
  for (const std::uint64_t n : {0u, 1u, 2u, 7u, 1000u}) {
    const auto half = random_half(n, 1);
    EXPECT_EQ(half.size(), n / 2);
    const std::set<std::uint64_t> distinct(half.begin(), half.end());
    EXPECT_EQ(distinct.size(), half.size());
    for (const std::uint64_t i : half) EXPECT_LT(i, n);
    EXPECT_EQ(random_half(n, 1), half);
  }
  EXPECT_NE(random_half(1000, 1), random_half(1000, 2));
}

// ---- child processes -------------------------------------------------------------------------

TEST(RunInChild, ReturnsTheChildsJson) {
  const ChildAnswer a = run_in_child([] {
    return nlohmann::ordered_json{{"pid", ::getpid()}, {"answer", 42}};
  });
  ASSERT_EQ(a.error, "");
  EXPECT_EQ(a.value["answer"], 42);
  EXPECT_NE(a.value["pid"], ::getpid());
}

TEST(RunInChild, ExceptionsAndSignalsBecomeErrors) {
  const ChildAnswer thrown =
      run_in_child([]() -> nlohmann::ordered_json { throw std::runtime_error("no luck"); });
  EXPECT_EQ(thrown.error, "no luck");
  const ChildAnswer killed = run_in_child([]() -> nlohmann::ordered_json {
    ::raise(SIGKILL);
    return {};
  });
  EXPECT_NE(killed.error.find("signal 9"), std::string::npos) << killed.error;
}

TEST(ReadMemory, SeesResidentMemoryGrow) {
  const MemoryReading before = read_memory();
  EXPECT_GT(before.rss, 0u);
  const ChildAnswer a = run_in_child([] {
    const MemoryReading start = read_memory();
    std::vector<char> block(8 << 20, 1);
    const MemoryReading end = read_memory();
    return nlohmann::ordered_json{{"grew", end.rss - start.rss}, {"touch", block[100]}};
  });
  ASSERT_EQ(a.error, "");
  EXPECT_GE(a.value["grew"].get<std::uint64_t>(), std::uint64_t{7} << 20);
}

}  // namespace
}  // namespace zspool::tools
