// Corpus::builtin and Corpus::small_records: the deterministic synthetic corpora (documented in
// corpus.h).
//
// Determinism rules for everything in this file: randomness comes only from SplitMix64 (rng.h);
// arithmetic is integer (the one float operation, int -> float times a constant, is exact
// IEEE single rounding everywhere); multi-byte values are stored little-endian byte by byte.
#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <string>
#include <string_view>

#include "zspool/workload/corpus.h"
#include "zspool/workload/rng.h"

namespace zspool::tools {
namespace {

// ---- randomness ------------------------------------------------------------------------------

// The seed of page `index`'s content: a function of (seed, index, kind) only.
std::uint64_t page_seed(std::uint64_t seed, std::uint64_t index, PageKind kind) {
  const auto k = static_cast<std::uint64_t>(kind);
  return mix64(mix64(seed + kSplitMixGamma) + index * kSplitMixGamma + (k << 56));
}

// ---- writing bytes ---------------------------------------------------------------------------

void store_le(std::byte* at, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) at[i] = static_cast<std::byte>(value >> (8 * i));
}

// Writes values one after another into a page, dropping whatever does not fit.
class PageWriter {
 public:
  explicit PageWriter(std::span<std::byte> page) : page_(page) {}
  bool full() const { return at_ >= page_.size(); }
  std::size_t room() const { return page_.size() - at_; }
  std::size_t position() const { return at_; }

  void put_le(std::uint64_t value, int bytes) {
    if (room() < static_cast<std::size_t>(bytes)) {
      at_ = page_.size();
      return;
    }
    store_le(page_.data() + at_, value, bytes);
    at_ += static_cast<std::size_t>(bytes);
  }
  void put_text(std::string_view text) {
    const std::size_t n = std::min(text.size(), room());
    for (std::size_t i = 0; i < n; ++i) page_[at_ + i] = static_cast<std::byte>(text[i]);
    at_ += n;
  }

