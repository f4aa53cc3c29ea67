// Tests of `zspool bench`: its pieces in process (the trace, the random half, the child-process
// plumbing), then the verb end to end through the built binary, as cli_test.cc does. No timing
// thresholds: rates only have to be positive.
#include <gtest/gtest.h>
#include <lz4.h>
#include <signal.h>
#include <spawn.h>
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

#include "zspool/tools/bench_child.h"
#include "zspool/tools/bench_trace.h"
#include "zspool/tools/corpus.h"

extern char** environ;

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

// ---- the verb, end to end --------------------------------------------------------------------

constexpr const char* kZspool = ZSPOOL_BINARY_DIR "/zspool";

struct Outcome {
  int status = -1;  // exit status; -1 when killed by a signal
  std::string out;
  std::string err;
};

std::string slurp(std::FILE* f) {
  std::rewind(f);
  std::string text;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, f)) > 0;) text.append(buffer, n);
  std::fclose(f);
  return text;
}

Outcome run_zspool(std::vector<std::string> args) {
  std::FILE* out = std::tmpfile();
  std::FILE* err = std::tmpfile();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fileno(out), 1);
  posix_spawn_file_actions_adddup2(&actions, fileno(err), 2);
  args.insert(args.begin(), kZspool);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  Outcome o;
  const int spawned = posix_spawn(&pid, kZspool, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  int status = 0;
  if (spawned == 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status))
    o.status = WEXITSTATUS(status);
  o.out = slurp(out);
  o.err = slurp(err);
  return o;
}

Json run_json(const std::vector<std::string>& args) {
  const Outcome o = run_zspool(args);
  EXPECT_EQ(o.status, 0) << o.err;
  return Json::parse(o.out);  // throws unless stdout is exactly one JSON value
}

const std::vector<std::string> kAllocators = {"zspool", "zspool-kernel-like", "glibc", "jemalloc",
                                              "mimalloc"};
const std::vector<std::string> kPhases = {"fill", "free_half", "compact", "refill"};

bool in_unit_interval(const Json& x) {
  return x.is_number() && x.get<double>() > 0 && x.get<double>() <= 1;
}

void expect_phases(const Json& allocator) {
  const std::string name = allocator["name"];
  ASSERT_EQ(allocator["phases"].size(), kPhases.size()) << name;
  for (std::size_t i = 0; i < kPhases.size(); ++i) {
    const Json& p = allocator["phases"][i];
    EXPECT_EQ(p["phase"], kPhases[i]) << name;
    EXPECT_GE(p["seconds"].get<double>(), 0.0) << name;
    if (kPhases[i] == "compact") {
      EXPECT_FALSE(p.contains("ops_per_sec")) << name;
    } else {
      EXPECT_GT(p["ops_per_sec"].get<double>(), 0.0) << name << " " << kPhases[i];
    }
    EXPECT_GT(p["live_bytes"].get<std::uint64_t>(), 0u);
    EXPECT_TRUE(p.contains("held_bytes") && p.contains("efficiency") &&
                p.contains("held_vs_zspool"));
    if (name.rfind("zspool", 0) == 0) {
      EXPECT_TRUE(in_unit_interval(p["zram_efficiency"])) << name << " " << p;
      EXPECT_GT(p["pool_bytes"].get<std::uint64_t>(), 0u);
      EXPECT_GT(p["metadata_bytes"].get<std::uint64_t>(), 0u);
    }
  }
  EXPECT_EQ(allocator["verified"], true) << name;
}

