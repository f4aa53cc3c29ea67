#include "zspool/store/internal/backing_file.h"
#include "zspool/workload/rng.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

namespace zspool {
namespace {

constexpr std::uint32_t kSlotSize = 4096;

// Bytes that differ by slot, round and position, so a misplaced or stale slot cannot pass.
std::vector<std::byte> pattern(std::size_t length, std::uint64_t seed) {
  std::vector<std::byte> bytes(length);
  SplitMix64 rng(seed);
  for (auto& b : bytes) b = static_cast<std::byte>(rng.next());
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

// A path with a NUL byte names one file and the OS would open another (the part before the
// NUL): refused, and nothing is created at that prefix.
TEST_F(BackingFileTest, APathWithANulByteIsRefusedAndNothingIsCreated) {
  std::string why;
  auto file = BackingFile::open(path_ + std::string("\0/elsewhere", 11), kSlotSize, 0, {}, &why);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.error(), Error::invalid_argument);
  EXPECT_NE(why.find("NUL byte"), std::string::npos) << why;
  EXPECT_NE(why.find("backing\\0/elsewhere"), std::string::npos) << why;
  EXPECT_FALSE(std::filesystem::exists(path_)) << "the prefix was created";
}

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

TEST_F(BackingFileTest, SyncMakesWrittenSlotsDurable) {
  auto file = open_file();
  ASSERT_NE(file, nullptr);
  const std::uint64_t slot = file->alloc_slot().value();
  ASSERT_EQ(file->write_slot(slot, pattern(100, 3)), Error::ok);
  EXPECT_EQ(file->sync(), Error::ok);
  expect_slot_holds(*file, slot, pattern(100, 3));
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

// ---- the target: never a file zspool did not create, never shared ------------------------------

void write_text(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fd);
}

std::string read_text(const std::string& path) {
  std::string text(1 << 16, '\0');
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "<cannot open>";
  const ssize_t n = ::read(fd, text.data(), text.size());
  ::close(fd);
  text.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
  return text;
}

// The refusal of `path`: its error, and a reason that names the path and says `because`.
void expect_refused(const std::string& path, Error error, const std::string& because,
                    BackingTargetOptions target = {}) {
  std::string why;
  auto opened = BackingFile::open(path, kSlotSize, 0, target, &why);
  ASSERT_FALSE(opened.ok()) << path;
  EXPECT_EQ(opened.error(), error) << path << ": " << why;
  EXPECT_NE(why.find("backing file " + path + ": "), std::string::npos) << why;
  EXPECT_NE(why.find(because), std::string::npos) << why;
}

TEST_F(BackingFileTest, MissingDirectoryAndDirectoryAreRefusedWithTheReason) {
  expect_refused(dir_ + "/no/such/dir/backing", Error::invalid_argument,
                 "No such file or directory");
  expect_refused(dir_, Error::invalid_argument, "a directory");
  expect_refused("", Error::invalid_argument, "empty path");
}

// The data file named as the backing file was truncated, and every write then stored zeros.
TEST_F(BackingFileTest, NonEmptyFileIsRefusedAndLeftIntact) {
  write_text(path_, "precious data that zspool did not write\n");
  expect_refused(path_, Error::invalid_argument, "not empty (40 bytes)");
  EXPECT_EQ(read_text(path_), "precious data that zspool did not write\n");
}

TEST_F(BackingFileTest, EmptyExistingFileIsAccepted) {
  write_text(path_, "");
  auto file = open_file();
  ASSERT_NE(file, nullptr);
  const std::uint64_t slot = file->alloc_slot().value();
  ASSERT_EQ(file->write_slot(slot, pattern(100, 1)), Error::ok);
  expect_slot_holds(*file, slot, pattern(100, 1));
}

// At the end the slots' data is of no use (its records die with the BackingFile): a file it
// made is removed, so the same path can be given again (a restarted nbdkit or `zspool run`).
TEST_F(BackingFileTest, AFileItCreatedIsRemovedWhenItIsDestroyed) {
  for (int round = 0; round < 2; ++round) {
    auto file = open_file();
    ASSERT_NE(file, nullptr);
    const std::uint64_t slot = file->alloc_slot().value();
    ASSERT_EQ(file->write_slot(slot, pattern(kSlotSize, 2)), Error::ok);
    EXPECT_EQ(std::filesystem::file_size(path_), kSlotSize);
    file.reset();
    EXPECT_FALSE(std::filesystem::exists(path_)) << "round " << round;
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir_)) << "nothing else left behind";
}

// An empty file the user gave is theirs: emptied again, never removed.
TEST_F(BackingFileTest, AnEmptyFileItWasGivenIsEmptiedAgainNotRemoved) {
  write_text(path_, "");
  for (int round = 0; round < 2; ++round) {
    auto file = open_file();
    ASSERT_NE(file, nullptr);
    ASSERT_EQ(file->write_slot(file->alloc_slot().value(), pattern(100, 3)), Error::ok);
    file.reset();
    ASSERT_TRUE(std::filesystem::exists(path_));
    EXPECT_EQ(std::filesystem::file_size(path_), 0u) << "round " << round;
  }
}

// Someone replaced the file at the name while it was in use: their file stays, byte for byte.
TEST_F(BackingFileTest, AFileSomeonePutAtTheNameIsNeverRemoved) {
  auto file = open_file();
  ASSERT_NE(file, nullptr);
  ASSERT_EQ(file->write_slot(file->alloc_slot().value(), pattern(100, 4)), Error::ok);
  ASSERT_EQ(std::rename(path_.c_str(), (dir_ + "/moved").c_str()), 0);
  write_text(path_, "theirs\n");
  file.reset();
  EXPECT_EQ(read_text(path_), "theirs\n");
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir_))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"backing", "moved"})) << "no rename-aside left";
}

