// Folder store/: the compressed page store (uses core). Store (this file), compressors
// (compressor.h), same-filled pages (same_filled.h); internal/: the backing-file format
// (backing_file.h), JSON forms of the statistics, test access.
//
// zspool::Store — a zram/zswap-like compressed page store in user space, on a zspool::Pool.
//
// Pages (page_size bytes, addressed by index < capacity like a zram disk) are stored as:
//
//   kind           where the page lives                         pool memory
//   empty          nowhere (never written, or discarded)        none: reads as zeros
//   same_filled    the repeated 8-byte word, in the entry        none
//   compressed     a pool object of the compressed length        length (+ class rounding)
//   huge           a pool object holding the raw page            page_size (compressed length
//                  (compressed length >= huge_class_size)        would not save memory)
//   written_back   a slot of the backing file, checksummed      none
//
// Entry, 16 bytes per page, and the reverse map the evict handler finds pages by:
//
//   entries_[i]                                                       reverse_ (only with a
//   ┌────────────────────────┬──────────┬──────┬──────┬───────┬───────┐  backing file)
//   │ value (u64)            │ length   │ kind │ was_ │ codec │ flags │  handle h, x =
//   │ handle | word | slot   │ (u32)    │ (u8) │ huge │ (u8)  │ (u8)  │  pool.handle_index(h)
//   └────────────────────────┴──────────┴──────┴──────┴───────┴───────┘  ─▶ chunk[x / 64Ki]
//   guarded by stripes_[i % kStripes]                                       [x % 64Ki] = i + 1
//                                                                     (0: no page; chunks made
//   codec: which compressor encoded the stored bytes: 0 the primary     on demand, never moved;
//   (options.compressor), 1..3 the secondary of that priority          set and cleared under
//   (options.recompress_with[codec - 1]); meaningless for raw data.    stripe(i))
//   flags: kNoSecondaryShrinks: every secondary was tried and none made the page smaller, so
//   recompress() skips it; cleared when the page is written again.
//
// Recompression (zram's recompress): recompress(kind, threshold, max_pages, priority) walks the
// pages in the pool (compressed or huge; not same-filled, not written back) and, for each one
// whose stored length >= threshold, decodes it (stripe lock held, as a read), compresses it
// with the secondaries above its codec in priority order (no lock), stops at the first result
// shorter than both the stored length and huge_class_size, stores that in a new pool object (no
// lock), then under the stripe lock publishes it only if the entry still holds the handle it
// read (a write, discard or writeback meanwhile wins: the new object is freed). The old and new
// objects coexist for a moment; the limit is not applied (the page only shrinks).
//
// The page table is made lazily (chunked_table.h): 4096 entries (64 KiB) and their 4096 access
// words (16 KiB, below) at a time, on the first write to one of their pages, so a store's
// up-front cost is 16 bytes per 4096 pages of capacity (2.7 MiB for 700,000,000 pages). A page
// whose chunk was never made is empty. A write that cannot make its chunk fails with
// out_of_memory before it changes anything.
//
// Locking: one mutex per stripe of pages (page i -> stripe i % kStripes) guards the entries.
//
//   writeback_mutex_ ─▶ [pool reclaim: no pool lock] ─▶ evict: stripe(page) ─▶ pool locks
//                                                                            ─▶ backing file
//   writeback_mutex_ ─▶ page policy / writeback(kind), one batch (writeback_batch.h):
//                         stage:   stripe(page) ─▶ pool locks          (copy the object out)
//                         write:   backing file, no stripe lock        (one pwritev per run)
//                         publish: stripe(page) ─▶ pool locks          (if the entry is unchanged)
//                       (batch 1: stripe(page) ─▶ pool locks, backing file, as the evict handler)
//                    ─▶ pool compact (no stripe lock)
//   write / read / discard:                                 stripe(page) ─▶ pool locks
//   background_mutex_: a leaf (taken alone, to wait for or post a wake-up)
//
//   No one holds two stripe locks, and nothing that can run the evict handler (pool
//   shrink/reclaim) is called with a stripe lock held, because the handler takes the stripe
//   lock of the page it evicts.
//
// write(i, page):
//   1. same-filled? -> publish {same_filled, word}.
//   2. compress (no lock) into a per-thread buffer of the compressor's worst case (so lz4 runs
//      unbounded and nothing is copied twice); >= huge_class_size -> the raw page.
//   3. with a mem_limit and a backing file, write back (by the writeback policy) until the pool
//      is under accept_percent of the limit (zswap's hysteresis) — no lock held.
//   4. pool malloc + write, with what is left of the limit as the pool's budget of new pages
//      (Pool::malloc_copy): an object that would take the pool past the limit is refused before
//      anything is committed. Then, with a backing file, write back again and retry once; if it
//      is still refused, write the page straight to the backing file (as zswap sends a
//      rejected page to swap); without one, return limit_reached: what page i held before is
//      untouched. Writers racing for the limit's last pages can each pass the budget check;
//      such an allocation is freed and refused after the fact, and lazy commit may keep its
//      page committed (reused later at no cost). So the pool stays within the limit, or above
//      it by at most a frontier page or two per size class while writers race.
//   5. lock stripe(i); publish the new entry; release the old (free handle / backing slot).
//
// Writeback (the pool's evict handler, no pool lock held): handle -> page through a reverse
// map; lock stripe(page); if the entry still holds this handle, copy the object to a fresh
// backing slot (checksummed), point the entry at it, free the handle. A failed backing write
// returns an error: the pool keeps the zspage (restore_freelist) and nothing is lost.
//
// Writeback policy (StoreOptions::writeback_policy), what make_room and the background writer
// write back:
//   zspage  the pool's coldest zspage (its LRU orders zspages by their last allocation: the
//           seed's design, kept for comparison)
//   page    (default) the store's own per-page recency: a CLOCK over the page table with a
//           2-bit reference count (GCLOCK). A write raises a page's count to 1, a read sets it to
//           3; the hand skips pages not in the pool, decrements a nonzero count, and writes back
//           a page it finds at 0 (in batches of writeback_batch_pages: each page's object copied
//           out under its stripe lock, the batch written with no stripe lock held, each page
//           then published unless it changed meanwhile), then compacts the pool so that the
//           freed objects free pages. A page
//           read since the hand last passed survives at least two more passes (its second
//           chances); a page written once and never read goes on the hand's next pass over it.
//
// Per-page access word, 4 bytes per page beyond the 16-byte Entry (a parallel chunked table,
// made with the entry's chunk; every change is an atomic read-modify-write, so it is read and
// cleared without the stripe lock by the hand, mark_idle and the selective writeback):
//
//   31        30     29     28..27   26 ........................................... 0
//   ┌─────────┬──────┬──────┬────────┬─────────────────────────────────────────────────┐
//   │resident │ idle │incom-│ ref    │ last access: whole seconds since the store was  │
//   │(in pool)│      │press.│ (0..3) │ made, saturating at 2^27 - 1 (4.2 years)         │
//   └─────────┴──────┴──────┴────────┴─────────────────────────────────────────────────┘
//   resident       the entry is compressed or huge (set and cleared by publish, stripe held)
//   idle           marked by mark_idle(); any read or write clears it; only resident pages
//   incompressible the compressor could not make the page smaller than page_size at all (a
//                  subset of huge, which is >= huge_class_size)
//   ref            the CLOCK's reference count (above)
//
// Background writer (StoreOptions::background_writer, with a limit and a backing file): one
// thread, woken by a write that leaves the pool above high_watermark_percent of the limit, writes
// back (by the policy) down to accept_percent, so writers do not wait for the disk. A writer
// waits (writer_stalls) only when its allocation finds the pool at the limit itself. The same
// thread compacts the pool when its freeable pages reach compact_threshold_pages.
//
// Writeback budget (zram's writeback_limit): when set, every page written to the backing file
// (any path: the evict handler, page writeback, selective writeback, a write sent straight to the
// backing file) takes one page of it; at 0 such writes are refused (writeback_limit_refused): a
// write over the memory limit then fails with limit_reached.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "zspool/core/pool.h"
#include "zspool/core/stats.h"
#include "zspool/platform/error.h"
#include "zspool/platform/export.h"
#include "zspool/platform/page_source.h"
#include "zspool/store/chunked_table.h"
#include "zspool/store/compressor.h"

