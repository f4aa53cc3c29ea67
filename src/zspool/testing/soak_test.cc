// End to end: `zspool soak` runs every store operation with faults and finds no errors, and
// bad arguments are one-line usage errors.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "zspool/testing/cli_test_util.h"

namespace zspool::test {
namespace {

// Runs a 2-second soak of 3 threads on 1024 pages under a 1 MiB limit with faults every 500
// operations, plus `extra` arguments; its JSON, after checking it found no errors.
nlohmann::json soak_without_errors(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"soak", "--seconds", "2",  "--threads",     "3",   "--pages",
                                   "1024", "--limit",   "1M", "--fault-every", "500", "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  const Outcome o = run_zspool(args);
  EXPECT_TRUE(o.exited && o.status == 0) << describe(args, o);
  const auto j = nlohmann::json::parse(o.out, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << describe(args, o);
  if (j.is_discarded()) return {};
  EXPECT_EQ(j["errors"], 0);
  EXPECT_GT(j["verified"].get<std::uint64_t>(), 0u);
  return j;
}

TEST(Soak, MixesEveryOperationWithFaultsAndFindsNoErrors) {
  const auto j = soak_without_errors({});
  ASSERT_FALSE(j.empty());
  EXPECT_GT(j["ops"].get<std::uint64_t>(), 1000u);
  EXPECT_GT(j["faults_injected"].get<std::uint64_t>(), 0u);
  EXPECT_LE(j["writes_refused"].get<std::uint64_t>(), j["faults_injected"].get<std::uint64_t>())
      << "writes refused that no injected fault explains";
  EXPECT_GT(j["written_back_pages"].get<std::uint64_t>(), 0u) << "the limit forces writeback";
}

// With secondary compressors, recompression joins the mix: pages are recompressed while other
// threads write, read and write back the same pages, and every read is still verified.
TEST(Soak, RecompressesWhileEverythingElseRunsAndFindsNoErrors) {
  const auto j = soak_without_errors({"--compressor", "lz4", "--recompress-with", "zstd,lzo1x"});
  ASSERT_FALSE(j.empty());
  EXPECT_GT(j["recompressions"].get<std::uint64_t>(), 0u);
  EXPECT_GT(j["recompressed_pages"].get<std::uint64_t>(), 0u);
}

TEST(Soak, BadArgumentsAreOneLineErrors) {
  expect_one_line_error({"soak", "--threads", "0"}, 2, "--threads");
  expect_one_line_error({"soak", "--limit", "12Q"}, 2, "--limit");
  // A negative or absurd duration is refused, not wrapped to 2^64 seconds (it used to hang).
  expect_one_line_error({"soak", "--seconds", "-1"}, 2, "--seconds");
  // More threads than the process may start is refused at parse time (it used to abort with
  // "terminate called without an active exception").
  expect_one_line_error({"soak", "--threads", "4294967295"}, 2, "--threads");
  expect_one_line_error({"soak", "--compressor", "lz5"}, 2, "is not a compressor");
  expect_one_line_error({"soak", "--recompress-with", "zstd,lz4,lzo1x,zstd:9"}, 2,
                        "--recompress-with: 4 compressors, at most 3");
}

}  // namespace
}  // namespace zspool::test
