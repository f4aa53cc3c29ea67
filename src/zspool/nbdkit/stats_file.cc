// The stats file: see stats_file.h for its format and the atomic replacement.
#include "zspool/nbdkit/stats_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <tuple>

#include <nlohmann/json.hpp>

namespace zspool::nbd {
namespace {

Error write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Error::io_error;
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return Error::ok;
}

bool same_file(const struct stat& st, unsigned long long dev, unsigned long long ino) {
  return S_ISREG(st.st_mode) && st.st_dev == dev && st.st_ino == ino;
}

// The whole of the regular file at `path` (not following a symlink), or false.
bool read_file(const std::string& path, std::size_t max_bytes, struct stat* st, std::string* out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::fstat(fd, st) == 0 && S_ISREG(st->st_mode) &&
            static_cast<std::size_t>(st->st_size) <= max_bytes;
  if (ok) {
    out->assign(static_cast<std::size_t>(st->st_size), '\0');
    ok = ::pread(fd, out->data(), out->size(), 0) == static_cast<ssize_t>(out->size());
  }
  ::close(fd);
  return ok;
}

// Does `text` look like what stats_file_text writes: a line of 9 numbers, then one of 3?
bool is_stats_text(std::string_view text) {
  const auto counts_numbers = [](std::string_view line, int want) {
    int n = 0;
    bool in_number = false;
    for (const char c : line) {
      if (c >= '0' && c <= '9') {
        n += in_number ? 0 : 1;
        in_number = true;
      } else if (c == ' ') {
        in_number = false;
      } else {
        return false;
      }
    }
    return n == want;
  };
  const std::size_t first = text.find('\n');
  if (first == std::string_view::npos || text.back() != '\n') return false;
  const std::string_view second = text.substr(first + 1, text.size() - first - 2);
  return second.find('\n') == std::string_view::npos && counts_numbers(text.substr(0, first), 9) &&
         counts_numbers(second, 3);
}

// Does `text` look like what format_store_stats_json writes?
bool is_stats_json(std::string_view text) {
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_object() && j.contains("orig_data_size") && j.contains("mem_used_total") &&
         j.contains("compr_data_size");
}

// A stats file is small; anything over this is not one.
constexpr std::size_t kMaxStatsFileBytes = 1 << 20;

// Checks what lies at `path` at load: nothing (""), or a regular file that `recognise` accepts
// (then *found holds its identity and contents). Else the reason it may not be replaced.
std::string check_existing(const std::string& path, bool (*recognise)(std::string_view),
                           StatsFile::FileId* found) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return "";
    return path + ": " + std::strerror(errno);
  }
  if (S_ISLNK(st.st_mode)) return path + ": is a symbolic link; not replaced";
  if (!S_ISREG(st.st_mode)) return path + ": exists and is not a regular file; not replaced";
  struct stat opened {};
  std::string text;
  if (!read_file(path, kMaxStatsFileBytes, &opened, &text) ||
      !same_file(opened, st.st_dev, st.st_ino) || !recognise(text))
    return path + ": exists and is not a zspool stats file; not replaced";
  *found = StatsFile::FileId{true, static_cast<unsigned long long>(st.st_dev),
                             static_cast<unsigned long long>(st.st_ino), std::move(text)};
  return "";
}

// Is the file at `path` the one `id` names, holding what we last put there? (An inode number
// alone is not enough: a file made where ours was removed often gets the same one.)
bool holds_ours(const std::string& path, const StatsFile::FileId& id) {
  struct stat st {};
  std::string text;
  return id.known && read_file(path, kMaxStatsFileBytes, &st, &text) &&
         same_file(st, id.dev, id.ino) && text == id.text;
}

}  // namespace

std::string stats_file_text(const StoreStats& s) {
  return mm_stat_line(s) + "\n" + std::to_string(s.bd_count) + " " + std::to_string(s.bd_reads) +
         " " + std::to_string(s.bd_writes) + "\n";
}

StatsFile::StatsFile(std::string path, std::function<StoreStats()> stats)
    : path_(std::move(path)), stats_(std::move(stats)) {}

StatsFile::~StatsFile() {
  stop();
}

Error StatsFile::open(std::string* why) {
  std::lock_guard lock(write_mutex_);
  for (auto [path, recognise, id] : {std::tuple{path_, &is_stats_text, &text_id_},
                                     std::tuple{path_ + ".json", &is_stats_json, &json_id_}}) {
    if (std::string problem = check_existing(path, recognise, id); !problem.empty()) {
      if (why != nullptr) *why = std::move(problem);
      return Error::invalid_argument;
    }
  }
  return Error::ok;
}

Error StatsFile::write_now() {
  std::lock_guard lock(write_mutex_);
  const StoreStats s = stats_();
  // PATH.json first: whoever sees new figures in PATH finds them in PATH.json too.
  const Error json = replace(path_ + ".json", format_store_stats_json(s) + "\n", json_id_);
  const Error text = replace(path_, stats_file_text(s), text_id_);
  return json != Error::ok ? json : text;
}

// Puts `text` at `path` through a fresh temporary. The file there before is replaced only when
// it is `id` (ours); with RENAME_EXCHANGE the check happens after the swap, on the file swapped
// out, so a file someone put at `path` is swapped back untouched, with no window in which it
// could be lost. Filesystems without RENAME_EXCHANGE check just before a plain rename.
Error StatsFile::replace(const std::string& path, std::string_view text, FileId& id) {
  std::string tmp = path + ".XXXXXX";
  const int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) return Error::io_error;
  struct stat made {};
  bool ok = write_all(fd, text) == Error::ok && ::fchmod(fd, 0644) == 0 && ::fstat(fd, &made) == 0;
  ok = ::close(fd) == 0 && ok;
  const auto fail = [&] {
    ::unlink(tmp.c_str());
    return Error::io_error;
  };
  if (!ok) return fail();
  const auto adopt = [&] {
    id = FileId{true, static_cast<unsigned long long>(made.st_dev),
                static_cast<unsigned long long>(made.st_ino), std::string(text)};
    return Error::ok;
  };
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) == 0)
    return adopt();  // nothing was there
  if (errno == EEXIST &&
      ::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), RENAME_EXCHANGE) == 0) {
    if (holds_ours(tmp, id)) {  // what was at `path`, now at `tmp`
      ::unlink(tmp.c_str());
      return adopt();
    }
    // Not ours: swap it back; our new file, back at `tmp`, goes.
    (void)::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), RENAME_EXCHANGE);
    return fail();
  }
  if (errno != EINVAL && errno != ENOSYS && errno != EEXIST) return fail();
  // No RENAME_NOREPLACE / RENAME_EXCHANGE here: check, then rename.
  struct stat old {};
  const bool absent = ::lstat(path.c_str(), &old) != 0 && errno == ENOENT;
  if (!absent && !holds_ours(path, id)) return fail();
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return fail();
  return adopt();
}

void StatsFile::start(std::chrono::milliseconds period) {
  if (thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stopping_ = false;
  }
  thread_ = std::thread([this, period] { run(period); });
}

void StatsFile::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void StatsFile::run(std::chrono::milliseconds period) {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    (void)write_now();  // a failure is retried on the next tick
    lock.lock();
    wake_.wait_for(lock, period, [this] { return stopping_; });
  }
}

}  // namespace zspool::nbd
