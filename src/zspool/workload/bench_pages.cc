#include "zspool/workload/bench_pages.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "zspool/workload/corpus.h"

namespace zspool::bench {
namespace {

// Appends up to `budget` bytes of whole pages of the regular files under `dir` whose names pass
// `want`, in sorted path order (so every run reads the same data).
void read_pages(const std::filesystem::path& dir, bool recursive, bool (*want)(const std::string&),
                std::size_t budget, std::vector<char>& out) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  std::error_code ec;
  const auto opts = fs::directory_options::skip_permission_denied;
  auto consider = [&](const fs::directory_entry& e) {
    std::error_code ignored;
    if (e.is_symlink(ignored) || !e.is_regular_file(ignored)) return;
    if (want(e.path().filename().string())) files.push_back(e.path());
  };
  if (recursive) {
    for (fs::recursive_directory_iterator it(dir, opts, ec), end; !ec && it != end;
         it.increment(ec))
      consider(*it);
  } else {
    for (fs::directory_iterator it(dir, opts, ec), end; !ec && it != end; it.increment(ec))
      consider(*it);
  }
  std::sort(files.begin(), files.end());
  const std::size_t limit = out.size() + budget;
  std::vector<char> page(kBenchPage);
  for (const fs::path& f : files) {
    std::ifstream in(f, std::ios::binary);
    while (out.size() + kBenchPage <= limit && in.read(page.data(), kBenchPage))
      out.insert(out.end(), page.begin(), page.end());
    if (out.size() + kBenchPage > limit) break;
  }
}

}  // namespace

BenchPages bench_pages(std::size_t bytes) {
  BenchPages p;
  p.bytes.reserve(bytes);
  read_pages(
      "/usr/lib/x86_64-linux-gnu", false,
      [](const std::string& n) { return n.find(".so") != std::string::npos; }, bytes / 2, p.bytes);
  read_pages(
      "/usr/include", true, [](const std::string&) { return true; }, bytes - p.bytes.size(),
      p.bytes);
  p.source = "4 KiB pages of /usr/lib/x86_64-linux-gnu/*.so* and /usr/include";
  if (p.bytes.size() < 256 * kBenchPage) {  // unreadable: fall back to synthetic pages
    const auto builtin = tools::Corpus::builtin(bytes / 4 / kBenchPage, kBenchPage);
    p.bytes.clear();
    for (std::uint64_t i = 0; i < builtin.page_count(); ++i) {
      const auto* page = reinterpret_cast<const char*>(builtin.page(i).data());
      p.bytes.insert(p.bytes.end(), page, page + kBenchPage);
    }
    p.source = "the builtin corpus (synthetic pages)";
  }
  return p;
}

}  // namespace zspool::bench