// A relative path, then a chdir (nbdkit changes to / when it forks into the background): the
// file removed is the one made, in the directory it was made in, not a namesake in the new one.
TEST_F(BackingFileTest, ARelativePathIsRemovedFromItsOwnDirectoryAfterAChdir) {
  const std::filesystem::path cwd = std::filesystem::current_path();
  const std::string elsewhere = dir_ + "/elsewhere";
  std::filesystem::create_directory(elsewhere);
  write_text(elsewhere + "/made-here", "a namesake\n");
  std::filesystem::current_path(dir_);
  auto opened = BackingFile::open("made-here", kSlotSize, 0);
  std::filesystem::current_path(elsewhere);
  ASSERT_TRUE(opened.ok());
  opened.value().reset();
  std::filesystem::current_path(cwd);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/made-here"));
  EXPECT_EQ(read_text(elsewhere + "/made-here"), "a namesake\n");
}

// After fork() only one process may clean up: the one that opened the file, unless the one
// going on with it adopts it (nbdkit's child, after it forks into the background).
TEST_F(BackingFileTest, AForkChildLeavesTheFileUnlessItAdoptsIt) {
  auto file = open_file();
  ASSERT_NE(file, nullptr);
  const auto child_destroys = [&](bool adopt) {
    const pid_t child = ::fork();
    if (child == 0) {
      if (adopt) file->adopt_after_fork();
      file.reset();
      ::_exit(0);
    }
    int status = 0;
    return ::waitpid(child, &status, 0) == child && WIFEXITED(status);
  };
  ASSERT_TRUE(child_destroys(false));
  EXPECT_TRUE(std::filesystem::exists(path_)) << "a child that exits took the file away";
  ASSERT_TRUE(child_destroys(true));
  EXPECT_FALSE(std::filesystem::exists(path_)) << "the adopting child did not remove it";
  file.reset();  // the parent no longer owns it: nothing to do, nothing to fail
  EXPECT_FALSE(std::filesystem::exists(path_));
}

// A symlink is never followed, whether it points at a file (which would be destroyed) or at
// nothing (which would be created wherever the link's owner chose).
TEST_F(BackingFileTest, SymlinkIsRefusedAndItsTargetLeftAlone) {
  const std::string victim = dir_ + "/victim";
  write_text(victim, "");
  ASSERT_EQ(::symlink(victim.c_str(), path_.c_str()), 0);
  expect_refused(path_, Error::invalid_argument, "symbolic link");
  const std::string dangling = dir_ + "/dangling";
  ASSERT_EQ(::symlink((dir_ + "/created-through-link").c_str(), dangling.c_str()), 0);
  expect_refused(dangling, Error::invalid_argument, "symbolic link");
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/created-through-link"));
}

