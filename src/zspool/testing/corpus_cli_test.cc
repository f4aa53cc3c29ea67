// zspool corpus, end to end: the built-in corpus written to a file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "zspool/testing/cli_test_util.h"
#include "zspool/workload/corpus.h"

namespace zspool::test {
namespace {

TEST(CorpusVerb, WritesTheBuiltinCorpusByteForByte) {
  TempDir dir;
  const std::vector<std::string> args = {"corpus", "-o",     dir / "c.bin", "--size",
                                         "1M",     "--seed", "7",           "--json"};
  const Outcome o = run_zspool(args);
  ASSERT_EQ(o.status, 0) << describe(args, o);
  const tools::Corpus expected = tools::Corpus::builtin(256, 4096, 7);
  const std::string written = read_file(dir / "c.bin");
  ASSERT_EQ(written.size(), expected.size_bytes());
  EXPECT_EQ(std::memcmp(written.data(), expected.bytes().data(), written.size()), 0);
  const auto j = nlohmann::json::parse(o.out);
  EXPECT_EQ(j["path"], dir / "c.bin");
  EXPECT_EQ(j["seed"], 7);
  EXPECT_EQ(j["corpus"]["pages"], 256);
  EXPECT_EQ(j["corpus"]["kinds"]["text"], expected.count(tools::PageKind::text));
}

TEST(CorpusVerb, WritesTheSmallRecordsCorpusByName) {
  TempDir dir;
  const std::vector<std::string> args = {
      "corpus", "-o",   dir / "r.bin", "--corpus", "small-records",
      "--size", "256K", "--seed",      "3",        "--json"};
  const Outcome o = run_zspool(args);
  ASSERT_EQ(o.status, 0) << describe(args, o);
  const tools::Corpus expected = tools::Corpus::small_records(64, 4096, 3);
  const std::string written = read_file(dir / "r.bin");
  ASSERT_EQ(written.size(), expected.size_bytes());
  EXPECT_EQ(std::memcmp(written.data(), expected.bytes().data(), written.size()), 0);
  EXPECT_EQ(nlohmann::json::parse(o.out)["corpus"]["source"], "small-records");
  expect_one_line_error({"corpus", "-o", dir / "x", "--corpus", "nope"}, 2, "--corpus");
  expect_one_line_error({"bench", "alloc", "--corpus", "small-records", "--input", dir / "r.bin"},
                        2, "--corpus");
}

TEST(CorpusVerb, RefusesToReplaceAFileWithoutForce) {
  TempDir dir;
  write_file(dir / "precious", "keep");
  expect_one_line_error({"corpus", "-o", dir / "precious", "--size", "64K"}, 2,
                        "exists (use --force to replace it)");
  EXPECT_EQ(read_file(dir / "precious"), "keep");
  const Outcome o = run_zspool({"corpus", "-o", dir / "precious", "--size", "64K", "--force"});
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(read_file(dir / "precious").size(), 65536u);
  EXPECT_NE(o.out.find("wrote      " + dir / "precious"), std::string::npos) << o.out;
}

TEST(CorpusVerb, BadSizesAreUsageErrors) {
  TempDir dir;
  expect_one_line_error({"corpus", "-o", dir / "x", "--size", "100"}, 2, "--size");
  expect_one_line_error({"corpus", "-o", dir / "x", "--page-size", "5000"}, 2, "--page-size");
  expect_one_line_error({"corpus", "--size", "1M"}, 2, "--output");
  EXPECT_FALSE(std::filesystem::exists(dir / "x"));
}

}  // namespace
}  // namespace zspool::test