namespace zspool {

class BackingFile;      // store/internal/backing_file.h
struct WritebackBatch;  // store/internal/writeback_batch.h
struct StoreInternals;  // store/internal/store_internals.h: tests reach the backing file

// The store's zspage chain: up to 16 pages, where the pool (and the kernel) default to 8. A longer
// chain lets a size class pick a zspage whose tail wastes less, and under lazy commit a partly
// filled zspage still costs only the pages its objects reach, so nothing is lost for it. On the
// four benchmark corpora (BENCHMARKS.md, `zspool bench alloc --max-chain 8|16`) zram-way
// efficiency after fill goes 96.5-97.5% -> 97.3-98.3% and after freeing half and compacting
// 95.8-97.3% -> 96.1-97.8%. Set max_chain = kDefaultChain for the kernel's table.
inline constexpr std::uint32_t kStoreDefaultChain = 16;

// What make_room and the background writer write back (see the top of this file).
enum class WritebackPolicy : std::uint8_t { page, zspage };
// Selective writeback (zram's writeback file): which resident pages writeback(kind, n) takes.
//   idle            marked idle (mark_idle)       huge        stored raw in the pool
//   incompressible  did not compress at all      idle_huge   both idle and huge
//   all             any, coldest first (the CLOCK's order)
enum class WritebackKind : std::uint8_t { idle, huge, incompressible, idle_huge, all };
// "page" / "zspage" and back; nullopt for anything else ("?" for a value outside the enum).
ZSPOOL_API std::string_view writeback_policy_name(WritebackPolicy policy);
ZSPOOL_API std::optional<WritebackPolicy> parse_writeback_policy(std::string_view name);
// "idle", "huge", "incompressible", "idle+huge", "all" and back ("?" outside the enum).
ZSPOOL_API std::string_view writeback_kind_name(WritebackKind kind);
ZSPOOL_API std::optional<WritebackKind> parse_writeback_kind(std::string_view name);

struct StoreOptions {
  std::uint32_t page_size = 4096;
  std::uint32_t max_chain = kStoreDefaultChain;  // 1 .. kMaxChain
  std::uint64_t pages = 0;                       // capacity in pages (zram's disksize); required
  std::string compressor = "lz4";                // make_compressor spec: lz4, zstd[:N], lzo1x
  std::uint64_t mem_limit = 0;                   // bytes of pool memory; 0 = none
  std::string backing_path;                      // writeback target; empty = none
  std::uint32_t accept_percent = 90;  // after passing the limit, write back to this % of it
  std::shared_ptr<PageSource> page_source;
  // Secondary compressors for recompress(), in priority order (priority 1 first): at most
  // kMaxSecondaryCompressors make_compressor specs, e.g. {"zstd", "zstd:9"}.
  std::vector<std::string> recompress_with;
  // Let backing_path name a block device. Off by default: a block device may hold a
  // filesystem, which writeback destroys (see backing_file.h for what else is refused).
  bool allow_block_device = false;
  // Writeback by per-page recency (page) or by the pool's zspage LRU (zspage).
  WritebackPolicy writeback_policy = WritebackPolicy::page;
  // A background thread writes back from high_watermark_percent of mem_limit down to
  // accept_percent (needs mem_limit and a backing file; otherwise it is not started).
  bool background_writer = false;
  std::uint32_t high_watermark_percent = 95;  // accept_percent .. 100
  // Background compaction once the pool's freeable pages (PoolStats) reach this many; 0: off.
  std::uint64_t compact_threshold_pages = 0;
  // A read of a written-back page brings it back into memory (as a page read from swap comes
  // back), freeing its backing slot; off: it stays on the backing file (zram's behaviour).
  bool promote_on_read = false;
  // The page policy and writeback(kind) send pages to the backing file in batches of up to this
  // many (1 .. kMaxWritebackBatch): adjacent slots go out in one pwritev, and no stripe lock is
  // held across the I/O. 1: one pwrite per page under its stripe lock, as the evict handler
  // does (the behaviour before batching, kept for comparison).
  std::uint32_t writeback_batch_pages = 32;
};

// The largest StoreOptions::writeback_batch_pages.
inline constexpr std::uint32_t kMaxWritebackBatch = 1024;

// Store statistics, declared once: zram's mm_stat nine fields first, in zram's order.
//   X(name, description)
#define ZSPOOL_MM_STAT(X)                                                              \
  X(orig_data_size, "bytes of pages stored in memory (same-filled included)")          \
  X(compr_data_size, "compressed bytes held in the pool (huge pages count page_size)") \
  X(mem_used_total, "pool memory: pages held * page_size")                             \
  X(mem_limit, "the memory limit (0 = none)")                                          \
  X(mem_used_max, "most pool memory held at once")                                     \
  X(same_pages, "same-filled pages (no pool memory)")                                  \
  X(pages_compacted, "pages freed by compaction")                                      \
  X(huge_pages, "pages stored raw")                                                    \
  X(huge_pages_since, "pages ever stored raw")

#define ZSPOOL_STORE_COUNTERS(X)                                                    \
  X(stored_pages, "pages in memory (pool or same-filled)")                          \
  X(bd_count, "pages on the backing file")                                          \
  X(bd_reads, "pages read back from the backing file")                              \
  X(bd_writes, "pages written to the backing file")                                 \
  X(bd_write_failures, "backing writes that failed (the page stayed in memory)")    \
  X(bd_read_failures, "backing reads that failed (I/O error or checksum mismatch)") \
  X(pool_limit_hit, "writes that found the pool at its limit")                      \
  X(reject_compress_poor, "pages that did not compress below huge_class_size")      \
  X(written_back_pages, "pages moved to the backing file, ever")                    \
  X(rejected_writes, "writes refused with limit_reached")                           \
  X(recompressed_pages, "pages recompressed smaller by a secondary compressor")     \
  X(recompress_saved_bytes, "stored bytes recompression saved")                     \
  X(recompress_no_gain, "recompression attempts no secondary compressor paid for")

// The writeback policy's statistics (issue 14): writeback per kind, idle pages, the budget
// (zram's writeback_limit_enable / writeback_limit), the background writer and compactor.
#define ZSPOOL_STORE_POLICY_COUNTERS(X)                                                     \
  X(wb_idle_pages, "pages written back by writeback(idle)")                                 \
  X(wb_huge_pages, "pages written back by writeback(huge)")                                 \
  X(wb_incompressible_pages, "pages written back by writeback(incompressible)")             \
  X(wb_idle_huge_pages, "pages written back by writeback(idle+huge)")                       \
  X(wb_all_pages, "pages written back by writeback(all)")                                   \
  X(wb_page_policy_pages, "pages written back by the page policy (limit, background)")      \
  X(idle_pages, "pages in memory marked idle")                                              \
  X(incompressible_pages, "pages in memory that did not compress at all")                   \
  X(writeback_limit_enable, "1 when a writeback budget is set")                             \
  X(writeback_limit, "pages the budget still lets go to the backing file")                  \
  X(writeback_limit_refused, "backing writes refused because the budget was spent")         \
  X(bg_writeback_runs, "background writer runs (pool above the high watermark)")            \
  X(bg_writeback_pages, "pages the background writer wrote back")                           \
  X(writer_stalls, "writes that had to write back themselves (pool at the limit)")          \
  X(bg_compactions, "background compactions (freeable pages past the threshold)")           \
  X(promoted_pages, "written-back pages a read brought back into memory (promote_on_read)") \
  X(bd_write_ios, "write system calls to the backing file (a batch's run of slots: one)")

// The mm_stat fields the store counts itself (the others come from the pool or the options).
#define ZSPOOL_STORE_OWN_MM_STAT(X)                       \
  X(compr_data_size, "compressed bytes held in the pool") \
  X(same_pages, "same-filled pages")                      \
  X(huge_pages, "pages stored raw")                       \
  X(huge_pages_since, "pages ever stored raw")

struct StoreStats {
  std::string compressor;
  std::uint32_t page_size = 0;
  std::uint64_t capacity_pages = 0;
#define ZSPOOL_STORE_FIELD(name, desc) std::uint64_t name = 0;
  ZSPOOL_MM_STAT(ZSPOOL_STORE_FIELD)
  ZSPOOL_STORE_COUNTERS(ZSPOOL_STORE_FIELD)
  ZSPOOL_STORE_POLICY_COUNTERS(ZSPOOL_STORE_FIELD)
#undef ZSPOOL_STORE_FIELD
  PoolStats pool;
};

// zram's mm_stat: the nine numbers in zram's order, and their names.
using MmStat = std::array<std::uint64_t, 9>;
inline constexpr std::array<std::string_view, 9> kMmStatNames = {
#define ZSPOOL_MM_STAT_NAME(name, desc) #name,
    ZSPOOL_MM_STAT(ZSPOOL_MM_STAT_NAME)
#undef ZSPOOL_MM_STAT_NAME
};
ZSPOOL_API MmStat mm_stat(const StoreStats& s);
// compr_data_size / mem_used_total (0 when nothing is held): how much of the pool's memory
// holds data.
ZSPOOL_API double mm_stat_efficiency(const MmStat& s);

// zram's mm_stat line: the nine numbers, space-separated, in zram's order.
ZSPOOL_API std::string mm_stat_line(const StoreStats& s);
ZSPOOL_API std::string format_store_stats_table(const StoreStats& s);
// zram's bd_stat line: bd_count bd_reads bd_writes (pages), space-separated.
ZSPOOL_API std::string bd_stat_line(const StoreStats& s);
// The writeback policy's counters as "name=value" words, space-separated, in declaration order.
ZSPOOL_API std::string policy_stat_line(const StoreStats& s);
// One JSON object: the mm_stat names, the counters, "compressor", and "pool" (the pool's stats).
ZSPOOL_API std::string format_store_stats_json(const StoreStats& s);

// The most secondary compressors a store takes (zram's ZRAM_MAX_COMPS - 1).
inline constexpr std::size_t kMaxSecondaryCompressors = 3;

// Which pages recompress() looks at (zram's recompress type=):
//   all   every page held in the pool (compressed or huge)
//   huge  pages stored raw (their compressed length was >= huge_class_size)
//   idle  pages marked idle (the idle-tracking marks; see Store::page_is_idle)
enum class RecompressKind : std::uint8_t { all, huge, idle };
// "all", "huge", "idle"; and back (nullopt for anything else).
ZSPOOL_API std::string_view recompress_kind_name(RecompressKind kind);
ZSPOOL_API std::optional<RecompressKind> parse_recompress_kind(std::string_view name);

// What one recompress() call did.
struct RecompressResult {
  std::uint64_t attempted = 0;     // pages compressed again with at least one secondary
  std::uint64_t recompressed = 0;  // of them, pages stored smaller
  std::uint64_t saved_bytes = 0;   // stored bytes saved (sum of old length - new length)
  std::uint64_t no_gain = 0;       // of them, pages no secondary tried made smaller
};

class ZSPOOL_API Store {
 public:
  // Errors: invalid_argument (no pages, accept_percent outside 1..100, a bad page size or
  // chain, a compressor spec make_compressor rejects (primary or secondary; more than
  // kMaxSecondaryCompressors secondaries), a backing target that is refused),
  // too_large (pages > max_pages()), out_of_memory, unsupported (the lzo library failed to
  // start), and the backing file's other errors (busy: in use; io_error). `*why`, when given,
  // gets one line for a backing file's refusal (naming it and the reason) and is left alone
  // otherwise. Never throws.
  static Result<std::unique_ptr<Store>> create(StoreOptions options, std::string* why = nullptr);
  // The most pages a store may have: at most kMaxPages, and the page table's directory (8 bytes
  // per 4096 pages, made at creation) may take at most half of what this process may use
  // (os::memory_budget(): cgroup, RLIMIT_AS, available memory). The entries themselves, 16
  // bytes a written page, and the access words, 4 bytes a written page (the directory, 8 bytes per
  // 4096 pages, counts twice), are made as pages are written.
  static std::uint64_t max_pages();
  static constexpr std::uint64_t kMaxPages = std::uint64_t{1} << 40;
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // page.size() must be page_size(); index < capacity(). Errors besides invalid_argument:
  // limit_reached (over mem_limit, and no backing file or one that failed the write),
  // no_space (over mem_limit and the backing file's device is full), out_of_memory (the page
  // table or a buffer could not grow), and the pool's errors; on any, the page keeps what it
  // held. After a backing failure backing_failure() says what and why.
  Error write(std::uint64_t index, std::span<const std::byte> page);
  // Never-written and discarded pages read as zeros. A written-back page whose backing read
  // fails or mismatches its checksum returns io_error / checksum_mismatch, never wrong data.
  // With promote_on_read, a written-back page read successfully goes back into memory.
  Error read(std::uint64_t index, std::span<std::byte> out);
  Error discard(std::uint64_t index);
  // Whether page `index` is in memory now (in the pool or same-filled): a read would not touch
  // the backing file. Empty and written-back pages are not.
  bool in_memory(std::uint64_t index) const;
  // Stores page `index` as the same-filled page of `word` without reading or compressing any
  // data: what write() does for such a page, for callers that know the content (a block
  // device's write-zeroes). invalid_argument if index >= capacity().
  Error write_same_filled(std::uint64_t index, std::uint64_t word);
  // What page `index` (< capacity()) holds, as a block device's allocation map reports it:
  //   hole  never written, or discarded (reads as zeros, holds nothing)
  //   zero  a same-filled page of zero bytes (reads as zeros, holds no pool memory)
  //   data  anything else: compressed, huge, written back, or same-filled with a nonzero word
  enum class PageState : std::uint8_t { hole, zero, data };
  PageState page_state(std::uint64_t index) const;
  // fdatasync of the backing file; ok without one, io_error if the sync fails.
  Error sync_backing();
  // Compacts the pool; pages freed.
  std::size_t compact();
  // Writes back cold zspages until `n_pages` pool pages were freed; returns pages written back.
  // Error unsupported without a backing file.
  Result<std::size_t> writeback(std::size_t n_pages);