 private:
  std::span<std::byte> page_;
  std::size_t at_ = 0;
};

// ---- words -----------------------------------------------------------------------------------

// Common English words, most frequent first: the vocabulary of text pages and heap strings.
constexpr std::array<std::string_view, 256> kWords = {
    "the",      "of",      "and",     "to",       "a",        "in",    "is",     "it",      "you",
    "that",     "he",      "was",     "for",      "on",       "are",   "with",   "as",      "I",
    "his",      "they",    "be",      "at",       "one",      "have",  "this",   "from",    "or",
    "had",      "by",      "not",     "word",     "but",      "what",  "some",   "we",      "can",
    "out",      "other",   "were",    "all",      "there",    "when",  "up",     "use",     "your",
    "how",      "said",    "an",      "each",     "she",      "which", "do",     "their",   "time",
    "if",       "will",    "way",     "about",    "many",     "then",  "them",   "write",   "would",
    "like",     "so",      "these",   "her",      "long",     "make",  "thing",  "see",     "him",
    "two",      "has",     "look",    "more",     "day",      "could", "go",     "come",    "did",
    "number",   "sound",   "no",      "most",     "people",   "my",    "over",   "know",    "water",
    "than",     "call",    "first",   "who",      "may",      "down",  "side",   "been",    "now",
    "find",     "any",     "new",     "work",     "part",     "take",  "get",    "place",   "made",
    "live",     "where",   "after",   "back",     "little",   "only",  "round",  "man",     "year",
    "came",     "show",    "every",   "good",     "me",       "give",  "our",    "under",   "name",
    "very",     "through", "just",    "form",     "sentence", "great", "think",  "say",     "help",
    "low",      "line",    "differ",  "turn",     "cause",    "much",  "mean",   "before",  "move",
    "right",    "boy",     "old",     "too",      "same",     "tell",  "does",   "set",     "three",
    "want",     "air",     "well",    "also",     "play",     "small", "end",    "put",     "home",
    "read",     "hand",    "port",    "large",    "spell",    "add",   "even",   "land",    "here",
    "must",     "big",     "high",    "such",     "follow",   "act",   "why",    "ask",     "men",
    "change",   "went",    "light",   "kind",     "off",      "need",  "house",  "picture", "try",
    "us",       "again",   "animal",  "point",    "mother",   "world", "near",   "build",   "self",
    "earth",    "father",  "head",    "stand",    "own",      "page",  "should", "country", "found",
    "answer",   "school",  "grow",    "study",    "still",    "learn", "plant",  "cover",   "food",
    "sun",      "four",    "between", "state",    "keep",     "eye",   "never",  "last",    "let",
    "thought",  "city",    "tree",    "cross",    "farm",     "hard",  "start",  "might",   "story",
    "saw",      "far",     "sea",     "draw",     "left",     "late",  "run",    "don't",   "while",
    "press",    "close",   "night",   "real",     "life",     "few",   "north",  "open",    "seem",
    "together", "next",    "white",   "children",
};

static_assert(std::ranges::none_of(kWords, &std::string_view::empty));

// Cumulative Zipf weights: word r (0-based rank) weighs kZipfScale / (r + 1).
constexpr std::uint32_t kZipfScale = 1'000'000;
constexpr std::array<std::uint32_t, kWords.size()> kZipfCumulative = [] {
  std::array<std::uint32_t, kWords.size()> cumulative{};
  std::uint32_t sum = 0;
  for (std::size_t r = 0; r < kWords.size(); ++r) {
    sum += kZipfScale / static_cast<std::uint32_t>(r + 1);
    cumulative[r] = sum;
  }
  return cumulative;
}();

std::string_view zipf_word(SplitMix64& rng) {
  const std::uint64_t x = rng.below(kZipfCumulative.back());
  const auto it = std::upper_bound(kZipfCumulative.begin(), kZipfCumulative.end(), x);
  return kWords[static_cast<std::size_t>(it - kZipfCumulative.begin())];
}

// Common multi-word phrases: prose repeats them, and they give a compressor its longer
// matches.
constexpr std::array<std::string_view, 48> kPhrases = {
    "of the",           "in the",        "to the",
    "on the",           "and the",       "for the",
    "at the",           "from the",      "with the",
    "that the",         "it is",         "there is",
    "there are",        "one of the",    "as well as",
    "at the end of",    "in order to",   "a number of",
    "the rest of",      "for example",   "on the other hand",
    "at the same time", "in the world",  "is one of",
    "the first time",   "as long as",    "each of the",
    "some of the",      "most of the",   "part of the",
    "all of the",       "the number of", "would like to",
    "do not",           "could not",     "it was",
    "he said",          "she said",      "they were",
    "we can",           "you can",       "have been",
    "has been",         "will be",       "may be",
    "over the",         "under the",     "between the",
};

static_assert(std::ranges::none_of(kPhrases, &std::string_view::empty));

// A token of prose: a phrase (one in four), a number (one in thirty) or a Zipf word.
std::string prose_token(SplitMix64& rng) {
  if (rng.one_in(4)) return std::string(kPhrases[rng.below(kPhrases.size())]);
  if (rng.one_in(30)) return std::to_string(rng.below(2024));
  return std::string(zipf_word(rng));
}

// ---- page generators -------------------------------------------------------------------------

struct PageContext {
  std::span<std::byte> page;
  SplitMix64 rng;
  std::uint64_t address;  // where this page would sit in a process, for heap pointers
};

void fill_same_filled(PageContext& c) {
  std::uint64_t word = 0;
  switch (c.rng.below(4)) {
    case 0:
      word = ~std::uint64_t{0};
      break;
    case 1:
      word = (1 + c.rng.below(255)) * 0x0101010101010101;  // one byte repeated
      break;
    case 2:
      word = (c.rng.next() & 0xFFFFFFFF) * 0x0000000100000001;  // a 32-bit pattern repeated
      break;
    default:
      word = c.rng.next();
      break;
  }
  if (word == 0) word = 1;
  for (std::size_t at = 0; at < c.page.size(); at += 8) store_le(&c.page[at], word, 8);
}

void fill_random(PageContext& c) {
  PageWriter w(c.page);
  while (!w.full()) w.put_le(c.rng.next(), 8);
}

// One sentence's token, capitalized if first, with trailing punctuation.
std::string text_token(SplitMix64& rng, bool first, bool last) {
  std::string token = prose_token(rng);
  if (first && token[0] >= 'a' && token[0] <= 'z') token[0] = static_cast<char>(token[0] - 32);
  if (last) {
    const std::uint64_t r = rng.below(20);
    token += r < 16 ? '.' : r < 18 ? '?' : '!';
  } else if (rng.one_in(10)) {
    token += ',';
  }
  return token;
}

void fill_text(PageContext& c) {
  constexpr std::size_t kLineWidth = 72;
  PageWriter w(c.page);
  std::size_t column = 0;
  while (!w.full()) {
    const std::uint64_t words = 3 + c.rng.below(15);
    for (std::uint64_t k = 0; k < words && !w.full(); ++k) {
      const std::string token = text_token(c.rng, k == 0, k + 1 == words);
      if (column > 0 && column + 1 + token.size() > kLineWidth) {
        w.put_text("\n");
        column = 0;
      } else if (column > 0) {
        w.put_text(" ");
        ++column;
      }
      w.put_text(token);
      column += token.size();
    }
    if (c.rng.one_in(6)) {
      w.put_text("\n\n");
      column = 0;
    }
  }
}

// Heap pages: chunks laid out by a few struct templates, as a program's heap repeats its
// types. A chunk is a header word (size in bytes | 1, as glibc's "previous in use") and then
// the template's fields, one 8-byte word each.
enum class Field : std::uint8_t { pointer, small_int, enumeration, zero, text, real, hash };

struct StructTemplate {
  std::array<Field, 15> fields{};
  std::size_t count = 0;  // 1 .. 15: chunk sizes 16 .. 128 bytes
};

Field random_field(SplitMix64& rng) {
  // Percent weights: pointer 30, small_int 20, zero 20, text 10, enumeration 10, real 5,
  // hash 5.
  const std::uint64_t r = rng.below(100);
  if (r < 30) return Field::pointer;
  if (r < 50) return Field::small_int;
  if (r < 70) return Field::zero;
  if (r < 80) return Field::text;
  if (r < 90) return Field::enumeration;
  if (r < 95) return Field::real;
  return Field::hash;
}

StructTemplate random_template(SplitMix64& rng) {
  StructTemplate t;
  t.count = 1 + rng.below(t.fields.size());
  for (std::size_t i = 0; i < t.count; ++i) t.fields[i] = random_field(rng);
  return t;
}

// A pointer to a 16-byte aligned neighbour within 64 KiB of this page, or null (1 in 8).
std::uint64_t heap_pointer(PageContext& c) {
  if (c.rng.one_in(8)) return 0;
  return c.address + c.rng.below(8192) * 16 - 65536;
}

// A word of text: the start of a lowercase word, zero-padded.
std::uint64_t text_word(SplitMix64& rng) {
  const std::string_view word = zipf_word(rng);
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < std::min<std::size_t>(word.size(), 8); ++i)
    value |= static_cast<std::uint64_t>(static_cast<unsigned char>(word[i])) << (8 * i);
  return value;
}

