#include "zspool/bench/alloc.h"

#include <dlfcn.h>
#include <malloc.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "zspool/bench/child.h"
#include "zspool/core/pool.h"

namespace zspool::tools {
namespace {

// One allocator behind the operations the phases need. An id is a pointer or a pool handle;
// 0 means the allocation failed.
class BenchAllocator {
 public:
  virtual ~BenchAllocator() = default;
  virtual std::uint64_t put(std::span<const std::byte> bytes) = 0;
  virtual void remove(std::uint64_t id) = 0;
  virtual void compact() = 0;
  virtual bool holds(std::uint64_t id, std::span<const std::byte> bytes) = 0;
  // Adds the allocator's own view of its memory to a phase's figures.
  virtual void describe(nlohmann::ordered_json& /*phase*/, std::uint64_t /*live_bytes*/) const {}
};

// ---- the malloc family: glibc, and jemalloc / mimalloc through dlopen ------------------------

using MallocFn = void* (*)(std::size_t);
using FreeFn = void (*)(void*);

class MallocAllocator final : public BenchAllocator {
 public:
  MallocAllocator(MallocFn malloc_fn, FreeFn free_fn, std::function<void()> purge)
      : malloc_(malloc_fn), free_(free_fn), purge_(std::move(purge)) {}

  std::uint64_t put(std::span<const std::byte> bytes) override {
    void* p = malloc_(bytes.size());
    if (p != nullptr) std::memcpy(p, bytes.data(), bytes.size());
    return reinterpret_cast<std::uintptr_t>(p);
  }
  void remove(std::uint64_t id) override { free_(reinterpret_cast<void*>(id)); }
  void compact() override { purge_(); }
  bool holds(std::uint64_t id, std::span<const std::byte> bytes) override {
    return std::memcmp(reinterpret_cast<const void*>(id), bytes.data(), bytes.size()) == 0;
  }

 private:
  MallocFn malloc_;
  FreeFn free_;
  std::function<void()> purge_;
};

struct Loaded {
  std::unique_ptr<BenchAllocator> allocator;
  std::string error;
};

// The symbol `name` from `handle`, cast to a function pointer type.
template <typename Fn>
Fn symbol(void* handle, const char* name) {
  return reinterpret_cast<Fn>(::dlsym(handle, name));
}

void* open_library(const char* soname, std::string& error) {
  void* handle = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    error = why != nullptr ? why : fmt::format("cannot load {}", soname);
  }
  return handle;
}

Loaded load_glibc() {
  return {std::make_unique<MallocAllocator>(&std::malloc, &std::free, [] { ::malloc_trim(0); }),
          ""};
}

using MallctlFn = int (*)(const char*, void*, std::size_t*, void*, std::size_t);
// "arena.<MALLCTL_ARENAS_ALL>.purge": return every arena's dirty pages to the OS now.
constexpr const char* kJemallocPurgeAll = "arena.4096.purge";

Loaded load_jemalloc() {
  Loaded loaded;
  void* lib = open_library("libjemalloc.so.2", loaded.error);
  if (lib == nullptr) return loaded;
  const auto malloc_fn = symbol<MallocFn>(lib, "malloc");
  const auto free_fn = symbol<FreeFn>(lib, "free");
  const auto mallctl = symbol<MallctlFn>(lib, "mallctl");
  if (malloc_fn == nullptr || free_fn == nullptr || mallctl == nullptr) {
    loaded.error = "libjemalloc.so.2 lacks malloc, free or mallctl";
    return loaded;
  }
  loaded.allocator = std::make_unique<MallocAllocator>(
      malloc_fn, free_fn, [mallctl] { mallctl(kJemallocPurgeAll, nullptr, nullptr, nullptr, 0); });
  return loaded;
}

using MiCollectFn = void (*)(bool);

Loaded load_mimalloc() {
  Loaded loaded;
  void* lib = open_library("libmimalloc.so.2", loaded.error);
  if (lib == nullptr) return loaded;
  const auto malloc_fn = symbol<MallocFn>(lib, "mi_malloc");
  const auto free_fn = symbol<FreeFn>(lib, "mi_free");
  const auto collect = symbol<MiCollectFn>(lib, "mi_collect");
  if (malloc_fn == nullptr || free_fn == nullptr || collect == nullptr) {
    loaded.error = "libmimalloc.so.2 lacks mi_malloc, mi_free or mi_collect";
    return loaded;
  }
  loaded.allocator =
      std::make_unique<MallocAllocator>(malloc_fn, free_fn, [collect] { collect(true); });
  return loaded;
}

// ---- zspool ----------------------------------------------------------------------------------

class ZspoolAllocator final : public BenchAllocator {
 public:
  explicit ZspoolAllocator(std::unique_ptr<Pool> pool) : pool_(std::move(pool)) {}

