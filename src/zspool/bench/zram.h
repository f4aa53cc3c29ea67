// The kernel's zram, driven the way `zspool bench store` drives the Store, for side-by-side
// figures. Needs root and /sys/block/zram0, left unconfigured (initstate 0) by everyone else.
//
//   reset ─▶ comp_algorithm ─▶ disksize = pages * 4096
//   write every page      pwrite, O_DIRECT, 4 KiB-aligned buffers       (N threads, timed)
//   read every page       pread, O_DIRECT, compared with the corpus     (N threads, timed)
//   discard the half      ioctl(BLKDISCARD) per 4 KiB page              (N threads, timed)
//   compact               echo 1 > /sys/block/zram0/compact             (timed)
//   verify every page     kept pages equal the corpus, discarded ones read as zeros
//   reset                 always, even after an error
//
// mm_stat (nine fields) is read after the fill, after the discard and after compaction.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "zspool/bench/phase.h"
#include "zspool/store/store.h"
#include "zspool/workload/corpus.h"

namespace zspool::tools {

// What one engine (the zspool Store, or the kernel's zram) did in the bench store sequence.
struct EngineFigures {
  double write_seconds = 0;
  double read_seconds = 0;
  double discard_seconds = 0;
  double compact_seconds = 0;
  MmStat after_fill{};
  MmStat after_discard{};
  MmStat after_compact{};
  std::uint64_t errors = 0;  // failed writes/reads/discards and pages read back wrong
};

struct ZramOutcome {
  bool ran = false;
  std::string why_not;  // when !ran: one line (not root, no zram0, in use, or what failed)
  EngineFigures figures;
};

// Runs the sequence above on /dev/zram0 with `algorithm` (zram's name: "lz4", "lzo", ...).
// `half`: the page indices to discard.
ZramOutcome bench_zram(const Corpus& corpus, std::span<const std::uint64_t> half, unsigned threads,
                       const std::string& algorithm, const ProgressFactory& progress);

}  // namespace zspool::tools
