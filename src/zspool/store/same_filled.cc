#include "zspool/store/same_filled.h"

#include <cstring>

namespace zspool {
namespace {

constexpr std::size_t kWord = sizeof(std::uint64_t);

bool all_bytes_equal(std::uint64_t word) {
  const std::uint64_t low_byte = word & 0xFF;
  return word == low_byte * 0x0101010101010101ull;
}

}  // namespace

std::optional<std::uint64_t> same_filled_word(std::span<const std::byte> page) {
  if (page.empty() || page.size() % kWord != 0) return std::nullopt;
  std::uint64_t first;
  std::memcpy(&first, page.data(), kWord);
  // Every word equals the one before it exactly when the page equals itself shifted by one
  // word; libc's vectorised memcmp checks that faster than a word loop and stops at the first
  // difference.
  if (std::memcmp(page.data(), page.data() + kWord, page.size() - kWord) != 0) {
    return std::nullopt;
  }
  return first;
}

void fill_with_word(std::span<std::byte> page, std::uint64_t word) {
  if (page.empty()) return;
  if (all_bytes_equal(word)) {
    std::memset(page.data(), static_cast<int>(word & 0xFF), page.size());
    return;
  }
  std::size_t i = 0;
  for (; i + kWord <= page.size(); i += kWord) std::memcpy(page.data() + i, &word, kWord);
  std::memcpy(page.data() + i, &word, page.size() - i);
}

}  // namespace zspool
