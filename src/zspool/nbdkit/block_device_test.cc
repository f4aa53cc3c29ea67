#include "zspool/nbdkit/block_device.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>
#include <vector>

#include "zspool/nbdkit/plugin_config.h"
#include "zspool/nbdkit/stats_file.h"
#include "zspool/store/internal/store_internals.h"
#include "zspool/workload/rng.h"

namespace zspool::nbd {
namespace {

constexpr std::uint64_t kPage = 4096;
using Bytes = std::vector<std::byte>;

std::uint64_t mix(std::uint64_t x) {
  return splitmix64_at(x);
}

// Text-like bytes (they compress) that differ by seed and position.
Bytes data(std::size_t n, std::uint64_t seed) {
  static const char* words[] = {"block ", "device ", "over ", "a ", "store ", "of ", "pages. "};
  Bytes out;
  out.reserve(n);
  std::uint64_t s = seed;
  while (out.size() < n) {
    s = mix(s);
    for (const char* c = words[s % 7]; *c != 0 && out.size() < n; ++c)
      out.push_back(static_cast<std::byte>(*c + (s >> 60)));
  }
  return out;
}

std::unique_ptr<BlockDevice> make_device(std::uint64_t size, StoreOptions o = {}) {
  auto d = BlockDevice::create(size, std::move(o));
  EXPECT_TRUE(d.ok()) << error_name(d.error());
  return d.ok() ? std::move(*d) : nullptr;
}

Bytes read_all(BlockDevice& d) {
  Bytes out(d.size());
  EXPECT_EQ(d.read(out, 0), Error::ok);
  return out;
}

struct TempDir {
  std::string path;
  TempDir() {
    std::string t = ::testing::TempDir() + "zspool_nbd_XXXXXX";
    path = ::mkdtemp(t.data()) != nullptr ? t : "";
  }
  ~TempDir() {
    if (!path.empty()) std::filesystem::remove_all(path);
  }
};

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// ── errno mapping ────────────────────────────────────────────────────────────────────────────

TEST(BlockDeviceErrno, MapsStoreErrorsToWhatAClientSees) {
  EXPECT_EQ(errno_for(Error::ok), 0);
  EXPECT_EQ(errno_for(Error::limit_reached), ENOSPC);
  EXPECT_EQ(errno_for(Error::too_large), ENOSPC);
  EXPECT_EQ(errno_for(Error::no_space), ENOSPC);
  EXPECT_EQ(errno_for(Error::io_error), EIO);
  EXPECT_EQ(errno_for(Error::checksum_mismatch), EIO);
  EXPECT_EQ(errno_for(Error::corrupt_data), EIO);
  EXPECT_EQ(errno_for(Error::out_of_memory), ENOMEM);
  EXPECT_EQ(errno_for(Error::invalid_argument), EINVAL);
}

// ── byte ranges ──────────────────────────────────────────────────────────────────────────────

TEST(BlockDevice, SizeNeedNotBeAWholeNumberOfPages) {
  auto d = make_device(10 * kPage + 100);
  EXPECT_EQ(d->size(), 10 * kPage + 100);
  EXPECT_EQ(d->store().capacity(), 11u);
  const Bytes tail = data(150, 1);
  ASSERT_EQ(d->write(tail, d->size() - 150, false), Error::ok);
  Bytes got(150);
  ASSERT_EQ(d->read(got, d->size() - 150), Error::ok);
  EXPECT_EQ(got, tail);
  EXPECT_EQ(BlockDevice::create(0, {}).error(), Error::invalid_argument);
}

TEST(BlockDevice, RequestsPastTheEndAreInvalid) {
  auto d = make_device(4 * kPage);
  Bytes buf(10);
  EXPECT_EQ(d->read(buf, 4 * kPage - 9), Error::invalid_argument);
  EXPECT_EQ(d->write(buf, 4 * kPage - 9, false), Error::invalid_argument);
  EXPECT_EQ(d->zero(10, ~std::uint64_t{0} - 5, false, false), Error::invalid_argument);
  EXPECT_EQ(d->trim(4 * kPage + 1, 0, false), Error::invalid_argument);
  EXPECT_EQ(d->read(buf, 4 * kPage - 10), Error::ok);
  EXPECT_EQ(d->read(std::span<std::byte>{}, 4 * kPage), Error::ok) << "empty at the end";
}

TEST(BlockDevice, UnalignedWriteKeepsItsNeighbours) {
  auto d = make_device(8 * kPage);
  const Bytes base = data(8 * kPage, 2);
  ASSERT_EQ(d->write(base, 0, false), Error::ok);
  const Bytes patch(5000, std::byte{0xab});
  ASSERT_EQ(d->write(patch, 1000, false), Error::ok);  // the tail of page 0, the head of page 1
  Bytes want = base;
  std::memcpy(want.data() + 1000, patch.data(), patch.size());
  EXPECT_EQ(read_all(*d), want);
}

// Random reads, writes, zeroes and trims of any offset and length against a byte model.
TEST(BlockDevice, RandomRequestsMatchAByteModel) {
  constexpr std::uint64_t kSize = 40 * kPage + 123;
  auto d = make_device(kSize);
  Bytes model(kSize);
  std::uint64_t s = 42;
  for (int op = 0; op < 3000; ++op) {
    s = mix(s);
    const std::uint64_t offset = s % kSize;
    const std::uint64_t length = (s >> 20) % std::min<std::uint64_t>(kSize - offset, 3 * kPage) + 1;
    switch ((s >> 40) % 5) {
      case 0:
      case 1: {
        const Bytes b = data(length, s);
        ASSERT_EQ(d->write(b, offset, (s >> 50) % 2 == 0), Error::ok);
        std::memcpy(model.data() + offset, b.data(), length);
        break;
      }
      case 2:
        ASSERT_EQ(d->zero(length, offset, (s >> 50) % 2 == 0, false), Error::ok);
        std::memset(model.data() + offset, 0, length);
        break;
      case 3:
        ASSERT_EQ(d->trim(length, offset, false), Error::ok);
        std::memset(model.data() + offset, 0, length);
        break;
      case 4: {
        Bytes got(length);
        ASSERT_EQ(d->read(got, offset), Error::ok);
        ASSERT_EQ(0, std::memcmp(got.data(), model.data() + offset, length)) << "op " << op;
        break;
      }
    }
  }
  EXPECT_EQ(read_all(*d), model);
}

// ── zero and trim ────────────────────────────────────────────────────────────────────────────

TEST(BlockDevice, ZeroMakesWholePagesZeroPagesWithoutCompressing) {
  auto d = make_device(8 * kPage);
  ASSERT_EQ(d->write(data(8 * kPage, 3), 0, false), Error::ok);
  const StoreStats before = d->store().stats();
  // Bytes 100 .. 5*kPage+100: the tail of page 0 (partial), pages 1-4 (whole), the head of 5.
  ASSERT_EQ(d->zero(5 * kPage, 100, false, false), Error::ok);
  using S = Store::PageState;
  for (std::uint64_t p = 1; p <= 4; ++p) EXPECT_EQ(d->store().page_state(p), S::zero) << p;
  EXPECT_EQ(d->store().page_state(0), S::data);
  EXPECT_EQ(d->store().page_state(5), S::data);
  const StoreStats after = d->store().stats();
  EXPECT_EQ(after.same_pages, before.same_pages + 4);
  EXPECT_EQ(after.stored_pages, before.stored_pages);
  Bytes want = data(8 * kPage, 3);
  std::memset(want.data() + 100, 0, 5 * kPage);
  EXPECT_EQ(read_all(*d), want);
}

TEST(BlockDevice, ZeroWithMayTrimDiscardsWholePages) {
  auto d = make_device(8 * kPage);
  ASSERT_EQ(d->write(data(8 * kPage, 4), 0, false), Error::ok);
  ASSERT_EQ(d->zero(3 * kPage, 2 * kPage, true, false), Error::ok);
  for (std::uint64_t p = 2; p < 5; ++p)
    EXPECT_EQ(d->store().page_state(p), Store::PageState::hole) << p;
  Bytes want = data(8 * kPage, 4);
  std::memset(want.data() + 2 * kPage, 0, 3 * kPage);
  EXPECT_EQ(read_all(*d), want);
}

TEST(BlockDevice, TrimDiscardsWholePagesAndZeroesPartOnes) {
  auto d = make_device(8 * kPage);
  ASSERT_EQ(d->write(data(8 * kPage, 5), 0, false), Error::ok);
  const std::uint64_t held = d->store().stats().stored_pages;
  ASSERT_EQ(d->trim(2 * kPage + 200, kPage + 100, false), Error::ok);  // part 1, whole 2, part 3
  EXPECT_EQ(d->store().page_state(2), Store::PageState::hole);
  EXPECT_EQ(d->store().stats().stored_pages, held - 1);
  Bytes want = data(8 * kPage, 5);
  std::memset(want.data() + kPage + 100, 0, 2 * kPage + 200);
  EXPECT_EQ(read_all(*d), want);
}

// ── the allocation map ───────────────────────────────────────────────────────────────────────

std::vector<Extent> map_of(const BlockDevice& d, std::uint64_t length, std::uint64_t offset,
                           bool first_only = false) {
  std::vector<Extent> out;
  EXPECT_EQ(d.extents(length, offset, first_only,
                      [&](const Extent& e) {
                        out.push_back(e);
                        return true;
                      }),
            Error::ok);
  return out;
}

TEST(BlockDevice, ExtentsShowHolesZeroPagesAndData) {
  auto d = make_device(10 * kPage);
  using T = Extent::Type;
  // pages: 0-1 data, 2-3 zero, 4 hole (never written), 5 discarded, 6 data, 7-9 hole
  ASSERT_EQ(d->write(data(2 * kPage, 6), 0, false), Error::ok);
  ASSERT_EQ(d->zero(2 * kPage, 2 * kPage, false, false), Error::ok);
  ASSERT_EQ(d->write(data(2 * kPage, 7), 5 * kPage, false), Error::ok);
  ASSERT_EQ(d->trim(kPage, 5 * kPage, false), Error::ok);
  const std::vector<Extent> want = {{0, 2 * kPage, T::data},
                                    {2 * kPage, 2 * kPage, T::zero},
                                    {4 * kPage, 2 * kPage, T::hole},
                                    {6 * kPage, kPage, T::data},
                                    {7 * kPage, 3 * kPage, T::hole}};
  EXPECT_EQ(map_of(*d, d->size(), 0), want);
  // Clipped to the request, which need not be page aligned.
  const std::vector<Extent> clipped = {{kPage + 10, kPage - 10, T::data},
                                       {2 * kPage, 100, T::zero}};
  EXPECT_EQ(map_of(*d, kPage - 10 + 100, kPage + 10), clipped);
  EXPECT_TRUE(map_of(*d, 0, kPage + 10).empty()) << "an empty range has no runs";
  const std::vector<Extent> first = {{3 * kPage, kPage, T::zero}};
  EXPECT_EQ(map_of(*d, 5 * kPage, 3 * kPage, true), first);
  // A zero write that fills a whole page by read-modify-write makes a zero page too.
  ASSERT_EQ(d->write(data(kPage, 8), 8 * kPage, false), Error::ok);
  ASSERT_EQ(d->zero(kPage - 1, 8 * kPage, false, false), Error::ok);
  ASSERT_EQ(d->zero(1, 9 * kPage - 1, false, false), Error::ok);
  EXPECT_EQ(d->store().page_state(8), Store::PageState::zero);
}

TEST(BlockDevice, ExtentsOfAHugeRangeStopAfterTheScanLimit) {
  const std::uint64_t pages = BlockDevice::kMaxExtentPages + 10;
  auto d = make_device(pages * kPage);
  const std::vector<Extent> got = map_of(*d, d->size(), 0);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].length, BlockDevice::kMaxExtentPages * kPage);
  std::uint64_t calls = 0;
  EXPECT_EQ(d->extents(d->size(), 0, false, [&](const Extent&) { return ++calls > 1; }),
            Error::out_of_memory)
      << "a callback refusing a run stops the map";
}

