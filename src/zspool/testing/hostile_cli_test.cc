// The zspool binary against a careless or hostile user (issue 12): files that are not its own,
// bad numbers, outputs that cannot be written. Every case runs in a mkdtemp directory, as root
// in CI, and checks that nothing the user had is changed.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "zspool/testing/cli_test_util.h"

namespace zspool::test {
namespace {

namespace fs = std::filesystem;

// 8 pages of text-like bytes.
std::string data_pages() {
  std::string bytes;
  for (int i = 0; bytes.size() < 8 * 4096; ++i) bytes += "page " + std::to_string(i) + " of data ";
  bytes.resize(8 * 4096);
  return bytes;
}

TEST(HostileCli, ABackingFileThatIsTheReplaysDataFileIsRefusedAndLeftIntact) {
  const TempDir dir;
  const std::string data = dir / "d.bin", trace = dir / "t.txt";
  write_file(data, data_pages());
  write_file(trace, "write 0 1\nread 0\n");
  expect_one_line_error({"replay", trace, "--data", data, "--backing", data}, 2, data);
  EXPECT_EQ(read_file(data), data_pages()) << "the data file was changed";
  expect_one_line_error({"replay", trace, "--data", data, "--backing", trace}, 2, trace);
  EXPECT_EQ(read_file(trace), "write 0 1\nread 0\n");
}

TEST(HostileCli, ABackingFileThatIsTheRunsInputIsRefusedAndLeftIntact) {
  const TempDir dir;
  const std::string input = dir / "in.bin";
  write_file(input, data_pages());
  expect_one_line_error({"run", "--input", input, "--backing", input, "--limit", "64K"}, 2, input);
  EXPECT_EQ(read_file(input), data_pages());
}

TEST(HostileCli, BackingTargetsThatCannotHoldDataAreRefusedWithTheReason) {
  const TempDir dir;
  for (const std::string target : {"/dev/null", "/dev/zero"}) {
    expect_one_line_error({"run", "--pages", "16", "--limit", "64K", "--backing", target}, 2,
                          target);
  }
  expect_one_line_error({"run", "--pages", "16", "--backing", dir / "missing/b.img"}, 2,
                        "No such file or directory");
  expect_one_line_error({"run", "--pages", "16", "--backing", ""}, 2, "--backing");
  const std::string full = dir / "full.img";
  write_file(full, "somebody's data");
  expect_one_line_error({"run", "--pages", "16", "--backing", full}, 2, full);
  EXPECT_EQ(read_file(full), "somebody's data");
  fs::create_symlink(full, dir / "link.img");
  expect_one_line_error({"run", "--pages", "16", "--backing", dir / "link.img"}, 2, "link.img");
  EXPECT_EQ(read_file(full), "somebody's data");
}

TEST(HostileCli, NumbersAreDecimalAndZeroIsRefusedWhereItMeansNothing) {
  const std::vector<std::string> args = {"run", "--pages", "010", "--json"};
  const Outcome o = run_zspool(args);
  ASSERT_EQ(o.status, 0) << describe(args, o);
  EXPECT_EQ(nlohmann::json::parse(o.out)["pages"], 10) << "010 is ten, not octal eight";
  expect_one_line_error({"run", "--pages", "0x10"}, 2, "--pages");
  expect_one_line_error({"run", "--pages", "-1"}, 2, "--pages");
  expect_one_line_error({"run", "--size", "0"}, 2, "--size");
  expect_one_line_error({"run", "--threads", "4294967296"}, 2, "--threads");
}

TEST(HostileCli, AnUnknownSubVerbIsNamed) {
  expect_one_line_error({"bench", "xyz"}, 2, "unknown verb 'bench xyz'");
}

TEST(HostileCli, OutputThatCannotBeWrittenIsAFailureNotSilence) {
  for (const std::string verb : {"classes", "run --pages 16 --json", "run --pages 16"}) {
    const std::vector<std::string> args = {"-c", std::string(kZspool) + " " + verb + " >/dev/full"};
    bool started = false;
    const Outcome o = run_program("/bin/sh", args, &started);
    ASSERT_TRUE(started);
    EXPECT_EQ(o.status, 1) << describe_run("sh", args, o);
    EXPECT_NE(o.err.find("cannot write the output: No space left on device"), std::string::npos)
        << describe_run("sh", args, o);
  }
}

TEST(HostileCli, SoakLeavesNothingInItsTemporaryDirectory) {
  const TempDir dir;
  const char* old = std::getenv("TMPDIR");
  const std::string saved = old != nullptr ? old : "";
  ::setenv("TMPDIR", dir.path().c_str(), 1);
  const std::vector<std::string> args = {"soak",    "--seconds", "1",       "--threads", "2",
                                         "--pages", "256",       "--limit", "256K",      "--json"};
  const Outcome o = run_zspool(args);
  if (old != nullptr) {
    ::setenv("TMPDIR", saved.c_str(), 1);
  } else {
    ::unsetenv("TMPDIR");
  }
  EXPECT_EQ(o.status, 0) << describe(args, o);
  EXPECT_TRUE(fs::is_empty(dir.path())) << "the backing file and its directory are unlinked";
  EXPECT_GT(nlohmann::json::parse(o.out)["written_back_pages"].get<std::uint64_t>(), 0u)
      << "the backing file was used though unlinked";
}

TEST(HostileCli, InputsThatWouldBlockAreRefusedNotWaitedFor) {
  const TempDir dir;
  const std::string fifo = dir / "fifo", data = dir / "d.bin";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  write_file(data, data_pages());
  expect_one_line_error({"replay", fifo, "--data", data}, 2, fifo);
  const std::string trace = dir / "t.txt";
  write_file(trace, "write 0\n");
  expect_one_line_error({"replay", trace, "--data", fifo}, 2, fifo);
  // /proc/kmsg blocks a plain read until the kernel logs something: the loader reads it without
  // blocking (data or a skip with the reason); what matters is that the run ends.
  if (fs::exists("/proc/kmsg")) {
    const Outcome o = run_zspool({"run", "--input", "/proc/kmsg", "--max-bytes", "64K"});
    EXPECT_TRUE(o.exited) << describe({"run", "--input", "/proc/kmsg"}, o);
  }
}

}  // namespace
}  // namespace zspool::test
