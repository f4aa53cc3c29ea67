#include "zspool/testing/soak.h"

#include <fmt/format.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iterator>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "zspool/platform/internal/os_page_source.h"
#include "zspool/store/internal/store_internals.h"
#include "zspool/store/store.h"
#include "zspool/testing/failing_page_source.h"
#include "zspool/workload/corpus.h"
#include "zspool/workload/rng.h"

namespace zspool::tools {
namespace {

// The page (index, version) holds; version 0 means "never written or discarded": zeros. The
// contents come from the builtin corpus's generator, in one of five kinds chosen by (index,
// version); pages that are not zero- or same-filled carry index and version in their first 16
// bytes, so a page in the wrong place or of an old version cannot pass.
void fill_page(std::span<std::byte> p, std::uint64_t index, std::uint64_t version) {
  std::fill(p.begin(), p.end(), std::byte{0});
  if (version == 0) return;
  static constexpr PageKind kKinds[] = {PageKind::zero, PageKind::same_filled, PageKind::text,
                                        PageKind::heap, PageKind::random};
  const std::uint64_t s = splitmix64_at(index * 0x100000001b3ull + version);
  const PageKind kind = kKinds[s % std::size(kKinds)];
  if (kind == PageKind::zero) return;
  generate_page(p, kind, s);
  if (kind == PageKind::same_filled) return;
  std::memcpy(&p[0], &index, 8);
  std::memcpy(&p[8], &version, 8);
}

struct Tally {
  std::atomic<std::uint64_t> ops{0}, writes{0}, reads{0}, verified{0}, discards{0}, compactions{0},
      writebacks{0}, recompressions{0}, faults{0}, refused{0}, errors{0};
};

struct Shadow {
  std::mutex mutex;
  std::uint64_t version = 0;
};

class Soak {
 public:
  std::atomic<bool> stop{false};

  Soak(const SoakOptions& o, Store& store, FailingPageSource& source)
      : o_(o), store_(store), source_(source), shadow_(o.pages) {}

  void run_thread(unsigned id, std::chrono::steady_clock::time_point end) {
    std::uint64_t r = splitmix64_at(id + 1);
    std::vector<std::byte> page(store_.page_size()), got(store_.page_size());
    for (std::uint64_t n = 1;
         !stop.load(std::memory_order_relaxed) && std::chrono::steady_clock::now() < end; ++n) {
      r = splitmix64_at(r);
      if (o_.fault_every != 0 && n % o_.fault_every == 0) inject_faults(r);
      one_op(r, page, got);
      tally.ops.fetch_add(1, std::memory_order_relaxed);
    }
  }

  // Every page must hold what its shadow says (run with no other thread active).
  void verify_all() {
    std::vector<std::byte> got(store_.page_size()), want(store_.page_size());
    for (std::uint64_t i = 0; i < o_.pages; ++i) read(i, got, want);
  }

  void report_error(const std::string& what) {
    tally.errors.fetch_add(1);
    std::lock_guard lock(first_error_mutex_);
    if (first_error.empty()) first_error = what;
  }

  Tally tally;
  std::string first_error;

 private:
  void inject_faults(std::uint64_t r) {
    source_.fail_at(source_.requests() + 1 + r % 4);  // one of the next few page requests
    if (BackingFile* f = StoreInternals::backing_file(store_)) f->fail_write_at(1 + r % 8);
    tally.faults.fetch_add(2, std::memory_order_relaxed);
  }