// ── errors from the store ────────────────────────────────────────────────────────────────────

TEST(BlockDevice, LimitWithoutBackingRefusesAndKeepsEarlierData) {
  auto d = make_device(512 * kPage, {.mem_limit = 64 * kPage});
  std::uint64_t written = 0;
  Error e = Error::ok;
  Bytes page(kPage);
  for (; written < 512; ++written) {
    for (std::uint64_t i = 0; i < kPage; i += 8) {
      const std::uint64_t w = mix(written * kPage + i);
      std::memcpy(&page[i], &w, 8);
    }
    e = d->write(page, written * kPage, false);
    if (e != Error::ok) break;
  }
  ASSERT_EQ(e, Error::limit_reached);
  EXPECT_EQ(errno_for(e), ENOSPC);
  for (std::uint64_t p = 0; p < written; ++p) {
    Bytes got(kPage);
    ASSERT_EQ(d->read(got, p * kPage), Error::ok);
    const std::uint64_t w = mix(p * kPage);
    ASSERT_EQ(std::memcmp(got.data(), &w, 8), 0) << p;
  }
  // A partial write to a page that needs new memory is refused too, and leaves it as it was.
  EXPECT_EQ(d->write(data(100, 9), written * kPage + 5, false), Error::limit_reached);
}