  // zram's idle file: marks every page in memory (compressed or huge) idle; any later read or
  // write of a page clears its mark. Returns the pages newly marked.
  std::size_t mark_idle();
  // Marks idle only the pages in memory not read or written for at least `age` (whole seconds).
  std::size_t mark_idle(std::chrono::seconds age);
  // zram's writeback file: writes back up to `max_pages` pages in memory of `kind` (ascending
  // page order; `all` in the CLOCK's coldest-first order); returns pages written back. Errors:
  // unsupported without a backing file; limit_reached when the budget is spent before any page
  // could go. A backing write that fails stops it (the page stays in memory).
  Result<std::size_t> writeback(WritebackKind kind,
                                std::size_t max_pages = static_cast<std::size_t>(-1));
  // zram's writeback_limit: at most `pages` more pages go to the backing file; nullopt: no budget.
  void set_writeback_limit(std::optional<std::uint64_t> pages);
  WritebackPolicy writeback_policy() const { return options_.writeback_policy; }
  // Recompresses pages of `kind` whose stored length is >= threshold (0: any) with the
  // secondary compressors (see the top of this file), keeping a result only if it is smaller.
  // priority 0: try the secondaries above the page's codec in priority order, stopping at the
  // first that shrinks it; a page none shrinks is marked and not tried again. priority p
  // (1..secondaries): only secondary p, on pages whose codec is below p (not marked on failure).
  // At most max_pages pages are attempted (0: no limit). Under mem_limit it may pass the limit
  // by max(16 pages, 1/64 of it) while it runs (a smaller copy is made before the old one goes,
  // in another size class); it compacts when that room is spent and at the end, and leaves a
  // page that finds no room as it is. Errors: invalid_argument (no secondary
  // compressors, or priority > their number), out_of_memory (a buffer could not grow), and the
  // pool's errors (what was recompressed before stays).
  Result<RecompressResult> recompress(RecompressKind kind, std::uint32_t threshold = 0,
                                      std::uint64_t max_pages = 0, unsigned priority = 0);
  // A zstd dictionary of at most dict_bytes, trained (train_zstd_dictionary: libzstd's
  // ZDICT_trainFromBuffer) on up to sample_pages of the pages this store holds with data
  // (compressed, huge or written back; not same-filled), spread evenly over them. Use it as
  // "zstd:dict=FILE" once saved. Errors: invalid_argument (sample_pages 0, no page to sample,
  // a dict_bytes train_zstd_dictionary refuses, or the trainer's refusal: `*why` gets its
  // message), a read's errors (a written-back sample that cannot be read), out_of_memory.
  Result<std::vector<std::byte>> train_dictionary(std::uint64_t sample_pages,
                                                  std::size_t dict_bytes,
                                                  std::string* why = nullptr);
  std::size_t secondary_compressors() const { return secondaries_.size(); }
  // The secondary compressor of `priority` (1 .. secondary_compressors()); null for any other.
  const Compressor* secondary_compressor(unsigned priority) const {
    return priority >= 1 && priority <= secondaries_.size() ? secondaries_[priority - 1].get()
                                                            : nullptr;
  }

