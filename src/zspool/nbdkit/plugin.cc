// nbdkit-zspool-plugin: zspool's Store served as an NBD block device by nbdkit.
//
//   nbdkit ./build/nbdkit-zspool-plugin.so size=4G [compressor=zstd] [recompress-with=SPEC,...]
//          [limit=1G backing=FILE]
//          [max-chain=N] [page-size=SIZE] [stats-file=PATH] [writeback-policy=page|zspage]
//          [background-writer=BOOL] [writeback-batch=N] [control=PATH] [parallel=auto|BOOL]
//
// This file is the C glue only: nbdkit's callbacks parse parameters (plugin_config.h), call
// BlockDevice (block_device.h: the byte ranges, the page locks, the allocation map) and map its
// Error values to errno (errno_for). No exception crosses into nbdkit: every callback runs
// guarded(), which turns one into EIO. nbdkit owns the protocol, the connections and the
// threads (thread model parallel: any number of requests from any number of connections at
// once, on one device; serialize_requests, one request a connection at a time, on an nbdkit
// that a client hanging up early can abort: zspool_thread_model).
//
// Life cycle, in nbdkit's order:
//   config / config_complete   parse and check the parameters, create the device (one line on
//                              failure), write the stats file once to prove PATH is writable
//   after_fork                 start the stats thread (threads do not survive nbdkit's fork)
//   open .. close              one handle per connection; all share the device. The last
//                              close frees the compressors' idle per-CPU memory
//   unload                     stop the stats thread, log the final figures, free the device
#define NBDKIT_API_VERSION 2
#include <dlfcn.h>
#include <nbdkit-plugin.h>
#include <pthread.h>

#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <string_view>

#include "zspool/nbdkit/block_device.h"
#include "zspool/nbdkit/control_fifo.h"
#include "zspool/nbdkit/plugin_config.h"
#include "zspool/nbdkit/stats_file.h"
#include "zspool/store/compressor.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

namespace {

using zspool::Error;
using zspool::nbd::BlockDevice;
using zspool::nbd::Extent;

constexpr std::uint32_t kMaxRequest = 32u << 20;  // block_size's maximum: 32 MiB

zspool::nbd::PluginConfig config;
// A T built in static storage and never destroyed at exit (no heap: nothing for a leak checker
// to find once nbdkit unloads the plugin).
template <typename T>
class NeverDestroyed {
 public:
  NeverDestroyed() { new (storage_) T(); }
  T& get() { return *std::launder(reinterpret_cast<T*>(storage_)); }

