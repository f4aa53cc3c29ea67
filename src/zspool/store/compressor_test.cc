#include "zspool/store/compressor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cstring>
#include <random>
#include <thread>

#include <unistd.h>

#include "zspool/platform/internal/os.h"
#include "zspool/store/internal/codec_memory.h"

namespace zspool {
namespace {

constexpr std::size_t kPage = 4096;

// ---- test data -------------------------------------------------------------------------------

std::vector<std::byte> text_bytes(std::size_t n, std::uint64_t seed) {
  static const char* const kWords[] = {"the ",       "pool ",
                                       "allocates ", "objects ",
                                       "in ",        "zspages ",
                                       "and ",       "handles ",
                                       "map ",       "compressed ",
                                       "pages ",     "size ",
                                       "class ",     "free ",
                                       "static ",    "int ",
                                       "return ",    "struct ",
                                       "{\n",        "}\n",
                                       "(void) ",    "#include <stdio.h>\n"};
  std::mt19937_64 rng(seed);
  std::vector<std::byte> out;
  out.reserve(n);
  while (out.size() < n) {
    const char* w = kWords[rng() % std::size(kWords)];
    for (const char* c = w; *c != '\0' && out.size() < n; ++c) out.push_back(std::byte(*c));
  }
  return out;
}

std::vector<std::byte> random_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> out(n);
  for (auto& b : out) b = static_cast<std::byte>(rng());
  return out;
}

// A heap page: 8-byte pointers into a few regions, some small integers and nulls.
std::vector<std::byte> pointer_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> out(n);
  for (std::size_t i = 0; i + 8 <= n; i += 8) {
    std::uint64_t v = 0;
    switch (rng() % 4) {
      case 0:
        v = 0x00007f3a12000000ull + (rng() % 4096) * 16;
        break;
      case 1:
        v = 0x0000555555560000ull + (rng() % 1024) * 8;
        break;
      case 2:
        v = rng() % 100;
        break;
      default:
        v = 0;
        break;
    }
    std::memcpy(out.data() + i, &v, 8);
  }
  return out;
}

struct Sample {
  const char* kind;
  std::vector<std::byte> bytes;
  bool compressible;
};

std::vector<Sample> samples() {
  return {
      {"text", text_bytes(kPage, 1), true},
      {"zeros", std::vector<std::byte>(kPage), true},
      {"random", random_bytes(kPage, 2), false},
      {"pointers", pointer_bytes(kPage, 3), true},
      {"empty", {}, false},
      {"one byte", {std::byte{0x5A}}, false},
      {"small text", text_bytes(100, 4), false},
      {"large text", text_bytes(64 * 1024, 5), true},
      {"large random", random_bytes(64 * 1024 + 7, 6), false},
  };
}

// "@" stands for a dictionary this test binary trains once (dictionary_path below).
const char* const kSpecs[] = {"lz4",    "lz4:8",   "lz4:dict=@",  "lz4:8:dict=@", "zstd",
                              "zstd:1", "zstd:19", "zstd:dict=@", "lzo1x"};

// A zstd dictionary trained on text and pointer pages, in a file removed at exit.
const std::string& dictionary_path() {
  struct File {
    std::string path;
    File() {
      std::vector<std::byte> samples;
      for (std::uint64_t i = 0; i < 200; ++i) {
        const auto page = i % 2 == 0 ? text_bytes(kPage, 900 + i) : pointer_bytes(kPage, 900 + i);
        samples.insert(samples.end(), page.begin(), page.end());
      }
      auto dictionary = train_zstd_dictionary(samples, kPage, 8 << 10);
      EXPECT_TRUE(dictionary.ok());
      char name[] = "/tmp/zspool-compressor-test-XXXXXX";
      const int fd = ::mkstemp(name);
      EXPECT_GE(fd, 0);
      if (dictionary.ok() && fd >= 0) {
        EXPECT_EQ(::write(fd, dictionary->data(), dictionary->size()),
                  static_cast<ssize_t>(dictionary->size()));
      }
      if (fd >= 0) ::close(fd);
      path = name;
    }
    ~File() { ::unlink(path.c_str()); }
  };
  static const File file;
  return file.path;
}

