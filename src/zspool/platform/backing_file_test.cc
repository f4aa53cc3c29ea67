#include "zspool/platform/backing_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <vector>

namespace zspool {
namespace {

constexpr std::uint32_t kSlotSize = 4096;

// Bytes that differ by slot, round and position, so a misplaced or stale slot cannot pass.
std::vector<std::byte> pattern(std::size_t length, std::uint64_t seed) {
  std::vector<std::byte> bytes(length);
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& b : bytes) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<std::byte>(x);
  }
  return bytes;
}

bool all_zero(std::span<const std::byte> bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::byte b) { return b == std::byte{0}; });
}

class BackingFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "zspool_backing_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/backing";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<BackingFile> open_file(std::uint64_t max_slots = 0) {
    auto file = BackingFile::open(path_, kSlotSize, max_slots);
    EXPECT_TRUE(file.ok()) << error_name(file.error());
    return file.ok() ? std::move(file).value() : nullptr;
  }

  // Reads the slot and checks it holds exactly `expected`.
  static void expect_slot_holds(BackingFile& file, std::uint64_t slot,
                                const std::vector<std::byte>& expected) {
    std::vector<std::byte> out(kSlotSize);
    std::size_t len = 0;
    ASSERT_EQ(file.read_slot(slot, out, &len), Error::ok);
    ASSERT_EQ(len, expected.size());
    EXPECT_TRUE(std::equal(expected.begin(), expected.end(), out.begin()));
  }

  std::string dir_;
  std::string path_;
};

TEST_F(BackingFileTest, RoundTripsDataOfEveryLength) {
  auto file = open_file();
  ASSERT_NE(file, nullptr);
  const std::size_t lengths[] = {0, 1, 7, 100, kSlotSize - 1, kSlotSize};
  std::vector<std::uint64_t> slots;
  for (std::size_t i = 0; i < std::size(lengths); ++i) {
    auto slot = file->alloc_slot();
    ASSERT_TRUE(slot.ok());
    ASSERT_EQ(file->write_slot(*slot, pattern(lengths[i], i)), Error::ok);
    slots.push_back(*slot);
  }
  for (std::size_t i = 0; i < std::size(lengths); ++i) {
    expect_slot_holds(*file, slots[i], pattern(lengths[i], i));
  }
  const BackingFileStats stats = file->stats();
  EXPECT_EQ(stats.slots_in_use, std::size(lengths));
  EXPECT_EQ(stats.writes, std::size(lengths));
  EXPECT_EQ(stats.reads, std::size(lengths));
  EXPECT_EQ(stats.write_failures + stats.read_failures + stats.checksum_failures, 0u);
}

TEST_F(BackingFileTest, SlotIsStoredAtSlotTimesSlotSize) {
  auto file = open_file();
  ASSERT_NE(file, nullptr);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(file->alloc_slot().ok());
  const auto data = pattern(1000, 42);
  ASSERT_EQ(file->write_slot(2, data), Error::ok);

  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  std::vector<std::byte> on_disk(data.size());
  EXPECT_EQ(::pread(fd, on_disk.data(), on_disk.size(), 2 * kSlotSize),
            static_cast<ssize_t>(data.size()));
  ::close(fd);
  EXPECT_EQ(on_disk, data);
}

TEST_F(BackingFileTest, RewriteReplacesDataAndAdvancesSequence) {
  auto file = open_file();
  ASSERT_NE(file, nullptr);
  const std::uint64_t slot = file->alloc_slot().value();
  ASSERT_EQ(file->write_slot(slot, pattern(3000, 1)), Error::ok);
  const std::uint64_t first_sequence = file->record(slot)->sequence;
  ASSERT_EQ(file->write_slot(slot, pattern(10, 2)), Error::ok);
  const SlotRecord rec = *file->record(slot);
  EXPECT_EQ(rec.state, SlotRecord::State::kWritten);
  EXPECT_EQ(rec.length, 10u);
  EXPECT_GT(rec.sequence, first_sequence);
  expect_slot_holds(*file, slot, pattern(10, 2));
}

