// zspool soak: every store operation at once, for a while, with faults injected; every read
// verified.
//
//   zspool soak [--seconds N] [--threads T] [--pages P] [--limit SIZE] [--fault-every N] [--json]
//
// T threads pick random pages and write (a page derived from (page, version) in one of five
// flavours: text, zeros, same-filled, pointer-rich, random), read and verify against the
// version last written (a per-page shadow, locked per page so the check is exact), discard,
// compact or write back. The store runs under a tight memory limit with a backing file, so
// writeback runs constantly. Faults: every `fault-every` operations a thread makes the page
// source refuse a request (the pool must return out_of_memory and change nothing) and the
// backing file fail a write (the page must stay in memory). Output: operations done, faults
// injected, errors found (wrong data, or an error a fault does not explain); exit 1 if any.
#include <fmt/format.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "zspool/store/store.h"
#include "zspool/tools/command.h"
#include "zspool/tools/options.h"
#include "zspool/tools/progress.h"

namespace zspool::tools {
namespace {

struct SoakOptions {
  std::uint64_t seconds = 60;
  unsigned threads = 4;
  std::uint64_t pages = 8192;
  std::uint64_t limit = 8 << 20;
  std::uint64_t fault_every = 5000;
  bool json = false;
};

std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The page (index, version) holds; version 0 means "never written or discarded": zeros.
void fill_page(std::span<std::byte> p, std::uint64_t index, std::uint64_t version) {
  std::memset(p.data(), 0, p.size());
  if (version == 0) return;
  std::uint64_t s = mix(index * 0x100000001b3ull + version);
  switch (s % 5) {
    case 0:  // zeros
      return;
    case 1:  // same-filled
      for (std::size_t i = 0; i + 8 <= p.size(); i += 8) std::memcpy(&p[i], &s, 8);
      return;
    case 2: {  // text-like
      static constexpr std::string_view kWords[] = {"page ",   "store ",  "soak ", "verify ",
                                                    "zspool ", "memory ", "cold ", "back "};
      for (std::size_t i = 0; i < p.size();) {
        s = mix(s);
        const auto w = kWords[s % 8];
        const std::size_t n = std::min(w.size(), p.size() - i);
        std::memcpy(&p[i], w.data(), n);
        i += n;
      }
      break;
    }
    case 3:  // pointer-rich
      for (std::size_t i = 0; i + 8 <= p.size(); i += 8) {
        const std::uint64_t v = 0x00007f5a00000000ull + (mix(s + i / 128) % 8192) * 16;
        std::memcpy(&p[i], &v, 8);
      }
      break;
    default:  // incompressible
      for (std::size_t i = 0; i + 8 <= p.size(); i += 8) {
        s = mix(s);
        std::memcpy(&p[i], &s, 8);
      }
  }
  std::memcpy(&p[0], &index, 8);
  std::memcpy(&p[8], &version, 8);
}

struct Tally {
  std::atomic<std::uint64_t> ops{0}, writes{0}, reads{0}, verified{0}, discards{0}, compactions{0},
      writebacks{0}, faults{0}, refused{0}, errors{0};
};

struct Shadow {
  std::mutex mutex;
  std::uint64_t version = 0;
};

class Soak {
 public:
  Soak(const SoakOptions& o, Store& store, FailingPageSource& source)
      : o_(o), store_(store), source_(source), shadow_(o.pages) {}