std::unique_ptr<Compressor> make(std::string_view spec_text) {
  std::string spec(spec_text);
  if (const std::size_t at = spec.find('@'); at != std::string::npos) {
    spec.replace(at, 1, dictionary_path());
  }
  auto c = make_compressor(spec);
  EXPECT_TRUE(c.ok()) << spec << ": " << error_name(c.error());
  return c.ok() ? std::move(c).value() : nullptr;
}

// A buffer with guard bytes either side of the span handed to the compressor, to catch writes
// outside it even without a sanitizer.
class GuardedBuffer {
 public:
  static constexpr std::size_t kGuard = 64;
  static constexpr std::byte kCanary{0xC5};

  explicit GuardedBuffer(std::size_t size) : storage_(size + 2 * kGuard, kCanary), size_(size) {}
  std::span<std::byte> span() { return std::span(storage_).subspan(kGuard, size_); }
  bool guards_intact() const {
    auto intact = [](auto first, auto last) {
      return std::all_of(first, last, [](std::byte b) { return b == kCanary; });
    };
    return intact(storage_.begin(), storage_.begin() + kGuard) &&
           intact(storage_.end() - kGuard, storage_.end());
  }

 private:
  std::vector<std::byte> storage_;
  std::size_t size_;
};

std::vector<std::byte> compressed(const Compressor& c, std::span<const std::byte> src) {
  std::vector<std::byte> dst(c.max_compressed_size(src.size()));
  auto n = c.compress(src, dst);
  EXPECT_TRUE(n.ok()) << c.spec() << ": " << error_name(n.error());
  dst.resize(n.value_or(0));
  return dst;
}

// ---- per-compressor tests --------------------------------------------------------------------

class CompressorTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    compressor_ = make(GetParam());
    ASSERT_NE(compressor_, nullptr);
  }
  std::unique_ptr<Compressor> compressor_;
};

TEST_P(CompressorTest, RoundTripsEveryKindOfData) {
  for (const Sample& s : samples()) {
    SCOPED_TRACE(s.kind);
    const std::vector<std::byte> packed = compressed(*compressor_, s.bytes);
    ASSERT_FALSE(packed.empty());
    if (s.compressible) {
      EXPECT_LT(packed.size(), s.bytes.size() * 3 / 4);
    }
    GuardedBuffer out(s.bytes.size());
    ASSERT_EQ(compressor_->decompress(packed, out.span()), Error::ok);
    EXPECT_TRUE(std::equal(s.bytes.begin(), s.bytes.end(), out.span().begin()));
    EXPECT_TRUE(out.guards_intact());
  }
}

TEST_P(CompressorTest, IncompressiblePageDoesNotFitInPageMinusOne) {
  const std::vector<std::byte> page = random_bytes(kPage, 11);
  GuardedBuffer dst(kPage - 1);
  auto n = compressor_->compress(page, dst.span());
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.error(), kDoesNotFit);
  EXPECT_TRUE(dst.guards_intact());
  // Given the worst-case bound it succeeds, and cannot have shrunk random data.
  std::vector<std::byte> big(compressor_->max_compressed_size(kPage));
  auto m = compressor_->compress(page, big);
  ASSERT_TRUE(m.ok());
  EXPECT_GE(*m, kPage);
}

TEST_P(CompressorTest, OutputFitsExactlyOrNotAtAll) {
  for (const Sample& s : samples()) {
    SCOPED_TRACE(s.kind);
    const std::size_t n = compressed(*compressor_, s.bytes).size();
    GuardedBuffer exact(n);
    auto fits = compressor_->compress(s.bytes, exact.span());
    ASSERT_TRUE(fits.ok()) << error_name(fits.error());
    EXPECT_EQ(*fits, n);
    EXPECT_TRUE(exact.guards_intact());
    GuardedBuffer out(s.bytes.size());
    ASSERT_EQ(compressor_->decompress(exact.span(), out.span()), Error::ok);
    EXPECT_TRUE(std::equal(s.bytes.begin(), s.bytes.end(), out.span().begin()));

    for (std::size_t small : {n - 1, n / 2, std::size_t{1}, std::size_t{0}}) {
      if (small >= n) continue;
      GuardedBuffer too_small(small);
      auto refused = compressor_->compress(s.bytes, too_small.span());
      ASSERT_FALSE(refused.ok()) << small;
      EXPECT_EQ(refused.error(), kDoesNotFit);
      EXPECT_TRUE(too_small.guards_intact()) << small;
    }
  }
}

