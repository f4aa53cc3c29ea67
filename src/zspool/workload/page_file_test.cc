#include "zspool/workload/page_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace zspool::tools {
namespace {

namespace fs = std::filesystem;

class PageFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "zspool_page_file_XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A file of `size` bytes, byte i = i % 251.
  std::string make_file(const std::string& name, std::size_t size) {
    const fs::path path = dir_ / name;
    std::ofstream out(path, std::ios::binary);
    for (std::size_t i = 0; i < size; ++i) out.put(static_cast<char>(i % 251));
    return path.string();
  }

  fs::path dir_;
};

TEST_F(PageFileTest, PagesCoverEveryByteAndTheTailIsZeroPadded) {
  const std::string path = make_file("data", 3 * 4096 + 100);
  std::string why;
  auto file = PageFile::open(path, 4096, &why);
  ASSERT_TRUE(file.ok()) << why;
  EXPECT_EQ(file->page_count(), 4u);
  EXPECT_EQ(file->size_bytes(), 3u * 4096 + 100);
  std::vector<std::byte> page(4096);
  for (std::uint64_t p = 0; p < 4; ++p) {
    ASSERT_EQ(file->read_page(p, page), Error::ok);
    for (std::size_t i = 0; i < page.size(); ++i) {
      const std::size_t offset = p * 4096 + i;
      const auto expected =
          offset < file->size_bytes() ? static_cast<std::byte>(offset % 251) : std::byte{0};
      ASSERT_EQ(page[i], expected) << "page " << p << " byte " << i;
    }
  }
}

TEST_F(PageFileTest, ExactMultipleHasNoExtraPage) {
  auto file = PageFile::open(make_file("even", 2 * 4096), 4096);
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(file->page_count(), 2u);
}

TEST_F(PageFileTest, EmptyFileHasNoPages) {
  auto file = PageFile::open(make_file("empty", 0), 4096);
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(file->page_count(), 0u);
  std::vector<std::byte> page(4096);
  EXPECT_EQ(file->read_page(0, page), Error::invalid_argument);
}

TEST_F(PageFileTest, ReadPageRejectsBadIndexAndBufferSize) {
  auto file = PageFile::open(make_file("data", 4096), 4096);
  ASSERT_TRUE(file.ok());
  std::vector<std::byte> page(4096), short_page(100);
  EXPECT_EQ(file->read_page(1, page), Error::invalid_argument);
  EXPECT_EQ(file->read_page(0, short_page), Error::invalid_argument);
}

TEST_F(PageFileTest, OpenErrorsExplainThemselves) {
  std::string why;
  EXPECT_EQ(PageFile::open((dir_ / "missing").string(), 4096, &why).error(), Error::not_found);
  EXPECT_NE(why.find("missing"), std::string::npos) << why;
  EXPECT_EQ(PageFile::open(dir_.string(), 4096, &why).error(), Error::invalid_argument);
  EXPECT_NE(why.find("not a regular file"), std::string::npos) << why;
  EXPECT_EQ(PageFile::open(make_file("x", 10), 0, &why).error(), Error::invalid_argument);
  // The OS would open "x", the part before the NUL.
  EXPECT_EQ(
      PageFile::open(make_file("x", 10) + std::string("\0/elsewhere", 11), 4096, &why).error(),
      Error::invalid_argument);
  EXPECT_NE(why.find("NUL byte"), std::string::npos) << why;
}

TEST_F(PageFileTest, FifoIsRejectedWithoutBlocking) {
  const std::string fifo = (dir_ / "fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(PageFile::open(fifo, 4096).error(), Error::invalid_argument);
}

TEST_F(PageFileTest, MovedFromFileIsEmpty) {
  auto file = PageFile::open(make_file("data", 8192), 4096);
  ASSERT_TRUE(file.ok());
  PageFile moved = std::move(*file);
  EXPECT_EQ(moved.page_count(), 2u);
  EXPECT_EQ(file->page_count(), 0u);  // NOLINT(bugprone-use-after-move): documented state
  std::vector<std::byte> page(4096);
  EXPECT_EQ(moved.read_page(1, page), Error::ok);
}

// `zspool replay` against a data file truncated during the replay reported its reads as the
// store's mismatches, and pages past the new end as zeros that "verified".
TEST_F(PageFileTest, FileThatShrinksIsAnErrorNotZeros) {
  const std::string path = make_file("data", 3 * 4096);
  auto file = PageFile::open(path, 4096);
  ASSERT_TRUE(file.ok());
  std::vector<std::byte> page(4096);
  ASSERT_EQ(file->read_page(2, page), Error::ok);
  ASSERT_EQ(::truncate(path.c_str(), 4096 + 10), 0);
  std::string why;
  EXPECT_EQ(file->read_page(2, page, &why), Error::io_error);
  EXPECT_NE(why.find(path + " changed while it was being read: its size went from 12288 to 4106"),
            std::string::npos)
      << why;
  EXPECT_EQ(file->read_page(0, page, &why), Error::io_error);  // every page, not just the lost
  EXPECT_TRUE(file->changed_since_open());
}

// Rewritten in place, same size: the modification time gives it away. The file's times are set
// far in the past first, so the rewrite cannot fall in the same clock tick as the open.
TEST_F(PageFileTest, FileRewrittenInPlaceIsAnError) {
  const std::string path = make_file("data", 2 * 4096);
  const timespec long_ago[2] = {{1000000000, 0}, {1000000000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), long_ago, 0), 0);
  auto file = PageFile::open(path, 4096);
  ASSERT_TRUE(file.ok());
  std::vector<std::byte> page(4096);
  ASSERT_EQ(file->read_page(1, page), Error::ok);
  EXPECT_FALSE(file->changed_since_open());
  {
    std::fstream out(path, std::ios::in | std::ios::out | std::ios::binary);
    out.seekp(5000);
    out.put('X');
  }
  std::string why;
  EXPECT_EQ(file->read_page(1, page, &why), Error::io_error);
  EXPECT_NE(why.find("changed while it was being read: it was modified"), std::string::npos) << why;
}

// A file that gives fewer bytes than its size promises (sysfs files claim 4096 bytes and hold a
// few) is an error, not a page padded with zeros.
TEST_F(PageFileTest, ShortReadBelowTheSizeIsAnError) {
  const std::string path = "/sys/kernel/uevent_seqnum";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || st.st_size != 4096)
    GTEST_SKIP() << path << " is not here or not a 4096-byte sysfs file";
  auto file = PageFile::open(path, 4096);
  ASSERT_TRUE(file.ok());
  std::vector<std::byte> page(4096);
  std::string why;
  EXPECT_EQ(file->read_page(0, page, &why), Error::io_error);
  EXPECT_NE(why.find("where its size (4096) promised 4096"), std::string::npos) << why;
}

TEST_F(PageFileTest, CharacterDeviceIsRejected) {
  std::string why;
  EXPECT_EQ(PageFile::open("/dev/zero", 4096, &why).error(), Error::invalid_argument);
  EXPECT_NE(why.find("not a regular file"), std::string::npos) << why;
}

}  // namespace
}  // namespace zspool::tools
