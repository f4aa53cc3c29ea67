#include "zspool/cli/size_arg.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace zspool::tools {
namespace {

constexpr std::uint64_t KiB = 1024;
constexpr std::uint64_t MiB = KiB * 1024;
constexpr std::uint64_t GiB = MiB * 1024;

struct GoodSize {
  const char* text;
  std::uint64_t bytes;
};

TEST(ParseSize, AcceptsPlainAndBinaryUnits) {
  const GoodSize cases[] = {
      {"0", 0},
      {"4096", 4096},
      {"4K", 4 * KiB},
      {"4k", 4 * KiB},
      {"16K", 16 * KiB},
      {"64K", 64 * KiB},
      {"64M", 64 * MiB},
      {"1G", GiB},
      {"1.5G", GiB + GiB / 2},
      {"1.5g", GiB + GiB / 2},
      {"2T", 2 * 1024 * GiB},
      {"1P", 1024 * 1024 * GiB},
      {"1E", std::uint64_t{1} << 60},
      {"4KiB", 4 * KiB},
      {"4kib", 4 * KiB},
      {"4KB", 4 * KiB},
      {"4kb", 4 * KiB},
      {"512B", 512},
      {"512b", 512},
      {"4 KiB", 4 * KiB},
      {" 64M ", 64 * MiB},
      {"0.5K", 512},
      {"0.1K", 102},        // 102.4 truncates
      {"1.0000001G", GiB},  // digits past the sixth only truncate
      {"007", 7},
      {"18446744073709551615", UINT64_MAX},
      {"15.999999E", 18446742920788047009ull},  // floor(15.999999 * 2^60)
  };
  for (const GoodSize& c : cases) {
    const auto size = parse_size(c.text);
    ASSERT_TRUE(size.ok()) << c.text;
    EXPECT_EQ(*size, c.bytes) << c.text;
  }
}

TEST(ParseSize, RejectsGarbage) {
  for (const char* text : {"",    " ",     "K",     "KiB",  "B",    "abc",   "-1",  "-4K",  "+4K",
                           "4X",  "4KK",   "4KiBB", "4iB",  "8K5",  "4 K B", "1.5", "1.5B", ".5K",
                           "5.K", "1..5K", "1,5K",  "0x10", "4K\n", "1e3",   "4 4"}) {
    const auto size = parse_size(text);
    EXPECT_FALSE(size.ok()) << "'" << text << "'";
    EXPECT_EQ(size.error(), Error::invalid_argument) << "'" << text << "'";
  }
}

TEST(ParseSize, RejectsOverflow) {
  for (const char* text : {"18446744073709551616", "99999999999999999999999", "16E", "16777216T",
                           "17179869184G", "16.5E", "18014398509481984K"}) {
    const auto size = parse_size(text);
    EXPECT_FALSE(size.ok()) << text;
    EXPECT_EQ(size.error(), Error::too_large) << text;
  }
}

TEST(ParseSize, DescribesErrors) {
  EXPECT_EQ(describe_size_error("abc", Error::invalid_argument),
            "'abc' is not a size (examples: 4096, 4K, 64MiB, 1.5G)");
  EXPECT_EQ(describe_size_error("99E", Error::too_large), "'99E' is too large");
}

TEST(FormatBytes, PicksTheLargestUnitBelow1024) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(1023), "1023 B");
  EXPECT_EQ(format_bytes(1024), "1.0 KiB");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(12 * MiB + 3 * MiB / 10), "12.3 MiB");
  EXPECT_EQ(format_bytes(GiB), "1.0 GiB");
  EXPECT_EQ(format_bytes(MiB - 1), "1.0 MiB");  // not "1024.0 KiB"
  EXPECT_EQ(format_bytes(UINT64_MAX), "16.0 EiB");
}

TEST(FormatBytes, Rates) {
  EXPECT_EQ(format_byte_rate(512), "512 B/s");
  EXPECT_EQ(format_byte_rate(2.5 * MiB), "2.5 MiB/s");
  EXPECT_EQ(format_byte_rate(-1), "0 B/s");
  EXPECT_EQ(format_byte_rate(1.0 / 0.0), "0 B/s");
}

// `--pages 010` was octal 8 and `0x10` hex 16 (CLI11's integer parsing): decimal only here.
TEST(ParseCount, DecimalOnly) {
  EXPECT_EQ(parse_count("010").value(), 10u);
  EXPECT_EQ(parse_count("0").value(), 0u);
  EXPECT_EQ(parse_count("18446744073709551615").value(), UINT64_MAX);
  for (const char* bad : {"0x10", "0X10", "0b1", "0o7", "-1", "+1", " 1", "1 ", "1K", "", "1.0"}) {
    const auto parsed = parse_count(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.error(), Error::invalid_argument) << bad;
    EXPECT_NE(describe_count_error(bad, parsed.error(), 0, 9).find("decimal digits only"),
              std::string::npos);
  }
  EXPECT_EQ(parse_count("18446744073709551616").error(), Error::too_large);
  EXPECT_EQ(parse_size("010").value(), 10u);
}

// `--threads 4294967295` aborted and `--seconds -1` wrapped to 2^64 - 1: a range is checked.
TEST(ParseCount, RangeIsChecked) {
  EXPECT_EQ(parse_count("1", 1, 1024).value(), 1u);
  EXPECT_EQ(parse_count("1024", 1, 1024).value(), 1024u);
  EXPECT_EQ(parse_count("0", 1, 1024).error(), Error::out_of_bounds);
  EXPECT_EQ(parse_count("4294967295", 1, 1024).error(), Error::out_of_bounds);
  EXPECT_EQ(describe_count_error("0", Error::out_of_bounds, 1, 1024),
            "'0' is out of range: 1 .. 1024");
}

// `--size 0` silently meant the default.
TEST(ParsePositiveSize, ZeroIsRefused) {
  EXPECT_EQ(parse_positive_size("4K").value(), 4096u);
  EXPECT_EQ(parse_positive_size("0").error(), Error::out_of_bounds);
  EXPECT_EQ(parse_positive_size("0K").error(), Error::out_of_bounds);
  EXPECT_EQ(parse_positive_size("0x10").error(), Error::invalid_argument);
  EXPECT_EQ(describe_size_error("0", Error::out_of_bounds), "'0': the size must not be 0");
}

}  // namespace
}  // namespace zspool::tools
