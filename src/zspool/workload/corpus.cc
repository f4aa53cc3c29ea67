// The Corpus container and Corpus::from_paths; the synthetic generators are in
// corpus_builtin.cc.
#include "zspool/workload/corpus.h"

#include "zspool/store/same_filled.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <new>
#include <optional>
#include <system_error>
#include <utility>
#include "zspool/platform/internal/os.h"

namespace zspool::tools {
namespace fs = std::filesystem;

std::string_view page_kind_name(PageKind kind) {
  switch (kind) {
    case PageKind::zero:
      return "zero";
    case PageKind::same_filled:
      return "same_filled";
    case PageKind::text:
      return "text";
    case PageKind::heap:
      return "heap";
    case PageKind::numeric:
      return "numeric";
    case PageKind::random:
      return "random";
    case PageKind::file:
      return "file";
  }
  return "unknown";
}

bool is_same_filled(std::span<const std::byte> page, std::uint64_t* word) {
  const std::optional<std::uint64_t> w = same_filled_word(page);
  if (w && word != nullptr) *word = *w;
  return w.has_value();
}

std::string count_of(std::uint64_t n, std::string_view noun) {
  return std::to_string(n) + " " + std::string(noun) + (n == 1 ? "" : "s");
}

Corpus::Corpus(std::uint32_t page_size) : page_size_(page_size) {
  assert(valid_page_size(page_size));
}

std::span<const std::byte> Corpus::page(std::uint64_t i) const {
  return std::span<const std::byte>(bytes_).subspan(i * page_size_, page_size_);
}

std::span<std::byte> Corpus::append_zeroed(PageKind kind) {
  const std::size_t at = bytes_.size();
  bytes_.resize(at + page_size_);
  kinds_.push_back(kind);
  ++counts_[static_cast<std::size_t>(kind)];
  return std::span<std::byte>(bytes_).subspan(at, page_size_);
}

void Corpus::append(std::span<const std::byte> data, PageKind kind) {
  assert(data.size() <= page_size_);
  const std::span<std::byte> page = append_zeroed(kind);
  std::copy(data.begin(), data.end(), page.begin());
}

void Corpus::reserve(std::uint64_t pages) {
  bytes_.reserve(pages * page_size_);
  kinds_.reserve(pages);
}

// ---- from_paths ------------------------------------------------------------------------------
namespace {

// File pages: zero and same-filled pages are labelled as such, the rest "file".
PageKind classify_file_page(std::span<const std::byte> page) {
  std::uint64_t word = 0;
  if (!is_same_filled(page, &word)) return PageKind::file;
  return word == 0 ? PageKind::zero : PageKind::same_filled;
}

// Why an entry gave no pages, for LoadReport::skipped.
std::string errno_text(int err) {
  return std::strerror(err);
}

// An open descriptor, closed on every way out.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// The names in an open directory, sorted bytewise ("." and ".." left out). Reads through a
// duplicate of the descriptor, which closedir closes; `dir` stays open.
std::optional<std::vector<std::string>> sorted_names(int dir, int* err) {
  const int dup = ::fcntl(dir, F_DUPFD_CLOEXEC, 0);
  DIR* stream = dup < 0 ? nullptr : ::fdopendir(dup);
  if (stream == nullptr) {
    *err = errno;
    if (dup >= 0) ::close(dup);
    return std::nullopt;
  }
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* entry = ::readdir(stream)) {
    const std::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  *err = errno;
  ::closedir(stream);
  if (*err != 0) return std::nullopt;
  std::sort(names.begin(), names.end());
  return names;
}

// One directory being walked: its sorted entries and how far the walk got. Only the deepest
// frame holds its directory open (so depth is bounded by memory, not by open files); a parent
// is reopened through ".." of its child and checked to be the same directory.
struct Frame {
  std::string path;
  std::vector<std::string> names;
  std::size_t next = 0;
  Fd dir;
  dev_t device = 0;
  ino_t inode = 0;
};

// One walk over the named paths, appending pages until the page budget runs out. Iterative:
// the walk's state is a vector of Frames, never the call stack, so any depth is walked.
class PathLoader {
 public:
  PathLoader(Corpus& corpus, std::uint64_t max_pages, LoadReport& report)
      : corpus_(corpus), max_pages_(max_pages), report_(report) {}

