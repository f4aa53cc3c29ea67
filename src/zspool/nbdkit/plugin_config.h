// The nbdkit plugin's parameters, and the check that they can make a device.
//
//   parameter         field                 default
//   size=SIZE         size                  required (the magic key: `nbdkit zspool 4G` works)
//   compressor=SPEC   store.compressor      lz4 (make_compressor: lz4, lz4:N,
//                                           lz4[:N]:dict=FILE, zstd, zstd:N,
//                                           zstd[:N]:dict=FILE, lzo1x)
//   recompress-with=SPEC[,SPEC...]  store.recompress_with  none: the secondary compressors,
//                                           in priority order (at most kMaxSecondaryCompressors,
//                                           each as compressor=), that `recompress` on the
//                                           control FIFO uses; repeating it appends
//   limit=SIZE        store.mem_limit       none: pool memory the store may hold; but under a
//                                           hard memory limit (a memory cgroup, ulimit -v) that
//                                           the device's size exceeds, half of what the process
//                                           may still take (fit_to_memory_limits)
//   backing=FILE      store.backing_path    none: writeback target (a new or empty file)
//   max-chain=N       store.max_chain       kStoreDefaultChain (1..kMaxChain)
//   page-size=SIZE    store.page_size       4096: the unit the store compresses (a power of two,
//                                           4K..64K); also the preferred block size. Larger pages
//                                           compress better (zstd at 32K, as nbdkit's memory
//                                           plugin does) and make sub-page writes cost more
//   stats-file=PATH   stats_file            none: see stats_file.h
//   control=PATH      control               none: a FIFO made at PATH taking store commands
//                                           (control_fifo.h)
//   writeback-policy=page|zspage  store.writeback_policy  page (parsed in plugin.cc)
//   background-writer=BOOL        store.background_writer false
//   writeback-batch=N             store.writeback_batch_pages 32 (1..kMaxWritebackBatch): pages
//                                 written back per batch (one pwritev per run of adjacent slots)
//
// Sizes are parsed by nbdkit (nbdkit_parse_size) in plugin.cc; everything else is checked here,
// without nbdkit, so the unit tests can reach it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "zspool/platform/internal/os.h"
#include "zspool/store/store.h"

namespace zspool::nbd {

// parallel=: whether nbdkit may run several requests of one connection at once (its thread
// model parallel) or one at a time (serialize_requests; connections still run in parallel).
enum class Parallel { automatic, on, off };

struct PluginConfig {
  std::optional<std::uint64_t> size;
  StoreOptions store;
  std::string stats_file;
  std::string control;  // control=PATH: the FIFO of store commands (control_fifo.h)
  Parallel parallel = Parallel::automatic;
};

// Whether requests of one connection run in parallel. nbdkit before 1.33.10 (Debian 12: 1.32.5)
// aborts, ending every connection, when a client hangs up while another worker thread of its
// connection still has a reply queued (nbdkit commit 9d82aa4f, "server: Don't assert on send if
// client hangs up early"): a killed client, or nbdcopy quitting at its first error, does that.
// Only parallel serving has a second worker a connection, so `automatic` serves one request at
// a time on such an nbdkit and in parallel on any other; on and off decide outright.
bool serves_requests_in_parallel(Parallel parallel, bool nbdkit_aborts_on_early_hangup);

// recompress-with=VALUE: appends VALUE's comma-separated specs to store.recompress_with, in
// order (an empty one too: config_problem refuses it).
void add_recompress_with(PluginConfig& config, std::string_view value);

// Why `config` cannot make a device, as one line naming the parameter (e.g. "compressor=lz5:
// unknown compressor (lz4, lz4:N, zstd, zstd:N, lzo1x)", "compressor=zstd:dict=F: dictionary F:
// No such file or directory"), or "" when it can.
std::string config_problem(const PluginConfig& config);

// A memory cgroup or ulimit -v does not refuse memory: the kernel kills the server (every
// client's data with it) or mmap fails mid-write. So under such a hard limit (budget.cgroup or
// budget.address_space: what this process may still take at load), the pool is held to it:
//   limit= given and more than that               the problem, one line ("" otherwise)
//   limit= not given, the device larger than half  store.mem_limit = that half, said in *note;
//                                                  past it writes get ENOSPC, or go to backing=
// Without a hard limit (only physical or available memory), nothing changes: a RAM disk may use
// the machine's memory, as zram may.
std::string fit_to_memory_limits(PluginConfig& config, const os::MemoryBudget& budget,
                                 std::string* note);

// The line for a failed BlockDevice::create with `config` (config_problem found nothing): `why`
// (Store::create's line for a refused backing file, naming it and the reason) when there is
// one, else the error.
std::string create_problem(const PluginConfig& config, Error e, const std::string& why);

}  // namespace zspool::nbd
