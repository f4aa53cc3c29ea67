#include "zspool/core/size_class.h"

#include <algorithm>
#include <bit>
#include <climits>

namespace zspool {

std::uint32_t zspage_chain_length(std::uint32_t size, std::uint32_t page_size,
                                  std::uint32_t max_chain) {
  if (std::has_single_bit(size)) return 1;
  std::uint32_t best = 1;
  std::uint32_t least_waste = UINT_MAX;
  for (std::uint32_t k = 1; k <= max_chain; ++k) {
    const std::uint32_t waste = (k * page_size) % size;
    if (waste < least_waste) {
      least_waste = waste;
      best = k;
    }
  }
  return best;
}

bool SizeClassTable::valid_geometry(std::uint32_t page_size, std::uint32_t max_chain) {
  return std::has_single_bit(page_size) && page_size >= kMinPageSize && page_size <= kMaxPageSize &&
         max_chain >= 1 && max_chain <= kMaxChain;
}

Result<SizeClassTable> SizeClassTable::make(std::uint32_t page_size, std::uint32_t max_chain) {
  if (!valid_geometry(page_size, max_chain)) return Error::invalid_argument;

  SizeClassTable t;
  t.page_size_ = page_size;
  t.max_chain_ = max_chain;
  const std::uint32_t delta = page_size >> kClassBits;
  const std::uint32_t candidates = (page_size - kMinObjectSize + delta - 1) / delta + 1;
  t.by_candidate_.resize(candidates);

  // Built from the largest size down, as Linux does; classes_ is reversed at the end.
  std::vector<SizeClass> descending;
  std::vector<std::uint32_t> distinct_of(candidates);
  for (std::uint32_t i = candidates; i-- > 0;) {
    const std::uint32_t size = std::min(kMinObjectSize + i * delta, page_size);
    const std::uint32_t pages = zspage_chain_length(size, page_size, max_chain);
    const std::uint32_t objs = pages * page_size / size;
    if (pages != 1 && objs != 1 && t.huge_class_size_ == 0)
      t.huge_class_size_ = size - (kHeaderSize - 1);
    if (!descending.empty() && descending.back().pages_per_zspage == pages &&
        descending.back().objs_per_zspage == objs) {
      distinct_of[i] = static_cast<std::uint32_t>(descending.size() - 1);
      continue;
    }
    SizeClass c;
    c.size = size;
    c.pages_per_zspage = static_cast<std::uint16_t>(pages);
    c.objs_per_zspage = static_cast<std::uint16_t>(objs);
    c.huge = pages == 1 && objs == 1;
    descending.push_back(c);
    distinct_of[i] = static_cast<std::uint32_t>(descending.size() - 1);
  }
  const auto n = static_cast<std::uint32_t>(descending.size());
  t.classes_.assign(descending.rbegin(), descending.rend());
  for (std::uint32_t k = 0; k < n; ++k) t.classes_[k].index = static_cast<std::uint16_t>(k);
  for (std::uint32_t i = 0; i < candidates; ++i)
    t.by_candidate_[i] = static_cast<std::uint16_t>(n - 1 - distinct_of[i]);
  return t;
}

std::uint32_t SizeClassTable::candidate_index(std::size_t size_with_header) const {
  if (size_with_header <= kMinObjectSize) return 0;
  const std::size_t idx = (size_with_header - kMinObjectSize + delta() - 1) / delta();
  return static_cast<std::uint32_t>(std::min<std::size_t>(idx, by_candidate_.size() - 1));
}

const SizeClass& SizeClassTable::class_for_request(std::size_t request) const {
  return classes_[by_candidate_[candidate_index(request + kHeaderSize)]];
}

}  // namespace zspool
