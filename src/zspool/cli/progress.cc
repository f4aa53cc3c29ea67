#include "zspool/cli/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "zspool/cli/size_arg.h"

namespace zspool::tools {
namespace {

constexpr int kDefaultWidth = 80;
constexpr int kMinBarWidth = 10;
constexpr const char* kEraseLine = "\r\x1b[K";

bool is_terminal(std::FILE* out) {
  return out != nullptr && ::isatty(::fileno(out)) == 1;
}

int terminal_width(std::FILE* out) {
  winsize size{};
  if (::ioctl(::fileno(out), TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return kDefaultWidth;
}

std::string format_rate(double per_second, ProgressUnit unit) {
  if (unit == ProgressUnit::bytes) return format_byte_rate(per_second);
  return format_count(per_second) + "/s";
}

// "[#####.....]" filled in proportion to fraction (clamped to 0..1), `width` columns in all.
std::string bar(double fraction, int width) {
  const auto inner = static_cast<std::size_t>(std::max(width - 2, 0));
  const auto filled = static_cast<std::size_t>(std::clamp(fraction, 0.0, 1.0) * inner);
  std::string text(inner + 2, '.');
  text.front() = '[';
  text.back() = ']';
  std::fill_n(text.begin() + 1, filled, '#');
  return text;
}

// Counts print raw (they are exact); bytes print as sizes.
std::string done_of_total(const ProgressFrame& f) {
  if (f.unit == ProgressUnit::bytes) {
    return f.total == 0 ? format_bytes(f.done) : format_bytes(f.done) + "/" + format_bytes(f.total);
  }
  return f.total == 0 ? fmt::format("{}", f.done) : fmt::format("{}/{}", f.done, f.total);
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const auto s = static_cast<std::uint64_t>(std::llround(seconds));
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

std::string format_count(double count) {
  if (!std::isfinite(count) || count < 0) count = 0;
  if (count < 999.5) return fmt::format("{:.0f}", count);
  static constexpr const char* kSuffixes[] = {"k", "M", "G", "T", "P", "E"};
  int i = -1;
  do {
    count /= 1000;
    ++i;
  } while (count >= 999.95 && i + 1 < 6);
  return fmt::format("{:.1f}{}", count, kSuffixes[i]);
}

std::string progress_line(const ProgressFrame& f, int width) {
  const double rate = f.elapsed_seconds > 0 ? f.done / f.elapsed_seconds : 0;
  std::string stats;
  if (f.total != 0) {
    // Fixed-width fields, so the bar keeps its length from frame to frame.
    ProgressFrame at_end = f;
    at_end.done = f.total;
    const std::size_t count_width = done_of_total(at_end).size();
    const double fraction = static_cast<double>(f.done) / static_cast<double>(f.total);
    const double eta = rate > 0 && f.done < f.total ? (f.total - f.done) / rate : 0;
    const bool eta_known = rate > 0 || f.done >= f.total;
    stats = fmt::format("  {:>{}}  {:>5.1f}%  {:>11}  ETA {:>5}", done_of_total(f), count_width,
                        100.0 * fraction, format_rate(rate, f.unit),
                        eta_known ? format_duration(eta) : format_duration(-1));
  } else {
    stats = "  " + done_of_total(f) + "  " + format_rate(rate, f.unit);
  }
  std::string line = f.label;
  const int room = width - static_cast<int>(line.size() + 1 + stats.size());
  if (f.total != 0 && room >= kMinBarWidth) {
    line += ' ';
    line += bar(static_cast<double>(f.done) / static_cast<double>(f.total), room);
  }
  line += stats;
  if (static_cast<int>(line.size()) > width) line.resize(std::max(width, 0));
  return line;
}

Progress::Progress(std::string label, std::uint64_t total, ProgressOptions options)
    : label_(std::move(label)),
      total_(total),
      out_(options.out),
      draw_(options.draw.value_or(is_terminal(options.out))),
      min_interval_(options.min_interval),
      unit_(options.unit),
      width_(options.width > 0 ? options.width
             : draw_           ? terminal_width(out_)
                               : kDefaultWidth),
      start_(Clock::now()),
      next_draw_ticks_(ticks(start_)) {}

Progress::~Progress() {
  finish();
}

void Progress::advance(std::uint64_t n) {
  const std::uint64_t done = done_.fetch_add(n, std::memory_order_relaxed) + n;
  if (!draw_) return;
  const auto now = Clock::now();
  if (ticks(now) < next_draw_ticks_.load(std::memory_order_relaxed)) return;
  std::unique_lock lock(draw_mutex_, std::try_to_lock);
  if (!lock.owns_lock() || finished_) return;
  if (ticks(now) < next_draw_ticks_.load(std::memory_order_relaxed)) return;  // drawn meanwhile
  next_draw_ticks_.store(ticks(now + min_interval_), std::memory_order_relaxed);
  redraw(done, now);
}

void Progress::redraw(std::uint64_t done, Clock::time_point now) {
  const ProgressFrame frame{label_, done, total_,
                            std::chrono::duration<double>(now - start_).count(), unit_};
  // One column short of the width, so the cursor never wraps to the next line.
  const std::string line = progress_line(frame, width_ - 1);
  std::fprintf(out_, "\r%s\x1b[K", line.c_str());
  std::fflush(out_);
  redraws_.fetch_add(1, std::memory_order_relaxed);
}

void Progress::finish() {
  const std::lock_guard lock(draw_mutex_);
  if (finished_) return;
  finished_ = true;
  if (draw_ && redraws_.load(std::memory_order_relaxed) > 0) {
    std::fputs(kEraseLine, out_);
    std::fflush(out_);
  }
}

ProgressFactory terminal_progress() {
  return [](const std::string& label, std::uint64_t total) {
    return std::make_unique<Progress>(label, total);
  };
}

}  // namespace zspool::tools
