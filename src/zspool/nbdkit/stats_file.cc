// The stats file: see stats_file.h for its format and the atomic replacement.
#include "zspool/nbdkit/stats_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string_view>

namespace zspool::nbd {
namespace {

// Writes `text` to path + ".tmp", then renames it over `path`.
Error replace_file(const std::string& path, std::string_view text) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Error::io_error;
  bool ok = true;
  while (ok && !text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) text.remove_prefix(static_cast<std::size_t>(n));
  }
  ok = ::close(fd) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Error::io_error;
  }
  return Error::ok;
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

Error StatsFile::write_now() {
  std::lock_guard lock(write_mutex_);
  const StoreStats s = stats_();
  // PATH.json first: whoever sees new figures in PATH finds them in PATH.json too.
  const Error json = replace_file(path_ + ".json", format_store_stats_json(s) + "\n");
  const Error text = replace_file(path_, stats_file_text(s));
  return json != Error::ok ? json : text;
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