std::uint64_t field_value(PageContext& c, Field field) {
  switch (field) {
    case Field::pointer:
      return heap_pointer(c);
    case Field::small_int:
      return c.rng.one_in(2) ? 1 : c.rng.below(256);
    case Field::enumeration:
      return c.rng.below(8);
    case Field::zero:
      return 0;
    case Field::text:
      return text_word(c.rng);
    case Field::real:  // k / 4 for k < 1000: exact in a double
      return std::bit_cast<std::uint64_t>(static_cast<double>(c.rng.below(1000)) / 4.0);
    case Field::hash:
      return c.rng.next();
  }
  return 0;
}

void put_heap_chunk(PageContext& c, PageWriter& w, const StructTemplate& t) {
  w.put_le((t.count + 1) * 8 | 1, 8);
  if (c.rng.one_in(10)) {  // free: forward and backward list links, then zeros
    w.put_le(heap_pointer(c), 8);
    for (std::size_t i = 1; i < t.count; ++i) w.put_le(i == 1 ? heap_pointer(c) : 0, 8);
    return;
  }
  for (std::size_t i = 0; i < t.count; ++i) w.put_le(field_value(c, t.fields[i]), 8);
}

void fill_heap(PageContext& c) {
  std::array<StructTemplate, 4> templates;
  for (StructTemplate& t : templates) t = random_template(c.rng);
  // Template popularity: 0 half the time, 1 a quarter, 2 and 3 an eighth each.
  constexpr std::array<std::uint8_t, 8> kPick = {0, 0, 0, 0, 1, 1, 2, 3};
  PageWriter w(c.page);
  while (!w.full()) put_heap_chunk(c, w, templates[kPick[c.rng.below(kPick.size())]]);
}

