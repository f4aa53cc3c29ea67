// Which file a path names, as the kernel tells files apart, so a command can refuse to write
// to one of its own inputs (`--backing` naming the `--data` file, say).
//
//   FileIdentity {device, inode, rdev}
//     regular files, directories, FIFOs: equal when (st_dev, st_ino) are equal, whatever path,
//       hard link or symlink led to them
//     block and character devices: equal when st_rdev is equal, so two device nodes of the
//       same disk count as the same file
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>

#include "zspool/platform/error.h"

namespace zspool {

struct FileIdentity {
  std::uint64_t device = 0;  // st_dev: the filesystem holding the inode
  std::uint64_t inode = 0;   // st_ino
  std::uint64_t rdev = 0;    // st_rdev for block and character devices, else 0

  bool operator==(const FileIdentity& other) const noexcept;
};

// The identity fstat/stat reported.
FileIdentity identity_of(const struct stat& st) noexcept;

// The identity of the file `path` names, symlinks followed (as opening it would). Errors:
// not_found (no such file), io_error (it cannot be examined); `*why`, when given, gets one line
// naming the path and the reason (strerror text).
Result<FileIdentity> file_identity(const std::string& path, std::string* why = nullptr);

// Whether `a` and `b` name the same file. False when either cannot be examined (a path that
// does not exist yet is no existing file's alias).
bool same_file(const std::string& a, const std::string& b);

}  // namespace zspool