TEST_F(BackingFileTest, FreedSlotsAreReused) {
  auto file = open_file();
  ASSERT_NE(file, nullptr);
  std::vector<std::uint64_t> slots;
  for (int i = 0; i < 4; ++i) slots.push_back(file->alloc_slot().value());
  EXPECT_EQ(slots, (std::vector<std::uint64_t>{0, 1, 2, 3}));
  ASSERT_EQ(file->write_slot(1, pattern(50, 1)), Error::ok);

  file->free_slot(1);
  file->free_slot(3);
  EXPECT_EQ(file->stats().slots_in_use, 2u);
  EXPECT_EQ(file->record(1)->state, SlotRecord::State::kFree);
  EXPECT_EQ(file->alloc_slot().value(), 3u);  // most recently freed first
  EXPECT_EQ(file->alloc_slot().value(), 1u);
  EXPECT_EQ(file->alloc_slot().value(), 4u);  // free list empty: a new slot
  // A reused slot starts empty: its previous contents are not readable through it.
  std::vector<std::byte> out(kSlotSize);
  EXPECT_EQ(file->read_slot(1, out, nullptr), Error::not_found);
  EXPECT_EQ(file->stats().slots_in_use, 5u);
}

TEST_F(BackingFileTest, MaxSlotsLimitsAllocation) {
  auto file = open_file(/*max_slots=*/3);
  ASSERT_NE(file, nullptr);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(file->alloc_slot().ok());
  auto refused = file->alloc_slot();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error(), Error::limit_reached);
  file->free_slot(0);
  EXPECT_EQ(file->alloc_slot().value(), 0u);
  EXPECT_EQ(file->alloc_slot().error(), Error::limit_reached);
}

TEST_F(BackingFileTest, MisuseIsReportedNotFatal) {
  EXPECT_EQ(BackingFile::open(path_, 0, 0).error(), Error::invalid_argument);
  EXPECT_EQ(BackingFile::open(path_, kSlotSize, ~std::uint64_t{0}).error(),
            Error::invalid_argument);

  auto file = open_file();
  ASSERT_NE(file, nullptr);
  std::vector<std::byte> out(kSlotSize);
  EXPECT_EQ(file->write_slot(0, pattern(10, 1)), Error::invalid_argument);  // never allocated
  EXPECT_EQ(file->read_slot(0, out, nullptr), Error::invalid_argument);
  const std::uint64_t slot = file->alloc_slot().value();
  EXPECT_EQ(file->read_slot(slot, out, nullptr), Error::not_found);  // never written
  EXPECT_EQ(file->write_slot(slot, pattern(kSlotSize + 1, 1)), Error::invalid_argument);
  ASSERT_EQ(file->write_slot(slot, pattern(100, 1)), Error::ok);
  EXPECT_EQ(file->read_slot(slot, std::span(out).first(99), nullptr), Error::out_of_bounds);

  file->free_slot(slot);
  file->free_slot(slot);        // double free: ignored
  file->free_slot(slot + 100);  // never allocated: ignored
  EXPECT_EQ(file->stats().slots_in_use, 0u);
  EXPECT_EQ(file->write_slot(slot, pattern(10, 1)), Error::invalid_argument);
  EXPECT_EQ(file->read_slot(slot, out, nullptr), Error::invalid_argument);
  EXPECT_EQ(file->alloc_slot().value(), slot);  // freed once, handed out once
  EXPECT_EQ(file->alloc_slot().value(), slot + 1);
}

TEST_F(BackingFileTest, InjectedWriteFailureKeepsOldContentsReadable) {
  auto file = open_file();
  ASSERT_NE(file, nullptr);
  const std::uint64_t slot = file->alloc_slot().value();
  const auto old_data = pattern(2000, 1);
  ASSERT_EQ(file->write_slot(slot, old_data), Error::ok);
  const SlotRecord before = *file->record(slot);

  file->fail_write_at(1);
  EXPECT_EQ(file->write_slot(slot, pattern(500, 2)), Error::io_error);
  const SlotRecord after = *file->record(slot);
  EXPECT_EQ(after.length, before.length);
  EXPECT_EQ(after.checksum, before.checksum);
  EXPECT_EQ(after.sequence, before.sequence);
  expect_slot_holds(*file, slot, old_data);

  // Only that one call failed.
  ASSERT_EQ(file->write_slot(slot, pattern(500, 3)), Error::ok);
  expect_slot_holds(*file, slot, pattern(500, 3));
  EXPECT_EQ(file->stats().write_failures, 1u);
  EXPECT_EQ(file->stats().writes, 2u);
}

