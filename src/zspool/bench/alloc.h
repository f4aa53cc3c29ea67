// `zspool bench alloc`'s measurement: one allocator replaying an AllocTrace through four
// phases, inside its own child process (bench_child.h).
//
//   baseline: allocator initialised and purged, bookkeeping allocated  ──▶ RSS₀
//   fill       allocate every object and copy its bytes in           (timed)  ──▶ RSS₁ − RSS₀
//   free_half  free the random half, in shuffled order               (timed)  ──▶ RSS₂ − RSS₀
//   compact    zspool compact(); glibc malloc_trim(0);               (timed)  ──▶ RSS₃ − RSS₀
//              jemalloc mallctl("arena.4096.purge"); mimalloc mi_collect(true)
//   refill     allocate the freed half again, same sizes and bytes   (timed)  ──▶ RSS₄ − RSS₀
//   then every live object is compared with its bytes (untimed): "verified"
//
// "held" is that RSS difference (/proc/self/smaps_rollup, read the same way for every
// allocator); efficiency = live bytes requested / held. For zspool the pool's own view is added:
// pool_bytes (pages held * page_size, zram's mem_used_total), metadata_bytes, and
// zram_efficiency = live bytes / pool_bytes (zram's compr_data_size / mem_used_total).
//
// The malloc-family allocators other than glibc are Debian's shared libraries, loaded with
// dlopen(RTLD_NOW | RTLD_LOCAL) in the child so they never replace the process's own malloc.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "zspool/bench/alloc_trace.h"

namespace zspool::tools {

enum class AllocatorKind : std::uint8_t { zspool, zspool_kernel_like, glibc, jemalloc, mimalloc };

// "zspool", "zspool-kernel-like", "glibc", "jemalloc", "mimalloc".
std::string_view allocator_name(AllocatorKind kind);

struct AllocBenchConfig {
  std::uint32_t max_chain = 8;
  const AllocTrace* trace = nullptr;
  std::span<const std::uint64_t> half;  // random_half(trace->objects(), seed)
};

// Runs the phases for one allocator in the calling process (meant for a forked child) and
// returns {"name", "available": true, "phases": [...], "verified", ...}, or
// {"name", "available": false, "error": why} when the allocator cannot be loaded. Each phase:
// {"phase", "ops", "seconds", "ops_per_sec" (not for compact), "live_objects", "live_bytes",
//  "held_bytes", "lazy_free_bytes", "efficiency"} plus, for zspool, "pool_bytes",
// "metadata_bytes", "cached_bytes", "zram_efficiency".
nlohmann::ordered_json measure_allocator(AllocatorKind kind, const AllocBenchConfig& config);

// The whole `zspool bench alloc` measurement: every allocator, each in its own child, with the
// ratios between them. Allocators run: zspool (lazy commit, chain max_chain), zspool-kernel-like
// (lazy_commit off, the kernel's chain 8), glibc, jemalloc, mimalloc; with kernel_like, the
// kernel-like zspool is the first (reference) row and plain zspool does not run.
// The children answer in JSON over a pipe (child.h), so the figures stay in that form:
//   allocators: [{"name", "available", "error"?, "verified", "phases": [{..., "held_vs_zspool",
//                "ops_vs_glibc"}]}]
//   zram_efficiency: {"zspool": {"fill": 0.98, ...}, ...} (zspool rows only)
struct AllocBenchResult {
  const AllocTrace* trace = nullptr;
  std::uint32_t max_chain = 0;
  std::uint64_t seed = 0;
  nlohmann::ordered_json allocators;
  nlohmann::ordered_json zram_efficiency;
  // The first available allocator whose objects read back different bytes, or "".
  std::string unverified() const;
};
AllocBenchResult run_alloc_bench(const AllocTrace& trace, std::uint32_t max_chain,
                                 std::uint64_t seed, bool kernel_like,
                                 const std::string& tls_problem);

// The kernel's zsmalloc efficiency per phase (refill has none): the lowest and highest of the
// three corpora the team measured through zram (the notes' ZSMALLOC.md, section 7).
struct KernelRange {
  std::string_view phase;
  double low, high;
};
inline constexpr KernelRange kKernelEfficiency[] = {
    {"fill", 0.891, 0.950}, {"free_half", 0.461, 0.497}, {"compact", 0.834, 0.924}};

// The phases' names, in order.
inline constexpr std::string_view kAllocPhases[] = {"fill", "free_half", "compact", "refill"};

}  // namespace zspool::tools
