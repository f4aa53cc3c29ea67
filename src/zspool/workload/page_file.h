// A data file read one page at a time (pread), never loaded whole: the source of `zspool
// replay`'s writes, which may name any page of a file far larger than memory.
//
//   file:  │ page 0 │ page 1 │ ... │ page n-2 │ tail ░░ zeros │
//                                              └ page n-1: the partial tail, zero-padded
//
// page_count() is ceil(file size / page_size), so every byte of the file lies in some page, as
// Corpus::from_paths cuts files. Only the tail past the size taken at open is zero-padded.
//
// The file must not change while it is read: a replay verifies the store against it. Each
// read_page checks, after its pread, that the file still has the size, modification time and
// status-change time it had at open (fstat on the descriptor), and that the pread returned
// every byte below that size; if not, the read is an error (io_error) whose `why` says the
// file changed or was read short, so a truncated or rewritten data file is never blamed on
// the store nor read as zeros. changed_since_open() asks the same question without reading.
// A change made after the last read_page is not seen by it.
//
// Inputs that would block are refused: open takes regular files only and opens with
// O_NONBLOCK (a FIFO named by mistake neither hangs the open nor passes), and a read that
// would block fails with EAGAIN rather than waiting forever. A /proc file (/proc/kmsg) is
// regular with size 0: it has no pages, so a trace naming any page of it fails validation and
// it is never read; a sysfs file claims 4096 bytes and holds fewer: its read is short, an error.
#pragma once

#include <sys/stat.h>

#include <ctime>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "zspool/platform/error.h"

namespace zspool::tools {

class PageFile {
 public:
  PageFile() = default;  // no file: page_count() 0
  ~PageFile();
  PageFile(PageFile&& other) noexcept;
  PageFile& operator=(PageFile&& other) noexcept;
  PageFile(const PageFile&) = delete;
  PageFile& operator=(const PageFile&) = delete;

  // Opens `path` for reading. Errors: invalid_argument (page_size 0, or not a regular file),
  // not_found (no such file), io_error (cannot open or examine it); `*why`, when given, gets a
  // one-line explanation naming the path.
  static Result<PageFile> open(const std::string& path, std::uint32_t page_size,
                               std::string* why = nullptr);

  std::uint64_t page_count() const { return (size_ + page_size_ - 1) / page_size_; }
  std::uint64_t size_bytes() const { return size_; }
  std::uint32_t page_size() const { return page_size_; }
  const std::string& path() const { return path_; }

  // Fills `out` (exactly page_size() bytes) with page `index`, zero-padded past the end of the
  // file as it was at open. invalid_argument: index >= page_count() or out of the wrong size;
  // io_error: pread failed, the file changed since open, or it gave fewer bytes than its size
  // promised. `*why`, when given, gets one line naming the path and what happened.
  Error read_page(std::uint64_t index, std::span<std::byte> out, std::string* why = nullptr) const;

  // Whether the file's size, modification time or status-change time differ from what they
  // were at open (or it can no longer be examined); `*why` then says how.
  bool changed_since_open(std::string* why = nullptr) const;

 private:
  // What fstat said at open; any difference later means the file changed under us.
  struct Stamp {
    std::uint64_t size = 0;
    timespec modified{};
    timespec status_changed{};
  };
  static Stamp stamp_of(const struct stat& st);
  PageFile(int fd, std::string path, std::uint32_t page_size, Stamp stamp);
  void close();

  int fd_ = -1;
  std::string path_;
  std::uint32_t page_size_ = 1;
  std::uint64_t size_ = 0;
  Stamp stamp_;
};

}  // namespace zspool::tools