TEST(BlockDevice, CorruptBackingIsAnErrorForReadsAndPartialWrites) {
  TempDir dir;
  auto d = make_device(64 * kPage, {.backing_path = dir.path + "/backing"});
  ASSERT_EQ(d->write(data(64 * kPage, 10), 0, false), Error::ok);
  ASSERT_GT(d->store().writeback(1000).value(), 0u);
  ASSERT_EQ(d->flush(), Error::ok);
  ASSERT_EQ(StoreInternals::backing_file(d->store())->corrupt_slot_on_disk(0, 3), Error::ok);
  std::uint64_t failed = 0;
  for (std::uint64_t p = 0; p < 64; ++p) {
    Bytes got(kPage);
    const Error e = d->read(got, p * kPage);
    if (e != Error::ok) {
      EXPECT_EQ(errno_for(e), EIO);
      ++failed;
      // Read-modify-write of that page fails rather than writing zeros over the rest of it.
      EXPECT_EQ(d->write(data(10, 11), p * kPage + 7, false), e);
      EXPECT_EQ(d->read(got, p * kPage), e) << "the page was not replaced";
      continue;
    }
    const Bytes want = data(64 * kPage, 10);
    ASSERT_EQ(std::memcmp(got.data(), want.data() + p * kPage, kPage), 0) << p;
  }
  EXPECT_EQ(failed, 1u);
}

