#include "zspool/cli/output_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "zspool/cli/command.h"

namespace zspool::tools {
namespace {

std::string failure(const std::string& path, const char* what, int err) {
  return fmt::format("{}: {}{}", path, what, std::strerror(err));
}

OutputFileStatus failed(std::string problem) {
  return {.problem = std::move(problem), .refused = false};
}

OutputFileStatus refused(std::string problem) {
  return {.problem = std::move(problem), .refused = true};
}

std::string exists_line(const std::string& path) {
  return fmt::format("{}: exists (use --force to replace it)", path);
}

std::string not_regular_line(const std::string& path) {
  return fmt::format("{}: not a regular file (not replaced, even with --force)", path);
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

// The mkstemp template of the temporary file: in `path`'s directory (so link and rename stay on
// one file system), with a short fixed name, since `path`'s own name may already be as long as
// a name may be (NAME_MAX) and "PATH.XXXXXX" would then be too long.
std::string temp_template(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  return dir + ".zspool-tmp-XXXXXX";
}

// With --force, as the temporary file is published: `path` must be absent or a regular file.
OutputFileStatus replace_check(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0)
    return errno == ENOENT ? OutputFileStatus{} : failed(failure(path, "", errno));
  if (S_ISREG(st.st_mode)) return {};
  return refused(not_regular_line(path));
}

// Puts the finished temporary file at `path`, and removes the temporary name unless rename()
// took it: a name rename() freed may be someone else's file by the time we would unlink it.
OutputFileStatus publish(const std::string& temp, const std::string& path, bool force) {
  if (!force) {
    const bool linked = ::link(temp.c_str(), path.c_str()) == 0;
    const int err = errno;
    ::unlink(temp.c_str());  // linked: the second name of the file now at `path`
    if (linked) return {};
    return err == EEXIST ? refused(exists_line(path)) : failed(failure(path, "", err));
  }
  OutputFileStatus status = replace_check(path);
  if (status.ok()) {
    if (::rename(temp.c_str(), path.c_str()) == 0) return {};
    status = failed(failure(path, "", errno));
  }
  ::unlink(temp.c_str());
  return status;
}

}  // namespace

std::string output_refusal(const std::string& path, bool force) {
  if (path.empty()) return "the output path is empty";
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return "";  // absent, or writing it will say why not
  if (!force) return exists_line(path);
  return S_ISREG(st.st_mode) ? "" : not_regular_line(path);
}

OutputFileStatus write_output_file(const std::string& path, std::span<const std::byte> data,
                                   bool force) {
  if (std::string refusal = output_refusal(path, force); !refusal.empty())
    return refused(std::move(refusal));
  std::string temp = temp_template(path);
  const int fd = ::mkstemp(temp.data());
  if (fd < 0) return failed(failure(path, "cannot create a file beside it: ", errno));
  const mode_t mask = ::umask(0);
  ::umask(mask);
  int err = ::fchmod(fd, 0666 & ~mask) != 0 ? errno : 0;
  if (err == 0) err = write_all(fd, data);
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err == 0) return publish(temp, path, force);
  ::unlink(temp.c_str());
  return failed(failure(path, "", err));
}

void stop_unless_written(const OutputFileStatus& status) {
  if (status.ok()) return;
  if (status.refused) usage_error("-o " + status.problem);
  command_failed("-o " + status.problem);
}

}  // namespace zspool::tools
