// The micro-benchmarks' corpus: 4 KiB pages of real files, the kind zram and zswap hold (shared
// libraries and C headers), read the same way on every run; synthetic text / binary /
// random pages where those files are missing. Internal: for *_benchmark.cc only, not installed.
//
//   bench_pages(bytes)  ->  { pages back to back (a multiple of 4 KiB, <= bytes), source }
//     first half:  /usr/lib/x86_64-linux-gnu/*.so*   (sorted, whole pages only)
//     then:        /usr/include/**                  (sorted, recursive)
//     fewer than 256 pages readable: bytes / 4 of synthetic pages instead
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace zspool::bench {

inline constexpr std::size_t kBenchPage = 4096;

// Appends up to `budget` bytes of whole pages of the regular files under `dir` whose names pass
// `want`, in sorted path order (so every run reads the same data).
inline void read_pages(const std::filesystem::path& dir, bool recursive,
                       bool (*want)(const std::string&), std::size_t budget,
                       std::vector<char>& out) {
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

// Text-like, binary-like and random pages, for machines without the system files.
inline void synthesize_pages(std::size_t bytes, std::vector<char>& out) {
  static constexpr const char* kWords[] = {
      "static", "inline", "return", "struct", "const", "unsigned", "int", "void",   "#define", "if",
      "(",      ")",      "{",      "}",      ";",     "\n",       "  ",  "size_t", "char*"};
  std::mt19937_64 rng(42);
  while (out.size() < bytes) {
    const std::size_t start = out.size();
    switch (rng() % 4) {
      case 0:
      case 1:  // source text
        while (out.size() < start + kBenchPage) {
          const char* w = kWords[rng() % std::size(kWords)];
          out.insert(out.end(), w, w + std::strlen(w));
          out.push_back(' ');
        }
        break;
      case 2:  // structured binary: small integers and pointers
        while (out.size() < start + kBenchPage) {
          const std::uint64_t v =
              rng() % 4 == 0 ? 0x00007f0000000000ull | (rng() & 0xffff8) : rng() % 256;
          out.insert(out.end(), reinterpret_cast<const char*>(&v),
                     reinterpret_cast<const char*>(&v) + 8);
        }
        break;
      default:  // already compressed: random bytes
        while (out.size() < start + kBenchPage) out.push_back(static_cast<char>(rng()));
    }
    out.resize(start + kBenchPage);
  }
}

struct BenchPages {
  std::vector<char> bytes;  // whole pages, back to back
  std::string source;
  std::size_t count() const { return bytes.size() / kBenchPage; }
  const char* page(std::size_t i) const { return bytes.data() + i * kBenchPage; }
};

inline BenchPages bench_pages(std::size_t bytes) {
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
    p.bytes.clear();
    synthesize_pages(bytes / 4, p.bytes);
    p.source = "synthetic text/binary pages";
  }
  return p;
}

}  // namespace zspool::bench