  void run_thread(unsigned id, std::chrono::steady_clock::time_point end) {
    std::uint64_t r = mix(id + 1);
    std::vector<std::byte> page(store_.page_size()), got(store_.page_size());
    for (std::uint64_t n = 1; std::chrono::steady_clock::now() < end; ++n) {
      r = mix(r);
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
    if (BackingFile* f = store_.backing_file()) f->fail_write_at(1 + r % 8);
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
    if (store_.writeback(1 + r % 16).ok()) tally.writebacks.fetch_add(1, std::memory_order_relaxed);
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
      tally.refused.fetch_add(1, std::memory_order_relaxed);  // an injected fault explains it
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

std::string temp_backing_path() {
  return (std::filesystem::temp_directory_path() / fmt::format("zspool-soak-{}.img", getpid()))
      .string();
}

void print(const SoakOptions& o, const Soak& soak, const StoreStats& st, double seconds) {
  const Tally& t = soak.tally;
  if (o.json) {
    nlohmann::ordered_json j{{"seconds", seconds},
                             {"threads", o.threads},
                             {"ops", t.ops.load()},
                             {"writes", t.writes.load()},
                             {"reads", t.reads.load()},
                             {"verified", t.verified.load()},
                             {"discards", t.discards.load()},
                             {"compactions", t.compactions.load()},
                             {"writebacks", t.writebacks.load()},
                             {"faults_injected", t.faults.load()},
                             {"writes_refused", t.refused.load()},
                             {"bd_write_failures", st.bd_write_failures},
                             {"page_source_failures", st.pool.alloc_failures},
                             {"written_back_pages", st.written_back_pages},
                             {"errors", t.errors.load()}};
    if (!soak.first_error.empty()) j["first_error"] = soak.first_error;
    fmt::print("{}\n", j.dump());
    return;
  }
  fmt::print("soak: {:.1f} s, {} threads, {} pages, limit {} bytes\n", seconds, o.threads, o.pages,
             o.limit);
  fmt::print(
      "  ops {}  (writes {}, reads {} verified {}, discards {}, compactions {}, "
      "writebacks {})\n",
      t.ops.load(), t.writes.load(), t.reads.load(), t.verified.load(), t.discards.load(),
      t.compactions.load(), t.writebacks.load());
  fmt::print(
      "  faults injected {}  (writes refused {}, backing write failures {}, "
      "allocation failures {}), written back {}\n",
      t.faults.load(), t.refused.load(), st.bd_write_failures, st.pool.alloc_failures,
      st.written_back_pages);
  fmt::print("  errors found {}{}\n", t.errors.load(),
             soak.first_error.empty() ? "" : "  (first: " + soak.first_error + ")");
}

void run_soak(const SoakOptions& o) {
  if (o.threads == 0 || o.pages == 0) usage_error("--threads and --pages must be positive");
  auto source = std::make_shared<FailingPageSource>(std::make_shared<OsPageSource>());
  const std::string backing = temp_backing_path();
  auto created = Store::create(
      {.pages = o.pages, .mem_limit = o.limit, .backing_path = backing, .page_source = source});
  if (!created)
    command_failed(fmt::format("cannot create the store: {}", error_message(created.error())));
  auto store = std::move(*created);
  Soak soak(o, *store, *source);
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::seconds(o.seconds);
  Progress progress("soak", o.seconds);
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < o.threads; ++i)
    threads.emplace_back([&, i] { soak.run_thread(i, end); });
  for (std::uint64_t s = 0; s < o.seconds; ++s) {
    std::this_thread::sleep_until(start + std::chrono::seconds(s + 1));
    progress.advance();
  }
  for (auto& t : threads) t.join();
  progress.finish();
  source->fail_at(0);
  if (store->backing_file() != nullptr) store->backing_file()->clear_faults();
  soak.verify_all();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const StoreStats st = store->stats();
  store.reset();
  std::filesystem::remove(backing);
  print(o, soak, st, seconds);
  if (soak.tally.errors.load() != 0)
    command_failed(fmt::format("{} errors found", soak.tally.errors.load()));
}

void setup_soak(CLI::App& app) {
  auto o = std::make_shared<SoakOptions>();
  app.add_option("--seconds", o->seconds, "how long to run")->capture_default_str();
  app.add_option("--threads", o->threads, "threads mixing operations")->capture_default_str();
  app.add_option("--pages", o->pages, "store capacity in pages")->capture_default_str();
  add_size_option(app, "--limit", o->limit, "pool memory limit (writeback above it)");
  app.add_option("--fault-every", o->fault_every,
                 "inject faults every N operations per thread (0: none)")
      ->capture_default_str();
  app.add_flag("--json", o->json, "print one JSON object");
  app.callback([o] { run_soak(*o); });
}

[[maybe_unused]] const bool registered = register_command(
    {"soak", "mix every store operation with faults for a while, verifying every read",
     setup_soak});

}  // namespace
}  // namespace zspool::tools
