// A model of the pool's memory right after a fill, for choosing size-class steps and header
// sizes without rebuilding the pool (issue 15 part 3; figures in BENCHMARKS.md).
//
//   g++ -O2 -std=c++20 scripts/class_model.cc -llz4 -o /tmp/class_model
//   build/zspool corpus --corpus small-records -o /tmp/sr.img
//   /tmp/class_model /tmp/sr.img [MAX_CHAIN=16]
//
// Input: a file of 4 KiB pages; each nonzero page is lz4-compressed and its size is one object
// (raw 4 KiB at >= 3833 bytes), as `zspool bench alloc` replays them (same-filled pages other than
// zero are kept: a small difference). For each candidate step (the kernel's 16 bytes, 8, 4) and
// header size (8, 4) the class table is built by Linux's rule (size_class.h: least tail waste
// over 1..MAX_CHAIN pages, equal (pages, objects) merged into the larger size), every object goes
// to the class of size + header (huge at >= 3833 + header: a whole page), and pages are counted as
// lazy commit holds them: whole zspages, plus each class's last zspage up to the page its last
// object reaches. Printed, as shares of those pages: efficiency (object bytes / pages), header
// and rounding (class size - object size), zspage tails, and the last pages' unused part.
// The model matches `bench alloc`'s pool view after fill to 0.1 point on the corpora measured.
// borrow_model then replays the fill in order to try borrowing a larger class's committed room.
#include <lz4.h>

#include <algorithm>
#include <bit>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <vector>