// Numeric arrays: a random walk of `bytes`-wide little-endian values with steps in
// [min_step, min_step + step_range).
void put_walk(PageContext& c, std::uint64_t start, std::int64_t min_step, std::uint64_t step_range,
              int bytes) {
  PageWriter w(c.page);
  std::uint64_t v = start;
  while (!w.full()) {
    w.put_le(v, bytes);
    v += static_cast<std::uint64_t>(min_step) + c.rng.below(step_range);
  }
}

void put_float_series(PageContext& c) {
  PageWriter w(c.page);
  auto x = static_cast<std::int32_t>(c.rng.below(200000)) - 100000;
  while (!w.full()) {
    const float f = static_cast<float>(x) * 0.01f;
    w.put_le(std::bit_cast<std::uint32_t>(f), 4);
    x += static_cast<std::int32_t>(c.rng.below(101)) - 50;
  }
}

// Sparse counters: uint32 slots, three in four zero, the rest small.
void put_sparse_counters(PageContext& c) {
  PageWriter w(c.page);
  while (!w.full()) w.put_le(c.rng.below(4) == 0 ? 1 + c.rng.below(1000) : 0, 4);
}

void fill_numeric(PageContext& c) {
  switch (c.rng.below(5)) {
    case 0:  // int32 random walk that often stands still
      put_walk(c, c.rng.below(100000) - 50000, -2, 5, 4);
      break;
    case 1:
      put_float_series(c);
      break;
    case 2:  // sorted uint64 ids
      put_walk(c, c.rng.next() >> 20, 1, 16, 8);
      break;
    case 3:  // int64 nanosecond timestamps, about 1 ms apart
      put_walk(c, 1'700'000'000'000'000'000 + c.rng.below(1'000'000'000'000'000), 1'000'000 - 32768,
               65536, 8);
      break;
    default:
      put_sparse_counters(c);
      break;
  }
}

void fill_page(PageKind kind, PageContext& c) {
  switch (kind) {
    case PageKind::same_filled:
      return fill_same_filled(c);
    case PageKind::text:
      return fill_text(c);
    case PageKind::heap:
      return fill_heap(c);
    case PageKind::numeric:
      return fill_numeric(c);
    case PageKind::random:
      return fill_random(c);
    case PageKind::zero:
    case PageKind::file:
      return;  // already zero
  }
}

// ---- the mix ---------------------------------------------------------------------------------

// Every page's kind: the mix's counts, in a seeded Fisher-Yates shuffle.
std::vector<PageKind> shuffled_kinds(std::uint64_t pages, std::uint64_t seed) {
  const KindCounts counts = builtin_kind_counts(pages);
  std::vector<PageKind> kinds;
  kinds.reserve(pages);
  for (const KindShare& share : kBuiltinMix)
    kinds.insert(kinds.end(), counts[static_cast<std::size_t>(share.kind)], share.kind);
  SplitMix64 rng(mix64(seed));
  for (std::uint64_t i = kinds.size(); i > 1; --i) std::swap(kinds[i - 1], kinds[rng.below(i)]);
  return kinds;
}

// Where the heap pages pretend to live: 0x00007fXX_X0000000, chosen by the seed, with 4 GiB
// of room above it for the pages' own addresses.
std::uint64_t heap_base(std::uint64_t seed) {
  return 0x00007f0000000000 + ((mix64(seed ^ kSplitMixGamma) & 0xFFF) << 28);
}

// ---- the small-records heap ------------------------------------------------------------------

// One page of a heap holding many small records (Corpus::small_records; the layout is in
// corpus.h). Records are laid out as a program allocates them one after another, so a record's
// links point at its neighbours: `previous` is the address of the last record chunk written.
class RecordPage {
 public:
  explicit RecordPage(PageContext& c) : c_(c), w_(c.page) {}

  void fill(std::uint64_t first_id, std::uint64_t first_time) {
    id_ = first_id;
    time_ = first_time;
    while (!w_.full()) put_chunk();
  }

 private:
  // The chunk's address in the pretend process.
  std::uint64_t here() const { return c_.address + w_.position(); }
  // A link to a record written earlier on this page (or null, 1 in 2).
  std::uint64_t link() {
    if (c_.rng.one_in(2) || previous_ == 0) return 0;
    return c_.rng.one_in(2) ? previous_ : c_.address + 16 * c_.rng.below(c_.page.size() / 16);
  }
  void header(std::uint64_t bytes) { w_.put_le(bytes | 1, 8); }

  void put_chunk() {
    const std::uint64_t r = c_.rng.below(100);
    const std::uint64_t start = here() + 8;  // what malloc returned for this chunk
    if (r < 15) {
      put_free();
      return;
    }
    if (r < 48)
      put_entry();
    else if (r < 73)
      put_string();
    else if (r < 90)
      put_node();
    else
      put_vector();
    previous_ = start;
  }

  // An entry, 128 bytes with its header: links, a key string, an id counter, flags, a
  // reference count, a last-used time in nanoseconds, a name in a fixed char[32] (NUL-padded)
  // and reserved words that stay zero.
  void put_entry() {
    header(128);
    w_.put_le(link(), 8);
    w_.put_le(link(), 8);
    w_.put_le(here() + 24 + 8 * c_.rng.below(4), 8);  // its key: a string chunk close by
    id_ += 1 + c_.rng.below(3);
    w_.put_le(id_, 4);
    w_.put_le(c_.rng.one_in(4) ? 0x11 : 0x01, 2);                // flags
    w_.put_le(c_.rng.below(3), 2);                               // state
    w_.put_le(1 + (c_.rng.one_in(8) ? c_.rng.below(7) : 0), 8);  // refcount, then padding
    time_ += 1000 + c_.rng.below(4096);
    w_.put_le(time_, 8);
    put_name(32);
    for (int i = 0; i < 5; ++i) w_.put_le(0, 8);
  }

  // A name in a char[size]: "word" or "word-1234", NUL-padded.
  void put_name(std::size_t size) {
    std::string text(zipf_word(c_.rng));
    if (c_.rng.one_in(3)) text.append(1, '-').append(std::to_string(id_ % 10000));
    text.resize(std::min(text.size(), size - 1));
    w_.put_text(text);
    for (std::size_t i = text.size(); i < size; ++i) w_.put_le(0, 1);
  }

  // A short string: length and a 16-bit hash, then "word-1234" NUL-padded to 8 bytes.
  void put_string() {
    std::string text(zipf_word(c_.rng));
    if (!c_.rng.one_in(3)) text.append(1, '-').append(std::to_string(id_ % 10000));
    const std::uint64_t padded = (text.size() + 1 + 7) / 8 * 8;
    header(16 + padded);
    w_.put_le(text.size(), 4);
    w_.put_le(c_.rng.below(65536), 4);
    w_.put_text(text);
    w_.put_le(0, static_cast<int>(padded - text.size()));
  }

  // A tree node, 48 bytes with its header: three links (the parent often null), a value
  // pointer, colour and flags.
  void put_node() {
    header(48);
    w_.put_le(link(), 8);
    w_.put_le(link(), 8);
    w_.put_le(c_.rng.one_in(2) ? 0 : link(), 8);
    w_.put_le(previous_, 8);
    w_.put_le(c_.rng.below(2), 8);
  }

  // A small array: count and capacity, then counts that are small and often repeat.
  void put_vector() {
    const std::uint64_t capacity = 4 << c_.rng.below(3);  // 4, 8 or 16 u32 items
    const std::uint64_t count = 1 + c_.rng.below(capacity);
    header(16 + capacity * 4);
    w_.put_le(count, 4);
    w_.put_le(capacity, 4);
    std::uint64_t item = c_.rng.below(16);
    for (std::uint64_t i = 0; i < capacity; ++i) {
      w_.put_le(i < count ? item : 0, 4);
      if (c_.rng.one_in(3)) item += c_.rng.below(4);
    }
  }

  // A freed chunk: forward and backward free-list links, then the zeros a fresh chunk has.
  void put_free() {
    const std::uint64_t words = 3 + c_.rng.below(94);
    header(words * 8 + 8);
    w_.put_le(link(), 8);
    w_.put_le(link(), 8);
    for (std::uint64_t i = 2; i < words; ++i) w_.put_le(0, 8);
  }

  PageContext& c_;
  PageWriter w_;
  std::uint64_t previous_ = 0;
  std::uint64_t id_ = 0;
  std::uint64_t time_ = 0;
};

}  // namespace

