// The registry, CommandError and the shared options; the verbs are tested end to end, through
// the zspool binary, in testing/*cli_test.cc, and here for what verbs must check before any work
// (an existing -o FILE, a bad --backing-dir) and the lines they fail with.

#include "zspool/cli/command.h"
#include "zspool/cli/options.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "zspool/testing/cli_test_util.h"

namespace zspool::tools {
namespace {

using test::expect_one_line_error;
using test::TempDir;

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

// ── verbs, end to end ─────────────────────────────────────────────────────────────────────────

// /bin/sh -c SCRIPT, with "$0" the zspool binary.
test::Outcome run_shell(const std::string& script) {
  return test::run_program("/bin/sh", {"-c", script, test::kZspool});
}

// An -o FILE that exists (without --force), or is not a regular file (with it), is refused
// before the corpus is made: the 1 PiB --size, which loading would refuse, is never looked at.
TEST(VerbOutput, CorpusRefusesAnOutputBeforeMakingTheCorpus) {
  TempDir dir;
  test::write_file(dir / "precious", "keep");
  std::filesystem::create_directory(dir / "subdir");
  expect_one_line_error({"corpus", "-o", dir / "precious", "--size", "1P"}, 2,
                        "-o " + dir / "precious" + ": exists (use --force to replace it)");
  expect_one_line_error({"corpus", "-o", dir / "subdir", "--size", "1P", "--force"}, 2,
                        "-o " + dir / "subdir" + ": not a regular file");
  EXPECT_EQ(test::read_file(dir / "precious"), "keep");
}

// An output that exists without --force is a usage error (exit 2) in every verb that writes one.
TEST(VerbOutput, AnOutputThatExistsIsAUsageErrorInEveryVerb) {
  TempDir dir;
  test::write_file(dir / "precious", "keep");
  expect_one_line_error({"corpus", "-o", dir / "precious", "--size", "64K"}, 2, "exists");
  ASSERT_EQ(test::run_zspool({"corpus", "-o", dir / "data", "--size", "64K"}).status, 0);
  expect_one_line_error({"train-dict", "--input", dir / "data", "-o", dir / "precious"}, 2,
                        "exists");
  EXPECT_EQ(test::read_file(dir / "precious"), "keep");
}

// train-dict on too little data says so in the user's terms, libzstd's name in parentheses.
TEST(VerbOutput, TrainDictOnTooLittleDataSaysHowMuchItHad) {
  TempDir dir;
  test::write_file(dir / "tiny", "hello\n");
  const test::Outcome o = expect_one_line_error(
      {"train-dict", "--input", dir / "tiny", "-o", dir / "t.dict", "--dict-size", "1K"}, 2,
      "cannot train a dictionary on " + dir / "tiny" +
          ": too little sample data: 1 sample of 4096 bytes; ");
  EXPECT_NE(o.err.find("(zstd: "), std::string::npos) << o.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "t.dict"));
}

// A --backing-dir that cannot hold the backing files is a usage error naming it and why, found
// before any work: the 1 PiB --max-bytes, which loading would refuse, is never looked at.
TEST(BenchPolicyVerb, ABadBackingDirIsAUsageErrorBeforeAnyWork) {
  TempDir dir;
  test::write_file(dir / "file", "x");
  std::filesystem::create_symlink(dir / "file", dir / "link");
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {dir / "nonexist", "No such file or directory"},
      {dir / "file", "not a directory"},
      {dir / "link", "not a directory"},
      {dir / "fifo", "not a directory"},
      {"/dev/null", "not a directory"}};
  for (const auto& [path, reason] : cases) {
    expect_one_line_error({"bench", "policy", "--corpus", "builtin", "--max-bytes", "1P",
                           "--read-rounds", "1", "--backing-dir", path},
                          2, "zspool: --backing-dir " + path + ": " + reason + "\n");
  }
}

// With $TMPDIR naming no directory, the backing files' directory goes under /tmp, not the
// current directory (here one that was removed, where nothing can be made).
TEST(BenchPolicyVerb, ABadTmpdirFallsBackToTmpNotTheCurrentDirectory) {
  TempDir dir;
  const std::string gone = dir / "gone";
  const test::Outcome o = run_shell("mkdir '" + gone + "' && cd '" + gone + "' && rmdir '" + gone +
                                    "' && TMPDIR=/nonexist exec \"$0\" bench policy --corpus "
                                    "builtin --max-bytes 4M --read-rounds 1");
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.err, "");
}

// A backing device that refuses room: the failure line says which backing file and why, as
// `zspool run` does. The shell caps file sizes at 64 blocks (32 KiB in dash), below what the
// backing files need and above what stdout and stderr take.
TEST(BenchPolicyVerb, AFullBackingDeviceIsNamedInTheFailureLine) {
  TempDir dir;
  const test::Outcome o = run_shell(
      "trap '' XFSZ; ulimit -f 64 && exec \"$0\" bench policy "
      "--corpus builtin --max-bytes 4M --read-rounds 1 "
      "--backing-dir '" +
      dir.path().string() + "'");
  EXPECT_EQ(o.status, 1) << o.err;
  EXPECT_EQ(o.err_lines(), 1u) << o.err;
  EXPECT_NE(o.err.find(" pages failed or read back different bytes; backing file " +
                       dir / "zspool-bench-policy-"),
            std::string::npos)
      << o.err;
  EXPECT_NE(o.err.find("File too large"), std::string::npos) << o.err;
}

}  // namespace
}  // namespace zspool::tools
