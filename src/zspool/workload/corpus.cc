// The Corpus container and Corpus::from_paths; the synthetic generators are in
// corpus_builtin.cc.
#include "zspool/workload/corpus.h"

#include "zspool/store/same_filled.h"

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>

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

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

// One walk over the named paths, appending pages until the page budget runs out.
class PathLoader {
 public:
  PathLoader(Corpus& corpus, std::uint64_t max_pages, LoadReport& report)
      : corpus_(corpus), max_pages_(max_pages), report_(report) {}

  void load_named(const fs::path& path, fs::file_type type) {
    if (type == fs::file_type::directory) {
      load_directory(path);
    } else {
      load_file(path);
    }
  }

 private:
  bool budget_left() const { return max_pages_ == 0 || corpus_.page_count() < max_pages_; }

  void load_directory(const fs::path& dir) {
    std::error_code ec;
    std::vector<fs::path> entries;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      entries.push_back(it->path());
    }
    if (ec) {
      ++report_.entries_skipped;
      return;
    }
    std::sort(entries.begin(), entries.end(), [](const fs::path& a, const fs::path& b) {
      return a.filename().native() < b.filename().native();
    });
    for (const fs::path& entry : entries) load_entry(entry);
  }

  // An entry met inside a directory: symlinks and special files are skipped.
  void load_entry(const fs::path& entry) {
    if (!budget_left()) {
      report_.truncated = true;
      return;
    }
    std::error_code ec;
    const fs::file_type type = fs::symlink_status(entry, ec).type();
    if (!ec && type == fs::file_type::directory) {
      load_directory(entry);
    } else if (!ec && type == fs::file_type::regular) {
      load_file(entry);
    } else {
      ++report_.entries_skipped;
    }
  }

  void load_file(const fs::path& path) {
    if (!budget_left()) {
      report_.truncated = true;
      return;
    }
    const std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
    if (!file) {
      ++report_.entries_skipped;
      return;
    }
    const std::uint64_t pages_before = corpus_.page_count();
    read_pages(file.get());
    if (std::ferror(file.get())) ++report_.entries_skipped;
    if (corpus_.page_count() > pages_before) ++report_.files_read;
  }

  // Appends the file's pages, the last one zero-padded, while the budget lasts.
  void read_pages(std::FILE* file) {
    std::vector<std::byte> buffer(corpus_.page_size());
    while (true) {
      const std::size_t got = std::fread(buffer.data(), 1, buffer.size(), file);
      if (got == 0) return;
      if (!budget_left()) {
        report_.truncated = true;
        return;
      }
      std::fill(buffer.begin() + static_cast<std::ptrdiff_t>(got), buffer.end(), std::byte{0});
      corpus_.append(buffer, classify_file_page(buffer));
      if (got < buffer.size()) return;
    }
  }

  Corpus& corpus_;
  const std::uint64_t max_pages_;
  LoadReport& report_;
};

// The named paths' types, or the first that is missing or of the wrong type.
Result<std::vector<fs::file_type>> check_named_paths(const std::vector<std::string>& paths,
                                                     LoadReport& report) {
  std::vector<fs::file_type> types;
  for (const std::string& path : paths) {
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
  PathLoader loader(corpus, max_bytes / page_size, r);
  for (std::size_t i = 0; i < paths.size(); ++i) loader.load_named(paths[i], (*types)[i]);
  if (corpus.empty()) {
    r.error = "no readable data under the given paths";
    return Error::io_error;
  }
  return corpus;
}

}  // namespace zspool::tools