KindCounts builtin_kind_counts(std::uint64_t pages) {
  KindCounts counts{};
  std::array<std::uint64_t, kBuiltinMix.size()> remainders{};
  std::uint64_t assigned = 0;
  for (std::size_t i = 0; i < kBuiltinMix.size(); ++i) {
    const std::uint64_t exact_times_100 = pages * kBuiltinMix[i].percent;
    counts[static_cast<std::size_t>(kBuiltinMix[i].kind)] = exact_times_100 / 100;
    remainders[i] = exact_times_100 % 100;
    assigned += exact_times_100 / 100;
  }
  // Largest remainders first; ties go to the kind listed first in the mix.
  std::array<std::size_t, kBuiltinMix.size()> order{};
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return remainders[a] > remainders[b]; });
  for (std::size_t i = 0; assigned < pages; ++i, ++assigned)
    ++counts[static_cast<std::size_t>(kBuiltinMix[order[i]].kind)];
  return counts;
}

void generate_page(std::span<std::byte> page, PageKind kind, std::uint64_t seed) {
  std::fill(page.begin(), page.end(), std::byte{0});
  if (kind == PageKind::file) kind = PageKind::random;
  PageContext c{page, SplitMix64(seed), heap_base(seed)};
  fill_page(kind, c);
}

