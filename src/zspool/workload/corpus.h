// Folder workload/: what the measurements and tests feed the store (uses store for the
// same-filled rule): corpora and the one page generator (this file), files of pages
// (page_file.h), the block-trace format (trace.h), the one PRNG (rng.h), the micro-benchmarks'
// pages (bench_pages.h). Not installed.
//
// Page corpora: the data `zspool` stores in a pool for its main job and its benchmarks.
//
// A Corpus is a run of fixed-size pages in one contiguous buffer, each page labelled with the
// kind of data it holds. Two ways to make one:
//
// Corpus::builtin(pages, page_size, seed) -- synthetic, DETERMINISTIC: the same arguments give
// the same bytes on every machine and every build (own PRNG, integer arithmetic, bytes written
// little-endian; no std distributions, no libm). The documented mix, as shares of the pages:
//
//   kind         share  content
//   zero          10%   all zero bytes
//   same_filled    5%   one nonzero 8-byte word repeated (all-ones, a repeated byte, a
//                       repeated 32-bit pattern, or a random word)
//   text          30%   English-like prose: words from an embedded list of 256 common words
//                       drawn with Zipf weights (rank r weighs 1/r), one token in four a
//                       common phrase ("one of the"), capitalized sentences, commas, . ? !,
//                       occasional numbers, lines wrapped at 72 columns, blank lines between
//                       paragraphs
//   heap          25%   a malloc heap: 8-byte aligned chunks (header word = size | 1), fields
//                       laid out by a few per-page struct templates: pointers near the page's
//                       own 0x00007f.. address (some null), small integers, enums, zero
//                       padding, short strings, small doubles, an occasional hash; ~1 chunk in
//                       10 free (two list pointers, then zeros)
//   numeric       20%   arrays, one kind per page: int32 random walks that often stand still,
//                       float32 series, sorted uint64 ids, int64 nanosecond timestamps (small
//                       deltas throughout), sparse uint32 counters (three in four zero)
//   random        10%   PRNG bytes: incompressible
//
// Each kind's page count is its share of `pages` rounded by largest remainder (so within one
// page of share * pages; see builtin_kind_counts); the kinds are interleaved in a seeded
// shuffle, and each page's bytes depend only on (seed, page index, kind).
//
// Corpus::small_records(pages, page_size, seed) -- synthetic and deterministic like builtin: the
// heap of a process holding many small records, every page PageKind::heap. Each page is a run
// of glibc-style chunks (header word = chunk size | 1) written in allocation order, so links
// point back at neighbours on the page (null half the time):
//
//   chunk    share  bytes     fields
//   entry     33%   128       2 links, key pointer, u32 id (+1..3 per entry), flags, state,
//                             refcount, a nanosecond time (small steps), char name[32]
//                             ("word" or "word-1234", NUL-padded), 5 reserved zero words
//   string    25%   24..40    length, 16-bit hash, the text NUL-padded to 8 bytes
//   node      17%   48        3 links (the parent often null), value pointer, colour
//   vector    10%   32..80    count, capacity, u32 items that are small and often repeat
//   free      15%   32..776   a freed chunk: two free-list links, then zeros (the gaps)
//
// Its 4 KiB pages lz4-compress about 5:1 (seed 1, 16384 pages: 5.15, mean 796 bytes), the
// small-object workload of issue 15: a pool storing it holds ~16,000 objects of ~800 bytes
// per 64 MiB.
//
// generated_corpus(name, ...) makes either by its name, as the verbs' --corpus takes it.
//
// Corpus::from_paths(paths, page_size, max_bytes) -- real data: named files, and directories
// walked recursively in sorted order. Each file is cut into pages on its own (its last partial
// page zero-padded), as the page cache holds it. Inside directories, symlinks, special files
// and unreadable entries are skipped, each listed with its reason in LoadReport::skipped
// ("Permission denied", "symbolic link (not followed)", ...); a named path that does not
// exist, or no readable data at all, is an error (naming the first skip). File pages are
// labelled zero, same_filled (as the pool's same-filled detection would see them) or file.
//
// The walk is iterative (a vector of frames, not the call stack) and opens each entry relative
// to its directory (openat, O_NOFOLLOW inside directories), holding one directory open at a
// time: a tree 3,000 directories deep is walked whatever the stack or the path length limit.
// Files are opened O_NONBLOCK and checked with fstat, so a FIFO or device swapped in is
// skipped and a /proc file that would block (/proc/kmsg) is skipped with the reason, never a
// hang. Named paths follow symlinks, as the user named them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "zspool/platform/error.h"

