// Byte sizes and counts on the command line: parsing "64M" and "010", printing "12.3 MiB".
//
// Numbers are decimal, always: "010" is ten (not octal eight) and "0x10" is refused (not
// sixteen), for sizes and counts alike. A count (parse_count) is digits only, no unit, sign,
// blank or prefix, within the range its option allows.
//
// Grammar accepted by parse_size (case-insensitive, surrounding blanks ignored):
//
//   size   := digits [ "." digits ] [ blanks ] [ unit ]
//   unit   := "B" | prefix [ "B" | "iB" ]        prefix := K | M | G | T | P | E
//
// Units are binary: K = 2^10, M = 2^20, ... E = 2^60 ("KB" and "KiB" both mean 1024). A
// fraction needs a prefix ("1.5G" = 1610612736; "1.5" and "1.5B" are rejected) and is exact
// to six decimal places; a result that is not a whole number of bytes is truncated toward
// zero ("0.1K" = 102). Rejected: empty text, signs ("-1", "+1"), missing digits (".5K", "5.K",
// "K"), unknown or repeated units ("4X", "4KK", "8K5"), and values above 2^64 - 1.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "zspool/platform/error.h"

namespace zspool::tools {

// The number of bytes `text` names. Errors: invalid_argument for text outside the grammar,
// too_large when the value does not fit in 64 bits.
Result<std::uint64_t> parse_size(std::string_view text);

// A one-line explanation of why parse_size(text) failed, for "zspool: <option>: <why>".
std::string describe_size_error(std::string_view text, Error error);

// parse_size, with 0 refused (invalid_argument): for a size where 0 would mean nothing, or
// silently mean "the default" ("--size 0"). describe_size_error explains its errors too.
Result<std::uint64_t> parse_positive_size(std::string_view text);

// A count in plain decimal digits within [min, max]. Errors: invalid_argument (not digits
// only: a sign, a unit, "0x10", blanks), out_of_bounds (outside the range; "-1" is a sign, so
// invalid_argument, never 2^64 - 1), too_large (beyond 64 bits).
Result<std::uint64_t> parse_count(std::string_view text, std::uint64_t min = 0,
                                  std::uint64_t max = UINT64_MAX);

// A one-line explanation of why parse_count(text, min, max) failed.
std::string describe_count_error(std::string_view text, Error error, std::uint64_t min,
                                 std::uint64_t max);

// `bytes` for people: "512 B", "4.0 KiB", "12.3 MiB", ... up to EiB, one decimal place.
std::string format_bytes(std::uint64_t bytes);

// A rate for people: "512 B/s", "12.3 MiB/s" (negative or non-finite rates print as "0 B/s").
std::string format_byte_rate(double bytes_per_second);

}  // namespace zspool::tools
