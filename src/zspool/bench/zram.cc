#include "zspool/bench/zram.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include <fmt/format.h>

#include "zspool/bench/phase.h"

namespace zspool::tools {
namespace {

constexpr const char* kSysfs = "/sys/block/zram0/";
constexpr const char* kDevice = "/dev/zram0";
constexpr std::size_t kZramPage = 4096;

std::string attribute_path(std::string_view name) {
  return std::string(kSysfs) + std::string(name);
}

// Writes `value` to a zram0 sysfs attribute; "" or why it failed.
std::string write_attribute(std::string_view name, std::string_view value) {
  const std::string path = attribute_path(name);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return fmt::format("{}: {}", path, std::strerror(errno));
  const ssize_t n = ::write(fd, value.data(), value.size());
  const int saved = errno;
  ::close(fd);
  if (n == static_cast<ssize_t>(value.size())) return "";
  return fmt::format("echo {} > {}: {}", value, path, std::strerror(n < 0 ? saved : EIO));
}

std::string read_attribute(std::string_view name) {
  std::ifstream in(attribute_path(name));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

MmStat read_mm_stat() {
  std::istringstream in(read_attribute("mm_stat"));
  MmStat s{};
  for (std::uint64_t& field : s) in >> field;
  return s;
}

// Page-aligned memory for O_DIRECT, `pages` zram pages of it.
class AlignedPages {
 public:
  explicit AlignedPages(std::uint64_t pages)
      : data_(static_cast<std::byte*>(std::aligned_alloc(kZramPage, pages * kZramPage))) {}
  std::byte* page(std::uint64_t i) const { return data_.get() + i * kZramPage; }
  explicit operator bool() const { return data_ != nullptr; }

 private:
  struct Free {
    void operator()(std::byte* p) const { std::free(p); }
  };
  std::unique_ptr<std::byte, Free> data_;
};

// zram0 configured for one run; reset again when it goes, whatever happened.
class ZramSession {
 public:
  ZramSession() = default;
  ZramSession(const ZramSession&) = delete;
  ZramSession& operator=(const ZramSession&) = delete;
  ~ZramSession() {
    if (fd_ >= 0) ::close(fd_);
    if (touched_) write_attribute("reset", "1");
  }

  // "" once the device is set up and open, else why not.
  std::string open(const std::string& algorithm, std::uint64_t disksize) {
    touched_ = true;
    if (std::string e = write_attribute("reset", "1"); !e.empty()) return e;
    if (std::string e = write_attribute("comp_algorithm", algorithm); !e.empty()) return e;
    if (std::string e = write_attribute("disksize", std::to_string(disksize)); !e.empty()) return e;
    fd_ = ::open(kDevice, O_RDWR | O_DIRECT | O_CLOEXEC);
    if (fd_ < 0) return fmt::format("{}: {}", kDevice, std::strerror(errno));
    return "";
  }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  bool touched_ = false;
};

std::string why_zram_unavailable() {
  if (::geteuid() != 0) return "not running as root";
  if (::access(kSysfs, F_OK) != 0) return "no /sys/block/zram0 (modprobe zram)";
  if (read_attribute("initstate").rfind('1', 0) == 0)
    return "zram0 is already set up by someone else (initstate 1); left alone";
  return "";
}

off_t offset_of(std::uint64_t page) {
  return static_cast<off_t>(page * kZramPage);
}

PhaseResult write_all(int fd, const AlignedPages& data, std::uint64_t pages, unsigned threads,
                      const ProgressFactory& progress) {
  const auto progress_bar = progress("zram write", pages);
  return run_phase(pages, threads, 0, *progress_bar, [&](std::uint64_t p, auto, PhaseTally& tally) {
    if (::pwrite(fd, data.page(p), kZramPage, offset_of(p)) != static_cast<ssize_t>(kZramPage))
      tally.fail(p, "write", Error::io_error);
  });
}

// Reads every page into `into` and compares it with `expected(page)`.
template <typename Expected>
PhaseResult read_all(int fd, const AlignedPages& into, std::uint64_t pages, unsigned threads,
                     const ProgressFactory& progress, const Expected& expected) {
  const auto progress_bar = progress("zram read", pages);
  return run_phase(pages, threads, 0, *progress_bar, [&](std::uint64_t p, auto, PhaseTally& tally) {
    if (::pread(fd, into.page(p), kZramPage, offset_of(p)) != static_cast<ssize_t>(kZramPage)) {
      tally.fail(p, "read", Error::io_error);
    } else if (std::memcmp(into.page(p), expected(p), kZramPage) != 0) {
      tally.mismatch(p);
    }
  });
}

PhaseResult discard_half(int fd, std::span<const std::uint64_t> half, unsigned threads,
                         const ProgressFactory& progress) {
  const auto progress_bar = progress("zram discard", half.size());
  return run_phase(half.size(), threads, 0, *progress_bar,
                   [&](std::uint64_t k, auto, PhaseTally& tally) {
                     std::uint64_t range[2] = {half[k] * kZramPage, kZramPage};
                     if (::ioctl(fd, BLKDISCARD, range) != 0)
                       tally.fail(half[k], "discard", Error::io_error);
                   });
}

double timed_compact(std::uint64_t& errors) {
  const auto start = std::chrono::steady_clock::now();
  if (!write_attribute("compact", "1").empty()) ++errors;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

EngineFigures run_sequence(int fd, const Corpus& corpus, std::span<const std::uint64_t> half,
                           unsigned threads, const AlignedPages& data, const AlignedPages& scratch,
                           const ProgressFactory& progress) {
  const std::uint64_t pages = corpus.page_count();
  EngineFigures f;
  const PhaseResult w = write_all(fd, data, pages, threads, progress);
  f.write_seconds = w.seconds;
  f.after_fill = read_mm_stat();
  const PhaseResult r = read_all(fd, scratch, pages, threads, progress,
                                 [&](std::uint64_t p) { return corpus.page(p).data(); });
  f.read_seconds = r.seconds;
  const PhaseResult d = discard_half(fd, half, threads, progress);
  f.discard_seconds = d.seconds;
  f.after_discard = read_mm_stat();
  f.errors = w.tally.errors() + r.tally.errors() + d.tally.errors();
  f.compact_seconds = timed_compact(f.errors);
  f.after_compact = read_mm_stat();
  std::vector<bool> discarded(pages, false);
  for (const std::uint64_t p : half) discarded[p] = true;
  const std::vector<std::byte> zeros(kZramPage);
  const PhaseResult v = read_all(fd, scratch, pages, threads, progress, [&](std::uint64_t p) {
    return discarded[p] ? zeros.data() : corpus.page(p).data();
  });
  f.errors += v.tally.errors();
  return f;
}

}  // namespace

ZramOutcome bench_zram(const Corpus& corpus, std::span<const std::uint64_t> half, unsigned threads,
                       const std::string& algorithm, const ProgressFactory& progress) {
  ZramOutcome outcome;
  outcome.why_not = why_zram_unavailable();
  if (!outcome.why_not.empty()) return outcome;
  const std::uint64_t pages = corpus.page_count();
  AlignedPages data(pages), scratch(pages);
  if (!data || !scratch) {
    outcome.why_not = "no memory for O_DIRECT buffers";
    return outcome;
  }
  for (std::uint64_t p = 0; p < pages; ++p)
    std::memcpy(data.page(p), corpus.page(p).data(), kZramPage);
  std::memset(scratch.page(0), 0, pages * kZramPage);  // fault it in before the timed reads
  ZramSession session;
  outcome.why_not = session.open(algorithm, pages * kZramPage);
  if (!outcome.why_not.empty()) return outcome;
  outcome.figures = run_sequence(session.fd(), corpus, half, threads, data, scratch, progress);
  outcome.ran = true;
  return outcome;
}

}  // namespace zspool::tools
