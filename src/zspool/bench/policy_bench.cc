#include "zspool/bench/policy_bench.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <system_error>

#include <fmt/format.h>

#include "zspool/store/compressor.h"
#include "zspool/store/same_filled.h"
#include "zspool/workload/rng.h"

namespace zspool::tools {
namespace {

constexpr std::uint64_t kSampleEvery = 256;  // ops between efficiency samples

// The reads of one benchmark, the same for every run.
struct Accesses {
  std::vector<std::uint32_t> reads;
  std::vector<bool> hot;  // per page
};

Accesses make_accesses(std::uint64_t pages, const PolicyBenchOptions& o) {
  SplitMix64 rng(o.seed);
  std::vector<std::uint32_t> order(pages);
  std::iota(order.begin(), order.end(), 0u);
  for (std::uint64_t i = pages; i > 1; --i) std::swap(order[i - 1], order[rng.uniform_below(i)]);
  const std::uint64_t hot_pages = std::max<std::uint64_t>(1, pages * o.hot_page_percent / 100);
  Accesses a;
  a.hot.assign(pages, false);
  for (std::uint64_t i = 0; i < hot_pages; ++i) a.hot[order[i]] = true;
  const std::uint64_t n = pages * o.read_rounds;
  a.reads.reserve(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    const bool to_hot = rng.uniform_below(100) < o.hot_read_percent;
    a.reads.push_back(to_hot ? order[rng.uniform_below(hot_pages)]
                             : static_cast<std::uint32_t>(rng.uniform_below(pages)));
  }
  return a;
}

double percentile_us(std::vector<double>& us, double p) {
  if (us.empty()) return 0;
  const auto k = static_cast<std::size_t>(p * static_cast<double>(us.size() - 1));
  std::nth_element(us.begin(), us.begin() + static_cast<std::ptrdiff_t>(k), us.end());
  return us[k];
}

// Where the backing files' directory goes by default: $TMPDIR (temp_directory_path), or /tmp
// when that names no directory (as the soak verb does), so never the current directory.
std::filesystem::path default_backing_parent() {
  std::error_code ec;
  std::filesystem::path base = std::filesystem::temp_directory_path(ec);
  return ec || base.empty() ? std::filesystem::path("/tmp") : base;
}

// A fresh directory for backing files, removed with everything in it when done.
class BackingDir {
 public:
  BackingDir() = default;
  ~BackingDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  BackingDir(const BackingDir&) = delete;
  BackingDir& operator=(const BackingDir&) = delete;