// /dev/null and /dev/zero accepted every write and gave back nothing of it.
TEST_F(BackingFileTest, CharacterDevicesAndFifosAreRefused) {
  for (const char* device : {"/dev/null", "/dev/zero", "/dev/full"}) {
    if (!std::filesystem::exists(device)) continue;
    expect_refused(device, Error::invalid_argument, "a character device");
  }
  const std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  expect_refused(fifo, Error::invalid_argument, "a FIFO");  // and does not hang
}

// A block device major with no driver (listed nowhere in /proc/devices), so a node of it can
// never reach a real disk: opening it fails with ENXIO.
int unused_block_major() {
  std::ifstream devices("/proc/devices");
  std::string line;
  bool in_block = false;
  std::vector<int> used;
  while (std::getline(devices, line)) {
    if (line.rfind("Block devices:", 0) == 0) in_block = true;
    if (in_block) used.push_back(std::atoi(line.c_str()));
  }
  for (int major = 60; major <= 63; ++major) {  // "local/experimental use" in devices.txt
    if (std::find(used.begin(), used.end(), major) == used.end()) return major;
  }
  return -1;
}

// A block device is refused before anything opens it; with the opt-in it is opened (here: a
// node of no driver, which the kernel refuses).
TEST_F(BackingFileTest, BlockDeviceNeedsTheOptInBeforeAnyOpen) {
  const int major = unused_block_major();
  if (major < 0) GTEST_SKIP() << "no free experimental block major";
  const std::string node = dir_ + "/blockdev";
  if (::mknod(node.c_str(), S_IFBLK | 0600, ::makedev(major, 0)) != 0)
    GTEST_SKIP() << "cannot make a block device node here: " << std::strerror(errno);
  expect_refused(node, Error::invalid_argument, "a block device");
  expect_refused(node, Error::invalid_argument, "No such device",
                 BackingTargetOptions{.allow_block_device = true});
}

TEST_F(BackingFileTest, SecondOpenInTheSameProcessIsBusy) {
  auto first = open_file();
  ASSERT_NE(first, nullptr);
  expect_refused(path_, Error::busy, "in use by another process");
  first.reset();
  auto again = open_file();  // the lock went with the first: empty, so accepted
  EXPECT_NE(again, nullptr);
}