  std::uint64_t put(std::span<const std::byte> bytes) override {
    // malloc + copy in, as one call (Pool::malloc_copy: the handle is not resolved twice).
    const Result<Handle> h = pool_->malloc_copy(bytes);
    return h ? *h : 0;
  }
  void remove(std::uint64_t id) override {
    if (pool_->free(id) != Error::ok) throw std::runtime_error("zspool: free failed");
  }
  void compact() override { pool_->compact(); }
  bool holds(std::uint64_t id, std::span<const std::byte> bytes) override {
    scratch_.resize(bytes.size());
    return pool_->read(id, scratch_) == Error::ok &&
           std::memcmp(scratch_.data(), bytes.data(), bytes.size()) == 0;
  }
  void describe(nlohmann::ordered_json& phase, std::uint64_t live_bytes) const override {
    const PoolStats s = pool_->stats();
    const std::uint64_t pool_bytes = s.pages * s.page_size;
    phase["pool_bytes"] = pool_bytes;
    phase["metadata_bytes"] = s.metadata_bytes;
    phase["cached_bytes"] = s.cached_bytes;
    phase["zram_efficiency"] =
        pool_bytes == 0 ? 0.0 : static_cast<double>(live_bytes) / static_cast<double>(pool_bytes);
  }

 private:
  std::unique_ptr<Pool> pool_;
  std::vector<std::byte> scratch_;
};

Loaded load_zspool(std::uint32_t max_chain, bool lazy_commit) {
  PoolOptions options;
  options.max_chain = max_chain;
  options.lazy_commit = lazy_commit;
  auto pool = Pool::create(std::move(options));
  if (!pool) return {nullptr, fmt::format("Pool::create: {}", error_message(pool.error()))};
  return {std::make_unique<ZspoolAllocator>(std::move(*pool)), ""};
}

Loaded load_allocator(AllocatorKind kind, std::uint32_t max_chain) {
  switch (kind) {
    case AllocatorKind::zspool:
      return load_zspool(max_chain, true);
    case AllocatorKind::zspool_kernel_like:  // the kernel's chain too, whatever --max-chain says
      return load_zspool(kDefaultChain, false);
    case AllocatorKind::glibc:
      return load_glibc();
    case AllocatorKind::jemalloc:
      return load_jemalloc();
    case AllocatorKind::mimalloc:
      return load_mimalloc();
  }
  return {nullptr, "unknown allocator"};
}

// ---- the phases ------------------------------------------------------------------------------

template <typename F>
double timed(F&& work) {
  const auto start = std::chrono::steady_clock::now();
  work();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

class PhaseRunner {
 public:
  PhaseRunner(BenchAllocator& allocator, const AllocBenchConfig& config)
      : allocator_(allocator), trace_(*config.trace), half_(config.half), ids_(trace_.objects()) {}

  // The four phases, then the check; the phases' figures in order.
  nlohmann::ordered_json run() {
    settle();
    record("fill", trace_.objects(), timed([&] { put_all(); }));
    record("free_half", half_.size(), timed([&] { free_half(); }));
    record("compact", 0, timed([&] { allocator_.compact(); }));
    record("refill", half_.size(), timed([&] { refill(); }));
    return std::move(phases_);
  }
  bool verify() const {
    for (std::uint64_t i = 0; i < trace_.objects(); ++i) {
      if (!allocator_.holds(ids_[i], trace_.object(i))) return false;
    }
    return true;
  }
  std::uint64_t baseline_rss() const { return baseline_.rss; }

 private:
  // Initialises the allocator (one small allocation), returns what it caches, then takes the
  // baseline: whatever the process held before the phases is not the allocator's.
  void settle() {
    const std::array<std::byte, 64> warm_up{};
    allocator_.remove(put_checked(warm_up, 0));
    allocator_.compact();
    baseline_ = read_memory();
  }
  std::uint64_t put_checked(std::span<const std::byte> bytes, std::uint64_t i) {
    const std::uint64_t id = allocator_.put(bytes);
    if (id == 0) throw std::runtime_error(fmt::format("allocation {} failed", i));
    return id;
  }
  void put_all() {
    for (std::uint64_t i = 0; i < trace_.objects(); ++i) {
      ids_[i] = put_checked(trace_.object(i), i);
      live_bytes_ += trace_.size(i);
    }
    live_objects_ = trace_.objects();
  }
  void free_half() {
    for (const std::uint64_t i : half_) {
      allocator_.remove(ids_[i]);
      live_bytes_ -= trace_.size(i);
    }
    live_objects_ -= half_.size();
  }
  void refill() {
    for (const std::uint64_t i : half_) {
      ids_[i] = put_checked(trace_.object(i), i);
      live_bytes_ += trace_.size(i);
    }
    live_objects_ += half_.size();
  }
  void record(std::string_view name, std::uint64_t ops, double seconds) {
    const MemoryReading now = read_memory();
    const std::uint64_t held = now.rss > baseline_.rss ? now.rss - baseline_.rss : 0;
    nlohmann::ordered_json phase = {{"phase", name}, {"ops", ops}, {"seconds", seconds}};
    if (ops != 0) phase["ops_per_sec"] = seconds > 0 ? static_cast<double>(ops) / seconds : 0.0;
    phase["live_objects"] = live_objects_;
    phase["live_bytes"] = live_bytes_;
    phase["held_bytes"] = held;
    phase["lazy_free_bytes"] = now.lazy_free;
    phase["efficiency"] =
        held == 0 ? 0.0 : static_cast<double>(live_bytes_) / static_cast<double>(held);
    allocator_.describe(phase, live_bytes_);
    phases_.push_back(std::move(phase));
  }

  BenchAllocator& allocator_;
  const AllocTrace& trace_;
  std::span<const std::uint64_t> half_;
  std::vector<std::uint64_t> ids_;  // allocated (and touched) before the baseline
  MemoryReading baseline_;
  std::uint64_t live_objects_ = 0;
  std::uint64_t live_bytes_ = 0;
  nlohmann::ordered_json phases_ = nlohmann::ordered_json::array();
};

}  // namespace

std::string_view allocator_name(AllocatorKind kind) {
  switch (kind) {
    case AllocatorKind::zspool:
      return "zspool";
    case AllocatorKind::zspool_kernel_like:
      return "zspool-kernel-like";
    case AllocatorKind::glibc:
      return "glibc";
    case AllocatorKind::jemalloc:
      return "jemalloc";
    case AllocatorKind::mimalloc:
      return "mimalloc";
  }
  return "unknown";
}

nlohmann::ordered_json measure_allocator(AllocatorKind kind, const AllocBenchConfig& config) {
  nlohmann::ordered_json result = {{"name", allocator_name(kind)}};
  Loaded loaded = load_allocator(kind, config.max_chain);
  if (!loaded.allocator) {
    result["available"] = false;
    result["error"] = loaded.error;
    return result;
  }
  PhaseRunner runner(*loaded.allocator, config);
  result["available"] = true;
  result["phases"] = runner.run();
  result["baseline_rss_bytes"] = runner.baseline_rss();
  result["verified"] = runner.verify();
  return result;
}

namespace {

double ratio_or_zero(double numerator, double denominator) {
  return denominator > 0 ? numerator / denominator : 0.0;
}

std::vector<AllocatorKind> allocators_to_run(bool kernel_like) {
  if (kernel_like) {
    return {AllocatorKind::zspool_kernel_like, AllocatorKind::glibc, AllocatorKind::jemalloc,
            AllocatorKind::mimalloc};
  }
  return {AllocatorKind::zspool, AllocatorKind::zspool_kernel_like, AllocatorKind::glibc,
          AllocatorKind::jemalloc, AllocatorKind::mimalloc};
}

nlohmann::ordered_json run_one(AllocatorKind kind, const AllocBenchConfig& config) {
  const ChildAnswer answer = run_in_child([&] { return measure_allocator(kind, config); });
  if (answer.error.empty()) return answer.value;
  return {{"name", allocator_name(kind)}, {"available", false}, {"error", answer.error}};
}

const nlohmann::ordered_json* find_phase(const nlohmann::ordered_json& allocator,
                                         std::string_view phase) {
  if (!allocator.value("available", false)) return nullptr;
  for (const nlohmann::ordered_json& p : allocator["phases"]) {
    if (p["phase"] == phase) return &p;
  }
  return nullptr;
}

// Adds held_vs_zspool and ops_vs_glibc to every phase of every available allocator.
void add_ratios(nlohmann::ordered_json& allocators) {
  const nlohmann::ordered_json& reference = allocators.front();
  const nlohmann::ordered_json* glibc = nullptr;
  for (const nlohmann::ordered_json& a : allocators) {
    if (a["name"] == "glibc") glibc = &a;
  }
  for (nlohmann::ordered_json& a : allocators) {
    if (!a.value("available", false)) continue;
    for (nlohmann::ordered_json& p : a["phases"]) {
      const std::string phase = p["phase"];
      if (const nlohmann::ordered_json* ref = find_phase(reference, phase))
        p["held_vs_zspool"] = ratio_or_zero(p["held_bytes"], (*ref)["held_bytes"]);
      const nlohmann::ordered_json* g = glibc != nullptr ? find_phase(*glibc, phase) : nullptr;
      if (g != nullptr && p.contains("ops_per_sec") && g->contains("ops_per_sec"))
        p["ops_vs_glibc"] = ratio_or_zero(p["ops_per_sec"], (*g)["ops_per_sec"]);
    }
  }
}

// {"zspool": {"fill": 0.98, ...}, ...}: zspool's zram_efficiency per phase.
nlohmann::ordered_json zram_efficiency_json(const nlohmann::ordered_json& allocators) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const nlohmann::ordered_json& a : allocators) {
    if (!a.value("available", false) || !a["phases"].front().contains("zram_efficiency")) continue;
    nlohmann::ordered_json phases = nlohmann::ordered_json::object();
    for (const nlohmann::ordered_json& p : a["phases"])
      phases[p["phase"].get<std::string>()] = p["zram_efficiency"];
    j[a["name"].get<std::string>()] = std::move(phases);
  }
  return j;
}

}  // namespace

std::string AllocBenchResult::unverified() const {
  for (const auto& a : allocators) {
    if (a.value("available", false) && !a.value("verified", false)) return a["name"];
  }
  return "";
}

AllocBenchResult run_alloc_bench(const AllocTrace& trace, std::uint32_t max_chain,
                                 std::uint64_t seed, bool kernel_like,
                                 const std::string& tls_problem) {
  const std::vector<std::uint64_t> half = random_half(trace.objects(), seed);
  const AllocBenchConfig config{max_chain, &trace, half};
  AllocBenchResult r{&trace, max_chain, seed, nlohmann::ordered_json::array(), {}};
  for (const AllocatorKind kind : allocators_to_run(kernel_like)) {
    r.allocators.push_back(run_one(kind, config));
    auto& last = r.allocators.back();
    if (!tls_problem.empty() && kind == AllocatorKind::jemalloc && !last["available"])
      last["error"] = last["error"].get<std::string>() + " (" + tls_problem + ")";
  }
  add_ratios(r.allocators);
  r.zram_efficiency = zram_efficiency_json(r.allocators);
  return r;
}

}  // namespace zspool::tools