  void load_named(const std::string& path, fs::file_type type) {
    if (!budget_left()) {
      report_.truncated = true;
    } else if (type == fs::file_type::directory) {
      walk(path);
    } else {
      load_file(AT_FDCWD, path, path, /*follow=*/true);
    }
  }

 private:
  bool budget_left() const { return max_pages_ == 0 || corpus_.page_count() < max_pages_; }

  void skip(const std::string& path, std::string reason) {
    ++report_.entries_skipped;
    if (report_.skipped.size() < LoadReport::kMaxListedSkips)
      report_.skipped.push_back({path, std::move(reason)});
  }

  // Opens a directory (relative to `at`) and lists it into a new frame.
  std::optional<Frame> enter(int at, const std::string& name, const std::string& path,
                             bool follow) {
    Fd dir(
        ::openat(at, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW)));
    struct stat st {};
    if (!dir.ok() || ::fstat(dir.get(), &st) != 0) {
      skip(path, errno_text(errno));
      return std::nullopt;
    }
    int err = 0;
    std::optional<std::vector<std::string>> names = sorted_names(dir.get(), &err);
    if (!names) {
      skip(path, errno_text(err));
      return std::nullopt;
    }
    return Frame{path, std::move(*names), 0, std::move(dir), st.st_dev, st.st_ino};
  }

  void walk(const std::string& root) {
    std::vector<Frame> frames;
    if (auto frame = enter(AT_FDCWD, root, root, /*follow=*/true))
      frames.push_back(std::move(*frame));
    while (!frames.empty()) {
      Frame& top = frames.back();
      if (top.next == top.names.size()) {
        leave(frames);
        continue;
      }
      if (!budget_left()) {
        report_.truncated = true;
        return;
      }
      const std::string name = top.names[top.next++];  // a copy: visit may grow `frames`
      visit(frames, name, top.path + "/" + name);
    }
  }