// Two `zspool run --backing shared.bk`: the second truncated the first's slots.
TEST_F(BackingFileTest, SecondProcessCannotShareTheFile) {
  auto mine = open_file();
  ASSERT_NE(mine, nullptr);
  const std::uint64_t slot = mine->alloc_slot().value();
  ASSERT_EQ(mine->write_slot(slot, pattern(kSlotSize, 5)), Error::ok);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::string why;
    auto theirs = BackingFile::open(path_, kSlotSize, 0, {}, &why);
    const bool busy = !theirs.ok() && theirs.error() == Error::busy &&
                      why.find("in use by another process") != std::string::npos;
    ::_exit(busy ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the second process was not refused as busy";
  expect_slot_holds(*mine, slot, pattern(kSlotSize, 5));
}

TEST_F(BackingFileTest, IdentityIsTheOpenedFilesAndMatchesItsOtherNames) {
  auto file = open_file();
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(file_identity(path_).value(), file->identity());
  const std::string link = dir_ + "/hardlink";
  ASSERT_EQ(::link(path_.c_str(), link.c_str()), 0);
  EXPECT_TRUE(same_file(path_, link));
  const std::string other = dir_ + "/other";
  write_text(other, "");
  EXPECT_FALSE(same_file(path_, other));
  EXPECT_FALSE(same_file(path_, dir_ + "/missing"));
  std::string why;
  EXPECT_EQ(file_identity(dir_ + "/missing", &why).error(), Error::not_found);
  EXPECT_NE(why.find("No such file or directory"), std::string::npos) << why;
}

// A write the kernel refuses for room (here EFBIG past RLIMIT_FSIZE, in a child so the limit
// stays there) is no_space, not a memory limit, and last_failure() says what and why.
TEST_F(BackingFileTest, WriteThatFindsNoRoomIsNoSpaceWithTheReason) {
  auto file = open_file();
  ASSERT_NE(file, nullptr);
  const std::uint64_t first = file->alloc_slot().value();
  const std::uint64_t second = file->alloc_slot().value();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{kSlotSize, kSlotSize};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(2);
    if (file->write_slot(first, pattern(kSlotSize, 1)) != Error::ok) ::_exit(3);
    if (file->write_slot(second, pattern(100, 2)) != Error::no_space) ::_exit(4);
    const std::string text = file->last_failure();
    const bool named = text.find("backing file " + path_ +
                                 ": write of 100 bytes at offset 4096: "
                                 "File too large") != std::string::npos;
    if (!named) ::_exit(5);
    if (file->record(second)->state != SlotRecord::State::kAllocated) ::_exit(6);
    ::_exit(file->stats().write_failures == 1 ? 0 : 7);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "see the child's exit codes above";
  EXPECT_EQ(file->last_failure(), "");  // nothing failed in this process
}

// ---- write_slots: batched writes --------------------------------------------------------------

// Allocates n slots (0 .. n-1 in a fresh file) and returns write_slots' writes for `slots`, each
// with pattern(length_of(slot), slot) kept alive in `keep`.
std::vector<BackingFile::SlotWrite> batch_of(const std::vector<std::uint64_t>& slots,
                                             std::vector<std::vector<std::byte>>& keep) {
  std::vector<BackingFile::SlotWrite> writes;
  keep.reserve(slots.size());
  for (const std::uint64_t slot : slots) {
    keep.push_back(pattern(1 + slot * 37 % kSlotSize, slot + 1000));
    writes.push_back({slot, keep.back()});
  }
  return writes;
}

TEST_F(BackingFileTest, WriteSlotsWritesAdjacentSlotsInOneCallAndEachReadsBack) {
  auto file = open_file();
  ASSERT_NE(file, nullptr);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(file->alloc_slot().ok());
  // Given out of order, with a gap: runs {1,2,3,4} and {6,7,8} after sorting.
  const std::vector<std::uint64_t> slots = {3, 7, 1, 4, 8, 2, 6};
  std::vector<std::vector<std::byte>> keep;
  const auto writes = batch_of(slots, keep);
  std::vector<Error> results(writes.size(), Error::io_error);
  EXPECT_EQ(file->write_slots(writes, results), slots.size());
  for (const Error r : results) EXPECT_EQ(r, Error::ok);
  for (std::size_t i = 0; i < slots.size(); ++i) expect_slot_holds(*file, slots[i], keep[i]);
  const BackingFileStats stats = file->stats();
  EXPECT_EQ(stats.writes, slots.size());
  EXPECT_EQ(stats.write_calls, 2u);  // one pwritev per run
  // Each slot's data is at slot * slot_size in the file itself.
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  for (std::size_t i = 0; i < slots.size(); ++i) {
    std::vector<std::byte> on_disk(keep[i].size());
    EXPECT_EQ(::pread(fd, on_disk.data(), on_disk.size(), slots[i] * kSlotSize),
              static_cast<ssize_t>(on_disk.size()));
    EXPECT_EQ(on_disk, keep[i]) << "slot " << slots[i];
  }
  ::close(fd);
}

TEST_F(BackingFileTest, WriteSlotsRefusesMisuseWriteByWrite) {
  auto file = open_file();
  ASSERT_NE(file, nullptr);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(file->alloc_slot().ok());
  const auto good = pattern(10, 1);
  const auto too_long = pattern(kSlotSize + 1, 2);
  const std::vector<BackingFile::SlotWrite> writes = {
      {0, good}, {9, good}, {1, too_long}, {2, good}, {2, good}};
  std::vector<Error> results(writes.size());
  EXPECT_EQ(file->write_slots(writes, results), 2u);
  EXPECT_EQ(results[0], Error::ok);
  EXPECT_EQ(results[1], Error::invalid_argument);  // never allocated
  EXPECT_EQ(results[2], Error::invalid_argument);  // longer than a slot
  EXPECT_EQ(results[3], Error::ok);
  EXPECT_EQ(results[4], Error::invalid_argument);  // the same slot twice
  expect_slot_holds(*file, 0, good);
  expect_slot_holds(*file, 2, good);
  EXPECT_EQ(file->record(1)->state, SlotRecord::State::kAllocated);
  std::vector<Error> short_results(1);
  EXPECT_EQ(file->write_slots(writes, short_results), 0u);
  EXPECT_EQ(short_results[0], Error::invalid_argument);
}

TEST_F(BackingFileTest, WriteSlotsInjectedFailureFailsOnlyThatWriteAndSplitsTheRun) {
  auto file = open_file();
  ASSERT_NE(file, nullptr);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(file->alloc_slot().ok());
  const auto old_data = pattern(50, 9);
  ASSERT_EQ(file->write_slot(1, old_data), Error::ok);
  std::vector<std::vector<std::byte>> keep;
  const auto writes = batch_of({0, 1, 2, 3}, keep);
  std::vector<Error> results(writes.size());
  file->fail_write_at(2);  // the second write given: slot 1
  EXPECT_EQ(file->write_slots(writes, results), 3u);
  EXPECT_EQ(results[1], Error::io_error);
  expect_slot_holds(*file, 1, old_data);  // untouched on disk and in its record
  for (const std::uint64_t slot : {0, 2, 3}) expect_slot_holds(*file, slot, keep[slot]);
  EXPECT_EQ(file->stats().write_failures, 1u);
  EXPECT_EQ(file->stats().write_calls, 1u + 2u);  // the first write_slot, then runs {0} {2,3}
}

TEST_F(BackingFileTest, WriteSlotsRunsAreCappedByTheVectorLimit) {
  auto file = open_file();
  ASSERT_NE(file, nullptr);
  constexpr std::uint64_t kSlots = 1500;  // more than one pwritev's 1024 iovecs hold
  std::vector<std::uint64_t> slots;
  for (std::uint64_t i = 0; i < kSlots; ++i) slots.push_back(file->alloc_slot().value());
  std::vector<std::vector<std::byte>> keep;
  const auto writes = batch_of(slots, keep);
  std::vector<Error> results(writes.size());
  EXPECT_EQ(file->write_slots(writes, results), kSlots);
  // 512 slots (2 iovecs each) per run, so at least 3 calls (more if the kernel writes short).
  EXPECT_GE(file->stats().write_calls, 3u);
  for (std::uint64_t i = 0; i < kSlots; i += 97) expect_slot_holds(*file, i, keep[i]);
  expect_slot_holds(*file, kSlots - 1, keep.back());
}

TEST_F(BackingFileTest, WriteSlotsThatFindNoRoomAreNoSpaceAndLeaveRecordsAlone) {
  auto file = open_file();
  ASSERT_NE(file, nullptr);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(file->alloc_slot().ok());
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Everything the child allocates is freed before _exit (valgrind counts what is not).
    const int code = [&] {
      ::signal(SIGXFSZ, SIG_IGN);
      const rlimit limit{2 * kSlotSize, 2 * kSlotSize};
      if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 2;
      std::vector<std::vector<std::byte>> keep;
      const auto writes = batch_of({0, 1, 2, 3}, keep);
      std::vector<Error> results(writes.size());
      // The run's short write fills slots 0 and 1, then the file is full: the whole run fails.
      if (file->write_slots(writes, results) != 0) return 3;
      for (const Error r : results) {
        if (r != Error::no_space) return 4;
      }
      for (std::uint64_t slot = 0; slot < 4; ++slot) {
        if (file->record(slot)->state != SlotRecord::State::kAllocated) return 5;
      }
      if (file->last_failure().find("File too large") == std::string::npos) return 6;
      return file->stats().write_failures == 4 ? 0 : 7;
    }();
    ::_exit(code);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "see the child's exit codes above";
}

}  // namespace
}  // namespace zspool
