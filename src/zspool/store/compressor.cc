#include "zspool/store/compressor.h"

#include <fcntl.h>
#include <lz4.h>
#include <lzo/lzo1x.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zdict.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>
#include <new>
#include <optional>
#include <utility>

#include "zspool/platform/internal/os.h"
#include "zspool/platform/internal/per_cpu.h"
#include "zspool/store/internal/codec_memory.h"

namespace zspool {
namespace {

const char* as_chars(std::span<const std::byte> s) {
  return reinterpret_cast<const char*>(s.data());
}
char* as_chars(std::span<std::byte> s) {
  return reinterpret_cast<char*>(s.data());
}
const unsigned char* as_uchars(std::span<const std::byte> s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}
unsigned char* as_uchars(std::span<std::byte> s) {
  return reinterpret_cast<unsigned char*>(s.data());
}

// Parses the decimal after "name:"; false unless it is all digits and within [lo, hi].
bool parse_parameter(std::string_view text, int lo, int hi, int* out) {
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < lo || value > hi) {
    return false;
  }
  *out = value;
  return true;
}

// ---- lz4 -------------------------------------------------------------------------------------

class Lz4Compressor final : public Compressor {
 public:
  static constexpr int kMaxAcceleration = 65537;  // LZ4_ACCELERATION_MAX in lz4.c

  explicit Lz4Compressor(int acceleration) : acceleration_(acceleration) {}

  std::string_view name() const override { return "lz4"; }
  std::string spec() const override {
    return acceleration_ == 1 ? "lz4" : "lz4:" + std::to_string(acceleration_);
  }
  std::size_t max_compressed_size(std::size_t src_size) const override {
    return src_size > LZ4_MAX_INPUT_SIZE ? 0 : LZ4_COMPRESSBOUND(src_size);
  }

  Result<std::size_t> compress(std::span<const std::byte> src,
                               std::span<std::byte> dst) const override {
    if (src.size() > LZ4_MAX_INPUT_SIZE) return Error::invalid_argument;
    const int capacity = static_cast<int>(std::min<std::size_t>(dst.size(), INT_MAX));
    // LZ4's limited-output mode never writes past `capacity`, returns 0 when the output would
    // not fit, and otherwise produces the same bytes as with a full-size buffer (the test
    // CompressedFormDoesNotDependOnDstSize checks this), so lz4 needs no scratch copy.
    const int n = LZ4_compress_fast(as_chars(src), as_chars(dst), static_cast<int>(src.size()),
                                    capacity, acceleration_);
    if (n <= 0) return kDoesNotFit;
    return static_cast<std::size_t>(n);
  }

  Error decompress(std::span<const std::byte> src, std::span<std::byte> dst) const override {
    if (src.size() > INT_MAX || dst.size() > INT_MAX) return Error::corrupt_data;
    const int n = LZ4_decompress_safe(as_chars(src), as_chars(dst), static_cast<int>(src.size()),
                                      static_cast<int>(dst.size()));
    return n >= 0 && static_cast<std::size_t>(n) == dst.size() ? Error::ok : Error::corrupt_data;
  }

