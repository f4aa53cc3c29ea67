// The operating system behind a few primitives: page size, reserved virtual ranges, residency.
//
// Everything zspool takes from the OS is anonymous private memory from mmap; nothing in the
// platform layer calls malloc for the memory it hands out.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace zspool::os {

// A path with a NUL byte cannot be given to the OS: it would see only the part before the NUL
// and open another file than the one named. Every library call that takes a path refuses one.
inline bool path_has_nul(std::string_view path) {
  return path.find('\0') != std::string_view::npos;
}
// The path for a message: each NUL shown as "\0".
inline std::string shown_path(std::string_view path) {
  std::string out;
  for (const char c : path) {
    if (c == '\0')
      out += "\\0";
    else
      out += c;
  }
  return out;
}

// The kernel's page size (sysconf(_SC_PAGESIZE)), cached.
std::size_t page_size() noexcept;

// CLOCK_MONOTONIC_COARSE, as time since CLOCK_MONOTONIC's epoch (the epoch of
// std::chrono::steady_clock on Linux): one read of a variable the kernel updates every tick
// (1-4 ms), a few ns against tens for the full clock. For timestamps that need no more.
std::chrono::nanoseconds coarse_monotonic_now() noexcept;

// The machine's physical memory in bytes (sysconf), or 0 when it cannot be told.
std::uint64_t physical_memory_bytes() noexcept;

// How many CPUs this process may run on (its affinity mask at the first call, cached), at
// least 1. What per-CPU structures size themselves by.
std::size_t cpu_count() noexcept;

// The CPU the calling thread runs on now (sched_getcpu: glibc reads it from the thread's rseq
// area, no system call), or 0 when the kernel cannot tell. Only a hint: the thread may move
// before the caller uses it.
std::size_t current_cpu() noexcept;

// How much more memory this process may really take, from every limit it can read. Each
// field is nullopt when that limit is absent or unreadable; `bytes` is the least of those
// present (UINT64_MAX when none is), and `limited_by` names the one that gave it.
//
//   physical       sysconf(_SC_PHYS_PAGES) * page size
//   available      MemAvailable in /proc/meminfo (free memory plus what the kernel can reclaim)
//   cgroup         the least (limit - usage) over the process's memory cgroup and its
//                  ancestors up to the mount: cgroup v2 min(memory.max, memory.high) -
//                  memory.current, cgroup v1 memory.limit_in_bytes - memory.usage_in_bytes. The
//                  cgroup comes from /proc/self/cgroup, its directory from /proc/self/mountinfo
//                  (a mount whose root is a prefix of the cgroup path, as in a container, is
//                  handled). A cgroup limit is where `zspool` was SIGKILLed, not refused.
//   address_space  RLIMIT_AS (ulimit -v) - VmSize (/proc/self/status): what mmap and malloc
//                  can still reserve; a reserved range counts in full, touched or not
//
// Every figure is a snapshot; other processes and threads change them. For a fit check
// before a large allocation, not a guarantee.
struct MemoryBudget {
  std::uint64_t bytes = UINT64_MAX;
  const char* limited_by = "nothing known";
  std::optional<std::uint64_t> physical;
  std::optional<std::uint64_t> available;
  std::optional<std::uint64_t> cgroup;
  std::optional<std::uint64_t> address_space;
};

// Where memory_budget reads from; the defaults are the running process's. Tests point them at
// a directory of fake files.
struct MemorySources {
  std::string proc = "/proc";  // proc/self/{cgroup,mountinfo,status}, proc/meminfo
  std::string root;            // prefixed to the mount points mountinfo names ("": /)
  // RLIMIT_AS's soft limit (UINT64_MAX: unlimited); nullopt: getrlimit.
  std::optional<std::uint64_t> address_space_limit;
  // Physical memory; nullopt: sysconf.
  std::optional<std::uint64_t> physical;
};

MemoryBudget memory_budget(const MemorySources& sources = {});

// A range of virtual address space, read-write, committed lazily by the kernel on first touch
// (MAP_NORESERVE), never backed by transparent huge pages. Owns the mapping: munmap on
// destruction. Moves, never copies.
class VirtualRange {
 public:
  VirtualRange() = default;
  // Reserves `bytes` (rounded up to the OS page size). ok() is false if mmap failed.
  explicit VirtualRange(std::size_t bytes) noexcept;
  ~VirtualRange();
  VirtualRange(VirtualRange&& other) noexcept;
  VirtualRange& operator=(VirtualRange&& other) noexcept;
  VirtualRange(const VirtualRange&) = delete;
  VirtualRange& operator=(const VirtualRange&) = delete;

  bool ok() const noexcept { return base_ != nullptr; }
  // Makes the range at least `bytes` long: a fresh, larger mapping replaces a shorter one (the
  // contents are not kept). False, with the range unchanged, if mmap failed. For scratch
  // buffers that should leave no malloc memory behind.
  bool grow_to(std::size_t bytes) noexcept;
  std::byte* base() const noexcept { return base_; }
  std::size_t size() const noexcept { return size_; }
  bool contains(const void* p) const noexcept {
    auto* b = static_cast<const std::byte*>(p);
    return b >= base_ && b < base_ + size_;
  }

 private:
  std::byte* base_ = nullptr;
  std::size_t size_ = 0;
};

// Gives the physical pages behind [p, p + bytes) back to the OS at once (MADV_DONTNEED): the
// process's RSS drops now, and the range reads as zeros when touched again.
// Precondition: p and bytes are multiples of page_size().
void release_pages(void* p, std::size_t bytes) noexcept;

// Makes the pages behind [p, p + bytes) resident and writable now, as a write to each would
// (MADV_POPULATE_WRITE), so the first writes to them take no page fault. Where faults are dear
// this is cheaper: on the idle VM of BENCHMARKS.md a faulting write costs ~0.96 us, a one-page
// populate ~0.76 us and one of 16 pages ~0.50 us a page (build/platform_benchmark); when that VM
// was loaded, 40-80 us against 30-60 us; on another VM (2026-12-02) a one-page populate cost
// 3.1-3.6 us against 2.5-2.8 us for the fault, so OsPageSource picks per host (see
// internal/commit_calibrator.h). False if
// the kernel cannot (before Linux 5.14) or the range is not mapped; the pages then fault in on
// first touch as before. Precondition: p and bytes are multiples of page_size().
bool populate_pages(void* p, std::size_t bytes) noexcept;

// Makes the pages behind [p, p + bytes) resident and writable by writing to each (an atomic
// no-op: OR of 0 into its first byte, so the contents stay as they were): one write fault a
// fresh page, and no syscall. Which of this and populate_pages costs less depends on the host
// (see internal/commit_calibrator.h). Precondition: p and bytes are multiples of page_size().
void touch_pages(void* p, std::size_t bytes) noexcept;

// How many bytes of [p, p + bytes) are resident, as the kernel reports it (mincore).
std::size_t resident_bytes(const void* p, std::size_t bytes) noexcept;

}  // namespace zspool::os
