// The size-class table, computed exactly as Linux's zsmalloc computes it.
//
// Candidate classes step by `delta` = page_size >> 8 from kMinObjectSize up to page_size:
//
//   candidate i:  size(i) = min(kMinObjectSize + i * delta, page_size),  i = 0 .. n - 1
//                 n = ceil((page_size - kMinObjectSize) / delta) + 1     (255 for 4 KiB pages)
//
// For each size, the zspage chain length is the k in 1..max_chain with the least tail waste
//
//   waste(k) = (k * page_size) mod size           (first k wins a tie; k = 1 if size is 2^m)
//   objs_per_zspage = k * page_size / size
//
// Walking from the largest size down, a candidate whose (pages_per_zspage, objs_per_zspage)
// equals the next larger distinct class's is merged into it: requests of that size use the
// larger class. A class with one page holding one object is "huge": its object carries no
// header. huge_class_size is the first size (from the top) whose zspage is neither one page
// nor one object, minus (kHeaderSize - 1): a request of at least huge_class_size bytes, plus
// its header, lands in a huge class. Worked figures for 4 KiB pages: chain 4 -> 69 distinct
// classes, huge_class_size 3257; chain 8 -> 119, 3625; chain 16 -> 192, 3833.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "zspool/platform/error.h"
#include "zspool/platform/export.h"

namespace zspool {

inline constexpr std::uint32_t kMinObjectSize = 32;
inline constexpr std::uint32_t kHeaderSize = 8;  // handle | tags, in every non-huge object
inline constexpr std::uint32_t kClassBits = 8;   // delta = page_size >> kClassBits
inline constexpr std::uint32_t kMinPageSize = 4096;
inline constexpr std::uint32_t kMaxPageSize = 65536;
inline constexpr std::uint32_t kMaxChain = 16;
inline constexpr std::uint32_t kDefaultChain = 8;

struct SizeClass {
  std::uint16_t index = 0;             // position among the distinct classes, ascending size
  std::uint32_t size = 0;              // object slot size in bytes, header included
  std::uint16_t pages_per_zspage = 0;  // 1 .. max_chain
  std::uint16_t objs_per_zspage = 0;   // pages_per_zspage * page_size / size
  bool huge = false;                   // one page, one object, no header

  // Bytes of payload an object of this class can hold.
  std::uint32_t capacity() const { return huge ? size : size - kHeaderSize; }
  // Bytes of each zspage that no object can use.
  std::uint32_t tail_waste(std::uint32_t page_size) const {
    return pages_per_zspage * page_size - objs_per_zspage * size;
  }
};

class ZSPOOL_API SizeClassTable {
 public:
  // page_size: a power of two in [kMinPageSize, kMaxPageSize]; max_chain in [1, kMaxChain].
  static Result<SizeClassTable> make(std::uint32_t page_size, std::uint32_t max_chain);
  // Whether make() takes these (checks only: callers that size buffers by page_size ask first).
  static bool valid_geometry(std::uint32_t page_size, std::uint32_t max_chain);
  SizeClassTable() = default;

  std::uint32_t page_size() const { return page_size_; }
  std::uint32_t max_chain() const { return max_chain_; }
  std::uint32_t delta() const { return page_size_ >> kClassBits; }
  std::uint32_t huge_class_size() const { return huge_class_size_; }
  // Largest request malloc accepts: page_size (it goes to a huge class, without a header).
  std::uint32_t max_alloc_size() const { return page_size_; }
  std::uint32_t candidate_count() const { return static_cast<std::uint32_t>(by_candidate_.size()); }

  // The distinct (merged) classes, ascending by size.
  std::span<const SizeClass> classes() const { return classes_; }
  const SizeClass& at(std::uint32_t index) const { return classes_[index]; }

  // The distinct class that serves a request of `request` bytes (1 .. max_alloc_size()):
  // the header is added unless the result is huge.
  const SizeClass& class_for_request(std::size_t request) const;

 private:
  std::uint32_t candidate_index(std::size_t size_with_header) const;

  std::uint32_t page_size_ = 0;
  std::uint32_t max_chain_ = 0;
  std::uint32_t huge_class_size_ = 0;
  std::vector<SizeClass> classes_;           // distinct, ascending
  std::vector<std::uint16_t> by_candidate_;  // candidate index -> distinct class index
};

// The chain length Linux picks for `size`: least (k * page_size) % size over k in 1..max_chain.
ZSPOOL_API std::uint32_t zspage_chain_length(std::uint32_t size, std::uint32_t page_size,
                                             std::uint32_t max_chain);

}  // namespace zspool
