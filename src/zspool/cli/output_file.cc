#include "zspool/cli/output_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

namespace zspool::tools {
namespace {

std::string failure(const std::string& path, const char* what, int err) {
  return fmt::format("{}: {}{}", path, what, std::strerror(err));
}

// Writes every byte to `fd` (restarting on EINTR and short writes); 0 or an errno.
int write_all(int fd, std::span<const std::byte> data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? errno : EIO;
    data = data.subspan(static_cast<std::size_t>(n));
  }
  return 0;
}

// Why `path` may not be replaced with --force, or "" when it is absent or a regular file.
std::string replace_problem(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return errno == ENOENT ? "" : failure(path, "", errno);
  if (S_ISREG(st.st_mode)) return "";
  return fmt::format("{}: not a regular file (not replaced, even with --force)", path);
}

// Puts the finished temporary file at `path`; "" or the reason.
std::string publish(const std::string& temp, const std::string& path, bool force) {
  if (!force) {
    if (::link(temp.c_str(), path.c_str()) == 0) return "";
    if (errno == EEXIST) return fmt::format("{}: exists (use --force to replace it)", path);
    return failure(path, "", errno);
  }
  if (std::string problem = replace_problem(path); !problem.empty()) return problem;
  if (::rename(temp.c_str(), path.c_str()) == 0) return "";
  return failure(path, "", errno);
}

}  // namespace

std::string write_output_file(const std::string& path, std::span<const std::byte> data,
                              bool force) {
  if (path.empty()) return "the output path is empty";
  if (!force) {
    // Refuse before writing anything: a user who forgot --force should not wait for the data.
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0)
      return fmt::format("{}: exists (use --force to replace it)", path);
  } else if (std::string problem = replace_problem(path); !problem.empty()) {
    return problem;
  }
  std::vector<char> temp(path.begin(), path.end());
  for (char c : std::string_view(".XXXXXX")) temp.push_back(c);
  temp.push_back('\0');
  const int fd = ::mkstemp(temp.data());
  if (fd < 0) return failure(path, "cannot create a file beside it: ", errno);
  const mode_t mask = ::umask(0);
  ::umask(mask);
  int err = ::fchmod(fd, 0666 & ~mask) != 0 ? errno : 0;
  if (err == 0) err = write_all(fd, data);
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  std::string problem = err != 0 ? failure(path, "", err) : publish(temp.data(), path, force);
  ::unlink(temp.data());  // after link(): the second name; after rename(): already gone
  return problem;
}

}  // namespace zspool::tools