TEST(BenchAllocVerb, JsonHasEveryAllocatorAndPhase) {
  const Json j = run_json({"bench", "alloc", "--max-bytes", "4M", "--json"});
  EXPECT_EQ(j["corpus"]["source"], "builtin");
  EXPECT_EQ(j["corpus"]["pages"], 1024);
  const Json& t = j["trace"];
  EXPECT_EQ(t["objects"].get<std::uint64_t>() + t["same_filled_pages_skipped"].get<std::uint64_t>(),
            1024u);
  EXPECT_EQ(t["huge_class_size"], 3833) << "the store's chain, 16";
  ASSERT_EQ(j["allocators"].size(), kAllocators.size());
  for (std::size_t i = 0; i < kAllocators.size(); ++i) {
    const Json& a = j["allocators"][i];
    EXPECT_EQ(a["name"], kAllocators[i]);
    if (a["available"] == true) {
      expect_phases(a);
    } else {  // a library that is missing must say why
      EXPECT_FALSE(a["error"].get<std::string>().empty()) << a;
      EXPECT_TRUE(a["name"] == "jemalloc" || a["name"] == "mimalloc") << a;
    }
  }
  for (const std::string name : {"zspool", "zspool-kernel-like"}) {
    for (const std::string& phase : kPhases)
      EXPECT_TRUE(in_unit_interval(j["zram_efficiency"][name][phase])) << name << " " << phase;
  }
  // The reference row is zspool itself.
  EXPECT_DOUBLE_EQ(j["allocators"][0]["phases"][0]["held_vs_zspool"].get<double>(), 1.0);
}

TEST(BenchAllocVerb, KernelLikeReplacesTheDefaultPool) {
  const Json j = run_json({"bench", "alloc", "--max-bytes", "1M", "--kernel-like", "--json"});
  ASSERT_EQ(j["allocators"].size(), 4u);
  EXPECT_EQ(j["allocators"][0]["name"], "zspool-kernel-like");
  EXPECT_EQ(j["zram_efficiency"].size(), 1u);
}

TEST(BenchAllocVerb, TheSeedChoosesTheHalf) {
  const auto freed = [](const char* seed) {
    const Json j = run_json({"bench", "alloc", "--max-bytes", "1M", "--seed", seed, "--json"});
    return j["allocators"][2]["phases"][1]["live_bytes"].get<std::uint64_t>();
  };
  EXPECT_EQ(freed("5"), freed("5"));
  EXPECT_NE(freed("5"), freed("6"));
}

TEST(BenchAllocVerb, ReadsInputFiles) {
  char path[] = "/tmp/zspool_bench_test_XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  {
    std::ofstream out(path, std::ios::binary);
    for (std::uint8_t s = 0; s < 8; ++s) {
      const auto page = page_of(s, s % 2 == 0);
      out.write(reinterpret_cast<const char*>(page.data()),
                static_cast<std::streamsize>(page.size()));
    }
  }
  const Json j = run_json({"bench", "alloc", "--input", path, "--json"});
  ::unlink(path);
  EXPECT_EQ(j["corpus"]["source"], path);
  EXPECT_EQ(j["corpus"]["pages"], 8);
  EXPECT_EQ(j["trace"]["objects"], 8);
  EXPECT_EQ(j["trace"]["huge_objects"], 4);
}