// Mixed data: runs of random bytes, of a few symbols, and copies from earlier in the buffer.
std::vector<std::byte> mixed_bytes(std::size_t n, std::mt19937_64& rng) {
  std::vector<std::byte> out(n);
  const std::uint64_t max_run = 4u << (rng() % 5);
  for (std::size_t i = 0; i < n;) {
    const std::size_t run = 1 + rng() % max_run;
    const int how = rng() % 3;
    for (std::size_t k = 0; k < run && i < n; ++k, ++i) {
      const std::size_t back = 1 + rng() % 64;
      out[i] = how == 0   ? static_cast<std::byte>(rng())
               : how == 1 ? static_cast<std::byte>(rng() % 4)
                          : (i >= back ? out[i - back] : std::byte{0});
    }
  }
  return out;
}

TEST_P(CompressorTest, CompressedFormDoesNotDependOnDstSize) {
  std::mt19937_64 rng(15);
  for (int trial = 0; trial < 2000; ++trial) {
    const std::vector<std::byte> src = mixed_bytes(1 + rng() % kPage, rng);
    const std::vector<std::byte> full = compressed(*compressor_, src);
    GuardedBuffer exact(full.size());
    auto n = compressor_->compress(src, exact.span());
    ASSERT_TRUE(n.ok()) << "trial " << trial << ": " << error_name(n.error());
    ASSERT_EQ(*n, full.size());
    ASSERT_TRUE(std::equal(full.begin(), full.end(), exact.span().begin()));
    ASSERT_TRUE(exact.guards_intact());
  }
}

TEST_P(CompressorTest, DecompressRequiresTheExactOriginalSize) {
  const std::vector<std::byte> page = text_bytes(kPage, 12);
  const std::vector<std::byte> packed = compressed(*compressor_, page);
  for (std::size_t size : {kPage - 1, kPage + 1, kPage / 2, std::size_t{0}}) {
    GuardedBuffer out(size);
    EXPECT_EQ(compressor_->decompress(packed, out.span()), Error::corrupt_data) << size;
    EXPECT_TRUE(out.guards_intact()) << size;
  }
}

TEST_P(CompressorTest, EveryTruncationIsCorruptData) {
  const std::vector<std::byte> page = pointer_bytes(kPage, 13);
  const std::vector<std::byte> packed = compressed(*compressor_, page);
  for (std::size_t len = 0; len < packed.size(); ++len) {
    const std::vector<std::byte> prefix(packed.begin(), packed.begin() + len);  // exact-size heap
    GuardedBuffer out(kPage);
    EXPECT_EQ(compressor_->decompress(prefix, out.span()), Error::corrupt_data) << len;
    EXPECT_TRUE(out.guards_intact()) << len;
  }
}

// Random damage: flipped bytes, overwritten runs, garbage. Decompression must stay inside its
// buffers and answer ok or corrupt_data. (A flipped literal is still a valid stream for other
// data, so ok is allowed; most damage must be caught.)
TEST_P(CompressorTest, CorruptInputNeverCrashesOrOverruns) {
  constexpr int kTrials = 3000;
  std::mt19937_64 rng(14);
  int detected = 0;
  const std::vector<Sample> all = samples();
  std::vector<std::vector<std::byte>> packed;  // text, zeros, random, pointers: one page each
  for (int i = 0; i < 4; ++i) packed.push_back(compressed(*compressor_, all[i].bytes));
  for (int trial = 0; trial < kTrials; ++trial) {
    const Sample& s = all[trial % 4];
    std::vector<std::byte> bad = packed[trial % 4];
    switch (trial % 3) {
      case 0:  // flip a few bytes
        for (int k = 0, flips = 1 + rng() % 4; k < flips; ++k) {
          bad[rng() % bad.size()] ^= static_cast<std::byte>(1 + rng() % 255);
        }
        break;
      case 1: {  // overwrite a run with random bytes
        const std::size_t at = rng() % bad.size();
        const std::size_t run = std::min<std::size_t>(1 + rng() % 32, bad.size() - at);
        for (std::size_t k = 0; k < run; ++k) bad[at + k] = static_cast<std::byte>(rng());
        break;
      }
      default:  // garbage of a random length
        bad = random_bytes(1 + rng() % (2 * kPage), rng());
        break;
    }
    GuardedBuffer out(s.bytes.size());
    const Error e = compressor_->decompress(bad, out.span());
    ASSERT_TRUE(e == Error::ok || e == Error::corrupt_data) << error_name(e);
    ASSERT_TRUE(out.guards_intact()) << "trial " << trial;
    if (e == Error::corrupt_data) ++detected;
  }
  EXPECT_GT(detected, kTrials / 2);
}

