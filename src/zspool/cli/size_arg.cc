#include "zspool/cli/size_arg.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace zspool::tools {
namespace {

constexpr int kMaxFractionDigits = 6;
constexpr std::uint64_t kMaxU64 = std::numeric_limits<std::uint64_t>::max();
constexpr std::array<const char*, 7> kBinaryUnitNames = {"B",   "KiB", "MiB", "GiB",
                                                         "TiB", "PiB", "EiB"};

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_blank(char c) {
  return c == ' ' || c == '\t';
}
char lower(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

std::string_view trim_blanks(std::string_view text) {
  while (!text.empty() && is_blank(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_blank(text.back())) text.remove_suffix(1);
  return text;
}

// A parsed "digits[.digits]": the integer part, and the fraction as fraction / 10^digits.
struct Decimal {
  std::uint64_t integer = 0;
  std::uint64_t fraction = 0;
  std::uint64_t fraction_scale = 1;  // 10^(kept fraction digits)
  bool has_point = false;
};

// Consumes leading digits of `text` into `value`. Returns false on overflow or no digits.
bool take_digits(std::string_view& text, std::uint64_t& value) {
  if (text.empty() || !is_digit(text.front())) return false;
  value = 0;
  while (!text.empty() && is_digit(text.front())) {
    const auto digit = static_cast<std::uint64_t>(text.front() - '0');
    if (value > (kMaxU64 - digit) / 10) return false;
    value = value * 10 + digit;
    text.remove_prefix(1);
  }
  return true;
}

// Consumes fraction digits, keeping the first kMaxFractionDigits (the rest only truncate).
bool take_fraction(std::string_view& text, Decimal& d) {
  if (text.empty() || !is_digit(text.front())) return false;
  int kept = 0;
  while (!text.empty() && is_digit(text.front())) {
    if (kept < kMaxFractionDigits) {
      d.fraction = d.fraction * 10 + static_cast<std::uint64_t>(text.front() - '0');
      d.fraction_scale *= 10;
      ++kept;
    }
    text.remove_prefix(1);
  }
  return true;
}

// The multiplier a unit suffix names, or 0 if `unit` is not one.
std::uint64_t unit_multiplier(std::string_view unit) {
  if (unit.empty()) return 1;
  if (unit.size() == 1 && lower(unit[0]) == 'b') return 1;
  static constexpr std::string_view kPrefixes = "kmgtpe";
  const auto prefix = kPrefixes.find(lower(unit[0]));
  if (prefix == std::string_view::npos) return 0;
  const std::string_view rest = unit.substr(1);
  const bool suffix_ok = rest.empty() || (rest.size() == 1 && lower(rest[0]) == 'b') ||
                         (rest.size() == 2 && lower(rest[0]) == 'i' && lower(rest[1]) == 'b');
  if (!suffix_ok) return 0;
  return std::uint64_t{1} << (10 * (prefix + 1));
}

// floor(d * multiplier), or too_large.
Result<std::uint64_t> scale(const Decimal& d, std::uint64_t multiplier) {
  if (d.integer != 0 && multiplier > kMaxU64 / d.integer) return Error::too_large;
  const std::uint64_t whole = d.integer * multiplier;
  // fraction < scale <= 10^6, so neither product below overflows: multiplier / scale * fraction
  // < multiplier, and (multiplier % scale) * fraction < 10^12.
  const std::uint64_t part = multiplier / d.fraction_scale * d.fraction +
                             multiplier % d.fraction_scale * d.fraction / d.fraction_scale;
  if (part > kMaxU64 - whole) return Error::too_large;
  return whole + part;
}

}  // namespace

Result<std::uint64_t> parse_size(std::string_view text) {
  text = trim_blanks(text);
  Decimal d;
  if (!take_digits(text, d.integer)) {
    // Digits that overflow are "too large"; anything else without a leading digit is garbage.
    const bool all_digits = !text.empty() && is_digit(text.front());
    return all_digits ? Error::too_large : Error::invalid_argument;
  }
  if (!text.empty() && text.front() == '.') {
    text.remove_prefix(1);
    d.has_point = true;
    if (!take_fraction(text, d)) return Error::invalid_argument;
  }
  const std::string_view unit = trim_blanks(text);
  const std::uint64_t multiplier = unit_multiplier(unit);
  if (multiplier == 0) return Error::invalid_argument;
  if (d.has_point && multiplier == 1) return Error::invalid_argument;
  return scale(d, multiplier);
}

std::string describe_size_error(std::string_view text, Error error) {
  if (error == Error::too_large) return fmt::format("'{}' is too large", text);
  if (error == Error::out_of_bounds) return fmt::format("'{}': the size must not be 0", text);
  return fmt::format("'{}' is not a size (examples: 4096, 4K, 64MiB, 1.5G)", text);
}

Result<std::uint64_t> parse_positive_size(std::string_view text) {
  const Result<std::uint64_t> size = parse_size(text);
  if (size && *size == 0) return Error::out_of_bounds;
  return size;
}

Result<std::uint64_t> parse_count(std::string_view text, std::uint64_t min, std::uint64_t max) {
  std::uint64_t value = 0;
  std::string_view rest = text;
  if (!take_digits(rest, value)) {
    const bool all_digits = !text.empty() && std::all_of(text.begin(), text.end(), is_digit);
    return all_digits ? Error::too_large : Error::invalid_argument;
  }
  if (!rest.empty()) return Error::invalid_argument;
  if (value < min || value > max) return Error::out_of_bounds;
  return value;
}

std::string describe_count_error(std::string_view text, Error error, std::uint64_t min,
                                 std::uint64_t max) {
  if (error == Error::invalid_argument)
    return fmt::format("'{}' is not a count (decimal digits only)", text);
  return fmt::format("'{}' is out of range: {} .. {}", text, min, max);
}

std::string format_bytes(std::uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  std::size_t unit = 1;
  double value = static_cast<double>(bytes) / 1024.0;
  // Move up while the value would print as 1024.0 or more.
  while (value >= 1023.95 && unit + 1 < kBinaryUnitNames.size()) {
    value /= 1024.0;
    ++unit;
  }
  return fmt::format("{:.1f} {}", value, kBinaryUnitNames[unit]);
}

std::string format_byte_rate(double bytes_per_second) {
  if (!std::isfinite(bytes_per_second) || bytes_per_second < 0) return "0 B/s";
  if (bytes_per_second >= 18e18) return format_bytes(kMaxU64) + "/s";
  return format_bytes(static_cast<std::uint64_t>(bytes_per_second)) + "/s";
}

}  // namespace zspool::tools