  // Makes the directory inside `parent` (empty: default_backing_parent()); "" or why not, as
  // one line naming the parent.
  std::string make(const std::string& parent) {
    const std::filesystem::path base =
        parent.empty() ? default_backing_parent() : std::filesystem::path(parent);
    std::string templ = (base / "zspool-bench-policy-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) {
      return fmt::format("cannot make a directory for the backing files in {}: {}", base.string(),
                         std::strerror(errno));
    }
    path_ = templ;
    return "";
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The samples of efficiency and fill, once writeback started.
struct Sampler {
  std::uint64_t limit = 0;
  std::uint64_t n = 0;
  double min_eff = 1, sum_eff = 0, min_fill = 1e9, sum_fill = 0;

  void sample(const Store& store) {
    const StoreStats s = store.stats();
    if (s.bd_writes == 0 || s.mem_used_total == 0) return;
    const double eff =
        static_cast<double>(s.compr_data_size) / static_cast<double>(s.mem_used_total);
    const double fill = static_cast<double>(s.mem_used_total) / static_cast<double>(limit);
    ++n;
    min_eff = std::min(min_eff, eff);
    sum_eff += eff;
    min_fill = std::min(min_fill, fill);
    sum_fill += fill;
  }
  void fill_in(PolicyRun& run) const {
    run.samples = n;
    if (n == 0) return;
    run.min_efficiency = min_eff;
    run.mean_efficiency = sum_eff / static_cast<double>(n);
    run.min_fill = min_fill;
    run.mean_fill = sum_fill / static_cast<double>(n);
  }
};

struct StoreRunSpec {
  std::string name;
  WritebackPolicy policy;
  bool background;
};

class StoreRun {
 public:
  StoreRun(const Corpus& corpus, const Accesses& accesses, std::uint64_t limit)
      : corpus_(corpus), accesses_(accesses), page_(corpus.page_size()) {
    sampler_.limit = limit;
  }

  PolicyRun run(Store& store, const std::string& name, const ProgressFactory& progress) {
    PolicyRun r;
    r.name = name;
    write_all(store, r, progress);
    read_all(store, r, progress);
    const StoreStats s = store.stats();
    r.backing_reads = s.bd_reads;
    r.backing_writes = s.bd_writes;
    r.backing_write_ios = s.bd_write_ios;
    r.writer_stalls = s.writer_stalls;
    r.bg_writeback_runs = s.bg_writeback_runs;
    sampler_.fill_in(r);
    return r;
  }

 private:
  void write_all(Store& store, PolicyRun& r, const ProgressFactory& progress) {
    const auto bar = progress(r.name + " write", corpus_.page_count());
    std::vector<double> us;
    us.reserve(corpus_.page_count());
    for (std::uint64_t i = 0; i < corpus_.page_count(); ++i) {
      const auto start = std::chrono::steady_clock::now();
      const Error e = store.write(i, corpus_.page(i));
      us.push_back(
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
              .count());
      if (e != Error::ok) note_error(store, r);
      if (i % kSampleEvery == kSampleEvery - 1) sampler_.sample(store);
      bar->advance();
    }
    bar->finish();
    r.write_p50_us = percentile_us(us, 0.50);
    r.write_p99_us = percentile_us(us, 0.99);
    r.write_max_us = us.empty() ? 0 : *std::max_element(us.begin(), us.end());
  }

  void read_all(Store& store, PolicyRun& r, const ProgressFactory& progress) {
    const auto bar = progress(r.name + " read", accesses_.reads.size());
    for (std::uint64_t k = 0; k < accesses_.reads.size(); ++k) {
      const std::uint32_t p = accesses_.reads[k];
      const bool hit = store.in_memory(p);
      const Error e = store.read(p, page_);
      if (e != Error::ok || std::memcmp(page_.data(), corpus_.page(p).data(), page_.size()) != 0)
        note_error(store, r);
      ++r.reads;
      r.hits += hit ? 1 : 0;
      if (accesses_.hot[p]) {
        ++r.hot_reads;
        r.hot_hits += hit ? 1 : 0;
      }
      if (k % (kSampleEvery * 4) == 0) sampler_.sample(store);
      bar->advance();
    }
    bar->finish();
  }

  // Counts a failure; keeps the first backing failure's line (the store keeps only the latest,
  // and a full device fails every later write the same way).
  static void note_error(const Store& store, PolicyRun& r) {
    ++r.errors;
    if (r.backing_failure.empty()) r.backing_failure = store.backing_failure();
  }

  const Corpus& corpus_;
  const Accesses& accesses_;
  std::vector<std::byte> page_;
  Sampler sampler_;
};

// The exact page-granular LRU: a doubly linked list over page numbers, head = most recent.
class ExactLru {
 public:
  ExactLru(std::vector<std::uint32_t> cost, std::uint64_t capacity)
      : cost_(std::move(cost)),
        capacity_(capacity),
        prev_(cost_.size(), kNone),
        next_(cost_.size(), kNone),
        in_(cost_.size(), false) {}

  // A write or a miss: the page at the head; evictions past the capacity counted.
  void insert(std::uint32_t p) {
    if (in_[p]) unlink(p);
    push_front(p);
    while (used_ > capacity_ && tail_ != kNone) {
      const std::uint32_t victim = tail_;
      unlink(victim);
      ++evictions_;
    }
  }
  // A read: true on a hit (moved to the head); a miss brings the page in.
  bool read(std::uint32_t p) {
    const bool hit = in_[p];
    insert(p);
    return hit;
  }
  std::uint64_t evictions() const { return evictions_; }

 private:
  static constexpr std::uint32_t kNone = ~0u;
  void push_front(std::uint32_t p) {
    prev_[p] = kNone;
    next_[p] = head_;
    if (head_ != kNone) prev_[head_] = p;
    head_ = p;
    if (tail_ == kNone) tail_ = p;
    in_[p] = true;
    used_ += cost_[p];
  }
  void unlink(std::uint32_t p) {
    if (prev_[p] != kNone)
      next_[prev_[p]] = next_[p];
    else
      head_ = next_[p];
    if (next_[p] != kNone)
      prev_[next_[p]] = prev_[p];
    else
      tail_ = prev_[p];
    in_[p] = false;
    used_ -= cost_[p];
  }

  std::vector<std::uint32_t> cost_;
  std::uint64_t capacity_;
  std::vector<std::uint32_t> prev_, next_;
  std::vector<bool> in_;
  std::uint32_t head_ = kNone, tail_ = kNone;
  std::uint64_t used_ = 0, evictions_ = 0;
};

// What each page costs in memory: 0 same-filled, page_size when it would be stored raw, else
// its compressed length.
Result<std::vector<std::uint32_t>> page_costs(const Corpus& corpus, const std::string& spec,
                                              std::uint32_t huge_class_size) {
  auto compressor = make_compressor(spec);
  if (!compressor) return compressor.error();
  std::vector<std::byte> out((*compressor)->max_compressed_size(corpus.page_size()));
  std::vector<std::uint32_t> cost(corpus.page_count());
  for (std::uint64_t i = 0; i < corpus.page_count(); ++i) {
    const auto page = corpus.page(i);
    if (same_filled_word(page)) continue;
    auto n = (*compressor)->compress(page, out);
    cost[i] = (!n || *n >= huge_class_size) ? corpus.page_size() : static_cast<std::uint32_t>(*n);
  }
  return cost;
}

PolicyRun run_exact_lru(const Corpus& corpus, const Accesses& accesses,
                        std::vector<std::uint32_t> cost, std::uint64_t limit) {
  ExactLru lru(std::move(cost), limit);
  PolicyRun r;
  r.name = "exact-lru";
  for (std::uint64_t i = 0; i < corpus.page_count(); ++i) lru.insert(static_cast<std::uint32_t>(i));
  for (const std::uint32_t p : accesses.reads) {
    const bool hit = lru.read(p);
    ++r.reads;
    r.hits += hit ? 1 : 0;
    if (accesses.hot[p]) {
      ++r.hot_reads;
      r.hot_hits += hit ? 1 : 0;
    }
    r.backing_reads += hit ? 0 : 1;
  }
  r.backing_writes = lru.evictions();
  return r;
}

bool valid_percent(std::uint32_t p) {
  return p >= 1 && p <= 100;
}

}  // namespace

double PolicyRun::hit_ratio() const {
  return reads == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(reads);
}

double PolicyRun::hot_hit_ratio() const {
  return hot_reads == 0 ? 0.0 : static_cast<double>(hot_hits) / static_cast<double>(hot_reads);
}

std::uint64_t PolicyBenchResult::errors() const {
  std::uint64_t n = 0;
  for (const PolicyRun& r : runs) n += r.errors;
  return n;
}

std::string PolicyBenchResult::backing_failure() const {
  for (const PolicyRun& r : runs)
    if (!r.backing_failure.empty()) return r.backing_failure;
  return "";
}

std::string backing_dir_problem(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return fmt::format("{}: {}", dir, std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) return fmt::format("{}: not a directory", dir);
  if (::faccessat(AT_FDCWD, dir.c_str(), W_OK | X_OK, AT_EACCESS) != 0)
    return fmt::format("{}: {}", dir, std::strerror(errno));
  return "";
}

Result<PolicyBenchResult> run_policy_bench(const Corpus& corpus, const PolicyBenchOptions& options,
                                           const ProgressFactory& progress, std::string* why) {
  if (corpus.page_count() == 0 || options.read_rounds == 0 ||
      !valid_percent(options.hot_page_percent) || !valid_percent(options.hot_read_percent) ||
      !valid_percent(options.limit_percent) || corpus.page_count() >= (std::uint64_t{1} << 32))
    return Error::invalid_argument;
  BackingDir dir;  // before the sizing pass: a directory that cannot be made wastes no work
  if (std::string problem = dir.make(options.backing_dir); !problem.empty()) {
    if (why != nullptr) *why = std::move(problem);
    return Error::io_error;
  }
  PolicyBenchResult result;
  result.options = options;
  result.pages = corpus.page_count();
  StoreOptions base{.page_size = corpus.page_size(),
                    .pages = corpus.page_count(),
                    .compressor = options.compressor};
  std::uint32_t huge_class_size = 0;
  {
    auto sizing = Store::create(base);
    if (!sizing) return sizing.error();
    for (std::uint64_t i = 0; i < corpus.page_count(); ++i)
      if (const Error e = (*sizing)->write(i, corpus.page(i)); e != Error::ok) return e;
    result.compressed_bytes = (*sizing)->stats().compr_data_size;
    huge_class_size = (*sizing)->huge_class_size();
  }
  result.limit = std::max<std::uint64_t>(result.compressed_bytes / 100 * options.limit_percent,
                                         std::uint64_t{64} * corpus.page_size());
  const Accesses accesses = make_accesses(corpus.page_count(), options);
  const StoreRunSpec specs[] = {{"page", WritebackPolicy::page, false},
                                {"zspage", WritebackPolicy::zspage, false},
                                {"page+bg", WritebackPolicy::page, true}};
  for (const StoreRunSpec& spec : specs) {
    StoreOptions o = base;
    o.mem_limit = result.limit;
    o.backing_path = dir.file(spec.name);
    o.writeback_policy = spec.policy;
    o.background_writer = spec.background;
    o.promote_on_read = true;
    o.writeback_batch_pages = options.writeback_batch;
    auto store = Store::create(o);
    if (!store) return store.error();
    StoreRun run(corpus, accesses, result.limit);
    result.runs.push_back(run.run(**store, spec.name, progress));
  }
  auto cost = page_costs(corpus, options.compressor, huge_class_size);
  if (!cost) return cost.error();
  result.runs.push_back(run_exact_lru(corpus, accesses, std::move(*cost), result.limit));
  return result;
}

}  // namespace zspool::tools