namespace zspool::tools {

enum class PageKind : std::uint8_t { zero, same_filled, text, heap, numeric, random, file };
inline constexpr std::size_t kPageKindCount = 7;
using KindCounts = std::array<std::uint64_t, kPageKindCount>;  // indexed by PageKind

// "zero", "same_filled", "text", "heap", "numeric", "random", "file".
std::string_view page_kind_name(PageKind kind);

struct KindShare {
  PageKind kind;
  std::uint32_t percent;
};
// The builtin corpus's mix (the table above); the percents sum to 100.
inline constexpr std::array<KindShare, 6> kBuiltinMix = {{{PageKind::zero, 10},
                                                          {PageKind::same_filled, 5},
                                                          {PageKind::text, 30},
                                                          {PageKind::heap, 25},
                                                          {PageKind::numeric, 20},
                                                          {PageKind::random, 10}}};

// Pages of each kind in builtin(pages): each is floor or ceil of percent * pages / 100, and
// they sum to `pages`.
KindCounts builtin_kind_counts(std::uint64_t pages);

// "1 page", "2 pages", "0 pages": a count and its noun, plural unless the count is one (the
// noun's plural is noun + "s").
std::string count_of(std::uint64_t n, std::string_view noun);

// One synthetic page of `kind` written over `page` (a multiple of 8 bytes long), a function of
// (kind, seed) only: the builtin corpus's generator, for callers that need pages one at a time
// (the soak). PageKind::file has no generator of its own and gives a random page.
void generate_page(std::span<std::byte> page, PageKind kind, std::uint64_t seed);

// Whether `page` (a multiple of 8 bytes long) is one 8-byte word repeated, exactly as the store
// decides it (store/same_filled.h: one implementation); the word, in native order, goes to
// `*word` when given. An all-zero page counts (word 0).
bool is_same_filled(std::span<const std::byte> page, std::uint64_t* word = nullptr);

// The generated corpora's names, as --corpus takes them: "builtin" (Corpus::builtin) and
// "small-records" (Corpus::small_records).
inline constexpr std::array<std::string_view, 2> kGeneratedCorpora = {"builtin", "small-records"};

class Corpus;
// The generated corpus called `name` (one of kGeneratedCorpora), else Error::not_found.
Result<Corpus> generated_corpus(std::string_view name, std::uint64_t pages, std::uint32_t page_size,
                                std::uint64_t seed = 1);

// An entry from_paths did not read (or not to its end), and why.
struct SkippedEntry {
  std::string path;
  std::string reason;  // strerror text, or what kind of entry it is

  bool operator==(const SkippedEntry&) const = default;
};

// What from_paths read, skipped, or why it failed.
struct LoadReport {
  static constexpr std::size_t kMaxListedSkips = 100;
  std::string error;                  // "" on success; else one line naming the path
  std::uint64_t files_read = 0;       // files that gave at least one page
  std::uint64_t entries_skipped = 0;  // unreadable, symlinked or special entries (all of them)
  std::vector<SkippedEntry> skipped;  // the first kMaxListedSkips of them, in walk order
  bool truncated = false;             // stopped at max_bytes with paths or data left
};

class Corpus {
 public:
  static constexpr std::uint32_t kDefaultPageSize = 4096;

  // An empty corpus. page_size: a nonzero multiple of 8 (see valid_page_size).
  explicit Corpus(std::uint32_t page_size = kDefaultPageSize);

  // The synthetic corpus described above; page_size as for the constructor.
  static Corpus builtin(std::uint64_t pages, std::uint32_t page_size = kDefaultPageSize,
                        std::uint64_t seed = 1);

  // The small-records heap (above); page_size as for the constructor.
  static Corpus small_records(std::uint64_t pages, std::uint32_t page_size = kDefaultPageSize,
                              std::uint64_t seed = 1);

  // Files and directories cut into pages, at most max_bytes / page_size pages (max_bytes 0: no
  // limit). Errors, with report->error set: invalid_argument (no paths, bad page size,
  // max_bytes below one page, a named path neither file nor directory), not_found (a named
  // path does not exist), io_error (a named path cannot be examined, nothing readable, or
  // only empty files), out_of_memory (the pages did not fit; never an exception).
  static Result<Corpus> from_paths(const std::vector<std::string>& paths,
                                   std::uint32_t page_size = kDefaultPageSize,
                                   std::uint64_t max_bytes = 0, LoadReport* report = nullptr);

  static bool valid_page_size(std::uint32_t page_size) {
    return page_size != 0 && page_size % 8 == 0;
  }

  std::uint32_t page_size() const { return page_size_; }
  std::uint64_t page_count() const { return kinds_.size(); }
  std::uint64_t size_bytes() const { return bytes_.size(); }
  bool empty() const { return kinds_.empty(); }

  // Page i (i < page_count()), page_size() bytes; valid until the next append.
  std::span<const std::byte> page(std::uint64_t i) const;
  PageKind kind(std::uint64_t i) const { return kinds_[i]; }
  std::uint64_t count(PageKind kind) const { return counts_[static_cast<std::size_t>(kind)]; }
  const KindCounts& kind_counts() const { return counts_; }
  // Every page, back to back.
  std::span<const std::byte> bytes() const { return bytes_; }

  // Appends `data` (at most page_size() bytes; fewer are zero-padded) as a page of `kind`.
  void append(std::span<const std::byte> data, PageKind kind);
  // Appends a zeroed page of `kind` and returns it for filling; valid until the next append.
  std::span<std::byte> append_zeroed(PageKind kind);
  // Room for `pages` pages in all without reallocating.
  void reserve(std::uint64_t pages);

 private:
  std::uint32_t page_size_;
  std::vector<std::byte> bytes_;
  std::vector<PageKind> kinds_;
  KindCounts counts_{};
};

}  // namespace zspool::tools