  void one_op(std::uint64_t r, std::span<std::byte> page, std::span<std::byte> got) {
    const std::uint64_t index = (r >> 8) % o_.pages;
    const unsigned kind = r % 100;
    if (kind < 45) return write(index, page);
    if (kind < 88) return read(index, got, page);
    if (kind < 95) return discard(index);
    if (kind < 97) {
      store_.compact();
      tally.compactions.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (kind == 97 && !o_.recompress_with.empty()) return recompress(r);
    if (store_.writeback(1 + r % 16).ok()) tally.writebacks.fetch_add(1, std::memory_order_relaxed);
  }

  // A few pages of any kind, by every secondary in turn or by one, while the others write,
  // read and write back the same pages. Before one in four idle runs every page is marked idle
  // (reads and writes clear the marks meanwhile), so idle recompression has pages to take.
  void recompress(std::uint64_t r) {
    static constexpr RecompressKind kKinds[] = {RecompressKind::all, RecompressKind::huge,
                                                RecompressKind::idle};
    if (kKinds[(r >> 16) % 3] == RecompressKind::idle && (r >> 30) % 4 == 0) store_.mark_idle();
    const auto priority = static_cast<std::uint32_t>((r >> 20) % (o_.recompress_with.size() + 1));
    const auto done = store_.recompress(kKinds[(r >> 16) % 3], 0, 1 + (r >> 24) % 32, priority);
    if (done) {
      tally.recompressions.fetch_add(1, std::memory_order_relaxed);
    } else if (done.error() == Error::out_of_memory) {
      tally.refused.fetch_add(1, std::memory_order_relaxed);  // an injected fault must explain it
    } else {
      report_error(fmt::format("recompress: {}", error_message(done.error())));
    }
  }

  void write(std::uint64_t index, std::span<std::byte> page) {
    Shadow& sh = shadow_[index];
    std::lock_guard lock(sh.mutex);
    const std::uint64_t version = next_version_.fetch_add(1);
    fill_page(page, index, version);
    const Error e = store_.write(index, page);
    if (e == Error::ok) {
      sh.version = version;
      tally.writes.fetch_add(1, std::memory_order_relaxed);
    } else if (e == Error::out_of_memory || e == Error::limit_reached) {
      tally.refused.fetch_add(1, std::memory_order_relaxed);  // an injected fault must explain it
    } else {
      report_error(fmt::format("write of page {}: {}", index, error_message(e)));
    }
  }

  void read(std::uint64_t index, std::span<std::byte> got, std::span<std::byte> want) {
    Shadow& sh = shadow_[index];
    std::lock_guard lock(sh.mutex);
    const Error e = store_.read(index, got);
    tally.reads.fetch_add(1, std::memory_order_relaxed);
    if (e != Error::ok) {
      report_error(fmt::format("read of page {}: {}", index, error_message(e)));
      return;
    }
    fill_page(want, index, sh.version);
    if (std::memcmp(got.data(), want.data(), got.size()) != 0) {
      report_error(fmt::format("page {} does not hold version {}", index, sh.version));
      return;
    }
    tally.verified.fetch_add(1, std::memory_order_relaxed);
  }

  void discard(std::uint64_t index) {
    Shadow& sh = shadow_[index];
    std::lock_guard lock(sh.mutex);
    if (const Error e = store_.discard(index); e != Error::ok) {
      report_error(fmt::format("discard of page {}: {}", index, error_message(e)));
      return;
    }
    sh.version = 0;
    tally.discards.fetch_add(1, std::memory_order_relaxed);
  }

  const SoakOptions& o_;
  Store& store_;
  FailingPageSource& source_;
  std::vector<Shadow> shadow_;
  std::atomic<std::uint64_t> next_version_{1};
  std::mutex first_error_mutex_;
};

// A fresh 0700 directory under $TMPDIR (or /tmp) that only this process knows the name of.
Result<std::string> private_temp_dir(std::string* why) {
  std::error_code ec;
  std::filesystem::path base = std::filesystem::temp_directory_path(ec);
  if (ec) base = "/tmp";
  std::string dir = (base / "zspool-soak-XXXXXX").string();
  if (::mkdtemp(dir.data()) == nullptr) {
    *why = fmt::format("cannot create a private directory under {}: {}", base.string(),
                       std::strerror(errno));
    return Error::io_error;
  }
  return dir;
}

// Starts `count` threads running body(i); if one cannot start, stops and joins the others.
bool start_threads(unsigned count, Soak& soak, std::vector<std::thread>& threads,
                   const std::function<void(unsigned)>& body) {
  for (unsigned i = 0; i < count; ++i) {
    try {
      threads.emplace_back(body, i);
    } catch (const std::system_error&) {
      soak.stop.store(true);
      for (std::thread& t : threads) t.join();
      threads.clear();
      return false;
    }
  }
  return true;
}

SoakResult collect(const SoakOptions& o, const Soak& soak, const StoreStats& st, double seconds) {
  const Tally& t = soak.tally;
  SoakResult r;
  r.options = o;
  r.seconds = seconds;
  r.ops = t.ops.load();
  r.writes = t.writes.load();
  r.reads = t.reads.load();
  r.verified = t.verified.load();
  r.discards = t.discards.load();
  r.compactions = t.compactions.load();
  r.writebacks = t.writebacks.load();
  r.recompressions = t.recompressions.load();
  r.recompressed_pages = st.recompressed_pages;
  r.faults = t.faults.load();
  r.refused = t.refused.load();
  r.errors = t.errors.load();
  r.bd_write_failures = st.bd_write_failures;
  r.page_source_failures = st.pool.alloc_failures;
  r.written_back_pages = st.written_back_pages;
  r.first_error = soak.first_error;
  // Each injected fault (a page-source refusal, a backing-write failure) can refuse one write at
  // most. More refusals mean the store refused writes by itself: 8% of them, with no fault at
  // all, once its handle slots were stranded in class lists (StaleHandle.SlotsAClass...).
  if (r.refused > r.faults) {
    ++r.errors;
    if (r.first_error.empty())
      r.first_error = fmt::format("{} writes refused; the {} faults injected explain at most {}",
                                  r.refused, r.faults, r.faults);
  }
  return r;
}

}  // namespace

Result<SoakResult> run_soak(const SoakOptions& o, const ProgressFactory& progress,
                            std::string* why) {
  if (o.threads == 0 || o.pages == 0 || o.threads > kMaxSoakThreads) {
    *why = fmt::format("threads must be 1..{} and pages positive", kMaxSoakThreads);
    return Error::invalid_argument;
  }
  auto dir = private_temp_dir(why);
  if (!dir) return dir.error();
  const std::string backing = *dir + "/backing.img";
  auto source = std::make_shared<FailingPageSource>(std::make_shared<OsPageSource>());
  auto created = Store::create({.pages = o.pages,
                                .compressor = o.compressor,
                                .mem_limit = o.limit,
                                .backing_path = backing,
                                .page_source = source,
                                .recompress_with = o.recompress_with});
  std::error_code ec;
  std::filesystem::remove(backing, ec);  // the store keeps it open; nothing is left behind
  std::filesystem::remove(*dir, ec);
  if (!created) {
    *why = fmt::format("cannot create the store: {}", error_message(created.error()));
    return created.error();
  }
  auto store = std::move(*created);
  Soak soak(o, *store, *source);
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::seconds(o.seconds);
  std::vector<std::thread> threads;
  if (!start_threads(o.threads, soak, threads, [&](unsigned i) { soak.run_thread(i, end); })) {
    *why = fmt::format("cannot start {} threads", o.threads);
    return Error::out_of_memory;
  }
  const auto bar = progress("soak", o.seconds);
  for (std::uint64_t s = 0; s < o.seconds; ++s) {
    std::this_thread::sleep_until(start + std::chrono::seconds(s + 1));
    bar->advance();
  }
  for (auto& t : threads) t.join();
  bar->finish();
  source->fail_at(0);
  if (BackingFile* f = StoreInternals::backing_file(*store)) f->clear_faults();
  soak.verify_all();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return collect(o, soak, store->stats(), seconds);
}

}  // namespace zspool::tools
