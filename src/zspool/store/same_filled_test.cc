#include "zspool/store/same_filled.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace zspool {
namespace {

constexpr std::size_t kPage = 4096;

std::vector<std::byte> page_of_word(std::uint64_t word, std::size_t size = kPage) {
  std::vector<std::byte> page(size);
  for (std::size_t i = 0; i + 8 <= size; i += 8) std::memcpy(page.data() + i, &word, 8);
  return page;
}

TEST(SameFilledTest, FindsTheRepeatedWord) {
  for (std::uint64_t word : {0ull, ~0ull, 0x0101010101010101ull, 0xDEADBEEFCAFEF00Dull, 1ull}) {
    EXPECT_EQ(same_filled_word(page_of_word(word)), word);
  }
  EXPECT_EQ(same_filled_word(page_of_word(42, 8)), 42u);  // a single word
}

TEST(SameFilledTest, AnyDifferingByteMeansNotSameFilled) {
  std::vector<std::byte> page = page_of_word(0xDEADBEEFCAFEF00Dull);
  for (std::size_t i = 0; i < page.size(); ++i) {
    page[i] ^= std::byte{0x10};
    ASSERT_EQ(same_filled_word(page), std::nullopt) << "byte " << i;
    page[i] ^= std::byte{0x10};
  }
  EXPECT_TRUE(same_filled_word(page).has_value());
}

TEST(SameFilledTest, RepeatedBytePatternWithOtherPeriodIsNotSameFilled) {
  // Period 16 bytes: two different words alternating.
  std::vector<std::byte> page = page_of_word(0x1111111111111111ull);
  for (std::size_t i = 8; i < page.size(); i += 16) std::memset(page.data() + i, 0x22, 8);
  EXPECT_EQ(same_filled_word(page), std::nullopt);
}

TEST(SameFilledTest, EmptyOrRaggedPageIsNotSameFilled) {
  EXPECT_EQ(same_filled_word({}), std::nullopt);
  std::vector<std::byte> zeros(kPage + 4);
  EXPECT_EQ(same_filled_word(zeros), std::nullopt);
  EXPECT_EQ(same_filled_word(std::span(zeros).first(7)), std::nullopt);
  EXPECT_EQ(same_filled_word(std::span(zeros).first(kPage)), 0u);
}

TEST(SameFilledTest, FillRebuildsThePage) {
  for (std::uint64_t word : {0ull, 0xABABABABABABABABull, 0x0123456789ABCDEFull}) {
    std::vector<std::byte> page(kPage, std::byte{0x77});
    fill_with_word(page, word);
    EXPECT_EQ(page, page_of_word(word)) << std::hex << word;
    EXPECT_EQ(same_filled_word(page), word);
  }
}

TEST(SameFilledTest, FillWritesExactlyTheSpanAndItsTail) {
  const std::uint64_t word = 0x0123456789ABCDEFull;
  std::vector<std::byte> buffer(32, std::byte{0x77});
  fill_with_word(std::span(buffer).subspan(4, 19), word);  // two words and a 3-byte tail
  std::byte expected_word[8];
  std::memcpy(expected_word, &word, 8);
  for (std::size_t i = 0; i < buffer.size(); ++i) {
    const bool inside = i >= 4 && i < 23;
    EXPECT_EQ(buffer[i], inside ? expected_word[(i - 4) % 8] : std::byte{0x77}) << i;
  }
  fill_with_word({}, word);  // empty: nothing to do, nothing touched
}

}  // namespace
}  // namespace zspool
