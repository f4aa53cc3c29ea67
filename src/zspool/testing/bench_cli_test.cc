// `zspool bench` end to end through the built binary. No timing thresholds: rates only have
// to be positive.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "zspool/testing/cli_test_util.h"
#include "zspool/workload/corpus.h"

namespace zspool::tools {
namespace {

using Json = nlohmann::json;
using test::Outcome;
using test::run_zspool;

// ---- the verb, end to end --------------------------------------------------------------------

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
  const test::TempDir dir;
  const std::string path = dir / "pages.bin";
  {
    std::ofstream out(path, std::ios::binary);
    std::vector<std::byte> page(4096);
    for (std::uint8_t s = 0; s < 8; ++s) {
      generate_page(page, s % 2 == 0 ? PageKind::text : PageKind::random, s + 1);
      out.write(reinterpret_cast<const char*>(page.data()),
                static_cast<std::streamsize>(page.size()));
    }
  }
  const Json j = run_json({"bench", "alloc", "--input", path, "--json"});
  EXPECT_EQ(j["corpus"]["source"], path);
  EXPECT_EQ(j["corpus"]["pages"], 8);
  EXPECT_EQ(j["trace"]["objects"], 8);
  EXPECT_EQ(j["trace"]["huge_objects"], 4);
}

TEST(BenchAllocVerb, TableEndsWithTheZramWayFigures) {
  const Outcome o = run_zspool({"bench", "alloc", "--max-bytes", "1M"});
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_NE(o.out.find("zram-way efficiency"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("kernel zsmalloc (3 corpora)"), std::string::npos) << o.out;
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
