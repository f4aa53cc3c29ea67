#include "zspool/nbdkit/control_fifo.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <variant>

#include <fmt/format.h>

#include "zspool/workload/store_command.h"
#include "zspool/workload/trace.h"

namespace zspool::nbd {

using tools::TraceError;
using tools::TraceOp;

std::string control_line(Store& store, std::string_view line, std::size_t line_number,
                         bool* failed) {
  auto refuse = [&](const std::string& message) {
    if (failed != nullptr) *failed = true;
    return fmt::format("control: line {}: {}", line_number, message);
  };
  if (failed != nullptr) *failed = false;
  if (line.size() > tools::kMaxTraceLineBytes)
    return refuse(fmt::format("line longer than {} bytes", tools::kMaxTraceLineBytes));
  if (line.find('\0') != std::string_view::npos) return refuse("NUL byte in the line");
  const auto parsed = tools::parse_trace_line(line, line_number);
  if (const auto* error = std::get_if<TraceError>(&parsed)) return refuse(error->message);
  const auto& op = std::get<std::optional<TraceOp>>(parsed);
  if (!op) return "";  // blank or a comment
  if (!tools::is_store_command(op->verb)) {
    return refuse(
        fmt::format("'{}' is not a control command (compact, writeback, "
                    "writeback-limit, idle, recompress)",
                    tools::trace_verb_name(op->verb)));
  }
  const tools::StoreCommandOutcome outcome = tools::run_store_command(store, *op);
  if (outcome.error != Error::ok) {
    if (failed != nullptr) *failed = true;
    return fmt::format("control: {}: {}", outcome.command, error_message(outcome.error));
  }
  return fmt::format("control: {}: {}", outcome.command, outcome.done);
}

Result<std::unique_ptr<ControlFifo>> ControlFifo::create(const std::string& path,
                                                         std::string* why) {
  auto say = [&](const std::string& message, Error e) {
    if (why != nullptr) *why = fmt::format("control={}: {}", path, message);
    return e;
  };
  if (path.empty()) return say("an empty path names no file", Error::invalid_argument);
  if (::mkfifo(path.c_str(), 0600) != 0) {
    if (errno == EEXIST)
      return say("exists; the plugin makes its own FIFO there and never replaces a file",
                 Error::invalid_argument);
    return say(std::strerror(errno), Error::io_error);
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISFIFO(st.st_mode))
    return say("the FIFO just made is gone", Error::io_error);
  return std::unique_ptr<ControlFifo>(new ControlFifo(path, st.st_dev, st.st_ino));
}

ControlFifo::~ControlFifo() {
  stop();
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0 && S_ISFIFO(st.st_mode) && st.st_dev == dev_ &&
      st.st_ino == ino_)
    ::unlink(path_.c_str());
}

Error ControlFifo::start(LineHandler on_line) {
  if (thread_.joinable()) return Error::ok;
  struct stat before {};
  if (::lstat(path_.c_str(), &before) != 0 || !S_ISFIFO(before.st_mode))
    return Error::io_error;  // never open what replaced the FIFO: a device's open may act
  // Read-write: this end keeps a writer open, so a client closing its end is not end of file.
  // O_NOFOLLOW: if PATH was swapped for a symlink since create(), nothing is followed.
  const int fd = ::open(path_.c_str(), O_RDWR | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Error::io_error;
  struct stat st {};
  // A FIFO, and the one create() made (an inode number alone may have been reused).
  if (::fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode) || st.st_dev != dev_ || st.st_ino != ino_) {
    ::close(fd);
    return Error::io_error;  // not the FIFO create() made
  }
  on_line_ = std::move(on_line);
  stopping_ = false;
  thread_ = std::thread([this, fd] { run(fd); });
  return Error::ok;
}

void ControlFifo::stop() {
  if (!thread_.joinable()) return;
  stopping_ = true;
  thread_.join();
}

void ControlFifo::run(int fd) {
  std::string pending;  // the current line so far; one byte past the maximum marks it too long
  std::size_t line_number = 0;
  char buf[4096];
  while (!stopping_) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) continue;  // EAGAIN (another reader won) or EINTR
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[i] != '\n') {
        if (pending.size() <= tools::kMaxTraceLineBytes) pending.push_back(buf[i]);
        continue;
      }
      on_line_(pending, ++line_number);
      pending.clear();
    }
  }
  ::close(fd);
}

}  // namespace zspool::nbd
