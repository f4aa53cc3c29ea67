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

// ---- codec memory, lent per CPU --------------------------------------------------------------

// Bounce buffers, zstd contexts and lzo work memory are lent per CPU (PerCpu,
// platform/internal/per_cpu.h) for one compress or decompress call, as zram keeps one stream
// per CPU: what they hold is bounded by the CPUs, not by the threads that ever compressed.
// Lease order (PerCpu waits when every slot is taken): a call holding a lease may take one more,
// of a cache later in this list, never one earlier or of the same cache:
//   1. a zstd compression or decompression context, lzo work memory, or an lz4 dictionary's
//      scratch (Lz4Dictionary below: a cache of each dictionary's own)
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

// ---- lz4 -------------------------------------------------------------------------------------

// An lz4 dictionary: the content of a zstd dictionary file (what follows its header and entropy
// tables; lz4 has no use for those), at most its last 64 KiB, lz4's whole window.
//
// lz4 compresses and decodes fastest when the dictionary lies right before the data in memory
// ("prefix" mode; measured 0.56-0.76x plain lz4's rate with the dictionary elsewhere, 0.77-0.98x
// with it in front: BENCHMARKS.md). So each CPU that uses the dictionary gets a scratch of its
// own, made on its first use and kept until the dictionary goes:
//
//   buffer ─▶ ┌ content (n <= 64 KiB) ┬ one page (<= kPrefixed) ┐   loaded: a stream LZ4_loadDict
//             └───────────────────────┴─────────────────────────┘   made over buffer[0, n)
//
// A page is copied in after the content and compressed from there with a copy of `loaded` (lz4.h
// names copying a loaded stream as one way to reuse a dictionary; LZ4_attach_dictionary, the
// other, is not exported by the shared liblz4), or decoded into that place and copied out. Data
// larger than kPrefixed is compressed and decoded where it lies, the dictionary then an external
// one. Scratch: 2 * 64 KiB + 2 * 16 KiB streams, per CPU that used the dictionary; it is the
// dictionary's (release_idle_codec_memory does not free it), so it goes with the compressor.
class Lz4Dictionary {
 public:
  static constexpr std::size_t kWindow = 64 << 10;    // lz4's largest match offset
  static constexpr std::size_t kPrefixed = 64 << 10;  // the largest page a store uses

  struct Scratch {
    std::unique_ptr<std::byte[]> buffer;
    std::unique_ptr<LZ4_stream_t> loaded;
    std::unique_ptr<LZ4_stream_t> work;
  };

  static Result<std::shared_ptr<const Lz4Dictionary>> make(std::span<const std::byte> bytes) {
    auto id = zstd_dictionary_id(bytes);
    if (!id) return id.error();
    const std::size_t header = ZDICT_getDictHeaderSize(bytes.data(), bytes.size());
    // read_dictionary_file checked the tables, and they leave content (zstd's repeat offsets
    // must fall inside it); this is the check for a caller that did not.
    if (ZDICT_isError(header) || header >= bytes.size()) return Error::invalid_argument;
    std::span<const std::byte> content = bytes.subspan(header);
    if (content.size() > kWindow) content = content.last(kWindow);
    try {
      auto dictionary = std::shared_ptr<Lz4Dictionary>(new Lz4Dictionary(*id, content));
      return std::shared_ptr<const Lz4Dictionary>(std::move(dictionary));
    } catch (const std::bad_alloc&) {
      return Error::out_of_memory;
    }
  }

  std::uint32_t id() const { return id_; }
  const char* content() const { return as_chars(std::span<const std::byte>(content_)); }
  int content_size() const { return static_cast<int>(content_.size()); }

  // Scratches, one lent per call: `scratches().acquire()`, then ready() on it.
  PerCpu<Scratch>& scratches() const { return scratches_; }
  // Makes s on its first use; false when memory ran out.
  bool ready(Scratch& s) const {
    if (!s.buffer) make_scratch(s);
    return s.buffer != nullptr;
  }
  // Where a page goes in a scratch: right after the content.
  std::byte* page_place(const Scratch& s) const { return s.buffer.get() + content_.size(); }

 private:
  Lz4Dictionary(std::uint32_t id, std::span<const std::byte> window)
      : id_(id), content_(window.begin(), window.end()) {}

  void make_scratch(Scratch& s) const {
    s.buffer.reset(new (std::nothrow) std::byte[content_.size() + kPrefixed]);
    s.loaded.reset(new (std::nothrow) LZ4_stream_t);
    s.work.reset(new (std::nothrow) LZ4_stream_t);
    if (!s.buffer || !s.loaded || !s.work) {
      s = Scratch{};
      return;
    }
    std::memcpy(s.buffer.get(), content_.data(), content_.size());
    LZ4_initStream(s.loaded.get(), sizeof(LZ4_stream_t));
    LZ4_loadDict(s.loaded.get(), reinterpret_cast<const char*>(s.buffer.get()), content_size());
  }

  const std::uint32_t id_;
  const std::vector<std::byte> content_;
  mutable PerCpu<Scratch> scratches_;
};