  // An entry met inside a directory: symlinks and special files are skipped, with the reason.
  void visit(std::vector<Frame>& frames, const std::string& name, const std::string& path) {
    const int at = frames.back().dir.get();
    struct stat st {};
    if (::fstatat(at, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      skip(path, errno_text(errno));
    } else if (S_ISDIR(st.st_mode)) {
      if (auto child = enter(at, name, path, /*follow=*/false)) {
        frames.back().dir.reset();  // reopened through ".." when the child is done
        frames.push_back(std::move(*child));
      }
    } else if (S_ISREG(st.st_mode)) {
      load_file(at, name, path, /*follow=*/false);
    } else {
      skip(path, S_ISLNK(st.st_mode) ? "symbolic link (not followed)" : "not a regular file");
    }
  }

  // Done with the deepest directory: back to its parent, reopened through "..", which must be
  // the directory it was (else the rest of the walk under it is skipped, said so).
  void leave(std::vector<Frame>& frames) {
    Frame done = std::move(frames.back());
    frames.pop_back();
    if (frames.empty() || frames.back().dir.ok()) return;
    Frame& parent = frames.back();
    Fd dir(::openat(done.dir.get(), "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    struct stat st {};
    if (!dir.ok() || ::fstat(dir.get(), &st) != 0 || st.st_dev != parent.device ||
        st.st_ino != parent.inode) {
      skip(parent.path, "moved while it was walked; the rest of it was skipped");
      frames.clear();
      return;
    }
    parent.dir = std::move(dir);
  }

  void load_file(int at, const std::string& name, const std::string& path, bool follow) {
    // O_NONBLOCK: a FIFO swapped in does not hang the open, and a /proc file that would block
    // (/proc/kmsg) fails its read with EAGAIN instead of waiting forever.
    Fd file(
        ::openat(at, name.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW)));
    struct stat st {};
    if (!file.ok() || ::fstat(file.get(), &st) != 0) {
      skip(path, errno_text(errno));
      return;
    }
    if (!S_ISREG(st.st_mode)) {
      skip(path, "not a regular file");
      return;
    }
    const std::uint64_t pages_before = corpus_.page_count();
    if (const int err = read_pages(file.get()); err != 0) {
      skip(path,
           err == EAGAIN ? "reading it would block (a /proc or device file)" : errno_text(err));
    }
    if (corpus_.page_count() > pages_before) ++report_.files_read;
  }

  // Appends the file's pages, the last one zero-padded, while the budget lasts; 0 or an errno.
  int read_pages(int fd) {
    std::vector<std::byte> buffer(corpus_.page_size());
    while (true) {
      std::size_t got = 0;
      while (got < buffer.size()) {
        const ssize_t n = ::read(fd, buffer.data() + got, buffer.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno;
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
      }
      if (got == 0) return 0;
      if (!budget_left()) {
        report_.truncated = true;
        return 0;
      }
      std::fill(buffer.begin() + static_cast<std::ptrdiff_t>(got), buffer.end(), std::byte{0});
      corpus_.append(buffer, classify_file_page(buffer));
      if (got < buffer.size()) return 0;
    }
  }

  Corpus& corpus_;
  const std::uint64_t max_pages_;
  LoadReport& report_;
};

// "no readable data", with the first reason something was skipped.
std::string nothing_readable(const LoadReport& report) {
  std::string text = "no readable data under the given paths";
  if (report.skipped.empty()) return text;
  const SkippedEntry& first = report.skipped.front();
  text += " (skipped " + first.path + ": " + first.reason;
  if (report.entries_skipped > 1)
    text += ", and " + std::to_string(report.entries_skipped - 1) + " more";
  return text + ")";
}

// The named paths' types, or the first that is missing or of the wrong type.
Result<std::vector<fs::file_type>> check_named_paths(const std::vector<std::string>& paths,
                                                     LoadReport& report) {
  std::vector<fs::file_type> types;
  for (const std::string& path : paths) {
    if (os::path_has_nul(path)) {
      report.error = "the path holds a NUL byte: " + os::shown_path(path);
      return Error::invalid_argument;
    }
    std::error_code ec;
    const fs::file_type type = fs::status(path, ec).type();
    if (type == fs::file_type::not_found) {
      report.error = "no such file or directory: " + path;
      return Error::not_found;
    }
    if (ec) {
      report.error = "cannot access " + path + ": " + ec.message();
      return Error::io_error;
    }
    if (type != fs::file_type::regular && type != fs::file_type::directory) {
      report.error = "not a regular file or directory: " + path;
      return Error::invalid_argument;
    }
    types.push_back(type);
  }
  return types;
}

Error check_load_arguments(const std::vector<std::string>& paths, std::uint32_t page_size,
                           std::uint64_t max_bytes, LoadReport& report) {
  if (paths.empty()) {
    report.error = "no paths given";
  } else if (!Corpus::valid_page_size(page_size)) {
    report.error = "page size " + std::to_string(page_size) + " is not a multiple of 8";
  } else if (max_bytes != 0 && max_bytes < page_size) {
    report.error = "limit " + std::to_string(max_bytes) + " is below one page";
  } else {
    return Error::ok;
  }
  return Error::invalid_argument;
}

}  // namespace

Result<Corpus> Corpus::from_paths(const std::vector<std::string>& paths, std::uint32_t page_size,
                                  std::uint64_t max_bytes, LoadReport* report) {
  LoadReport local_report;
  LoadReport& r = report != nullptr ? *report : local_report;
  r = LoadReport{};
  if (const Error e = check_load_arguments(paths, page_size, max_bytes, r); e != Error::ok)
    return e;
  auto types = check_named_paths(paths, r);
  if (!types) return types.error();

  Corpus corpus(page_size);
  try {
    PathLoader loader(corpus, max_bytes / page_size, r);
    for (std::size_t i = 0; i < paths.size(); ++i) loader.load_named(paths[i], (*types)[i]);
  } catch (const std::bad_alloc&) {
    r.error = "out of memory after loading " + std::to_string(corpus.size_bytes()) +
              " bytes (set a smaller limit)";
    return Error::out_of_memory;
  }
  if (corpus.empty()) {
    r.error = nothing_readable(r);
    return Error::io_error;
  }
  return corpus;
}

}  // namespace zspool::tools
