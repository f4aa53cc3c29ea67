#include "zspool/platform/file_identity.h"

#include <cerrno>
#include <cstring>

namespace zspool {

bool FileIdentity::operator==(const FileIdentity& other) const noexcept {
  if (rdev != 0 || other.rdev != 0) return rdev == other.rdev;
  return device == other.device && inode == other.inode;
}

FileIdentity identity_of(const struct stat& st) noexcept {
  const bool is_device = S_ISBLK(st.st_mode) || S_ISCHR(st.st_mode);
  return FileIdentity{.device = static_cast<std::uint64_t>(st.st_dev),
                      .inode = static_cast<std::uint64_t>(st.st_ino),
                      .rdev = is_device ? static_cast<std::uint64_t>(st.st_rdev) : 0};
}

Result<FileIdentity> file_identity(const std::string& path, std::string* why) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (why != nullptr) *why = path + ": " + std::strerror(err);
    return err == ENOENT || err == ENOTDIR ? Error::not_found : Error::io_error;
  }
  return identity_of(st);
}

bool same_file(const std::string& a, const std::string& b) {
  const Result<FileIdentity> ia = file_identity(a);
  const Result<FileIdentity> ib = file_identity(b);
  return ia.ok() && ib.ok() && *ia == *ib;
}

}  // namespace zspool
