// A one-line progress bar on stderr for long verbs (run, replay, bench, soak).
//
//   Progress bar("fill", corpus.page_count());
//   for (...) { ...; bar.advance(); }   // from any number of threads
//   bar.finish();                       // clears the line; the destructor does it too
//
// The bar draws only when its stream is a terminal (isatty), so output redirected to a file or
// a pipe never holds it. Redraws are throttled to one per `min_interval` (default 100 ms: at
// most 10 a second), so advance() costs an atomic add and a clock read between redraws; the
// thread that finds a redraw due draws it, and a thread that finds another drawing skips.
//
//   fill [##########..........]  5120/10240  50.0%  812.4k/s  ETA 0:06
//
// With a total of 0 (unknown) the bar, percentage and ETA are left out. In byte mode the
// counts and rate print as sizes ("1.5 GiB", "812.4 MiB/s").
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>

#include "zspool/bench/phase.h"

namespace zspool::tools {

enum class ProgressUnit { items, bytes };

struct ProgressOptions {
  std::FILE* out = stderr;
  std::optional<bool> draw;  // default: whether `out` is a terminal
  std::chrono::milliseconds min_interval{100};
  ProgressUnit unit = ProgressUnit::items;
  int width = 0;  // columns; 0: the terminal's width, or 80
};

// One frame of the bar, as progress_line draws it.
struct ProgressFrame {
  std::string label;
  std::uint64_t done = 0;
  std::uint64_t total = 0;  // 0: unknown
  double elapsed_seconds = 0;
  ProgressUnit unit = ProgressUnit::items;
};

// The text of one frame, at most `width` columns (no "\r", no terminal codes).
std::string progress_line(const ProgressFrame& frame, int width);

// "0:07", "12:34", "3:02:15"; "--:--" for a negative or non-finite duration.
std::string format_duration(double seconds);

// "950", "12.3k", "4.5M", "7.8G" (decimal, for item counts and rates).
std::string format_count(double count);

class Progress final : public PhaseProgress {
 public:
  Progress(std::string label, std::uint64_t total, ProgressOptions options = {});
  ~Progress() override;
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Counts `n` more done; redraws if one is due. Thread-safe.
  void advance(std::uint64_t n = 1) override;
  // Erases the bar's line; later advance() calls count but draw nothing. Idempotent.
  void finish() override;

  bool drawing() const { return draw_; }
  std::uint64_t done() const { return done_.load(std::memory_order_relaxed); }
  std::uint64_t redraws() const { return redraws_.load(std::memory_order_relaxed); }

 private:
  using Clock = std::chrono::steady_clock;
  static std::int64_t ticks(Clock::time_point t) { return t.time_since_epoch().count(); }
  void redraw(std::uint64_t done, Clock::time_point now);  // draw_mutex_ held

  const std::string label_;
  const std::uint64_t total_;
  std::FILE* const out_;
  const bool draw_;
  const Clock::duration min_interval_;
  const ProgressUnit unit_;
  const int width_;
  const Clock::time_point start_;

  std::atomic<std::uint64_t> done_{0};
  std::atomic<std::int64_t> next_draw_ticks_;  // Clock ticks before which no redraw happens
  std::atomic<std::uint64_t> redraws_{0};
  std::mutex draw_mutex_;  // one drawer at a time; guards finished_
  bool finished_ = false;
};

// The factory the verbs hand to bench/: a bar on stderr per phase, drawn when it is a terminal.
ProgressFactory terminal_progress();

}  // namespace zspool::tools
