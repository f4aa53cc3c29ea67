#include "zspool/cli/output_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "zspool/testing/cli_test_util.h"

namespace {

// Set by a test: runs right after a rename() of this test binary succeeds, with the name it
// freed (someone making a file there before the caller's next step).
std::function<void(const std::string& from)> after_rename;

}  // namespace

// The test binary's rename(), which output_file.cc's calls link to: renameat() and the hook
// above. Only a test that sets the hook sees a difference.
extern "C" int rename(const char* from, const char* to) noexcept {
  const int rc = ::renameat(AT_FDCWD, from, AT_FDCWD, to);
  if (rc == 0 && after_rename) after_rename(from);
  return rc;
}

namespace zspool::tools {
namespace {

namespace fs = std::filesystem;
using test::read_file;
using test::TempDir;

std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// Nothing but `expected` in the directory: no temporary file left behind.
void expect_only(const TempDir& dir, std::initializer_list<std::string> expected) {
  std::size_t n = 0;
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    ++n;
    EXPECT_NE(std::find(expected.begin(), expected.end(), entry.path().filename().string()),
              expected.end())
        << "left behind: " << entry.path();
  }
  EXPECT_EQ(n, expected.size());
}

TEST(OutputFile, WritesANewFileWhole) {
  TempDir dir;
  EXPECT_EQ(write_output_file(dir / "out", bytes_of("hello"), false).problem, "");
  EXPECT_EQ(read_file(dir / "out"), "hello");
  expect_only(dir, {"out"});
}

TEST(OutputFile, NeverReplacesAFileWithoutForce) {
  TempDir dir;
  test::write_file(dir / "precious", "keep me");
  const OutputFileStatus status = write_output_file(dir / "precious", bytes_of("new"), false);
  EXPECT_EQ(status.problem, dir / "precious" + ": exists (use --force to replace it)");
  EXPECT_TRUE(status.refused) << "the user's choice of path: a usage error";
  EXPECT_EQ(read_file(dir / "precious"), "keep me");
  expect_only(dir, {"precious"});
}

TEST(OutputFile, ForceReplacesOnlyARegularFile) {
  TempDir dir;
  test::write_file(dir / "old", "old bytes, longer than the new ones");
  EXPECT_EQ(write_output_file(dir / "old", bytes_of("new"), true).problem, "");
  EXPECT_EQ(read_file(dir / "old"), "new");

  test::write_file(dir / "target", "a file a link points at");
  fs::create_symlink(dir / "target", dir / "link");
  fs::create_directory(dir / "subdir");
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);
  for (const char* name : {"link", "subdir", "fifo"}) {
    const OutputFileStatus status = write_output_file(dir / name, bytes_of("x"), true);
    EXPECT_NE(status.problem.find("not a regular file"), std::string::npos)
        << name << ": " << status.problem;
    EXPECT_TRUE(status.refused) << name;
    EXPECT_EQ(write_output_file(dir / name, bytes_of("x"), false).problem.find("exists"),
              (dir / name).size() + 2)
        << name;
  }
  EXPECT_TRUE(fs::is_symlink(dir / "link"));
  EXPECT_EQ(read_file(dir / "target"), "a file a link points at");
  expect_only(dir, {"old", "target", "link", "subdir", "fifo"});
}

TEST(OutputFile, ADirectoryThatCannotTakeItIsOneLineWithTheReason) {
  TempDir dir;
  const OutputFileStatus status = write_output_file(dir / "no/such/dir/out", bytes_of("x"), false);
  EXPECT_NE(status.problem.find("No such file or directory"), std::string::npos) << status.problem;
  EXPECT_EQ(status.problem.find('\n'), std::string::npos);
  EXPECT_FALSE(status.refused) << "a failed write, not the user's choice of path";
  EXPECT_EQ(write_output_file("", bytes_of("x"), false).problem, "the output path is empty");
}

// What a verb asks before any work: an existing PATH is refused without force, and with force
// unless it is a regular file; an absent one is fine.
TEST(OutputFile, RefusalIsKnownBeforeAnyWork) {
  TempDir dir;
  test::write_file(dir / "file", "keep");
  fs::create_directory(dir / "subdir");
  EXPECT_EQ(output_refusal(dir / "absent", false), "");
  EXPECT_EQ(output_refusal(dir / "absent", true), "");
  EXPECT_EQ(output_refusal(dir / "file", false),
            dir / "file" + ": exists (use --force to replace it)");
  EXPECT_EQ(output_refusal(dir / "file", true), "");
  EXPECT_EQ(output_refusal(dir / "subdir", false),
            dir / "subdir" + ": exists (use --force to replace it)");
  EXPECT_EQ(output_refusal(dir / "subdir", true),
            dir / "subdir" + ": not a regular file (not replaced, even with --force)");
  EXPECT_EQ(output_refusal("", false), "the output path is empty");
  expect_only(dir, {"file", "subdir"});
}

// Any valid name can be written: the temporary file's name does not grow with PATH's.
TEST(OutputFile, ANameAsLongAsTheDirectoryAllowsIsWritten) {
  TempDir dir;
  const long name_max = ::pathconf(dir.path().c_str(), _PC_NAME_MAX);
  ASSERT_GT(name_max, 20);
  const std::string name(static_cast<std::size_t>(name_max), 'a');
  for (const bool force : {false, true}) {
    const OutputFileStatus status = write_output_file(dir / name, bytes_of("long"), force);
    EXPECT_EQ(status.problem, "") << "force " << force;
    EXPECT_EQ(read_file(dir / name), "long");
  }
  expect_only(dir, {name});
}

// rename() frees the temporary file's name: whatever is made there afterwards is someone else's
// and stays. (Only a failed link or rename leaves a temporary to remove; a successful link
// leaves its second name, removed.)
TEST(OutputFile, ANameTheRenameFreedIsNotUnlinked) {
  TempDir dir;
  test::write_file(dir / "old", "old");
  std::string freed;
  after_rename = [&](const std::string& from) {
    freed = from;
    test::write_file(from, "someone else's");
  };
  const OutputFileStatus status = write_output_file(dir / "old", bytes_of("new"), true);
  after_rename = nullptr;
  EXPECT_EQ(status.problem, "");
  EXPECT_EQ(read_file(dir / "old"), "new");
  ASSERT_FALSE(freed.empty()) << "nothing was renamed";
  EXPECT_EQ(fs::path(freed).parent_path(), dir.path()) << "the temporary is beside PATH";
  EXPECT_EQ(read_file(freed), "someone else's") << freed << " was unlinked after the rename";
}

}  // namespace
}  // namespace zspool::tools