 private:
  alignas(T) unsigned char storage_[sizeof(T)];
};

// Reset only in unload, never at exit: when nbdkit forks into the background its parent process
// exits, and destroying them there would remove the control FIFO and the backing file the child
// goes on serving with.
NeverDestroyed<std::unique_ptr<BlockDevice>> device_storage;
NeverDestroyed<std::unique_ptr<zspool::nbd::StatsFile>> stats_file_storage;
NeverDestroyed<std::unique_ptr<zspool::nbd::ControlFifo>> control_storage;
std::unique_ptr<BlockDevice>& device = device_storage.get();
std::unique_ptr<zspool::nbd::StatsFile>& stats_file = stats_file_storage.get();
std::unique_ptr<zspool::nbd::ControlFifo>& control = control_storage.get();

// Which process serves: none until after_fork. A fork before that (nbdkit forking into the
// background) hands the device to the child; the parent then leaves the files alone at unload.
std::atomic<bool> serving{false};
std::atomic<bool> handed_to_child{false};
void note_fork_in_parent() noexcept {
  if (!serving.load()) handed_to_child.store(true);
}

// Runs a request; 0 on success, else -1 with nbdkit's error set (errno_for) and logged.
template <typename Fn>
int guarded(const char* what, std::uint64_t count, std::uint64_t offset, Fn&& fn) noexcept {
  try {
    const Error e = fn();
    if (e == Error::ok) return 0;
    nbdkit_error("%s of %" PRIu64 " bytes at %" PRIu64 ": %s", what, count, offset,
                 std::string(zspool::error_message(e)).c_str());
    nbdkit_set_error(zspool::nbd::errno_for(e));
  } catch (...) {
    nbdkit_error("%s of %" PRIu64 " bytes at %" PRIu64 ": unexpected failure", what, count, offset);
    nbdkit_set_error(EIO);
  }
  return -1;
}

// ── configuration ────────────────────────────────────────────────────────────────────────────

int parse_size(const char* value, std::uint64_t* out) {
  const std::int64_t n = nbdkit_parse_size(value);  // logs its own one-line error
  if (n < 0) return -1;
  *out = static_cast<std::uint64_t>(n);
  return 0;
}

// nbdkit changes directory to / when it forks into the background, and the stats file and the
// control FIFO are used by path after that: every path parameter is made absolute at once.
int absolute_path(const char* value, std::string* out) {
  char* absolute = nbdkit_absolute_path(value);  // logs its own one-line error
  if (absolute == nullptr) return -1;
  *out = absolute;
  std::free(absolute);
  return 0;
}

int parse_writeback_policy_parameter(const char* value) {
  const auto policy = zspool::parse_writeback_policy(value);
  if (!policy) {
    nbdkit_error("writeback-policy=%s: page or zspage", value);
    return -1;
  }
  config.store.writeback_policy = *policy;
  return 0;
}

int parse_parallel_parameter(const char* value) {
  if (std::string_view(value) == "auto") {
    config.parallel = zspool::nbd::Parallel::automatic;
    return 0;
  }
  const int on = nbdkit_parse_bool(value);  // logs its own one-line error
  if (on < 0) return -1;
  config.parallel = on != 0 ? zspool::nbd::Parallel::on : zspool::nbd::Parallel::off;
  return 0;
}

int zspool_config(const char* key, const char* value) noexcept {
  try {
    const std::string k = key;
    if (k == "size") {
      std::uint64_t size = 0;
      if (parse_size(value, &size) < 0) return -1;
      config.size = size;
    } else if (k == "compressor") {
      config.store.compressor = value;
    } else if (k == "recompress-with") {
      zspool::nbd::add_recompress_with(config, value);
    } else if (k == "limit") {
      return parse_size(value, &config.store.mem_limit);
    } else if (k == "backing") {
      return absolute_path(value, &config.store.backing_path);
    } else if (k == "max-chain") {
      return nbdkit_parse_uint32_t("max-chain", value, &config.store.max_chain);
    } else if (k == "page-size") {
      std::uint64_t page = 0;
      if (parse_size(value, &page) < 0) return -1;
      // Anything past 32 bits is refused by config_problem, not silently truncated.
      config.store.page_size = page > UINT32_MAX ? 0 : static_cast<std::uint32_t>(page);
    } else if (k == "stats-file") {
      return absolute_path(value, &config.stats_file);
    } else if (k == "control") {
      return absolute_path(value, &config.control);
    } else if (k == "writeback-policy") {
      return parse_writeback_policy_parameter(value);
    } else if (k == "writeback-batch") {
      return nbdkit_parse_uint32_t("writeback-batch", value, &config.store.writeback_batch_pages);
    } else if (k == "parallel") {
      return parse_parallel_parameter(value);
    } else if (k == "background-writer") {
      const int on = nbdkit_parse_bool(value);
      if (on < 0) return -1;
      config.store.background_writer = on != 0;
    } else {
      nbdkit_error("unknown parameter '%s' (see nbdkit zspool --help)", key);
      return -1;
    }
    return 0;
  } catch (...) {
    nbdkit_error("%s=%s: out of memory", key, value);
    return -1;
  }
}

int zspool_config_complete() noexcept {
  try {
    if (const std::string problem = zspool::nbd::config_problem(config); !problem.empty()) {
      nbdkit_error("%s", problem.c_str());
      return -1;
    }
    std::string note;
    if (const std::string problem =
            zspool::nbd::fit_to_memory_limits(config, zspool::os::memory_budget(), &note);
        !problem.empty()) {
      nbdkit_error("%s", problem.c_str());
      return -1;
    }
    if (!note.empty()) nbdkit_debug("%s", note.c_str());
    std::string why;
    auto created = BlockDevice::create(*config.size, config.store, &why);
    if (!created) {
      nbdkit_error("%s", zspool::nbd::create_problem(config, created.error(), why).c_str());
      return -1;
    }
    device = std::move(*created);
    static const bool fork_watched = pthread_atfork(nullptr, note_fork_in_parent, nullptr) == 0;
    (void)fork_watched;
    if (!config.stats_file.empty()) {
      stats_file = std::make_unique<zspool::nbd::StatsFile>(config.stats_file,
                                                            [] { return device->store().stats(); });
      if (std::string stats_why; stats_file->open(&stats_why) != Error::ok) {
        nbdkit_error("stats-file=%s", stats_why.c_str());
        return -1;
      }
      if (stats_file->write_now() != Error::ok) {
        nbdkit_error("stats-file=%s: cannot write it (or %s.json)", config.stats_file.c_str(),
                     config.stats_file.c_str());
        return -1;
      }
    }
    if (!config.control.empty()) {
      std::string control_why;
      auto made = zspool::nbd::ControlFifo::create(config.control, &control_why);
      if (!made) {
        nbdkit_error("%s", control_why.c_str());
        return -1;
      }
      control = std::move(*made);
    }
    return 0;
  } catch (...) {
    nbdkit_error("cannot create the store: out of memory");
    return -1;
  }
}

// A line written to the control FIFO: run it, log the outcome (an error when refused or failed,
// else a debug line), and show its effect in the stats file at once.
void on_control_line(std::string_view line, std::size_t line_number) {
  bool failed = false;
  const std::string outcome =
      zspool::nbd::control_line(device->store(), line, line_number, &failed);
  if (outcome.empty()) return;
  if (failed)
    nbdkit_error("%s", outcome.c_str());
  else
    nbdkit_debug("%s", outcome.c_str());
  if (stats_file) (void)stats_file->write_now();
}

int zspool_after_fork() noexcept {
  serving.store(true);
  if (device) device->store().adopt_backing_after_fork();
  try {
    if (stats_file) stats_file->start();
    if (control && control->start(on_control_line) != Error::ok) {
      nbdkit_error("control=%s: cannot open the FIFO", control->path().c_str());
      return -1;
    }
    return 0;
  } catch (...) {
    nbdkit_error("stats-file=%s: cannot start its thread", config.stats_file.c_str());
    return -1;
  }
}

void zspool_unload() noexcept {
  if (handed_to_child.load()) {
    // The parent of nbdkit's fork into the background: the child serves with these.
    (void)device.release();
    (void)stats_file.release();
    (void)control.release();
    return;
  }
  try {
    control.reset();  // stops its thread (which uses the device) and removes the FIFO
    if (stats_file) {
      stats_file->stop();
      (void)stats_file->write_now();
    }
    if (device) {
      const zspool::StoreStats s = device->store().stats();
      nbdkit_debug("final mm_stat: %s", zspool::mm_stat_line(s).c_str());
      nbdkit_debug("final bd_stat: %" PRIu64 " %" PRIu64 " %" PRIu64, s.bd_count, s.bd_reads,
                   s.bd_writes);
    }
  } catch (...) {
  }
  stats_file.reset();
  device.reset();
}

// ── connections and capabilities ─────────────────────────────────────────────────────────────

// Connections open now. When the last one closes, the compressors' per-CPU contexts and
// buffers (a zstd context holds ~0.5 MiB at 32 KiB pages) are freed until the next client needs
// them.
std::atomic<int> open_connections{0};

void* zspool_open(int /*readonly*/) noexcept {
  open_connections.fetch_add(1, std::memory_order_relaxed);
  return device.get();  // every connection serves the one device
}

void zspool_close(void*) noexcept {
  if (open_connections.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    zspool::release_idle_codec_memory();
  }
}

std::int64_t zspool_get_size(void*) noexcept {
  return static_cast<std::int64_t>(device->size());
}

int yes(void*) noexcept {
  return 1;
}
int no(void*) noexcept {
  return 0;
}
int fua_native(void*) noexcept {
  return NBDKIT_FUA_NATIVE;
}
int cache_native(void*) noexcept {
  return NBDKIT_CACHE_NATIVE;
}

int zspool_block_size(void*, std::uint32_t* minimum, std::uint32_t* preferred,
                      std::uint32_t* maximum) noexcept {
  *minimum = 1;
  *preferred = device->store().page_size();
  *maximum = kMaxRequest;
  return 0;
}

// ── requests ─────────────────────────────────────────────────────────────────────────────────

int zspool_pread(void*, void* buf, std::uint32_t count, std::uint64_t offset,
                 std::uint32_t) noexcept {
  return guarded("read", count, offset, [&] {
    return device->read({static_cast<std::byte*>(buf), count}, offset);
  });
}

int zspool_pwrite(void*, const void* buf, std::uint32_t count, std::uint64_t offset,
                  std::uint32_t flags) noexcept {
  return guarded("write", count, offset, [&] {
    return device->write({static_cast<const std::byte*>(buf), count}, offset,
                         (flags & NBDKIT_FLAG_FUA) != 0);
  });
}

int zspool_flush(void*, std::uint32_t) noexcept {
  return guarded("flush", 0, 0, [] { return device->flush(); });
}

int zspool_trim(void*, std::uint32_t count, std::uint64_t offset, std::uint32_t flags) noexcept {
  return guarded("trim", count, offset,
                 [&] { return device->trim(count, offset, (flags & NBDKIT_FLAG_FUA) != 0); });
}

// Zeroing is always fast (whole pages become zero pages or holes: no data is written; a partial
// page is one read-modify-write), so NBDKIT_FLAG_FAST_ZERO needs no special answer.
int zspool_zero(void*, std::uint32_t count, std::uint64_t offset, std::uint32_t flags) noexcept {
  return guarded("zero", count, offset, [&] {
    return device->zero(count, offset, (flags & NBDKIT_FLAG_MAY_TRIM) != 0,
                        (flags & NBDKIT_FLAG_FUA) != 0);
  });
}

std::uint32_t nbd_extent_type(Extent::Type type) {
  switch (type) {
    case Extent::Type::hole:
      return NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO;
    case Extent::Type::zero:
      return NBDKIT_EXTENT_ZERO;
    case Extent::Type::data:
      break;
  }
  return 0;
}

int zspool_extents(void*, std::uint32_t count, std::uint64_t offset, std::uint32_t flags,
                   struct nbdkit_extents* extents) noexcept {
  return guarded("extents", count, offset, [&] {
    return device->extents(count, offset, (flags & NBDKIT_FLAG_REQ_ONE) != 0, [&](const Extent& e) {
      return nbdkit_add_extent(extents, e.offset, e.length, nbd_extent_type(e.type)) == 0;
    });
  });
}

// nbdkit_disconnect came in nbdkit 1.33.3, the fix for the abort on an early hang-up in 1.33.10:
// the stable 1.32 series has neither, 1.34 both. (Only the development releases 1.33.3 to
// 1.33.9 are misjudged.) The running nbdkit, not the headers this was built against.
bool nbdkit_aborts_on_early_hangup() {
  if (dlsym(RTLD_DEFAULT, "nbdkit_error") == nullptr) return true;  // cannot tell: the worst
  return dlsym(RTLD_DEFAULT, "nbdkit_disconnect") == nullptr;
}

// After config_complete: parallel unless parallel=off, or parallel=auto (the default) on an
// nbdkit that one client hanging up early can abort (plugin_config.h).
int zspool_thread_model() noexcept {
  const bool aborts = nbdkit_aborts_on_early_hangup();
  if (zspool::nbd::serves_requests_in_parallel(config.parallel, aborts))
    return NBDKIT_THREAD_MODEL_PARALLEL;
  if (config.parallel == zspool::nbd::Parallel::automatic) {
    nbdkit_debug(
        "this nbdkit (before 1.33.10) aborts when a client hangs up with replies queued: the "
        "requests of one connection are served one at a time (parallel=on to serve them in "
        "parallel anyway; connections run in parallel either way)");
  }
  return NBDKIT_THREAD_MODEL_SERIALIZE_REQUESTS;
}

// The data is in memory already: nothing to prefetch.
int zspool_cache(void*, std::uint32_t, std::uint64_t, std::uint32_t) noexcept {
  return 0;
}

struct nbdkit_plugin make_plugin() {
  struct nbdkit_plugin p = {};
  p.name = "zspool";
  p.longname = "zspool compressed RAM disk (zsmalloc-style store)";
  p.version = "0.1.0";
  p.description = "A volatile compressed RAM disk: zspool's Store as an NBD export";
  p.unload = zspool_unload;
  p.config = zspool_config;
  p.config_complete = zspool_config_complete;
  p.config_help =
      "size=<SIZE>            (required) device size, e.g. 4G\n"
      "compressor=<SPEC>      lz4 (default), lz4:N, zstd, zstd:N, lzo1x; [:N]:dict=FILE for\n"
      "                       lz4 and zstd (a dictionary from zspool train-dict)\n"
      "recompress-with=<SPEC,...>  secondary compressors for the control FIFO's recompress,\n"
      "                       in priority order (at most 3)\n"
      "limit=<SIZE>           pool memory the store may hold (default: none)\n"
      "backing=<FILE>         writeback target under limit= (a new or empty file)\n"
      "max-chain=<N>          pages per zspage, 1..16 (default 16)\n"
      "page-size=<SIZE>       the unit compressed: 4K (default) .. 64K, a power of two\n"
      "stats-file=<PATH>      rewrite PATH (mm_stat, bd_stat) and PATH.json every second\n"
      "control=<PATH>         a FIFO made at PATH taking store commands, one a line: compact,\n"
      "                       idle [SECONDS], writeback KIND [N], writeback-limit N, recompress\n"
      "writeback-policy=page|zspage  what limit= writes back (default page: the coldest pages)\n"
      "background-writer=<BOOL>  write back in a background thread from 95% of limit= to 90%\n"
      "writeback-batch=<N>    pages written back per batch, 1..1024 (default 32)\n"
      "parallel=auto|<BOOL>   several requests of one connection at once (auto, the default:\n"
      "                       yes, except on an nbdkit before 1.33.10, which a client hanging\n"
      "                       up with replies queued aborts)";
  p.magic_config_key = "size";
  p.thread_model = zspool_thread_model;
  p.after_fork = zspool_after_fork;
  p.open = zspool_open;
  p.close = zspool_close;
  p.get_size = zspool_get_size;
  p.block_size = zspool_block_size;
  p.can_write = yes;
  p.can_flush = yes;
  p.is_rotational = no;
  p.can_trim = yes;
  p.can_zero = yes;
  p.can_fast_zero = yes;
  p.can_fua = fua_native;
  p.can_multi_conn = yes;
  p.can_extents = yes;
  p.can_cache = cache_native;
  p.pread = zspool_pread;
  p.pwrite = zspool_pwrite;
  p.flush = zspool_flush;
  p.trim = zspool_trim;
  p.zero = zspool_zero;
  p.extents = zspool_extents;
  p.cache = zspool_cache;
  return p;
}

}  // namespace

static struct nbdkit_plugin plugin = make_plugin();
NBDKIT_REGISTER_PLUGIN(plugin)