Corpus Corpus::builtin(std::uint64_t pages, std::uint32_t page_size, std::uint64_t seed) {
  Corpus corpus(page_size);
  corpus.reserve(pages);
  const std::vector<PageKind> kinds = shuffled_kinds(pages, seed);
  const std::uint64_t base = heap_base(seed);
  for (std::uint64_t i = 0; i < pages; ++i) {
    PageContext c{corpus.append_zeroed(kinds[i]), SplitMix64(page_seed(seed, i, kinds[i])),
                  base + (i * page_size) % (std::uint64_t{1} << 32)};
    fill_page(kinds[i], c);
  }
  return corpus;
}

}  // namespace zspool::tools

namespace zspool::tools {

Result<Corpus> generated_corpus(std::string_view name, std::uint64_t pages, std::uint32_t page_size,
                                std::uint64_t seed) {
  if (name == kGeneratedCorpora[0]) return Corpus::builtin(pages, page_size, seed);
  if (name == kGeneratedCorpora[1]) return Corpus::small_records(pages, page_size, seed);
  return Error::not_found;
}

Corpus Corpus::small_records(std::uint64_t pages, std::uint32_t page_size, std::uint64_t seed) {
  Corpus corpus(page_size);
  corpus.reserve(pages);
  const std::uint64_t base = heap_base(seed);
  for (std::uint64_t i = 0; i < pages; ++i) {
    PageContext c{corpus.append_zeroed(PageKind::heap),
                  SplitMix64(page_seed(seed, i, PageKind::heap)),
                  base + (i * page_size) % (std::uint64_t{1} << 32)};
    // Ids and times run on across the heap, as records are allocated in order.
    RecordPage(c).fill(i * page_size / 40, 1'700'000'000'000'000'000 + i * 4'000'000);
  }
  return corpus;
}

}  // namespace zspool::tools