TEST_P(CompressorTest, OneObjectServesFourThreadsAtOnce) {
  constexpr int kThreads = 4;
  constexpr int kPagesPerThread = 300;
  std::atomic<int> failures{0};
  auto worker = [&](int t) {
    std::vector<std::byte> dst(compressor_->max_compressed_size(kPage));
    std::vector<std::byte> out(kPage);
    for (int i = 0; i < kPagesPerThread; ++i) {
      const std::uint64_t seed = t * 100000 + i;
      const std::vector<std::byte> page =
          i % 3 == 0 ? text_bytes(kPage, seed)
                     : (i % 3 == 1 ? pointer_bytes(kPage, seed) : random_bytes(kPage, seed));
      auto n = compressor_->compress(page, dst);
      if (!n.ok() || compressor_->decompress(std::span(dst).first(*n), out) != Error::ok ||
          out != page) {
        failures.fetch_add(1);
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(worker, t);
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(AllCompressors, CompressorTest, ::testing::ValuesIn(kSpecs),
                         [](const auto& param_info) {
                           std::string name = param_info.param;
                           std::replace(name.begin(), name.end(), ':', '_');
                           std::replace(name.begin(), name.end(), '=', '_');
                           std::replace(name.begin(), name.end(), '@', 'D');
                           return name;
                         });

// ---- factory ---------------------------------------------------------------------------------

TEST(MakeCompressorTest, AcceptsEveryNameAndSpec) {
  for (const std::string& name : compressor_names()) {
    auto c = make(name);
    ASSERT_NE(c, nullptr) << name;
    EXPECT_EQ(c->name(), name);
  }
  EXPECT_EQ(compressor_names(), (std::vector<std::string>{"lz4", "lzo1x", "zstd"}));
  for (const char* spec : kSpecs) {
    auto c = make(spec);
    ASSERT_NE(c, nullptr);
    auto again = make(c->spec());  // spec() rebuilds the same configuration
    ASSERT_NE(again, nullptr);
    EXPECT_EQ(again->spec(), c->spec());
  }
  EXPECT_EQ(make("zstd")->spec(), "zstd:3");
  EXPECT_EQ(make("zstd:22")->spec(), "zstd:22");
  EXPECT_EQ(make("lz4")->spec(), "lz4");
  EXPECT_EQ(make("lz4:8")->spec(), "lz4:8");
  EXPECT_EQ(make("lzo")->name(), "lzo1x");
  EXPECT_EQ(make("lzo-rle")->name(), "lzo1x");
}

TEST(MakeCompressorTest, RejectsUnknownSpecs) {
  for (const char* spec :
       {"", "lz5", "LZ4", "zstd:0", "zstd:23", "zstd:-1", "zstd:", "zstd:3x", "zstd:abc", "lz4:0",
        "lz4:65538", "lzo:1", "lzo1x:", "deflate", "zstd:3:4"}) {
    auto c = make_compressor(spec);
    ASSERT_FALSE(c.ok()) << spec;
    EXPECT_EQ(c.error(), Error::invalid_argument) << spec;
  }
}

TEST(MakeCompressorTest, ParametersChangeTheOutput) {
  const std::vector<std::byte> text = text_bytes(64 * 1024, 21);
  EXPECT_LT(compressed(*make("zstd:19"), text).size(), compressed(*make("zstd:1"), text).size());
  EXPECT_GT(compressed(*make("lz4:65537"), text).size(), compressed(*make("lz4"), text).size());
}

// ---- dictionary training's refusal --------------------------------------------------------

// Too little sample data is said in the caller's terms (how many samples of how many bytes, and
// libzstd's advice: about 100x the dictionary size), with libzstd's own name in parentheses.
TEST(TrainZstdDictionary, TooLittleSampleDataIsSaidInTheCallersTerms) {
  const std::vector<std::byte> one = text_bytes(kPage, 31);
  std::string why;
  EXPECT_EQ(train_zstd_dictionary(one, kPage, 1024, &why).error(), Error::invalid_argument);
  EXPECT_EQ(why.rfind("too little sample data: 1 sample of 4096 bytes; ", 0), 0u) << why;
  EXPECT_NE(why.find("about 100 times the dictionary size (102400 bytes here)"), std::string::npos)
      << why;
  EXPECT_NE(why.find(" (zstd: "), std::string::npos) << why;
  EXPECT_EQ(why.back(), ')') << why;
  const std::vector<std::byte> five = text_bytes(5 * kPage, 32);
  EXPECT_FALSE(train_zstd_dictionary(five, kPage, 1024, &why).ok());
  EXPECT_EQ(why.rfind("too little sample data: 5 samples of 4096 bytes (20480 bytes); ", 0), 0u)
      << why;
  EXPECT_EQ(why.find('\n'), std::string::npos);
}

// ---- codec memory per CPU -------------------------------------------------------------------

// 16 threads (nbdkit's worker count per connection) compress and decompress 32 KiB pages with
// zstd, then stay alive: the zstd contexts in existence are bounded by the CPUs, not by the
// threads. With a context per thread (before 2026-12-02) this found 32 contexts.
TEST(CodecMemory, ConcurrentThreadsShareZstdContextsPerCpu) {
  constexpr int kThreads = 16;
  constexpr std::size_t kBigPage = 32 * 1024;
  const auto zstd = make("zstd");
  std::barrier done(kThreads + 1);
  std::barrier leave(kThreads + 1);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::vector<std::byte> page = text_bytes(kBigPage, 500 + t);
      std::vector<std::byte> dst(zstd->max_compressed_size(kBigPage));
      std::vector<std::byte> out(kBigPage);
      for (int i = 0; i < 20; ++i) {
        auto n = zstd->compress(page, dst);
        if (!n.ok() || zstd->decompress(std::span(dst).first(*n), out) != Error::ok ||
            out != page) {
          failures.fetch_add(1);
        }
      }
      done.arrive_and_wait();
      leave.arrive_and_wait();
    });
  }
  done.arrive_and_wait();
  const internal::CodecMemory live = internal::codec_memory();
  leave.arrive_and_wait();
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(live.slots_per_cache, os::cpu_count());
  // One compression and one decompression cache, each with a slot per CPU.
  EXPECT_LE(live.zstd_contexts_live, 2 * live.slots_per_cache);
  EXPECT_GE(live.zstd_contexts_live, 2u);
}

// release_idle_codec_memory frees every context no call holds, and the next call makes one
// again.
TEST(CodecMemory, ReleaseIdleFreesTheContextsAndTheyComeBack) {
  const auto zstd = make("zstd");
  const std::vector<std::byte> page = text_bytes(kPage, 9);
  ASSERT_FALSE(compressed(*zstd, page).empty());
  EXPECT_GE(internal::codec_memory().zstd_contexts_live, 1u);
  release_idle_codec_memory();
  EXPECT_EQ(internal::codec_memory().zstd_contexts_live, 0u);
  const std::vector<std::byte> again = compressed(*zstd, page);
  EXPECT_EQ(internal::codec_memory().zstd_contexts_live, 1u);
  std::vector<std::byte> out(kPage);
  EXPECT_EQ(zstd->decompress(again, out), Error::ok);
  EXPECT_EQ(out, page);
}

}  // namespace
}  // namespace zspool
