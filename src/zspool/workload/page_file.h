// A data file read one page at a time (pread), never loaded whole: the source of `zspool
// replay`'s writes, which may name any page of a file far larger than memory.
//
//   file:  │ page 0 │ page 1 │ ... │ page n-2 │ tail ░░ zeros │
//                                              └ page n-1: the partial tail, zero-padded
//
// page_count() is ceil(file size / page_size), so every byte of the file lies in some page, as
// Corpus::from_paths cuts files. The size is taken at open; a file that shrinks later reads as
// zeros past its new end, never as an error.
#pragma once

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
  // file. invalid_argument: index >= page_count() or out of the wrong size; io_error: pread
  // failed.
  Error read_page(std::uint64_t index, std::span<std::byte> out) const;

 private:
  PageFile(int fd, std::string path, std::uint32_t page_size, std::uint64_t size);
  void close();

  int fd_ = -1;
  std::string path_;
  std::uint32_t page_size_ = 1;
  std::uint64_t size_ = 0;
};

}  // namespace zspool::tools
