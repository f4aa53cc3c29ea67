#include "zspool/workload/page_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>
#include "zspool/platform/internal/os.h"

namespace zspool::tools {
namespace {

void explain(std::string* why, const std::string& text) {
  if (why != nullptr) *why = text;
}

Error error_from_errno(int err) {
  return err == ENOENT || err == ENOTDIR ? Error::not_found : Error::io_error;
}

// Reads up to out.size() bytes at `offset`, retrying short reads and EINTR; returns the bytes
// read (fewer only at end of file) or -1 with errno set.
ssize_t pread_fully(int fd, std::span<std::byte> out, std::uint64_t offset) {
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n =
        ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return static_cast<ssize_t>(done);
}

bool same_time(const timespec& a, const timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

}  // namespace

PageFile::Stamp PageFile::stamp_of(const struct stat& st) {
  return Stamp{.size = static_cast<std::uint64_t>(st.st_size),
               .modified = st.st_mtim,
               .status_changed = st.st_ctim};
}

PageFile::PageFile(int fd, std::string path, std::uint32_t page_size, Stamp stamp)
    : fd_(fd), path_(std::move(path)), page_size_(page_size), size_(stamp.size), stamp_(stamp) {}

PageFile::~PageFile() {
  close();
}

PageFile::PageFile(PageFile&& other) noexcept {
  *this = std::move(other);
}

PageFile& PageFile::operator=(PageFile&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    page_size_ = std::exchange(other.page_size_, 1);
    size_ = std::exchange(other.size_, 0);
    stamp_ = std::exchange(other.stamp_, Stamp{});
  }
  return *this;
}

void PageFile::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Result<PageFile> PageFile::open(const std::string& path, std::uint32_t page_size,
                                std::string* why) {
  if (page_size == 0) {
    explain(why, "page size 0");
    return Error::invalid_argument;
  }
  if (os::path_has_nul(path)) {
    explain(why, "cannot open " + os::shown_path(path) + ": the path holds a NUL byte");
    return Error::invalid_argument;
  }
  // O_NONBLOCK: a FIFO named by mistake must not hang the open (it fails the S_ISREG check).
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    explain(why, "cannot open " + path + ": " + std::strerror(err));
    return error_from_errno(err);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    explain(why, "cannot examine " + path + ": " + std::strerror(err));
    return Error::io_error;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    explain(why, "not a regular file: " + path);
    return Error::invalid_argument;
  }
  return PageFile(fd, path, page_size, stamp_of(st));
}

Error PageFile::read_page(std::uint64_t index, std::span<std::byte> out, std::string* why) const {
  if (index >= page_count() || out.size() != page_size_) return Error::invalid_argument;
  const std::uint64_t offset = index * page_size_;
  const ssize_t got = pread_fully(fd_, out, offset);
  if (got < 0) {
    const int err = errno;
    explain(why, "cannot read " + path_ + ": " + std::strerror(err) +
                     (err == EAGAIN ? " (reading it would block: not a plain file)" : ""));
    return Error::io_error;
  }
  if (changed_since_open(why)) return Error::io_error;
  const std::uint64_t promised = std::min<std::uint64_t>(page_size_, size_ - offset);
  if (static_cast<std::uint64_t>(got) < promised) {
    explain(why, fmt::format("{} gave {} bytes at offset {} where its size ({}) promised {}", path_,
                             got, offset, size_, promised));
    return Error::io_error;
  }
  std::fill(out.begin() + got, out.end(), std::byte{0});
  return Error::ok;
}

bool PageFile::changed_since_open(std::string* why) const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    explain(why, "cannot examine " + path_ + ": " + std::strerror(errno));
    return true;
  }
  const Stamp now = stamp_of(st);
  if (now.size != stamp_.size) {
    explain(why, fmt::format("{} changed while it was being read: its size went from {} to {} "
                             "bytes (it must not change during the replay)",
                             path_, stamp_.size, now.size));
    return true;
  }
  if (!same_time(now.modified, stamp_.modified) ||
      !same_time(now.status_changed, stamp_.status_changed)) {
    explain(why, path_ +
                     " changed while it was being read: it was modified (it must not change "
                     "during the replay)");
    return true;
  }
  return false;
}

}  // namespace zspool::tools
