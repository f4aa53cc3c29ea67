// Executing a block-level trace (workload/trace.h) against a compressed page store: what
// `zspool replay` runs once the trace is parsed and validated.
//
//   write P Q   page Q of the data file (pread) stored as page P
//   read P      page P loaded and compared with what was last written there (the data file's
//               page again, or zeros when never written or discarded)
//   discard P · compact · writeback N · stats (handed to on_stats) · idle [SECONDS] ·
//   writeback KIND [N] (a spent budget's refusal is not a failure) · writeback-limit N
//   recompress KIND [THRESHOLD] [PRIORITY]   Store::recompress (no page limit)
//
// Failures do not stop the replay: each is counted, and the first mismatch and the first
// failed call are kept, named "TRACE:LINE: ...".
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "zspool/bench/phase.h"
#include "zspool/store/store.h"
#include "zspool/workload/page_file.h"
#include "zspool/workload/trace.h"

namespace zspool::tools {

// What the replay saw; the first failure is kept to name it.
struct ReplayTally {
  std::uint64_t reads = 0;
  std::uint64_t verified = 0;
  std::uint64_t mismatches = 0;
  std::uint64_t errors = 0;  // store or data-file calls that failed
  std::string first_mismatch;
  std::string first_error;
};

struct ReplayContext {
  std::string trace_path;  // for messages
  std::function<void(const StoreStats&)> on_stats;
  ProgressFactory progress = no_progress();
};

ReplayTally execute_trace(const ReplayContext& context, const Trace& trace, Store& store,
                          const PageFile& data);

}  // namespace zspool::tools
