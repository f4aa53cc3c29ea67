// Same-filled pages: zram stores a page made of one repeated machine word as just that word.
//
//   page: │ w │ w │ w │ w │ ... │ w │   ──same_filled_word──▶  w      (no pool memory at all)
//         ◀──────fill_with_word(page, w)──────
//
// Words are 8 bytes in native byte order, so fill_with_word(page, *same_filled_word(page))
// rebuilds the page byte for byte on the machine that inspected it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "zspool/platform/export.h"

namespace zspool {

// The word repeated throughout `page`, or nullopt if any 8-byte word differs from the first.
// nullopt too when page is empty or its length is not a multiple of 8. Reads stop at the first
// difference.
ZSPOOL_API std::optional<std::uint64_t> same_filled_word(std::span<const std::byte> page);

// Writes `word` into every 8-byte word of `page`. A tail shorter than 8 bytes gets the word's
// leading bytes, as if the words ran on past the end.
ZSPOOL_API void fill_with_word(std::span<std::byte> page, std::uint64_t word);

}  // namespace zspool