TEST_F(BackingFileTest, FailWritesFromFailsThatCallAndEveryLaterOne) {
  auto file = open_file();
  ASSERT_NE(file, nullptr);
  const std::uint64_t slot = file->alloc_slot().value();
  file->fail_writes_from(2);
  EXPECT_EQ(file->write_slot(slot, pattern(10, 1)), Error::ok);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(file->write_slot(slot, pattern(10, 2)), Error::io_error);
  expect_slot_holds(*file, slot, pattern(10, 1));
  EXPECT_EQ(file->stats().write_failures, 5u);
  file->clear_faults();
  EXPECT_EQ(file->write_slot(slot, pattern(10, 3)), Error::ok);
  expect_slot_holds(*file, slot, pattern(10, 3));
}

TEST_F(BackingFileTest, RealWriteFailureIsIoErrorAndLeavesRecordUnchanged) {
  // /dev/full refuses every write with ENOSPC: the pwrite error path, not an injected one.
  auto opened = BackingFile::open("/dev/full", kSlotSize, 0);
  if (!opened.ok()) GTEST_SKIP() << "/dev/full cannot be opened here";
  BackingFile& file = **opened;
  const std::uint64_t slot = file.alloc_slot().value();
  EXPECT_EQ(file.write_slot(slot, pattern(100, 1)), Error::io_error);
  EXPECT_EQ(file.record(slot)->state, SlotRecord::State::kAllocated);
  std::vector<std::byte> out(kSlotSize);
  EXPECT_EQ(file.read_slot(slot, out, nullptr), Error::not_found);
  EXPECT_EQ(file.stats().write_failures, 1u);
  EXPECT_EQ(file.stats().writes, 0u);
}

TEST_F(BackingFileTest, SyncMakesWrittenSlotsDurableAndReportsFailure) {
  auto file = open_file();
  const std::uint64_t slot = file->alloc_slot().value();
  ASSERT_EQ(file->write_slot(slot, pattern(100, 3)), Error::ok);
  EXPECT_EQ(file->sync(), Error::ok);
  expect_slot_holds(*file, slot, pattern(100, 3));
  // A character device cannot be synced (fdatasync: EINVAL): the failure is io_error.
  auto opened = BackingFile::open("/dev/full", kSlotSize, 0);
  if (!opened.ok()) GTEST_SKIP() << "/dev/full cannot be opened here";
  EXPECT_EQ((*opened)->sync(), Error::io_error);
}

TEST_F(BackingFileTest, InjectedReadFailureIsIoErrorAndReturnsNoData) {
  auto file = open_file();
  ASSERT_NE(file, nullptr);
  const std::uint64_t slot = file->alloc_slot().value();
  const auto data = pattern(kSlotSize, 7);
  ASSERT_EQ(file->write_slot(slot, data), Error::ok);

  file->fail_reads_at(2);
  expect_slot_holds(*file, slot, data);
  std::vector<std::byte> out(kSlotSize, std::byte{0xAA});
  std::size_t len = 12345;
  EXPECT_EQ(file->read_slot(slot, out, &len), Error::io_error);
  EXPECT_EQ(len, 12345u);
  EXPECT_TRUE(all_zero(out));
  expect_slot_holds(*file, slot, data);
  EXPECT_EQ(file->stats().read_failures, 1u);
  EXPECT_EQ(file->stats().reads, 2u);
}

TEST_F(BackingFileTest, CorruptionOnDiskIsChecksumMismatch) {
  auto file = open_file();
  ASSERT_NE(file, nullptr);
  const std::uint64_t slot = file->alloc_slot().value();
  const auto data = pattern(1500, 9);
  ASSERT_EQ(file->write_slot(slot, data), Error::ok);
  EXPECT_EQ(file->corrupt_slot_on_disk(slot, 1500), Error::invalid_argument);  // past the data

  for (std::uint32_t offset : {0u, 777u, 1499u}) {
    ASSERT_EQ(file->corrupt_slot_on_disk(slot, offset), Error::ok);
    std::vector<std::byte> out(kSlotSize, std::byte{0xAA});
    EXPECT_EQ(file->read_slot(slot, out, nullptr), Error::checksum_mismatch) << offset;
    EXPECT_TRUE(all_zero(std::span(out).first(data.size())));
    ASSERT_EQ(file->corrupt_slot_on_disk(slot, offset), Error::ok);  // flip back
    expect_slot_holds(*file, slot, data);
  }
  EXPECT_EQ(file->stats().checksum_failures, 3u);
  EXPECT_EQ(file->stats().read_failures, 0u);
}

