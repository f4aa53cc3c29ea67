// The verbs are tested end to end, through the zspool binary, in cli_test.cc.

#include "zspool/cli/command.h"
#include "zspool/cli/options.h"

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace zspool::tools {
namespace {

TEST(CommandRegistry, KeepsVerbsSortedByName) {
  const std::size_t before = registered_commands().size();
  register_command({"zz-test-verb", "last", [](CLI::App&) {}});
  register_command({"aa-test-verb", "first", [](CLI::App&) {}});
  const auto commands = registered_commands();
  ASSERT_EQ(commands.size(), before + 2);
  EXPECT_EQ(commands.front().name, "aa-test-verb");
  EXPECT_EQ(commands.back().name, "zz-test-verb");
  EXPECT_EQ(commands.front().description, "first");
  for (std::size_t i = 1; i < commands.size(); ++i)
    EXPECT_LT(commands[i - 1].name, commands[i].name);
}

TEST(CommandErrors, CarryTheirExitStatus) {
  try {
    usage_error("bad value");
    FAIL() << "usage_error returned";
  } catch (const CommandError& e) {
    EXPECT_STREQ(e.what(), "bad value");
    EXPECT_EQ(e.exit_status(), kExitUsage);
  }
  try {
    command_failed("it broke");
    FAIL() << "command_failed returned";
  } catch (const CommandError& e) {
    EXPECT_EQ(e.exit_status(), kExitFailure);
  }
}

TEST(SizeOption, ParsesUnitsAndKeepsTheDefault) {
  std::uint64_t limit = 1234;
  CLI::App app;
  add_size_option(app, "--limit", limit, "cap");
  app.parse("", false);
  EXPECT_EQ(limit, 1234u);
  app.parse("--limit 1.5G", false);
  EXPECT_EQ(limit, 1610612736u);
  EXPECT_NE(app.help().find("--limit SIZE=1234"), std::string::npos) << app.help();
}

TEST(SizeOption, RejectsGarbageAsAValidationError) {
  std::uint64_t limit = 0;
  CLI::App app;
  add_size_option(app, "--limit", limit, "cap");
  EXPECT_THROW(app.parse("--limit 12Q", false), CLI::ValidationError);
  EXPECT_THROW(app.parse("--limit -1", false), CLI::ParseError);
}

TEST(GeometryOptions, DefaultsAndValues) {
  PoolGeometry geometry;
  CLI::App app;
  add_geometry_options(app, geometry);
  app.parse("", false);
  EXPECT_EQ(geometry.page_size, 4096u);
  EXPECT_EQ(geometry.max_chain, 8u);
  app.parse("--page-size 64K --max-chain 16", false);
  EXPECT_EQ(geometry.page_size, 65536u);
  EXPECT_EQ(geometry.max_chain, 16u);
}

TEST(GeometryOptions, RejectsWhatSizeClassTableRejects) {
  for (const char* args :
       {"--page-size 3000", "--page-size 2K", "--page-size 128K", "--page-size 4.5K",
        "--page-size x", "--max-chain 0", "--max-chain 17", "--max-chain x"}) {
    PoolGeometry geometry;
    CLI::App app;
    add_geometry_options(app, geometry);
    EXPECT_THROW(app.parse(args, false), CLI::ParseError) << args;
  }
}

TEST(PageSizeProblem, AcceptsPowersOfTwoInRange) {
  for (std::uint64_t ok : {4096u, 8192u, 16384u, 32768u, 65536u})
    EXPECT_EQ(page_size_problem(ok), "");
  for (std::uint64_t bad : {0u, 2048u, 3000u, 4097u, 131072u})
    EXPECT_NE(page_size_problem(bad), "") << bad;
}

}  // namespace
}  // namespace zspool::tools
