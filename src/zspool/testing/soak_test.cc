// End to end: `zspool soak` runs every store operation with faults and finds no errors, and
// bad arguments are one-line usage errors.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "zspool/testing/cli_test_util.h"

namespace zspool::test {
namespace {

TEST(Soak, MixesEveryOperationWithFaultsAndFindsNoErrors) {
  const std::vector<std::string> args = {"soak", "--seconds",     "2",    "--threads",
                                         "3",    "--pages",       "1024", "--limit",
                                         "1M",   "--fault-every", "500",  "--json"};
  const Outcome o = run_zspool(args);
  ASSERT_TRUE(o.exited) << describe(args, o);
  EXPECT_EQ(o.status, 0) << describe(args, o);
  const auto j = nlohmann::json::parse(o.out);
  EXPECT_EQ(j["errors"], 0);
  EXPECT_GT(j["ops"].get<std::uint64_t>(), 1000u);
  EXPECT_GT(j["verified"].get<std::uint64_t>(), 0u);
  EXPECT_GT(j["faults_injected"].get<std::uint64_t>(), 0u);
  EXPECT_LE(j["writes_refused"].get<std::uint64_t>(), j["faults_injected"].get<std::uint64_t>())
      << "writes refused that no injected fault explains";
  EXPECT_GT(j["written_back_pages"].get<std::uint64_t>(), 0u) << "the limit forces writeback";
}

TEST(Soak, BadArgumentsAreOneLineErrors) {
  expect_one_line_error({"soak", "--threads", "0"}, 2, "--threads");
  expect_one_line_error({"soak", "--limit", "12Q"}, 2, "--limit");
  // A negative or absurd duration is refused, not wrapped to 2^64 seconds (it used to hang).
  expect_one_line_error({"soak", "--seconds", "-1"}, 2, "--seconds");
  // More threads than the process may start is refused at parse time (it used to abort with
  // "terminate called without an active exception").
  expect_one_line_error({"soak", "--threads", "4294967295"}, 2, "--threads");
}

}  // namespace
}  // namespace zspool::test
