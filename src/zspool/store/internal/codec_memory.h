// What the compressors' per-CPU memory holds now (compressor.cc): for tests and measurements.
#pragma once

#include <cstddef>
#include <cstdint>

namespace zspool::internal {

struct CodecMemory {
  std::uint64_t zstd_contexts_live = 0;  // compression + decompression contexts not yet freed
  std::size_t slots_per_cache = 0;       // PerCpu slots in each cache (cpus + spares)
  std::uint64_t waits = 0;               // leases, of every cache, that found every slot taken
};

CodecMemory codec_memory();

}  // namespace zspool::internal
