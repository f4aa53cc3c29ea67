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
//     threads at once. Scratch state (zstd contexts, the lzo work memory) is per thread, made on
//     a thread's first call and freed when the thread exits.
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
};

// Builds a compressor from a spec:
//   "lz4"                 LZ4_compress_default
//   "lz4:N"               LZ4_compress_fast with acceleration N, 1..65537 (1 is the default)
//   "zstd"                zstd at level 3
//   "zstd:N"              zstd at level N, 1..22
//   "lzo1x", "lzo",       lzo1x-1. "lzo-rle" is zram's name for its run-length variant of lzo,
//   "lzo-rle"             which liblzo2 lacks; it maps to plain lzo1x (same format family,
//                         slightly worse on zero runs).
// Anything else: Error::invalid_argument. unsupported if the lzo library fails to initialise.
ZSPOOL_API Result<std::unique_ptr<Compressor>> make_compressor(std::string_view spec);

// The canonical algorithm names, each accepted by make_compressor: {"lz4", "lzo1x", "zstd"}.
ZSPOOL_API std::vector<std::string> compressor_names();

}  // namespace zspool
