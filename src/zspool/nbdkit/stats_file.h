// zspool::nbd::StatsFile — the plugin's stats-file=PATH: a file an operator watches like
// /sys/block/zram0/mm_stat, rewritten about once a second by a background thread.
//
//   PATH        two lines, numbers separated by spaces, as zram's sysfs files print them:
//                 line 1: mm_stat   orig_data_size compr_data_size mem_used_total mem_limit
//                                   mem_used_max same_pages pages_compacted huge_pages
//                                   huge_pages_since
//                 line 2: bd_stat   bd_count bd_reads bd_writes   (pages)
//   PATH.json   one JSON object: format_store_stats_json (every store counter and the pool's)
//
// Each file is replaced atomically: written to a fresh temporary beside it (PATH.XXXXXX, made
// with mkstemp: O_EXCL, so no existing file or symlink is ever opened), then renamed over PATH,
// so a reader sees the old figures or the new ones, never a mix or a torn file. PATH.json is
// replaced first, so once PATH shows a set of figures, PATH.json shows them or newer ones.
//
// Only our own files are replaced. open() (at load) accepts a PATH (and PATH.json) that does not
// exist, or a regular file whose contents are such figures — a stats file a previous run left
// — and refuses anything else with a reason: a file of other contents, a symlink, a directory, a
// device. From then on each path remembers the file it holds (device, inode and contents: a file
// made where ours was removed often reuses its inode number); a rewrite that
// finds another file there (someone put one) leaves it alone and fails, as does every later
// one. So no file the plugin did not create (or check) is ever destroyed. A path found missing
// (an operator removed it) is simply made again.
//
// Thread-safety: open(), start() and stop() from one thread (the plugin's load/unload);
// write_now() from any thread (it serializes itself).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "zspool/platform/error.h"
#include "zspool/store/store.h"

namespace zspool::nbd {

// The two lines of PATH (each ending in '\n').
std::string stats_file_text(const StoreStats& s);

class StatsFile {
 public:
  // `stats` is called from the background thread and from write_now().
  StatsFile(std::string path, std::function<StoreStats()> stats);
  ~StatsFile();  // stop()
  StatsFile(const StatsFile&) = delete;
  StatsFile& operator=(const StatsFile&) = delete;

  // Checks that PATH and PATH.json are absent or stats files (see the top), then writes both.
  // invalid_argument (a file that is not ours) or io_error, with the reason in *why.
  Error open(std::string* why);
  // Writes both files now; io_error when either cannot be written or renamed, or a file that
  // is not ours has appeared at either path (see the top).
  Error write_now();
  // Starts the thread that calls write_now() every `period` until stop(). A failed write is
  // retried on the next tick. No-op when running.
  void start(std::chrono::milliseconds period = std::chrono::seconds(1));
  // Stops the thread (returns once it has exited). No-op when not running.
  void stop();

  // The file this plugin last put at a path (or found there and checked): device, inode and
  // contents.
  struct FileId {
    bool known = false;
    unsigned long long dev = 0, ino = 0;
    std::string text;
  };

 private:
  void run(std::chrono::milliseconds period);

  Error replace(const std::string& path, std::string_view text, FileId& id);

  const std::string path_;
  const std::function<StoreStats()> stats_;
  std::mutex write_mutex_;  // one write_now() at a time; guards the FileIds
  FileId text_id_, json_id_;
  std::mutex mutex_;  // guards stopping_
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace zspool::nbd