TEST_F(BackingFileTest, TruncatedFileIsChecksumMismatch) {
  auto file = open_file();
  ASSERT_NE(file, nullptr);
  const std::uint64_t slot = file->alloc_slot().value();
  ASSERT_EQ(file->write_slot(slot, pattern(1000, 1)), Error::ok);
  ASSERT_EQ(::truncate(path_.c_str(), 500), 0);
  std::vector<std::byte> out(kSlotSize);
  EXPECT_EQ(file->read_slot(slot, out, nullptr), Error::checksum_mismatch);
}

TEST_F(BackingFileTest, ConcurrentWritersAndReadersOnDifferentSlots) {
  constexpr int kThreads = 8;
  constexpr int kSlotsPerThread = 32;
  constexpr int kRounds = 20;
  auto file = open_file();
  ASSERT_NE(file, nullptr);
  std::atomic<int> mismatches{0};
  std::atomic<int> errors{0};

  auto worker = [&] {
    std::vector<std::uint64_t> mine;
    std::vector<std::byte> out(kSlotSize);
    for (int round = 0; round < kRounds; ++round) {
      while (mine.size() < kSlotsPerThread) {
        auto slot = file->alloc_slot();
        if (!slot.ok()) {
          errors.fetch_add(1);
          return;
        }
        mine.push_back(*slot);
      }
      for (std::uint64_t slot : mine) {
        const auto data = pattern(1 + (slot * 131 + round) % kSlotSize, slot * 1000 + round);
        if (file->write_slot(slot, data) != Error::ok) errors.fetch_add(1);
      }
      for (std::uint64_t slot : mine) {
        const auto data = pattern(1 + (slot * 131 + round) % kSlotSize, slot * 1000 + round);
        std::size_t len = 0;
        if (file->read_slot(slot, out, &len) != Error::ok) {
          errors.fetch_add(1);
        } else if (len != data.size() || !std::equal(data.begin(), data.end(), out.begin())) {
          mismatches.fetch_add(1);
        }
      }
      // Give back half, so slots move between threads through the free list.
      for (int i = 0; i < kSlotsPerThread / 2; ++i) {
        file->free_slot(mine.back());
        mine.pop_back();
      }
    }
    for (std::uint64_t slot : mine) file->free_slot(slot);
  };

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(worker);
  for (auto& th : threads) th.join();

  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
  const BackingFileStats stats = file->stats();
  EXPECT_EQ(stats.slots_in_use, 0u);
  EXPECT_EQ(stats.writes, std::uint64_t{kThreads} * kSlotsPerThread * kRounds);
  EXPECT_EQ(stats.reads, stats.writes);
}

TEST_F(BackingFileTest, BadPathIsIoError) {
  auto missing_dir = BackingFile::open(dir_ + "/no/such/dir/backing", kSlotSize, 0);
  ASSERT_FALSE(missing_dir.ok());
  EXPECT_EQ(missing_dir.error(), Error::io_error);
  auto a_directory = BackingFile::open(dir_, kSlotSize, 0);
  ASSERT_FALSE(a_directory.ok());
  EXPECT_EQ(a_directory.error(), Error::io_error);
}

TEST_F(BackingFileTest, OpenTruncatesAnExistingFile) {
  {
    auto file = open_file();
    ASSERT_NE(file, nullptr);
    const std::uint64_t slot = file->alloc_slot().value();
    ASSERT_EQ(file->write_slot(slot, pattern(kSlotSize, 1)), Error::ok);
  }
  ASSERT_EQ(std::filesystem::file_size(path_), kSlotSize);
  auto file = open_file();
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(std::filesystem::file_size(path_), 0u);
  EXPECT_EQ(file->stats().slots_in_use, 0u);
}

}  // namespace
}  // namespace zspool