namespace {

constexpr unsigned kPage = 4096;
constexpr unsigned kMinObject = 32;
constexpr unsigned kHugeRequest = 3833;  // huge_class_size at chain 16

struct Class {
  unsigned size, pages, objs;
};

unsigned chain_length(unsigned size, unsigned max_chain) {
  if (std::has_single_bit(size)) return 1;
  unsigned best = 1, least = UINT_MAX;
  for (unsigned k = 1; k <= max_chain; ++k)
    if (k * kPage % size < least) least = k * kPage % size, best = k;
  return best;
}

// Distinct classes, and for each candidate its class, as SizeClassTable builds them.
std::vector<Class> make_table(unsigned step, unsigned max_chain, std::vector<unsigned>& of) {
  const unsigned candidates = (kPage - kMinObject + step - 1) / step + 1;
  std::vector<Class> descending;
  of.assign(candidates, 0);
  for (unsigned i = candidates; i-- > 0;) {
    const unsigned size = std::min(kMinObject + i * step, kPage);
    const unsigned pages = chain_length(size, max_chain), objs = pages * kPage / size;
    if (descending.empty() || descending.back().pages != pages || descending.back().objs != objs)
      descending.push_back({size, pages, objs});
    of[i] = static_cast<unsigned>(descending.size() - 1);
  }
  return descending;
}

std::vector<unsigned> object_sizes(const char* path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> page(kPage), out(LZ4_compressBound(kPage));
  std::vector<unsigned> sizes;
  while (in.read(page.data(), kPage)) {
    if (std::all_of(page.begin(), page.end(), [](char c) { return c == 0; })) continue;
    sizes.push_back(static_cast<unsigned>(
        LZ4_compress_default(page.data(), out.data(), kPage, static_cast<int>(out.size()))));
  }
  return sizes;
}

void model(const std::vector<unsigned>& sizes, unsigned step, unsigned header, unsigned chain) {
  std::vector<unsigned> of;
  const std::vector<Class> table = make_table(step, chain, of);
  std::map<unsigned, unsigned long> count;
  double requested = 0, slots = 0;
  for (unsigned s : sizes) {
    if (s >= kHugeRequest) s = kPage;  // stored raw, as the trace does
    const unsigned with_header = s == kPage ? kPage : s + header;
    const unsigned candidate =
        with_header <= kMinObject ? 0 : (with_header - kMinObject + step - 1) / step;
    const unsigned c = of[std::min<std::size_t>(candidate, of.size() - 1)];
    ++count[c];
    requested += s;
    slots += table[c].size;
  }
  double pages = 0, tails = 0, last_pages = 0;
  for (const auto& [c, n] : count) {
    const Class& k = table[c];
    const unsigned long full = n / k.objs, rest = n % k.objs;
    const unsigned long rest_pages = (rest * k.size + kPage - 1) / kPage;
    pages += full * k.pages + rest_pages;
    tails += full * (k.pages * static_cast<double>(kPage) - k.objs * static_cast<double>(k.size));
    last_pages += rest_pages * static_cast<double>(kPage) - rest * static_cast<double>(k.size);
  }
  const double bytes = pages * kPage;
  std::printf(
      "step %2u header %u: %3zu classes, %3zu used  efficiency %.2f%%  header+rounding %.2f%%  "
      "zspage tails %.2f%%  last pages %.2f%%\n",
      step, header, table.size(), count.size(), 100 * requested / bytes,
      100 * (slots - requested) / bytes, 100 * tails / bytes, 100 * last_pages / bytes);
}

// The fill in trace order, each class filling one zspage at a time and committing its pages as
// objects reach them, with borrowing: an object whose class would have to commit a page goes,
// while that class has seen at most `cold` objects, to the smallest of the next `reach` larger
// classes that has room in pages it already committed (cold = 0: no borrowing, the pool today).
void borrow_model(const std::vector<unsigned>& sizes, unsigned step, unsigned header,
                  unsigned chain, unsigned long cold, unsigned reach) {
  std::vector<unsigned> of;
  const std::vector<Class> table = make_table(step, chain, of);  // larger classes first
  struct Filling {
    unsigned long seen = 0, pages = 0;
    unsigned bump = 0, committed = 0;
  };
  std::vector<Filling> state(table.size());
  const auto has_room = [&](unsigned c) {
    const Filling& f = state[c];
    return f.committed > 0 && f.bump < table[c].objs &&
           (f.bump + 1ull) * table[c].size <= f.committed * 1ull * kPage;
  };
  double requested = 0;
  unsigned long borrowed = 0;
  for (unsigned s : sizes) {
    if (s >= kHugeRequest) s = kPage;
    const unsigned with_header = s == kPage ? kPage : s + header;
    const unsigned candidate =
        with_header <= kMinObject ? 0 : (with_header - kMinObject + step - 1) / step;
    unsigned c = of[std::min<std::size_t>(candidate, of.size() - 1)];
    requested += s;
    if (!has_room(c) && ++state[c].seen <= cold && s != kPage) {
      for (unsigned r = 1; r <= reach && r <= c; ++r) {
        if (has_room(c - r)) {
          c -= r;
          ++borrowed;
          break;
        }
      }
    }
    Filling& f = state[c];
    if (f.bump == table[c].objs) f.bump = f.committed = 0;  // a new zspage
    const unsigned need =
        static_cast<unsigned>(((f.bump + 1ull) * table[c].size + kPage - 1) / kPage);
    if (need > f.committed) f.pages += need - f.committed, f.committed = need;
    ++f.bump;
  }
  double pages = 0;
  for (const Filling& f : state) pages += static_cast<double>(f.pages);
  std::printf(
      "step %2u header %u, borrowing while a class has seen <= %5lu objects, up to %u "
      "classes up: efficiency %.2f%%  (%lu objects borrowed)\n",
      step, header, cold, reach, 100 * requested / (pages * kPage), borrowed);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PAGES_FILE [MAX_CHAIN]\n", argv[0]);
    return 2;
  }
  const unsigned chain = argc > 2 ? static_cast<unsigned>(std::atoi(argv[2])) : 16;
  const std::vector<unsigned> sizes = object_sizes(argv[1]);
  std::printf("%s: %zu objects, chain %u\n", argv[1], sizes.size(), chain);
  for (unsigned step : {16u, 8u, 4u})
    for (unsigned header : {8u, 4u}) model(sizes, step, header, chain);
  for (unsigned header : {8u, 4u})
    for (unsigned long cold : {0ul, 16ul, 32ul, 64ul})
      for (unsigned reach : {1u, 4u}) borrow_model(sizes, 16, header, chain, cold, reach);
  return 0;
}
