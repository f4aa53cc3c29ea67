#include "zspool/cli/progress.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace zspool::tools {
namespace {

using namespace std::chrono_literals;

// Everything written to a temporary stream so far.
std::string contents(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string text;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, f)) > 0;) text.append(buffer, n);
  return text;
}

struct TempStream {
  std::FILE* f = std::tmpfile();
  ~TempStream() { std::fclose(f); }
};

TEST(Progress, DrawsNothingWhenNotATerminal) {
  TempStream stream;
  {
    Progress bar("fill", 100, {.out = stream.f});
    EXPECT_FALSE(bar.drawing());
    for (int i = 0; i < 100; ++i) bar.advance();
    EXPECT_EQ(bar.done(), 100u);
    EXPECT_EQ(bar.redraws(), 0u);
    bar.finish();
  }
  EXPECT_EQ(contents(stream.f), "");
}

TEST(Progress, FirstAdvanceDrawsThenThrottles) {
  TempStream stream;
  Progress bar("fill", 1000, {.out = stream.f, .draw = true, .min_interval = 1h, .width = 80});
  for (int i = 0; i < 1000; ++i) bar.advance();
  EXPECT_EQ(bar.redraws(), 1u);
  const std::string drawn = contents(stream.f);
  EXPECT_EQ(drawn.rfind("\rfill [", 0), 0u) << drawn;
  EXPECT_NE(drawn.find("1/1000"), std::string::npos) << drawn;
  EXPECT_EQ(drawn.substr(drawn.size() - 3), "\x1b[K");
}

TEST(Progress, FinishClearsTheLineOnceAndStopsDrawing) {
  TempStream stream;
  Progress bar("fill", 10, {.out = stream.f, .draw = true, .min_interval = 0ms, .width = 80});
  bar.advance();
  const std::size_t drawn = contents(stream.f).size();
  bar.finish();
  bar.finish();
  bar.advance();
  const std::string all = contents(stream.f);
  EXPECT_EQ(all.substr(drawn), "\r\x1b[K");
  EXPECT_EQ(bar.redraws(), 1u);
  EXPECT_EQ(bar.done(), 2u);
}

TEST(Progress, RedrawsAtMostOncePerInterval) {
  TempStream stream;
  Progress bar("fill", 0, {.out = stream.f, .draw = true, .min_interval = 50ms, .width = 80});
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < 260ms) bar.advance();
  const auto elapsed = std::chrono::steady_clock::now() - start;
  const auto most = static_cast<std::uint64_t>(elapsed / 50ms) + 1;
  EXPECT_LE(bar.redraws(), most);
  EXPECT_GE(bar.redraws(), 2u);  // the loop spans several intervals
}

TEST(Progress, CountsEveryAdvanceFromManyThreads) {
  TempStream stream;
  Progress bar("fill", 80000, {.out = stream.f, .draw = true, .min_interval = 1ms, .width = 80});
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&bar] {
      for (int i = 0; i < 10000; ++i) bar.advance();
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(bar.done(), 80000u);
  bar.finish();
  // Every redraw is one whole frame: "\r" ... "\x1b[K", never interleaved.
  const std::string all = contents(stream.f);
  std::size_t frames = 0;
  for (std::size_t at = 0; (at = all.find('\r', at)) != std::string::npos; ++at) ++frames;
  EXPECT_EQ(frames, bar.redraws() + 1);  // + the erase
}

TEST(ProgressLine, ShowsCountsPercentRateAndEta) {
  const std::string line = progress_line({"fill", 50, 100, 10.0, ProgressUnit::items}, 80);
  EXPECT_LE(line.size(), 80u);
  EXPECT_EQ(line.rfind("fill [", 0), 0u) << line;
  EXPECT_NE(line.find("50/100"), std::string::npos) << line;
  EXPECT_NE(line.find("50.0%"), std::string::npos) << line;
  EXPECT_NE(line.find("5/s"), std::string::npos) << line;
  EXPECT_NE(line.find("ETA  0:10"), std::string::npos) << line;
  // Half the bar is filled.
  const std::size_t open = line.find('['), close = line.find(']');
  const std::string inner = line.substr(open + 1, close - open - 1);
  EXPECT_EQ(std::count(inner.begin(), inner.end(), '#'), static_cast<long>(inner.size() / 2));
}

TEST(ProgressLine, TheBarKeepsItsLengthAsCountsGrow) {
  const auto bar_length = [](std::uint64_t done, double elapsed) {
    const std::string line = progress_line({"fill", done, 3000, elapsed, ProgressUnit::items}, 80);
    return line.find(']') - line.find('[');
  };
  EXPECT_EQ(bar_length(1, 0.001), bar_length(3000, 1000.0));
  EXPECT_EQ(bar_length(25, 1.0), bar_length(2500, 3.0));
}

TEST(ProgressLine, DropsTheBarWhenNarrowAndNeverExceedsTheWidth) {
  const ProgressFrame frame{"fill", 50, 100, 10.0, ProgressUnit::items};
  EXPECT_EQ(progress_line(frame, 40).find('['), std::string::npos);
  for (int width : {0, 5, 20, 40, 60, 200})
    EXPECT_LE(progress_line(frame, width).size(), static_cast<std::size_t>(width));
}

TEST(ProgressLine, UnknownTotalShowsCountAndRateOnly) {
  const std::string line = progress_line({"scan", 1234, 0, 2.0, ProgressUnit::items}, 80);
  EXPECT_EQ(line, "scan  1234  617/s");
}

TEST(ProgressLine, EtaUnknownBeforeAnyProgress) {
  const std::string line = progress_line({"fill", 0, 100, 0.0, ProgressUnit::items}, 80);
  EXPECT_NE(line.find("ETA --:--"), std::string::npos) << line;
}

TEST(ProgressLine, BytesPrintAsSizes) {
  const std::string line = progress_line({"load", 1 << 20, 2 << 20, 2.0, ProgressUnit::bytes}, 100);
  EXPECT_NE(line.find("1.0 MiB/2.0 MiB"), std::string::npos) << line;
  EXPECT_NE(line.find("512.0 KiB/s"), std::string::npos) << line;
}

TEST(FormatDuration, MinutesAndHours) {
  EXPECT_EQ(format_duration(0), "0:00");
  EXPECT_EQ(format_duration(7), "0:07");
  EXPECT_EQ(format_duration(754), "12:34");
  EXPECT_EQ(format_duration(10935), "3:02:15");
  EXPECT_EQ(format_duration(-1), "--:--");
  EXPECT_EQ(format_duration(std::nan("")), "--:--");
}

TEST(FormatCount, DecimalSuffixes) {
  EXPECT_EQ(format_count(0), "0");
  EXPECT_EQ(format_count(950), "950");
  EXPECT_EQ(format_count(999.7), "1.0k");
  EXPECT_EQ(format_count(12345), "12.3k");
  EXPECT_EQ(format_count(999'960), "1.0M");
  EXPECT_EQ(format_count(4.5e6), "4.5M");
  EXPECT_EQ(format_count(7.8e9), "7.8G");
  EXPECT_EQ(format_count(-3), "0");
}

}  // namespace
}  // namespace zspool::tools