// Without a dictionary a page is one lz4 block. With one, the block is preceded by the
// dictionary's id, so that a page is never decoded with another dictionary:
//
//   ┌ dictionary id (4, little-endian) ┬ lz4 block, its matches reaching into the dictionary ┐
//
// 4 bytes a page (0.3% of a 1.5 KiB compressed page) buy what zstd's frame header gives zstd.
// A dictionary-less lz4 compressor cannot tell such a page from a block (lz4 blocks carry no
// header); the store never hands one a page another compressor wrote.
class Lz4Compressor final : public Compressor {
 public:
  static constexpr int kMaxAcceleration = 65537;  // LZ4_ACCELERATION_MAX in lz4.c
  static constexpr std::size_t kIdBytes = 4;

  explicit Lz4Compressor(int acceleration,
                         std::shared_ptr<const Lz4Dictionary> dictionary = nullptr,
                         std::string dictionary_path = "")
      : acceleration_(acceleration),
        dictionary_(std::move(dictionary)),
        dictionary_path_(std::move(dictionary_path)) {}

  std::string_view name() const override { return "lz4"; }
  std::string spec() const override {
    std::string spec = acceleration_ == 1 ? "lz4" : "lz4:" + std::to_string(acceleration_);
    return dictionary_ ? spec + ":dict=" + dictionary_path_ : spec;
  }
  std::size_t max_compressed_size(std::size_t src_size) const override {
    if (src_size > LZ4_MAX_INPUT_SIZE) return 0;
    return LZ4_COMPRESSBOUND(src_size) + (dictionary_ ? kIdBytes : 0);
  }
  std::uint32_t dictionary_id() const override { return dictionary_ ? dictionary_->id() : 0; }

  Result<std::size_t> compress(std::span<const std::byte> src,
                               std::span<std::byte> dst) const override {
    if (src.size() > LZ4_MAX_INPUT_SIZE) return Error::invalid_argument;
    if (dictionary_) return compress_with_dictionary(src, dst);
    // LZ4's limited-output mode never writes past `capacity`, returns 0 when the output would
    // not fit, and otherwise produces the same bytes as with a full-size buffer (the test
    // CompressedFormDoesNotDependOnDstSize checks this), so lz4 needs no scratch copy.
    const int n = LZ4_compress_fast(as_chars(src), as_chars(dst), static_cast<int>(src.size()),
                                    capacity_of(dst), acceleration_);
    if (n <= 0) return kDoesNotFit;
    return static_cast<std::size_t>(n);
  }

  Error decompress(std::span<const std::byte> src, std::span<std::byte> dst) const override {
    if (src.size() > INT_MAX || dst.size() > INT_MAX) return Error::corrupt_data;
    if (dictionary_) return decompress_with_dictionary(src, dst);
    const int n = LZ4_decompress_safe(as_chars(src), as_chars(dst), static_cast<int>(src.size()),
                                      static_cast<int>(dst.size()));
    return n >= 0 && static_cast<std::size_t>(n) == dst.size() ? Error::ok : Error::corrupt_data;
  }

 private:
  static int capacity_of(std::span<std::byte> dst) {
    return static_cast<int>(std::min<std::size_t>(dst.size(), INT_MAX));
  }

  // The same limited-output guarantee holds for the streaming call (the same test runs it).
  Result<std::size_t> compress_with_dictionary(std::span<const std::byte> src,
                                               std::span<std::byte> dst) const;
  Error decompress_with_dictionary(std::span<const std::byte> src, std::span<std::byte> dst) const;

  const int acceleration_;
  const std::shared_ptr<const Lz4Dictionary> dictionary_;
  const std::string dictionary_path_;
};

void put_id(std::uint32_t id, std::span<std::byte> out) {
  for (std::size_t i = 0; i < Lz4Compressor::kIdBytes; ++i) {
    out[i] = static_cast<std::byte>(id >> (8 * i));
  }
}

std::uint32_t get_id(std::span<const std::byte> in) {
  std::uint32_t id = 0;
  for (std::size_t i = 0; i < Lz4Compressor::kIdBytes; ++i) {
    id |= std::to_integer<std::uint32_t>(in[i]) << (8 * i);
  }
  return id;
}

Result<std::size_t> Lz4Compressor::compress_with_dictionary(std::span<const std::byte> src,
                                                            std::span<std::byte> dst) const {
  if (dst.size() <= kIdBytes) return kDoesNotFit;
  auto scratch = dictionary_->scratches().acquire();
  if (!dictionary_->ready(*scratch)) return Error::out_of_memory;
  const char* from = as_chars(src);
  if (src.size() <= Lz4Dictionary::kPrefixed) {  // right after the content: prefix mode
    std::byte* place = dictionary_->page_place(*scratch);
    if (!src.empty()) std::memcpy(place, src.data(), src.size());
    from = reinterpret_cast<const char*>(place);
  }
  std::memcpy(scratch->work.get(), scratch->loaded.get(), sizeof(LZ4_stream_t));
  const std::span<std::byte> block = dst.subspan(kIdBytes);
  const int n =
      LZ4_compress_fast_continue(scratch->work.get(), from, as_chars(block),
                                 static_cast<int>(src.size()), capacity_of(block), acceleration_);
  if (n <= 0) return kDoesNotFit;
  put_id(dictionary_->id(), dst);
  return kIdBytes + static_cast<std::size_t>(n);
}

