// The allocation trace `zspool bench alloc` replays: what zram would ask its pool for when a
// corpus is written to it.
//
//   corpus page ──same-filled?──▶ skipped (zram keeps only the word; counted)
//               ──LZ4_compress_default──▶ n bytes ──n >= huge_class_size?──▶ page_size raw bytes
//                                                 ──otherwise──────────────▶ the n compressed bytes
//
// Every allocator in the benchmark allocates exactly these sizes in this order and writes
// exactly these bytes, so their figures compare like for like. The "random half" the benchmark
// frees and allocates again is a seeded shuffle (own PRNG: the same seed gives the same half
// on every machine and build).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "zspool/workload/corpus.h"

namespace zspool::tools {

class AllocTrace {
 public:
  // The trace of `corpus`, with pages compressing to huge_class_size bytes or more stored raw.
  static AllocTrace from_corpus(const Corpus& corpus, std::uint32_t huge_class_size);

  std::uint64_t objects() const { return sizes_.size(); }
  std::uint32_t size(std::uint64_t i) const { return sizes_[i]; }
  // Object i's bytes: its compressed form, or the raw page for a huge object.
  std::span<const std::byte> object(std::uint64_t i) const {
    return std::span<const std::byte>(bytes_).subspan(offsets_[i], sizes_[i]);
  }

  std::uint64_t corpus_pages() const { return corpus_pages_; }
  std::uint64_t same_filled_pages() const { return same_filled_pages_; }  // zero pages included
  std::uint64_t zero_pages() const { return zero_pages_; }
  std::uint64_t huge_objects() const { return huge_objects_; }
  std::uint64_t requested_bytes() const { return bytes_.size(); }  // sum of every size
  std::uint32_t page_size() const { return page_size_; }
  std::uint32_t huge_class_size() const { return huge_class_size_; }

 private:
  void add(std::span<const std::byte> stored, bool huge);

  std::vector<std::uint32_t> sizes_;
  std::vector<std::uint64_t> offsets_;
  std::vector<std::byte> bytes_;
  std::uint64_t corpus_pages_ = 0;
  std::uint64_t same_filled_pages_ = 0;
  std::uint64_t zero_pages_ = 0;
  std::uint64_t huge_objects_ = 0;
  std::uint32_t page_size_ = 0;
  std::uint32_t huge_class_size_ = 0;
};

// floor(n / 2) distinct indices in [0, n), in the order to free (and re-allocate) them: the
// first half of a Fisher-Yates shuffle of 0..n-1 driven by splitmix64(seed).
std::vector<std::uint64_t> random_half(std::uint64_t n, std::uint64_t seed);

}  // namespace zspool::tools
