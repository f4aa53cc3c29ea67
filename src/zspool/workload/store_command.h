// The trace's store-wide commands, run on a live store: `zspool replay` runs them between its
// writes and reads, and the nbdkit plugin's control FIFO (control=PATH) runs them on a device
// that clients are using.
//
//   compact                      Store::compact
//   writeback N                  Store::writeback(N): the pool's coldest zspages, N pages freed
//   writeback KIND [N]           Store::writeback(kind, N): selective writeback (a spent budget
//                                refusing it is what the budget is for: ok, "0 pages")
//   writeback-limit N            Store::set_writeback_limit(N)
//   idle [SECONDS]               Store::mark_idle / mark_idle(age)
//   recompress KIND [THRESHOLD] [PRIORITY]   Store::recompress
//
// Page commands (write, read, discard) and `stats` are not store commands: they need data or a
// place to print.
#pragma once

#include <string>

#include "zspool/platform/error.h"
#include "zspool/store/store.h"
#include "zspool/workload/trace.h"

namespace zspool::tools {

bool is_store_command(TraceVerb verb);

struct StoreCommandOutcome {
  Error error = Error::ok;  // ok, or why the command failed (nothing else changed then)
  std::string command;      // the command as a trace writes it: "writeback idle+huge 10"
  std::string done;         // what it did, when ok: "wrote back 10 pages"
};

// Runs `op` (is_store_command(op.verb)) on `store`.
StoreCommandOutcome run_store_command(Store& store, const TraceOp& op);

}  // namespace zspool::tools