Error Lz4Compressor::decompress_with_dictionary(std::span<const std::byte> src,
                                                std::span<std::byte> dst) const {
  if (src.size() < kIdBytes || get_id(src) != dictionary_->id()) return Error::corrupt_data;
  const std::span<const std::byte> block = src.subspan(kIdBytes);
  const int src_size = static_cast<int>(block.size()), dst_size = static_cast<int>(dst.size());
  auto scratch = dictionary_->scratches().acquire();
  if (dst.size() <= Lz4Dictionary::kPrefixed && dictionary_->ready(*scratch)) {
    // Decoded right after the content (prefix mode), then copied out.
    std::byte* place = dictionary_->page_place(*scratch);
    const int n = LZ4_decompress_safe_usingDict(
        as_chars(block), reinterpret_cast<char*>(place), src_size, dst_size,
        reinterpret_cast<const char*>(scratch->buffer.get()), dictionary_->content_size());
    if (n != dst_size) return Error::corrupt_data;
    if (n > 0) std::memcpy(dst.data(), place, dst.size());
    return Error::ok;
  }
  // Larger than a scratch holds, or no memory for one: the dictionary as an external one.
  const int n = LZ4_decompress_safe_usingDict(as_chars(block), as_chars(dst), src_size, dst_size,
                                              dictionary_->content(), dictionary_->content_size());
  return n == dst_size ? Error::ok : Error::corrupt_data;
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
  // Parses the entropy tables, as loading the dictionary would.
  if (ZDICT_isError(ZDICT_getDictHeaderSize(bytes.data(), bytes.size())))
    return refuse("a damaged zstd dictionary (its entropy tables do not parse)");
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

// The part of a spec after "lz4:" or "zstd:": "N", "dict=FILE" or "N:dict=FILE".
struct LevelAndDictionary {
  std::optional<std::string_view> level;  // the N, as given
  std::optional<std::string_view> path;   // the FILE, as given
};

LevelAndDictionary split_parameter(std::string_view parameter, bool has_parameter) {
  constexpr std::string_view kDict = "dict=", kLevelAndDict = ":dict=";
  if (!has_parameter) return {};
  if (parameter.starts_with(kDict)) return {std::nullopt, parameter.substr(kDict.size())};
  if (const std::size_t at = parameter.find(kLevelAndDict); at != std::string_view::npos) {
    return {parameter.substr(0, at), parameter.substr(at + kLevelAndDict.size())};
  }
  return {parameter, std::nullopt};
}

// The dictionary file's bytes; `path` must name one.
Result<std::vector<std::byte>> dictionary_bytes(std::string_view path, std::string* why) {
  if (path.empty()) {
    if (why != nullptr) *why = "dict= names no file";
    return Error::invalid_argument;
  }
  return read_dictionary_file(std::string(path), why);
}

Result<std::unique_ptr<Compressor>> make_lz4(std::string_view parameter, bool has_parameter,
                                             std::string* why) {
  const LevelAndDictionary given = split_parameter(parameter, has_parameter);
  int acceleration = 1;
  if (given.level &&
      !parse_parameter(*given.level, 1, Lz4Compressor::kMaxAcceleration, &acceleration)) {
    return Error::invalid_argument;
  }
  if (!given.path)
    return std::unique_ptr<Compressor>(std::make_unique<Lz4Compressor>(acceleration));
  auto bytes = dictionary_bytes(*given.path, why);
  if (!bytes) return bytes.error();
  auto dictionary = Lz4Dictionary::make(*bytes);
  if (!dictionary) return dictionary.error();
  return std::unique_ptr<Compressor>(std::make_unique<Lz4Compressor>(
      acceleration, std::move(*dictionary), std::string(*given.path)));
}

Result<std::unique_ptr<Compressor>> make_zstd(std::string_view parameter, bool has_parameter,
                                              std::string* why) {
  const LevelAndDictionary given = split_parameter(parameter, has_parameter);
  int level = ZstdCompressor::kDefaultLevel;
  if (given.level && !parse_parameter(*given.level, 1, ZstdCompressor::kMaxLevel, &level)) {
    return Error::invalid_argument;
  }
  if (!given.path) return std::unique_ptr<Compressor>(std::make_unique<ZstdCompressor>(level));
  auto bytes = dictionary_bytes(*given.path, why);
  if (!bytes) return bytes.error();
  auto dictionary = ZstdDictionary::make(*bytes, level);
  if (!dictionary) return dictionary.error();
  return std::unique_ptr<Compressor>(
      std::make_unique<ZstdCompressor>(level, std::move(*dictionary), std::string(*given.path)));
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
  if (algorithm == "lz4") return make_lz4(parameter, has_parameter, why);
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