  StoreStats stats() const;
  std::uint32_t page_size() const { return options_.page_size; }
  std::uint64_t capacity() const { return options_.pages; }
  std::uint32_t huge_class_size() const { return pool_->huge_class_size(); }
  const Pool& pool() const { return *pool_; }
  const Compressor& compressor() const { return *compressor_; }
  // The latest failed backing-file write or read, as one line naming the file and the reason
  // ("backing file F: No space left on device"); "" when none failed or there is no backing file.
  std::string backing_failure() const;
  // A backing file is removed (or, if it was an existing empty file, emptied again) when the
  // store is destroyed in the process that created the store. After fork(), the process that
  // goes on using the store calls this to take that over; the other one leaves the file alone.
  void adopt_backing_after_fork() noexcept;
  // Bytes the page table holds now: its directory and the chunks made so far (64 KiB for each
  // 4096 pages of which at least one was ever written).
  std::uint64_t page_table_bytes() const {
    return decltype(entries_)::directory_bytes(capacity()) +
           entries_.chunks_made() * kEntryChunk * sizeof(Entry) +
           decltype(access_)::directory_bytes(capacity()) +
           access_.chunks_made() * kEntryChunk * sizeof(std::uint32_t);
  }

 private:
  friend struct StoreInternals;
  friend struct WritebackBatch;
  enum class Kind : std::uint8_t { empty, same_filled, compressed, huge, written_back };
  struct Entry {
    std::uint64_t value = 0;   // handle, fill word, or backing slot
    std::uint32_t length = 0;  // stored bytes (compressed length; page_size for huge)
    Kind kind = Kind::empty;
    bool was_huge = false;   // written_back: the slot holds a raw page
    std::uint8_t codec = 0;  // the compressor of the stored bytes: 0 primary, p secondary p
    std::uint8_t flags = 0;  // kNoSecondaryShrinks
    bool operator==(const Entry&) const = default;
  };
  static constexpr std::uint8_t kNoSecondaryShrinks = 1;
  static_assert(sizeof(Entry) == 16);
  static constexpr std::size_t kStripes = 1024;
  static constexpr std::size_t kEntryChunk = 4096;
  static constexpr std::size_t kReverseChunk = std::size_t{1} << 16;
  // The access word's bits (see the top of this file).
  static constexpr std::uint32_t kResident = 1u << 31;
  static constexpr std::uint32_t kIdle = 1u << 30;
  static constexpr std::uint32_t kIncompressible = 1u << 29;
  static constexpr unsigned kRefShift = 27;
  static constexpr std::uint32_t kRefMask = 3u << kRefShift;
  static constexpr std::uint32_t kTimeMask = (1u << kRefShift) - 1;
  static constexpr std::uint32_t kRefOnWrite = 1, kRefOnRead = 3;
  static_assert(sizeof(std::atomic<std::uint32_t>) == 4);
  static std::uint32_t ref_of(std::uint32_t word) { return (word & kRefMask) >> kRefShift; }