 private:
  const int acceleration_;
};

// ---- codec memory, lent per CPU --------------------------------------------------------------

// Bounce buffers, zstd contexts and lzo work memory are lent per CPU (PerCpu,
// platform/internal/per_cpu.h) for one compress or decompress call, as zram keeps one stream
// per CPU: what they hold is bounded by the CPUs, not by the threads that ever compressed.
// Lease order (PerCpu waits when every slot is taken): a call holding a lease may take one more,
// of a cache later in this list, never one earlier or of the same cache:
//   1. a zstd compression or decompression context, or lzo work memory
//   2. a bounce buffer (compress_exactly, inside the compressor's call)
//
// Each cache is made on first use and destroyed at exit (or when nbdkit unloads the plugin, so
// that nothing is left for a leak checker): compressing after that, from a thread still running
// or a static object's destructor, is not supported.
template <typename T>
PerCpu<T>& per_cpu_cache() {
  static PerCpu<T> cache;
  return cache;
}

// A bounce buffer is a grow-only mapping of its own (os::VirtualRange::grow_to).
using BounceBuffer = os::VirtualRange;

// Runs `compress_into(out)` so that the result fits dst exactly when the compressed form is at
// most dst.size() bytes. Some libraries cannot promise that with a short output buffer: lzo1x
// writes past it, zstd gives up early when little slack is left. So when dst is shorter than
// the worst-case `bound`, the compressor writes into a bounce buffer lent for the call and the
// result is copied. compress_into: (std::span<std::byte> out, out.size() >= bound) ->
// Result<size_t>.
template <typename CompressInto>
Result<std::size_t> compress_exactly(std::span<std::byte> dst, std::size_t bound,
                                     CompressInto compress_into) {
  if (dst.size() >= bound) return compress_into(dst);
  auto bounce = per_cpu_cache<BounceBuffer>().acquire();
  if (!bounce->grow_to(bound)) return Error::out_of_memory;
  std::byte* scratch = bounce->base();
  Result<std::size_t> n = compress_into(std::span(scratch, bound));
  if (!n) return n;
  if (*n > dst.size()) return kDoesNotFit;
  std::memcpy(dst.data(), scratch, *n);
  return n;
}

// ---- zstd ------------------------------------------------------------------------------------

std::atomic<std::uint64_t> zstd_contexts_live{0};

struct ZstdContextDeleter {
  void operator()(ZSTD_CCtx* c) const {
    ZSTD_freeCCtx(c);
    zstd_contexts_live.fetch_sub(1, std::memory_order_relaxed);
  }
  void operator()(ZSTD_DCtx* d) const {
    ZSTD_freeDCtx(d);
    zstd_contexts_live.fetch_sub(1, std::memory_order_relaxed);
  }
};

// zstd contexts, lent per CPU and shared by every zstd compressor (the level or dictionary is
// passed on each call). A context is made on its slot's first use; a failed creation is retried
// on the next.
using CompressionContext = std::unique_ptr<ZSTD_CCtx, ZstdContextDeleter>;
using DecompressionContext = std::unique_ptr<ZSTD_DCtx, ZstdContextDeleter>;

template <typename Context, typename Create>
auto* made(Context& context, Create create) {
  if (!context) {
    context.reset(create());
    if (context) zstd_contexts_live.fetch_add(1, std::memory_order_relaxed);
  }
  return context.get();
}

ZSTD_CCtx* made(CompressionContext& cctx) {
  return made(cctx, ZSTD_createCCtx);
}

ZSTD_DCtx* made(DecompressionContext& dctx) {
  return made(dctx, ZSTD_createDCtx);
}

Error compress_error_from_zstd(std::size_t code) {
  switch (ZSTD_getErrorCode(code)) {
    case ZSTD_error_dstSize_tooSmall:
      return kDoesNotFit;
    case ZSTD_error_memory_allocation:
      return Error::out_of_memory;
    default:
      return Error::invalid_argument;
  }
}

// A zstd dictionary digested once for compression at one level and for decompression; shared
// read-only by every thread (zstd's CDict and DDict are immutable after creation).
class ZstdDictionary {
 public:
  static Result<std::shared_ptr<const ZstdDictionary>> make(std::span<const std::byte> bytes,
                                                            int level) {
    auto id = zstd_dictionary_id(bytes);
    if (!id) return id.error();
    auto dictionary = std::shared_ptr<ZstdDictionary>(new (std::nothrow) ZstdDictionary(*id));
    if (!dictionary) return Error::out_of_memory;
    dictionary->cdict_ = ZSTD_createCDict(bytes.data(), bytes.size(), level);
    dictionary->ddict_ = ZSTD_createDDict(bytes.data(), bytes.size());
    if (dictionary->cdict_ == nullptr || dictionary->ddict_ == nullptr) return Error::out_of_memory;
    return std::shared_ptr<const ZstdDictionary>(std::move(dictionary));
  }
  ~ZstdDictionary() {
    ZSTD_freeCDict(cdict_);
    ZSTD_freeDDict(ddict_);
  }
  ZstdDictionary(const ZstdDictionary&) = delete;
  ZstdDictionary& operator=(const ZstdDictionary&) = delete;

  std::uint32_t id() const { return id_; }
  const ZSTD_CDict* cdict() const { return cdict_; }
  const ZSTD_DDict* ddict() const { return ddict_; }

 private:
  explicit ZstdDictionary(std::uint32_t id) : id_(id) {}
  const std::uint32_t id_;
  ZSTD_CDict* cdict_ = nullptr;
  ZSTD_DDict* ddict_ = nullptr;
};

class ZstdCompressor final : public Compressor {
 public:
  static constexpr int kDefaultLevel = 3;
  static constexpr int kMaxLevel = 22;

  explicit ZstdCompressor(int level, std::shared_ptr<const ZstdDictionary> dictionary = nullptr,
                          std::string dictionary_path = "")
      : level_(level),
        dictionary_(std::move(dictionary)),
        dictionary_path_(std::move(dictionary_path)) {}

