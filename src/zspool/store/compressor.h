// Page compressors: lz4, zstd and lzo1x behind one small interface, as zram's crypto_comp.
//
//   page ──compress(src, dst)──▶ n bytes in dst[0, n)   or  kDoesNotFit: store the page raw
//   n bytes ──decompress(src, dst)──▶ exactly dst.size() bytes, or corrupt_data
//
// Contract:
//   compress(src, dst) writes the compressed form of src into dst and returns its length. dst
//     may be any size, smaller than max_compressed_size(src.size()) included. The compressed
//     form does not depend on dst.size(): it fits whenever it is at most dst.size() bytes, and
//     otherwise compress returns kDoesNotFit (Error::out_of_bounds), dst's contents unspecified,
//     and the caller treats the page as incompressible. It never writes outside dst. Other errors:
//     invalid_argument (src too large for the algorithm), out_of_memory (a per-thread context or
//     buffer could not be allocated).
//   decompress(src, dst) requires dst.size() to be exactly the original length. It returns ok
//     with dst filled, or Error::corrupt_data when src is not a valid compressed form of exactly
//     dst.size() bytes. It never reads outside src or writes outside dst, whatever src holds.
//     After corrupt_data, dst's contents are unspecified.
//   A Compressor holds only its configuration: one object may be used from any number of
//     threads at once. Scratch state (zstd contexts, the lzo work memory, bounce buffers) is
//     lent per CPU for one call (release_idle_codec_memory below).
//
// Dictionaries ("zstd:dict=FILE", "lz4:dict=FILE"): FILE is a zstd dictionary (ZDICT format: its
// magic and a nonzero id), e.g. from `zspool train-dict` (train_zstd_dictionary below: libzstd's
// ZDICT_trainFromBuffer). It is read once, when the compressor is made, and digested once for every
// thread to share read-only: zstd into one ZSTD_CDict and one ZSTD_DDict (the contexts lent per CPU
// reference them per call); for lz4, the file's content (what follows its header and entropy
// tables, at most the last 64 KiB: lz4's window), which each CPU that uses it copies once into a
// scratch of its own with a stream loaded over it (kept while the compressor lives;
// release_idle_codec_memory does not free it). Every compressed page names the dictionary's id
// (zstd: in its frame header; lz4: in 4 bytes before the block), and decompress() refuses
// (corrupt_data) a page whose id is not its dictionary's: a page is never decoded with the wrong
// dictionary. A zstd dictionary frame given to a compressor without one is refused too; a plain lz4
// block carries no header, so a dictionary-less lz4 compressor cannot tell.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "zspool/platform/error.h"
#include "zspool/platform/export.h"

namespace zspool {

// What compress() returns when the result would not fit in dst.
inline constexpr Error kDoesNotFit = Error::out_of_bounds;

class ZSPOOL_API Compressor {
 public:
  virtual ~Compressor() = default;

  // The algorithm: "lz4", "zstd" or "lzo1x".
  virtual std::string_view name() const = 0;
  // The algorithm and its parameter, e.g. "zstd:3"; make_compressor(spec()) builds an equal one.
  virtual std::string spec() const = 0;
  // The most bytes compress() can need for src_size bytes of input (the library's bound).
  virtual std::size_t max_compressed_size(std::size_t src_size) const = 0;

  virtual Result<std::size_t> compress(std::span<const std::byte> src,
                                       std::span<std::byte> dst) const = 0;
  virtual Error decompress(std::span<const std::byte> src, std::span<std::byte> dst) const = 0;

  // The id of the dictionary this compressor encodes with and requires to decode (written in
  // every frame), 0 when it uses none.
  virtual std::uint32_t dictionary_id() const { return 0; }
};

// Builds a compressor from a spec:
//   "lz4"                 LZ4_compress_default
//   "lz4:N"               LZ4_compress_fast with acceleration N, 1..65537 (1 is the default)
//   "lz4:dict=FILE"       lz4 (acceleration 1, or N) with the dictionary in FILE (see above),
//   "lz4:N:dict=FILE"     a file as for zstd below: LZ4_compress_fast_continue over it
//   "zstd"                zstd at level 3
//   "zstd:N"              zstd at level N, 1..22
//   "zstd:dict=FILE"      zstd at level 3 (or N) with the dictionary in FILE (see above): a
//   "zstd:N:dict=FILE"    regular file of at most kMaxDictionaryBytes holding a zstd dictionary
//   "lzo1x", "lzo",       lzo1x-1. "lzo-rle" is zram's name for its run-length variant of lzo,
//   "lzo-rle"             which liblzo2 lacks; it maps to plain lzo1x (same format family,
//                         slightly worse on zero runs).
// Anything else: Error::invalid_argument. unsupported if the lzo library fails to initialise.
// A dictionary FILE (either algorithm) that cannot be read, is not a regular file, is too large
// or is not a zstd dictionary: invalid_argument, and `*why` (when given) says so in one line
// naming FILE.
ZSPOOL_API Result<std::unique_ptr<Compressor>> make_compressor(std::string_view spec,
                                                               std::string* why = nullptr);

// The memory compressors work in (zstd contexts: ~0.5-0.9 MiB each once used at 32 KiB pages;
// lzo work memory; bounce buffers) is lent per CPU for one call and kept for reuse, so it is
// bounded by the CPUs, not by the threads (as zram keeps one stream per CPU). This frees what no
// call holds now; the next call makes it again. For a process that stops compressing for a
// while: the nbdkit plugin calls it when its last client disconnects. Thread-safe.
ZSPOOL_API void release_idle_codec_memory();

// Dictionary sizes train_zstd_dictionary makes and make_compressor loads.
inline constexpr std::size_t kMinDictionaryBytes = 256;  // ZDICT_DICTSIZE_MIN
inline constexpr std::size_t kMaxDictionaryBytes = std::size_t{16} << 20;

// Trains a zstd dictionary of at most dict_bytes (kMinDictionaryBytes ..
// kMaxDictionaryBytes) on `samples`, sample_size bytes each, back to back, with libzstd's
// ZDICT_trainFromBuffer. Errors: invalid_argument (bad sizes, or the library's refusal, e.g.
// too few samples or samples too alike: `*why` gets its message), out_of_memory.
ZSPOOL_API Result<std::vector<std::byte>> train_zstd_dictionary(std::span<const std::byte> samples,
                                                                std::size_t sample_size,
                                                                std::size_t dict_bytes,
                                                                std::string* why = nullptr);

// The id of the zstd dictionary in `bytes`, or invalid_argument when they are not one (no
// dictionary magic, or id 0: raw content, which frames could not name).
ZSPOOL_API Result<std::uint32_t> zstd_dictionary_id(std::span<const std::byte> bytes);

// The canonical algorithm names, each accepted by make_compressor: {"lz4", "lzo1x", "zstd"}.
ZSPOOL_API std::vector<std::string> compressor_names();

}  // namespace zspool