  explicit Store(StoreOptions options);
  static PoolOptions pool_options(const StoreOptions& options);
  std::mutex& stripe(std::uint64_t index) const { return stripes_[index % kStripes]; }
  Error create_parts(std::string* why);
  Entry& entry(std::uint64_t index) { return *entries_.find(index); }  // its chunk was made
  // stripe lock held, chunk made; `incompressible`: the page did not compress at all.
  void publish(std::uint64_t index, Entry entry, bool incompressible = false);
  // publish for recompression: the access word keeps its recency and idle mark.
  void publish_recompressed(std::uint64_t index, Entry entry);
  void count_in(const Entry& entry);  // the counters a published entry adds
  void release(const Entry& old);     // stripe lock held
  // `*incompressible`: the compressor could not make the page smaller than page_size at all.
  std::optional<std::span<const std::byte>> compress_page(std::span<const std::byte> page,
                                                          std::span<std::byte> out,
                                                          bool* incompressible);
  Error compress_and_store(std::uint64_t index, std::span<const std::byte> page,
                           std::span<std::byte> out);
  Error store_in_pool(std::uint64_t index, std::span<const std::byte> data, bool huge,
                      bool incompressible = false);
  bool make_page_slots(std::uint64_t index);
  Error store_in_backing(std::uint64_t index, std::span<const std::byte> data, bool huge);
  void make_room(std::size_t incoming);
  bool over_limit(std::size_t extra = 0) const;
  std::size_t pages_left_under(std::uint64_t limit_bytes) const;
  std::size_t pages_left_under_limit() const { return pages_left_under(options_.mem_limit); }
  std::size_t pages_left_for_recompression() const;
  bool grew_past_limit(std::size_t pages_before) const;
  bool room_after_writeback(std::size_t incoming = 0);
  Error evict(Pool& pool, Handle h);
  // Writes the resident page `index` (entry e) to a backing slot and publishes it there; stripe
  // lock held. Takes a page of the budget (limit_reached when spent).
  Error write_back_locked(std::uint64_t index, Entry& e);
  Error copy_to_backing(std::uint64_t index, Entry& e);
  // Writes back page `index` if it is still resident and `wanted(word, entry)`; no lock held.
  // With batches (writeback_batch_pages > 1) the page is staged in batch_ and goes out with it
  // (flush_batch); otherwise at once. *bytes: its stored bytes, when it went or was staged.
  // Errors: the budget's, the pool's, or (unbatched) the backing file's.
  template <typename Wanted>
  Error write_back_if(std::uint64_t index, Wanted&& wanted, std::size_t* bytes);
  Error stage_locked(std::uint64_t index, const Entry& e);
  bool batch_full() const;
  // Writes the staged pages to the backing file and publishes those whose entry did not change
  // meanwhile. Returns the pages published; *failed gets the first backing error (else ok).
  std::size_t flush_batch(Error* failed);
  void unstage(std::optional<std::uint64_t> slot);
  bool publish_staged(std::uint64_t index, const Entry& staged, std::uint64_t slot);
  // Points page `index` (stripe lock held, entry e resident) at backing slot `slot`, which holds
  // e's bytes, and frees its handle.
  void publish_written_back(std::uint64_t index, const Entry& e, std::uint64_t slot);
  // The policy's reclaim down to `target` pool bytes; writeback_mutex_ held. Pages written back.
  std::size_t reclaim_to(std::uint64_t target);
  std::size_t reclaim_pages_to(std::uint64_t target);
  // The CLOCK: writes back unreferenced pages until `bytes` stored bytes or `max_pages` went
  // (or two sweeps found none); writeback_mutex_ held. Pages written back.
  std::size_t clock_writeback(std::uint64_t bytes, std::size_t max_pages);
  std::uint64_t percent_of_limit(std::uint32_t percent) const;
  // The access word: reads and writes (touch), the clock (now_seconds), the idle count.
  std::atomic<std::uint32_t>* access(std::uint64_t index) const { return access_.find(index); }
  void touch(std::uint64_t index, std::uint32_t ref);
  void set_access(std::uint64_t index, bool resident, bool incompressible);  // by publish
  void clear_incompressible(std::uint64_t index);  // by publish_recompressed
  std::uint32_t now_seconds() const;
  void forget_idle(std::uint32_t old_word);
  template <typename F>
  void for_each_access_word(F&& f) const;
  bool age_page(std::atomic<std::uint32_t>& w);
  std::atomic<std::uint64_t>& kind_counter(WritebackKind kind);
  bool take_budget();
  void return_budget();
  // The background writer and compactor.
  bool wants_background_thread() const;
  bool writes_back_in_background() const;
  void background_loop();
  void kick_background_writer();
  void write_back_in_background();
  void compact_in_background();
  Error read_from_pool(const Entry& e, std::span<std::byte> out);
  // *stored: the bytes the slot held, in this thread's kIo scratch (valid until it is reused).
  Error read_from_backing(const Entry& e, std::span<std::byte> out,
                          std::span<const std::byte>* stored);
  void promote(std::uint64_t index, const Entry& e, std::span<const std::byte> stored,
               std::unique_lock<std::mutex>& lock);
  Result<Handle> allocate_in_pool(std::span<const std::byte> data);
  Error decode(std::span<const std::byte> stored, bool raw, std::uint8_t codec,
               std::span<std::byte> out) const;
  const Compressor& codec(std::uint8_t c) const {
    return c == 0 ? *compressor_ : *secondaries_[c - 1];
  }
  Error create_secondaries();
  // Recompression (store.cc, "recompress"). recompress_page: true when it tried the page.
  struct RecompressRun : RecompressResult {
    std::uint64_t compacted_after = 0;  // `recompressed` when the pool was last compacted for room
  };
  bool wants_recompression(const Entry& e, RecompressKind kind, std::uint32_t threshold,
                           std::uint64_t index, unsigned priority) const;
  Result<bool> recompress_page(std::uint64_t index, RecompressKind kind, std::uint32_t threshold,
                               unsigned priority, RecompressRun& run);
  std::optional<std::pair<std::uint8_t, std::span<const std::byte>>> shrink_with_secondaries(
      std::span<const std::byte> page, std::uint32_t old_length, std::uint8_t old_codec,
      unsigned priority, std::span<std::byte> out) const;
  Error replace_in_pool(std::uint64_t index, Handle old_handle, std::span<const std::byte> data,
                        std::uint8_t codec, RecompressRun& run);
  void mark_no_secondary_shrinks(std::uint64_t index, Handle old_handle);
  // Whether page `index` carries an idle mark (its access word's idle bit, set by mark_idle).
  bool page_is_idle(std::uint64_t index) const;
  std::uint64_t first_made(std::uint64_t index) const;  // see store.cc
  bool holds_data(std::uint64_t index) const;           // compressed, huge or written back
  Error sample_pages(std::uint64_t count, std::vector<std::byte>& samples);