  std::string_view name() const override { return "zstd"; }
  std::string spec() const override {
    std::string spec = "zstd:" + std::to_string(level_);
    return dictionary_ ? spec + ":dict=" + dictionary_path_ : spec;
  }
  std::size_t max_compressed_size(std::size_t src_size) const override {
    return ZSTD_compressBound(src_size);
  }
  std::uint32_t dictionary_id() const override { return dictionary_ ? dictionary_->id() : 0; }

  Result<std::size_t> compress(std::span<const std::byte> src,
                               std::span<std::byte> dst) const override {
    auto lease = per_cpu_cache<CompressionContext>().acquire();
    ZSTD_CCtx* cctx = made(*lease);
    if (cctx == nullptr) return Error::out_of_memory;
    return compress_exactly(
        dst, max_compressed_size(src.size()), [&](std::span<std::byte> out) -> Result<std::size_t> {
          // The CDict writes its id into the frame header (zstd's default with a dictionary).
          const std::size_t n =
              dictionary_
                  ? ZSTD_compress_usingCDict(cctx, out.data(), out.size(), src.data(), src.size(),
                                             dictionary_->cdict())
                  : ZSTD_compressCCtx(cctx, out.data(), out.size(), src.data(), src.size(), level_);
          if (ZSTD_isError(n)) return compress_error_from_zstd(n);
          return n;
        });
  }

  // A frame naming another dictionary (or one, without a dictionary here) is refused before it
  // is decoded; zstd checks the same (dictionary_wrong), this says it without relying on it.
  // A frame naming none decodes with or without a dictionary, as in zstd.
  Error decompress(std::span<const std::byte> src, std::span<std::byte> dst) const override {
    const unsigned frame_dictionary = ZSTD_getDictID_fromFrame(src.data(), src.size());
    if (frame_dictionary != 0 && frame_dictionary != dictionary_id()) return Error::corrupt_data;
    auto lease = per_cpu_cache<DecompressionContext>().acquire();
    ZSTD_DCtx* dctx = made(*lease);
    if (dctx == nullptr) return Error::out_of_memory;
    const std::size_t n =
        dictionary_ ? ZSTD_decompress_usingDDict(dctx, dst.data(), dst.size(), src.data(),
                                                 src.size(), dictionary_->ddict())
                    : ZSTD_decompressDCtx(dctx, dst.data(), dst.size(), src.data(), src.size());
    return !ZSTD_isError(n) && n == dst.size() ? Error::ok : Error::corrupt_data;
  }

