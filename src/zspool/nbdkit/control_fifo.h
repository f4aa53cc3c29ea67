// zspool::nbd::ControlFifo — the plugin's control=PATH: a FIFO an operator writes the trace's
// store commands to, one per line, as zram takes `echo idle > /sys/block/zram0/idle`:
//
//   echo idle > PATH                  mark every page in memory idle (idle SECONDS: only those
//                                     not used for that long)
//   echo 'writeback idle' > PATH      write them back (huge, incompressible, idle+huge, all [N];
//                                     writeback N: the pool's coldest zspages)
//   echo 'writeback-limit 1000' > PATH   the writeback budget, in pages
//   echo compact > PATH               compact the pool
//   echo 'recompress huge' > PATH     recompress (with recompress-with= ... when the store has
//                                     secondary compressors)
//
// Each line is parsed as a trace line (workload/trace.h: the same words, the same checks) and run
// by run_store_command (workload/store_command.h); control_line() says what happened in one line
// ("control: writeback idle: wrote back 12 pages", or "control: line 3: ..." for a bad one),
// which the plugin logs. Page commands and `stats` are refused: the control FIFO changes no data.
//
// The FIFO is made by create() (mkfifo, mode 0600; PATH must not exist: nothing there is ever
// replaced) and removed by the destructor only while it is still the FIFO that create() made
// (same device and inode). One thread reads it (start/stop), holding it open read-write so a
// writer closing its end is no end of file, and waking every 200 ms to see stop(). A line longer
// than kMaxTraceLineBytes reaches the handler cut one byte past it, so control_line refuses it.
//
// Thread-safety: create, start, stop and the destructor from one thread (the plugin's
// config/after_fork/unload); `on_line` runs on the reader thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "zspool/platform/error.h"
#include "zspool/store/store.h"

namespace zspool::nbd {

// Parses `line` (its number `line_number`, for messages) and runs it on `store`; the outcome as
// one line. `*failed` (when given) is set when the line was refused or the command failed.
std::string control_line(Store& store, std::string_view line, std::size_t line_number,
                         bool* failed = nullptr);

class ControlFifo {
 public:
  using LineHandler = std::function<void(std::string_view line, std::size_t line_number)>;

  // Makes the FIFO at `path`. `*why` gets one line ("control=PATH: exists; ...") on failure:
  // invalid_argument when something is there already, io_error when mkfifo fails otherwise.
  static Result<std::unique_ptr<ControlFifo>> create(const std::string& path, std::string* why);
  ~ControlFifo();  // stop(), then remove the FIFO if it is still ours
  ControlFifo(const ControlFifo&) = delete;
  ControlFifo& operator=(const ControlFifo&) = delete;

  // Starts the reader thread: each complete line goes to `on_line`. io_error if the FIFO cannot
  // be opened.
  Error start(LineHandler on_line);
  void stop();
  const std::string& path() const { return path_; }

 private:
  ControlFifo(std::string path, dev_t dev, ino_t ino)
      : path_(std::move(path)), dev_(dev), ino_(ino) {}
  void run(int fd);

  const std::string path_;
  const dev_t dev_;
  const ino_t ino_;
  LineHandler on_line_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace zspool::nbd