  // handle -> page index + 1 (0: none), by Pool::handle_index, for slots below the pool's
  // max_handles. set_reverse needs the slot made beforehand (make_reverse), so that publishing a
  // page never allocates.
  Error make_reverse(Handle h);
  void set_reverse(Handle h, std::uint64_t index);
  void clear_reverse(Handle h);

  StoreOptions options_;
  std::unique_ptr<Compressor> compressor_;
  std::vector<std::unique_ptr<Compressor>> secondaries_;  // options_.recompress_with, in order
  std::size_t compress_scratch_bytes_ = 0;  // the compressor's worst case for one page
  std::unique_ptr<BackingFile> backing_;
  // Without a backing file, a write's compressed page waits in a buffer lent per CPU
  // (store.cc, "write"); nullptr with one.
  struct WriteBuffers;
  std::unique_ptr<WriteBuffers> write_buffers_;
  std::unique_ptr<Pool> pool_;
  internal::ChunkedTable<Entry, kEntryChunk> entries_;
  mutable std::unique_ptr<std::mutex[]> stripes_;
  internal::ChunkedTable<std::atomic<std::uint64_t>, kReverseChunk> reverse_;
  std::mutex writeback_mutex_;  // one writer making room at a time; guards clock_hand_, batch_
  // Pages staged for one batched write to the backing file (store/internal/writeback_batch.h);
  // guarded by writeback_mutex_; made with the backing file when writeback_batch_pages > 1.
  std::unique_ptr<WritebackBatch> batch_;
  // The per-page access words (see the top of this file); a chunk made with the entries' chunk.
  mutable internal::ChunkedTable<std::atomic<std::uint32_t>, kEntryChunk> access_;
  std::uint64_t clock_hand_ = 0;
  std::chrono::steady_clock::time_point born_ = std::chrono::steady_clock::now();
  std::atomic<std::uint64_t> clock_offset_s_{0};  // tests move the clock forward (StoreInternals)
  // The background writer: background_mutex_ is a leaf lock guarding background_stop_ and
  // background_kicked_ (lock order: writeback_mutex_ is never taken with it held).
  std::mutex background_mutex_;
  std::condition_variable background_cv_;
  bool background_stop_ = false;
  bool background_kicked_ = false;
  std::thread background_;

  // The figures the store counts itself, each named as the statistic it feeds: the
  // ZSPOOL_STORE_COUNTERS, and the mm_stat fields not taken from the pool.
  struct Counters {
#define ZSPOOL_STORE_COUNTER(name, desc) std::atomic<std::uint64_t> name{0};
    ZSPOOL_STORE_OWN_MM_STAT(ZSPOOL_STORE_COUNTER)
    ZSPOOL_STORE_COUNTERS(ZSPOOL_STORE_COUNTER)
    ZSPOOL_STORE_POLICY_COUNTERS(ZSPOOL_STORE_COUNTER)
#undef ZSPOOL_STORE_COUNTER
  };
  Counters counters_;
};

}  // namespace zspool
