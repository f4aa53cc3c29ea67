// The process's own view of its address space, from /proc/self/maps: how many mappings and how
// many bytes they span. Leak checks take a census before building a pool or store and after
// destroying it; the two must be equal. Mappings that grow and shrink on their own ([heap],
// [stack], [vdso], [vvar], [vsyscall]) are left out, so malloc's brk heap does not count.
#ifndef ZSPOOL_PLATFORM_PROC_MAPS_H_
#define ZSPOOL_PLATFORM_PROC_MAPS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace zspool::os {

struct MappingCensus {
  std::size_t mappings = 0;
  std::uint64_t bytes = 0;
  friend bool operator==(const MappingCensus&, const MappingCensus&) = default;
};

// Counts the lines of a /proc/PID/maps text (the special mappings above excluded). A line that
// does not parse gives nullopt.
std::optional<MappingCensus> count_mappings(std::string_view maps_text);

// The census of this process now; nullopt when /proc/self/maps cannot be read.
std::optional<MappingCensus> census_of_own_mappings();

// Why a census of this process cannot isolate the mappings zspool makes, or "" when it can.
// A sanitizer's allocator (ASan, TSan, MSan) maps and splits regions of its own on every
// malloc, and so does valgrind's (seen in the maps as its vgpreload library) or any malloc
// put in with LD_PRELOAD: under them a census moves whatever zspool does.
std::string census_unreliable_reason();

// Runs `body` in a forked child and takes the census there just before and just after it. The
// child has one thread and nothing else in flight, so nothing but `body` can change its
// mappings (in the parent, a thread stack or malloc chunk freed late by an earlier test would).
// Returns "" when body returned "" and the two censuses are equal; otherwise what went wrong:
// body's own message, the census change, or how the child died. When
// census_unreliable_reason() is not empty, only body's verdict and the child's fate count.
// `prepare`, when given, runs in the child before the first census (its own result ignored):
// for process-lifetime caches the code under test keeps per thread on purpose (a compressor's
// context, which the child inherits in whatever state earlier tests left it and which zstd
// resizes on its own schedule), so the census sees only what `body` maps and leaves.
std::string mapping_leak_in_child(const std::function<std::string()>& body,
                                  const std::function<void()>& prepare = {});

}  // namespace zspool::os

#endif  // ZSPOOL_PLATFORM_PROC_MAPS_H_