 private:
  const int level_;
  const std::shared_ptr<const ZstdDictionary> dictionary_;
  const std::string dictionary_path_;
};

// ---- dictionary files ------------------------------------------------------------------------

struct FileDescriptor {
  int fd = -1;
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
};

// The bytes of the dictionary file at `path`, or why not (one line, naming it).
Result<std::vector<std::byte>> read_dictionary_file(const std::string& path, std::string* why) {
  const auto refuse = [&](const std::string& reason) -> Error {
    if (why != nullptr) *why = "dictionary " + os::shown_path(path) + ": " + reason;
    return Error::invalid_argument;
  };
  if (os::path_has_nul(path)) return refuse("the path holds a NUL byte");
  FileDescriptor file;
  file.fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (file.fd < 0) return refuse(std::strerror(errno));
  struct stat st {};
  if (::fstat(file.fd, &st) != 0) return refuse(std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return refuse("not a regular file");
  if (static_cast<std::uint64_t>(st.st_size) > kMaxDictionaryBytes)
    return refuse("larger than " + std::to_string(kMaxDictionaryBytes) + " bytes");
  std::vector<std::byte> bytes(static_cast<std::size_t>(st.st_size));
  std::size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t n = ::read(file.fd, bytes.data() + got, bytes.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return refuse(std::strerror(errno));
    if (n == 0) return refuse("shorter than its size (changed while read)");
    got += static_cast<std::size_t>(n);
  }
  if (!zstd_dictionary_id(bytes))
    return refuse("not a zstd dictionary (no dictionary header; train one with zspool train-dict)");
  return bytes;
}

// ---- lzo1x -----------------------------------------------------------------------------------

std::size_t lzo1x_bound(std::size_t src_size) {
  return src_size + src_size / 16 + 64 + 3;
}

// lzo1x_1 work memory (LZO1X_1_MEM_COMPRESS bytes), lent per CPU. new[] aligns it to at least
// alignof(std::max_align_t), as lzo requires.
struct LzoWorkMemory {
  std::unique_ptr<unsigned char[]> bytes;
};

unsigned char* made(LzoWorkMemory& work) {
  if (!work.bytes) work.bytes.reset(new (std::nothrow) unsigned char[LZO1X_1_MEM_COMPRESS]);
  return work.bytes.get();
}

bool lzo_initialised() {
  static const bool ok = lzo_init() == LZO_E_OK;
  return ok;
}

class LzoCompressor final : public Compressor {
 public:
  std::string_view name() const override { return "lzo1x"; }
  std::string spec() const override { return "lzo1x"; }
  std::size_t max_compressed_size(std::size_t src_size) const override {
    return lzo1x_bound(src_size);
  }

  Result<std::size_t> compress(std::span<const std::byte> src,
                               std::span<std::byte> dst) const override {
    auto lease = per_cpu_cache<LzoWorkMemory>().acquire();
    unsigned char* work = made(*lease);
    if (work == nullptr) return Error::out_of_memory;
    return compress_exactly(
        dst, lzo1x_bound(src.size()), [&](std::span<std::byte> out) -> Result<std::size_t> {
          lzo_uint n = out.size();
          if (lzo1x_1_compress(as_uchars(src), src.size(), as_uchars(out), &n, work) != LZO_E_OK) {
            return Error::invalid_argument;  // lzo1x_1 documents no failure
          }
          return static_cast<std::size_t>(n);
        });
  }

  Error decompress(std::span<const std::byte> src, std::span<std::byte> dst) const override {
    lzo_uint n = dst.size();
    const int rc = lzo1x_decompress_safe(as_uchars(src), src.size(), as_uchars(dst), &n, nullptr);
    return rc == LZO_E_OK && n == dst.size() ? Error::ok : Error::corrupt_data;
  }
};

// ---- factory ---------------------------------------------------------------------------------

Result<std::unique_ptr<Compressor>> make_lz4(std::string_view parameter, bool has_parameter) {
  int acceleration = 1;
  if (has_parameter &&
      !parse_parameter(parameter, 1, Lz4Compressor::kMaxAcceleration, &acceleration)) {
    return Error::invalid_argument;
  }
  return std::unique_ptr<Compressor>(std::make_unique<Lz4Compressor>(acceleration));
}

// "N", "dict=FILE", "N:dict=FILE" (the part after "zstd:").
Result<std::unique_ptr<Compressor>> make_zstd(std::string_view parameter, bool has_parameter,
                                              std::string* why) {
  constexpr std::string_view kDict = "dict=", kLevelAndDict = ":dict=";
  const bool level_given = has_parameter && !parameter.starts_with(kDict);
  std::string_view level_text = parameter;
  std::optional<std::string_view> path;
  if (!level_given && has_parameter) {
    path = parameter.substr(kDict.size());
  } else if (const std::size_t at = parameter.find(kLevelAndDict); at != std::string_view::npos) {
    level_text = parameter.substr(0, at);
    path = parameter.substr(at + kLevelAndDict.size());
  }
  int level = ZstdCompressor::kDefaultLevel;
  if (level_given && !parse_parameter(level_text, 1, ZstdCompressor::kMaxLevel, &level)) {
    return Error::invalid_argument;
  }
  const bool has_dictionary = path.has_value();
  if (!has_dictionary) return std::unique_ptr<Compressor>(std::make_unique<ZstdCompressor>(level));
  if (path->empty()) {
    if (why != nullptr) *why = "dict= names no file";
    return Error::invalid_argument;
  }
  const std::string file(*path);
  auto bytes = read_dictionary_file(file, why);
  if (!bytes) return bytes.error();
  auto dictionary = ZstdDictionary::make(*bytes, level);
  if (!dictionary) return dictionary.error();
  return std::unique_ptr<Compressor>(
      std::make_unique<ZstdCompressor>(level, std::move(*dictionary), file));
}

Result<std::unique_ptr<Compressor>> make_lzo(bool has_parameter) {
  if (has_parameter) return Error::invalid_argument;
  if (!lzo_initialised()) return Error::unsupported;
  return std::unique_ptr<Compressor>(std::make_unique<LzoCompressor>());
}

}  // namespace

Result<std::unique_ptr<Compressor>> make_compressor(std::string_view spec, std::string* why) {
  const std::size_t colon = spec.find(':');
  const bool has_parameter = colon != std::string_view::npos;
  const std::string_view algorithm = spec.substr(0, colon);
  const std::string_view parameter = has_parameter ? spec.substr(colon + 1) : std::string_view{};
  if (algorithm == "lz4") return make_lz4(parameter, has_parameter);
  if (algorithm == "zstd") return make_zstd(parameter, has_parameter, why);
  if (algorithm == "lzo1x" || algorithm == "lzo" || algorithm == "lzo-rle") {
    return make_lzo(has_parameter);
  }
  return Error::invalid_argument;
}

Result<std::uint32_t> zstd_dictionary_id(std::span<const std::byte> bytes) {
  const unsigned id = ZDICT_getDictID(bytes.data(), bytes.size());  // 0: not a dictionary
  if (id == 0) return Error::invalid_argument;
  return static_cast<std::uint32_t>(id);
}

namespace {

// "1 sample of 4096 bytes", "8 samples of 4096 bytes (32768 bytes)".
std::string describe_samples(std::size_t samples, std::size_t sample_size) {
  std::string text = std::to_string(samples) + (samples == 1 ? " sample" : " samples") + " of " +
                     std::to_string(sample_size) + " bytes";
  if (samples != 1) text += " (" + std::to_string(samples * sample_size) + " bytes)";
  return text;
}

// libzstd's refusal in the caller's terms: what it was given, and zdict.h's advice (samples of
// "~100x the size of the dictionary" in all, "a few thousand" of them); zstd's own name last.
// Too little data (srcSize_wrong) is its usual refusal: libzstd 1.5.4 draws it for fewer than
// 7 samples (measured with 4 KiB ones).
std::string training_refusal(std::size_t code, std::size_t samples, std::size_t sample_size,
                             std::size_t dict_bytes) {
  const std::string what = ZSTD_getErrorCode(code) == ZSTD_error_srcSize_wrong
                               ? "too little sample data: "
                               : "zstd cannot train on ";
  return what + describe_samples(samples, sample_size) +
         "; zstd advises about 100 times the dictionary size (" + std::to_string(100 * dict_bytes) +
         " bytes here) in a few thousand samples (zstd: " + ZDICT_getErrorName(code) + ")";
}

}  // namespace

Result<std::vector<std::byte>> train_zstd_dictionary(std::span<const std::byte> samples,
                                                     std::size_t sample_size,
                                                     std::size_t dict_bytes, std::string* why) {
  if (sample_size == 0 || samples.size() % sample_size != 0 || dict_bytes < kMinDictionaryBytes ||
      dict_bytes > kMaxDictionaryBytes) {
    return Error::invalid_argument;
  }
  try {
    const std::vector<std::size_t> sizes(samples.size() / sample_size, sample_size);
    std::vector<std::byte> dictionary(dict_bytes);
    const std::size_t n =
        ZDICT_trainFromBuffer(dictionary.data(), dictionary.size(), samples.data(), sizes.data(),
                              static_cast<unsigned>(sizes.size()));
    if (ZDICT_isError(n)) {
      if (why != nullptr) *why = training_refusal(n, sizes.size(), sample_size, dict_bytes);
      return Error::invalid_argument;
    }
    dictionary.resize(n);
    return dictionary;
  } catch (const std::bad_alloc&) {
    return Error::out_of_memory;
  }
}

std::vector<std::string> compressor_names() {
  return {"lz4", "lzo1x", "zstd"};
}

void release_idle_codec_memory() {
  per_cpu_cache<BounceBuffer>().for_each_idle([](BounceBuffer& b) { b = BounceBuffer(); });
  per_cpu_cache<CompressionContext>().for_each_idle([](CompressionContext& c) { c.reset(); });
  per_cpu_cache<DecompressionContext>().for_each_idle([](DecompressionContext& d) { d.reset(); });
  per_cpu_cache<LzoWorkMemory>().for_each_idle([](LzoWorkMemory& w) { w.bytes.reset(); });
}

namespace internal {

CodecMemory codec_memory() {
  CodecMemory m;
  m.zstd_contexts_live = zstd_contexts_live.load(std::memory_order_relaxed);
  m.slots_per_cache = per_cpu_cache<CompressionContext>().slot_count();
  m.waits = per_cpu_cache<BounceBuffer>().waits() + per_cpu_cache<CompressionContext>().waits() +
            per_cpu_cache<DecompressionContext>().waits() + per_cpu_cache<LzoWorkMemory>().waits();
  return m;
}

}  // namespace internal

}  // namespace zspool