TEST(BenchAllocVerb, TableEndsWithTheZramWayFigures) {
  const Outcome o = run_zspool({"bench", "alloc", "--max-bytes", "1M"});
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_NE(o.out.find("zram-way efficiency"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("kernel (ZSMALLOC.md 7)"), std::string::npos) << o.out;
  for (const std::string& name : kAllocators) EXPECT_NE(o.out.find(name), std::string::npos);
}

void expect_engine(const Json& e) {
  EXPECT_GT(e["write_MBps"].get<double>(), 0.0);
  EXPECT_GT(e["read_MBps"].get<double>(), 0.0);
  EXPECT_TRUE(in_unit_interval(e["efficiency_after_fill"])) << e;
  EXPECT_TRUE(in_unit_interval(e["efficiency_after_compact"])) << e;
  EXPECT_EQ(e["errors"], 0);
  EXPECT_EQ(e["mm_stat_after_fill"].size(), 9u);
}

TEST(BenchStoreVerb, JsonComparesTheStoreWithRawCompression) {
  for (const char* threads : {"1", "2"}) {
    const Json j =
        run_json({"bench", "store", "--max-bytes", "4M", "--threads", threads, "--json"});
    EXPECT_EQ(j["threads"], std::stoi(threads));
    expect_engine(j["store"]);
    EXPECT_EQ(j["store"]["discarded_pages"], 512);
    ASSERT_EQ(j["raw"].size(), 2u);
    EXPECT_EQ(j["raw"][0]["compressor"], "lz4");
    EXPECT_EQ(j["raw"][1]["compressor"], "zstd");
    for (const Json& r : j["raw"]) {
      EXPECT_GT(r["compress_MBps"].get<double>(), 0.0);
      EXPECT_GT(r["decompress_MBps"].get<double>(), 0.0);
      EXPECT_GT(r["ratio"].get<double>(), 1.0);
      EXPECT_EQ(r["errors"], 0);
    }
    EXPECT_GT(j["store_vs_raw"]["write"].get<double>(), 0.0);
    EXPECT_GT(j["store_vs_raw"]["read"].get<double>(), 0.0);
    EXPECT_FALSE(j.contains("zram"));
  }
}

TEST(BenchStoreVerb, OtherCompressorsAreMeasuredRawToo) {
  const Json j =
      run_json({"bench", "store", "--max-bytes", "1M", "--compressor", "lzo1x", "--json"});
  ASSERT_EQ(j["raw"].size(), 3u);
  EXPECT_EQ(j["raw"][2]["compressor"], "lzo1x");
  EXPECT_EQ(j["store_vs_raw"]["compressor"], "lzo1x");
}

// Touches the kernel's zram0 (reset before and after), so it runs only when asked for.
TEST(BenchStoreVerb, VsZramRunsOrSaysWhyNot) {
  if (std::getenv("ZSPOOL_TEST_ZRAM") == nullptr) GTEST_SKIP() << "set ZSPOOL_TEST_ZRAM=1";
  const Json j = run_json({"bench", "store", "--max-bytes", "4M", "--vs-zram", "--json"});
  if (j["zram"]["ran"] == true) {
    expect_engine(j["zram"]);
  } else {
    EXPECT_FALSE(j["zram"]["why_not"].get<std::string>().empty());
  }
}

// ---- usage errors ----------------------------------------------------------------------------

void expect_usage_error(const std::vector<std::string>& args, const std::string& mentions) {
  const Outcome o = run_zspool(args);
  EXPECT_EQ(o.status, 2) << o.err;
  EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << o.err;
  EXPECT_EQ(o.err.rfind("zspool: ", 0), 0u) << o.err;
  EXPECT_NE(o.err.find(mentions), std::string::npos) << o.err;
  EXPECT_EQ(o.out, "");
}

TEST(BenchUsageErrors, OneLineAndStatusTwo) {
  expect_usage_error({"bench"}, "required");
  expect_usage_error({"bench", "alloc", "--max-chain", "0"}, "--max-chain");
  expect_usage_error({"bench", "alloc", "--max-bytes", "1K"}, "--max-bytes");
  expect_usage_error({"bench", "alloc", "--max-bytes", "lots"}, "--max-bytes");
  expect_usage_error({"bench", "alloc", "--max-bytes", "1E"}, "--max-bytes");
  expect_usage_error({"bench", "alloc", "--seed", "x"}, "--seed");
  expect_usage_error({"bench", "alloc", "--input", "/nonexistent/zspool"}, "--input");
  expect_usage_error({"bench", "alloc", "--bogus"}, "--bogus");
  expect_usage_error({"bench", "store", "--threads", "0"}, "--threads");
  expect_usage_error({"bench", "store", "--compressor", "foo"}, "--compressor");
  expect_usage_error({"bench", "store", "--max-bytes", "0"}, "--max-bytes");
}

}  // namespace
}  // namespace zspool::tools
