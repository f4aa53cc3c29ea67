#include "zspool/bench/alloc_trace.h"

#include <lz4.h>

#include <numeric>
#include <utility>

#include "zspool/workload/rng.h"

namespace zspool::tools {

void AllocTrace::add(std::span<const std::byte> stored, bool huge) {
  offsets_.push_back(bytes_.size());
  sizes_.push_back(static_cast<std::uint32_t>(stored.size()));
  bytes_.insert(bytes_.end(), stored.begin(), stored.end());
  huge_objects_ += huge ? 1 : 0;
}

AllocTrace AllocTrace::from_corpus(const Corpus& corpus, std::uint32_t huge_class_size) {
  AllocTrace trace;
  trace.page_size_ = corpus.page_size();
  trace.huge_class_size_ = huge_class_size;
  trace.corpus_pages_ = corpus.page_count();
  trace.bytes_.reserve(corpus.size_bytes() / 2);
  std::vector<std::byte> out(LZ4_compressBound(static_cast<int>(corpus.page_size())));
  for (std::uint64_t i = 0; i < corpus.page_count(); ++i) {
    const std::span<const std::byte> page = corpus.page(i);
    std::uint64_t word = 0;
    if (is_same_filled(page, &word)) {
      ++trace.same_filled_pages_;
      trace.zero_pages_ += word == 0 ? 1 : 0;
      continue;
    }
    const int n = LZ4_compress_default(reinterpret_cast<const char*>(page.data()),
                                       reinterpret_cast<char*>(out.data()),
                                       static_cast<int>(page.size()), static_cast<int>(out.size()));
    if (n <= 0 || static_cast<std::uint32_t>(n) >= huge_class_size) {
      trace.add(page, true);
    } else {
      trace.add(std::span<const std::byte>(out).first(static_cast<std::size_t>(n)), false);
    }
  }
  return trace;
}

std::vector<std::uint64_t> random_half(std::uint64_t n, std::uint64_t seed) {
  std::vector<std::uint64_t> order(n);
  std::iota(order.begin(), order.end(), std::uint64_t{0});
  SplitMix64 rng(seed);
  const std::uint64_t half = n / 2;
  for (std::uint64_t i = 0; i < half; ++i) {
    std::swap(order[i], order[i + rng.uniform_below(n - i)]);
  }
  order.resize(half);
  return order;
}

}  // namespace zspool::tools