// ── concurrency ──────────────────────────────────────────────────────────────────────────────

// Threads write byte-disjoint, unaligned segments that share pages, over and over; afterwards
// every byte must hold its writer's last round. Without the page locks two read-modify-writes
// of one page race and one undoes the other's bytes.
TEST(BlockDeviceConcurrency, ReadModifyWritesOfOnePageNeverLoseBytes) {
  constexpr std::uint64_t kSize = 16 * kPage;
  constexpr int kThreads = 4, kRounds = 40;
  auto d = make_device(kSize);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> segments;  // offset, length
  for (std::uint64_t at = 0, s = 1; at < kSize;) {
    s = mix(s);
    const std::uint64_t len = std::min<std::uint64_t>(1 + s % 1500, kSize - at);
    segments.emplace_back(at, len);
    at += len;
  }
  auto byte_of = [](std::uint64_t offset, int round) {
    return static_cast<std::byte>(mix(offset * 131 + static_cast<std::uint64_t>(round)) >> 56);
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        for (std::size_t i = static_cast<std::size_t>(t); i < segments.size(); i += kThreads) {
          auto [offset, length] = segments[i];
          Bytes b(length);
          for (std::uint64_t k = 0; k < length; ++k) b[k] = byte_of(offset + k, r);
          ASSERT_EQ(d->write(b, offset, false), Error::ok);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const Bytes got = read_all(*d);
  for (std::uint64_t b = 0; b < kSize; ++b)
    ASSERT_EQ(got[b], byte_of(b, kRounds - 1)) << "byte " << b;
}

// ── flush ────────────────────────────────────────────────────────────────────────────────────

TEST(BlockDevice, FlushAndFuaSyncTheBackingFile) {
  TempDir dir;
  auto d = make_device(4 * kPage, {.backing_path = dir.path + "/backing"});
  EXPECT_EQ(d->write(data(kPage, 12), 0, true), Error::ok);
  EXPECT_EQ(d->flush(), Error::ok);
  EXPECT_EQ(make_device(kPage)->flush(), Error::ok) << "no backing file: nothing to sync";
}

// ── the parameters ───────────────────────────────────────────────────────────────────────────

// parallel=auto (the default) serves one request a connection at a time only on an nbdkit that
// a client hanging up with replies queued aborts (before 1.33.10); on and off decide outright.
TEST(PluginConfig, ParallelAutoAvoidsOnlyAnNbdkitThatAbortsOnAnEarlyHangUp) {
  EXPECT_EQ(PluginConfig{}.parallel, Parallel::automatic);
  EXPECT_FALSE(serves_requests_in_parallel(Parallel::automatic, true));
  EXPECT_TRUE(serves_requests_in_parallel(Parallel::automatic, false));
  for (const bool aborts : {true, false}) {
    EXPECT_TRUE(serves_requests_in_parallel(Parallel::on, aborts));
    EXPECT_FALSE(serves_requests_in_parallel(Parallel::off, aborts));
  }
}

TEST(PluginConfig, EachBadParameterIsOneLineNamingIt) {
  PluginConfig c;
  EXPECT_NE(config_problem(c).find("size= is required"), std::string::npos);
  c.size = 0;
  EXPECT_NE(config_problem(c).find("size=0"), std::string::npos);
  c.size = (Store::max_pages() + 1) * kPage;
  EXPECT_NE(config_problem(c).find("too large"), std::string::npos);
  c.size = 1 << 20;
  EXPECT_EQ(config_problem(c), "");
  c.store.compressor = "lz5";
  EXPECT_EQ(config_problem(c),
            "compressor=lz5: unknown compressor (lz4, lz4:N, zstd, zstd:N, lzo1x)");
  c.store.compressor = "zstd:3";
  c.store.max_chain = 17;
  EXPECT_EQ(config_problem(c), "max-chain=17: must be 1..16");
  c.store.max_chain = 0;
  EXPECT_NE(config_problem(c), "");
  c.store.max_chain = 4;
  EXPECT_EQ(config_problem(c), "");
  for (std::uint32_t page : {0u, 2048u, 5000u, 131072u}) {
    c.store.page_size = page;
    EXPECT_EQ(config_problem(c).rfind(fmt::format("page-size={}: must be a power of two", page), 0),
              0u)
        << page;
  }
  c.store.page_size = 32768;
  EXPECT_EQ(config_problem(c), "");
  for (std::uint32_t batch : {0u, kMaxWritebackBatch + 1}) {
    c.store.writeback_batch_pages = batch;
    EXPECT_EQ(config_problem(c), fmt::format("writeback-batch={}: must be 1..1024", batch));
  }
  c.store.writeback_batch_pages = 1;
  EXPECT_EQ(config_problem(c), "");
  c.store.backing_path = "/nonexistent-dir-zspool/backing";
  std::string why;
  auto created = BlockDevice::create(*c.size, c.store, &why);
  ASSERT_FALSE(created.ok());
  const std::string line = create_problem(c, created.error(), why);
  EXPECT_EQ(line.rfind("backing file /nonexistent-dir-zspool/backing: ", 0), 0u) << line;
  EXPECT_EQ(create_problem(c, Error::busy, ""),
            "backing=/nonexistent-dir-zspool/backing: resource busy");
  EXPECT_EQ(create_problem({}, Error::out_of_memory, ""), "cannot create the store: out of memory");
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(config_problem(PluginConfig{}).find('\n'), std::string::npos);
}

// ── the stats file ───────────────────────────────────────────────────────────────────────────

void put(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// The names in `dir` other than `keep` (a temporary left behind would show here).
std::vector<std::string> other_names(const std::string& dir, std::vector<std::string> keep) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (std::find(keep.begin(), keep.end(), name) == keep.end()) out.push_back(name);
  }
  return out;
}

TEST(StatsFile, WritesTheMmStatAndBdStatLinesAndJson) {
  TempDir dir;
  auto d = make_device(16 * kPage);
  ASSERT_EQ(d->write(data(3 * kPage, 13), 0, false), Error::ok);
  ASSERT_EQ(d->zero(kPage, 5 * kPage, false, false), Error::ok);
  const std::string path = dir.path + "/stats";
  StatsFile f(path, [&] { return d->store().stats(); });
  ASSERT_EQ(f.write_now(), Error::ok);
  const StoreStats s = d->store().stats();
  EXPECT_EQ(slurp(path), mm_stat_line(s) + "\n0 0 0\n");
  EXPECT_EQ(s.orig_data_size, 4 * kPage);
  EXPECT_EQ(s.same_pages, 1u);
  EXPECT_EQ(slurp(path + ".json"), format_store_stats_json(s) + "\n");
  EXPECT_EQ(other_names(dir.path, {"stats", "stats.json"}), std::vector<std::string>{});
  StatsFile bad(dir.path + "/no/such/dir/stats", [&] { return d->store().stats(); });
  EXPECT_EQ(bad.write_now(), Error::io_error);
}

TEST(StatsFile, OpenRefusesWhatIsNotAStatsFileAndLeavesItAsItWas) {
  TempDir dir;
  auto d = make_device(16 * kPage);
  const auto stats = [&] { return d->store().stats(); };
  const std::string path = dir.path + "/stats";
  struct Case {
    const char* what;
    std::function<void()> make;
    const char* reason;
  };
  const std::string other = dir.path + "/other";
  const Case cases[] = {
      {"a file of other contents at PATH", [&] { put(path, "precious\n"); },
       "stats: exists and is not a zspool stats file; not replaced"},
      {"a file of other contents at PATH.json", [&] { put(path + ".json", "{\"a\":1}\n"); },
       "stats.json: exists and is not a zspool stats file; not replaced"},
      {"numbers, but not two lines of 9 and 3", [&] { put(path, "1 2 3\n4 5 6\n"); },
       "not a zspool stats file"},
      {"a symlink at PATH",
       [&] {
         put(other, "precious\n");
         std::filesystem::create_symlink(other, path);
       },
       "stats: is a symbolic link; not replaced"},
      {"a directory at PATH", [&] { std::filesystem::create_directory(path); },
       "stats: exists and is not a regular file; not replaced"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    for (const auto& e : std::filesystem::directory_iterator(dir.path))
      std::filesystem::remove_all(e.path());
    c.make();
    std::vector<std::pair<std::string, std::string>> before;
    for (const auto& e : std::filesystem::directory_iterator(dir.path))
      if (e.is_regular_file()) before.emplace_back(e.path().string(), slurp(e.path().string()));
    StatsFile f(path, stats);
    std::string why;
    EXPECT_EQ(f.open(&why), Error::invalid_argument);
    EXPECT_NE(why.find(c.reason), std::string::npos) << why;
    for (const auto& [name, text] : before) EXPECT_EQ(slurp(name), text) << name;
  }
}

TEST(StatsFile, OpenAcceptsTheStatsFilesAPreviousRunLeft) {
  TempDir dir;
  auto d = make_device(16 * kPage);
  const auto stats = [&] { return d->store().stats(); };
  const std::string path = dir.path + "/stats";
  {
    StatsFile first(path, stats);
    ASSERT_EQ(first.open(nullptr), Error::ok);
    ASSERT_EQ(first.write_now(), Error::ok);
  }
  ASSERT_EQ(d->write(data(2 * kPage, 15), 0, false), Error::ok);
  StatsFile second(path, stats);
  std::string why;
  ASSERT_EQ(second.open(&why), Error::ok) << why;
  ASSERT_EQ(second.write_now(), Error::ok);
  EXPECT_EQ(slurp(path), stats_file_text(d->store().stats()));
  EXPECT_EQ(other_names(dir.path, {"stats", "stats.json"}), std::vector<std::string>{});
}

TEST(StatsFile, ARewriteNeverReplacesAFileSomeonePutThereMeanwhile) {
  TempDir dir;
  auto d = make_device(16 * kPage);
  const std::string path = dir.path + "/stats";
  StatsFile f(path, [&] { return d->store().stats(); });
  ASSERT_EQ(f.open(nullptr), Error::ok);
  ASSERT_EQ(f.write_now(), Error::ok);
  for (const std::string& at : {path, path + ".json"}) {
    SCOPED_TRACE(at);
    std::filesystem::remove(at);
    put(at, "precious\n");
    EXPECT_EQ(f.write_now(), Error::io_error);
    EXPECT_EQ(f.write_now(), Error::io_error);
    EXPECT_EQ(slurp(at), "precious\n");
    EXPECT_EQ(other_names(dir.path, {"stats", "stats.json"}), std::vector<std::string>{});
    // Once it is gone, the path is ours to make again.
    std::filesystem::remove(at);
    EXPECT_EQ(f.write_now(), Error::ok);
    EXPECT_NE(slurp(at), "precious\n");
  }
}

TEST(StatsFile, TheThreadRewritesTheFileUntilStopped) {
  TempDir dir;
  auto d = make_device(16 * kPage);
  const std::string path = dir.path + "/stats";
  StatsFile f(path, [&] { return d->store().stats(); });
  f.start(std::chrono::milliseconds(5));
  ASSERT_EQ(d->write(data(2 * kPage, 14), 0, false), Error::ok);
  const std::string want = stats_file_text(d->store().stats());
  // Wait (without a deadline of our own: ctest's timeout bounds it) for a rewrite showing the
  // pages just written.
  while (slurp(path) != want) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  f.stop();
  std::filesystem::remove(path);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_FALSE(std::filesystem::exists(path)) << "stopped: nothing rewrites it";
}

// ── plugin_config: a compressor refused for its dictionary ───────────────────────────────────

// compressor=zstd:dict=FILE says what is wrong with FILE, as the CLI's --compressor does; only a
// name (or parameter) make_compressor does not know is "unknown compressor".
TEST(PluginConfig, ADictionaryThatCannotBeLoadedIsNamedWithTheReason) {
  TempDir dir;
  PluginConfig c;
  c.size = 1 << 20;
  const std::string missing = dir.path + "/nonexist";
  c.store.compressor = "zstd:dict=" + missing;
  EXPECT_EQ(config_problem(c), "compressor=zstd:dict=" + missing + ": dictionary " + missing +
                                   ": No such file or directory");
  c.store.compressor = "zstd:3:dict=" + dir.path;
  EXPECT_EQ(config_problem(c), "compressor=zstd:3:dict=" + dir.path + ": dictionary " + dir.path +
                                   ": not a regular file");
  c.store.compressor = "zstd:dict=";
  EXPECT_EQ(config_problem(c), "compressor=zstd:dict=: dict= names no file");
  for (const char* unknown : {"lz5", "zstd:99", "lz4:x"}) {
    c.store.compressor = unknown;
    EXPECT_EQ(config_problem(c), fmt::format("compressor={}: unknown compressor (lz4, lz4:N, "
                                             "zstd, zstd:N, lzo1x)",
                                             unknown));
  }
}

// recompress-with=: comma-separated specs, appended in order (repeating the parameter appends);
// each is checked as compressor= is, and there may be at most kMaxSecondaryCompressors.
TEST(PluginConfig, RecompressWithTakesUpToThreeSpecsEachCheckedAsCompressorIs) {
  TempDir dir;
  PluginConfig c;
  c.size = 1 << 20;
  add_recompress_with(c, "zstd,zstd:19");
  add_recompress_with(c, "lzo1x");
  EXPECT_EQ(c.store.recompress_with, (std::vector<std::string>{"zstd", "zstd:19", "lzo1x"}));
  EXPECT_EQ(config_problem(c), "");
  add_recompress_with(c, "lz4");
  EXPECT_EQ(config_problem(c), "recompress-with: 4 compressors, at most 3");

  const auto problem_of = [&](std::string_view value) {
    PluginConfig one;
    one.size = 1 << 20;
    add_recompress_with(one, value);
    return config_problem(one);
  };
  EXPECT_EQ(problem_of("zstd,lz5"),
            "recompress-with=lz5: unknown compressor (lz4, lz4:N, zstd, zstd:N, lzo1x)");
  EXPECT_EQ(problem_of("zstd,,lz4"), "recompress-with=: names no compressor");
  EXPECT_EQ(problem_of(""), "recompress-with=: names no compressor");
  const std::string missing = dir.path + "/nonexist";
  EXPECT_EQ(problem_of("zstd:dict=" + missing), "recompress-with=zstd:dict=" + missing +
                                                    ": dictionary " + missing +
                                                    ": No such file or directory");
}

// ── plugin_config: hard memory limits ────────────────────────────────────────────────────────

// A memory cgroup kills the server (every client's data with it) where a pool limit would have
// refused a write: under one, the pool is held to half of what the process may still take.
TEST(PluginConfig, UnderAMemoryCgroupThePoolIsCappedAtHalfOfWhatIsLeft) {
  PluginConfig c;
  c.size = std::uint64_t{512} << 20;
  os::MemoryBudget budget;
  budget.cgroup = (std::uint64_t{100} << 20) + 123;
  budget.available = std::uint64_t{20} << 30;
  std::string note;
  EXPECT_EQ(fit_to_memory_limits(c, budget, &note), "");
  EXPECT_EQ(c.store.mem_limit, std::uint64_t{50} << 20) << "half, in whole pages";
  EXPECT_NE(note.find("half of the 104857723 this process may still take (the memory cgroup's "
                      "limit); past it writes get ENOSPC"),
            std::string::npos)
      << note;
  // With a backing file the pages past the cap go there.
  PluginConfig b;
  b.size = c.size;
  b.store.backing_path = "/somewhere/bk";
  EXPECT_EQ(fit_to_memory_limits(b, budget, &note), "");
  EXPECT_NE(note.find("or go to the backing file"), std::string::npos) << note;
}

TEST(PluginConfig, ADeviceThatFitsOrAMachineWithoutHardLimitsIsLeftAlone) {
  PluginConfig c;
  c.size = std::uint64_t{40} << 20;
  os::MemoryBudget budget;
  budget.cgroup = std::uint64_t{100} << 20;
  std::string note;
  EXPECT_EQ(fit_to_memory_limits(c, budget, &note), "");
  EXPECT_EQ(c.store.mem_limit, 0u) << "40 MiB fits in half of 100";
  EXPECT_EQ(note, "");
  c.size = std::uint64_t{64} << 30;
  os::MemoryBudget soft;  // physical and available memory only: a RAM disk may use them
  soft.physical = std::uint64_t{24} << 30;
  soft.available = std::uint64_t{1} << 30;
  EXPECT_EQ(fit_to_memory_limits(c, soft, &note), "");
  EXPECT_EQ(c.store.mem_limit, 0u);
}

TEST(PluginConfig, ALimitPastAHardLimitIsRefusedNamingIt) {
  PluginConfig c;
  c.size = std::uint64_t{4} << 30;
  c.store.mem_limit = std::uint64_t{1} << 30;
  os::MemoryBudget budget;
  budget.cgroup = std::uint64_t{2} << 30;
  budget.address_space = std::uint64_t{512} << 20;  // the lesser of the two names the line
  EXPECT_EQ(fit_to_memory_limits(c, budget, nullptr),
            "limit=1073741824: more than the 536870912 bytes this process may still take (ulimit "
            "-v): past it the server would be killed, not refused");
  budget.address_space.reset();
  EXPECT_EQ(fit_to_memory_limits(c, budget, nullptr), "") << "1 GiB is within the cgroup's 2";
  EXPECT_EQ(c.store.mem_limit, std::uint64_t{1} << 30) << "an explicit limit= is kept";
}

}  // namespace
}  // namespace zspool::nbd
