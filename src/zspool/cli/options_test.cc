#include "zspool/cli/options.h"

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace zspool::tools {
namespace {

// Parses `args` (after the program name) with `app`; "" or CLI11's error text.
std::string parse(CLI::App& app, std::vector<std::string> args) {
  std::reverse(args.begin(), args.end());  // CLI11 takes them last-first
  try {
    app.parse(args);
    return "";
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
}

// CLI11's own integers read `--pages 010` as 8 and `--pages 0x10` as 16.
TEST(CountOption, DecimalOnlyAndRangeChecked) {
  std::uint64_t pages = 7;
  std::uint32_t threads = 1;
  CLI::App app;
  add_count_option(app, "--pages", pages, "pages", 1, 1000);
  add_count_option(app, "--threads", threads, "threads", 1, 1024);
  EXPECT_EQ(parse(app, {"--pages", "010"}), "");
  EXPECT_EQ(pages, 10u);
  EXPECT_EQ(parse(app, {"--threads", "0012"}), "");
  EXPECT_EQ(threads, 12u);
  EXPECT_NE(parse(app, {"--pages", "0x10"}).find("decimal digits only"), std::string::npos);
  EXPECT_NE(parse(app, {"--pages", "-1"}).find("decimal digits only"), std::string::npos);
  EXPECT_NE(parse(app, {"--pages", "0"}).find("out of range: 1 .. 1000"), std::string::npos);
  EXPECT_NE(parse(app, {"--threads", "4294967295"}).find("out of range: 1 .. 1024"),
            std::string::npos);
  EXPECT_EQ(pages, 10u);  // refused values leave the target alone
}

TEST(CountOption, RangeIsCappedByTheTargetType) {
  std::uint32_t n = 0;
  CLI::App app;
  add_count_option(app, "--n", n, "n", 0, UINT64_MAX);
  EXPECT_NE(parse(app, {"--n", "4294967296"}).find("out of range: 0 .. 4294967295"),
            std::string::npos);
  EXPECT_EQ(parse(app, {"--n", "4294967295"}), "");
  EXPECT_EQ(n, 4294967295u);
}

// `--size 0` silently meant the default.
TEST(PositiveSizeOption, ZeroIsAUsageError) {
  std::uint64_t size = 0;
  CLI::App app;
  add_positive_size_option(app, "--size", size, "size");
  EXPECT_NE(parse(app, {"--size", "0"}).find("must not be 0"), std::string::npos);
  EXPECT_EQ(parse(app, {"--size", "8K"}), "");
  EXPECT_EQ(size, 8192u);
}

}  // namespace
}  // namespace zspool::tools
