#include "zspool/cli/output_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "zspool/testing/cli_test_util.h"

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
  EXPECT_EQ(write_output_file(dir / "out", bytes_of("hello"), false), "");
  EXPECT_EQ(read_file(dir / "out"), "hello");
  expect_only(dir, {"out"});
}

TEST(OutputFile, NeverReplacesAFileWithoutForce) {
  TempDir dir;
  test::write_file(dir / "precious", "keep me");
  EXPECT_EQ(write_output_file(dir / "precious", bytes_of("new"), false),
            dir / "precious" + ": exists (use --force to replace it)");
  EXPECT_EQ(read_file(dir / "precious"), "keep me");
  expect_only(dir, {"precious"});
}

TEST(OutputFile, ForceReplacesOnlyARegularFile) {
  TempDir dir;
  test::write_file(dir / "old", "old bytes, longer than the new ones");
  EXPECT_EQ(write_output_file(dir / "old", bytes_of("new"), true), "");
  EXPECT_EQ(read_file(dir / "old"), "new");

  test::write_file(dir / "target", "a file a link points at");
  fs::create_symlink(dir / "target", dir / "link");
  fs::create_directory(dir / "subdir");
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);
  for (const char* name : {"link", "subdir", "fifo"}) {
    const std::string problem = write_output_file(dir / name, bytes_of("x"), true);
    EXPECT_NE(problem.find("not a regular file"), std::string::npos) << name << ": " << problem;
    EXPECT_EQ(write_output_file(dir / name, bytes_of("x"), false).find("exists"),
              (dir / name).size() + 2)
        << name;
  }
  EXPECT_TRUE(fs::is_symlink(dir / "link"));
  EXPECT_EQ(read_file(dir / "target"), "a file a link points at");
  expect_only(dir, {"old", "target", "link", "subdir", "fifo"});
}

TEST(OutputFile, ADirectoryThatCannotTakeItIsOneLineWithTheReason) {
  TempDir dir;
  const std::string problem = write_output_file(dir / "no/such/dir/out", bytes_of("x"), false);
  EXPECT_NE(problem.find("No such file or directory"), std::string::npos) << problem;
  EXPECT_EQ(problem.find('\n'), std::string::npos);
  EXPECT_EQ(write_output_file("", bytes_of("x"), false), "the output path is empty");
}

}  // namespace
}  // namespace zspool::tools
