// The compressed page store: see store.h for the entry kinds, the locking and the protocols.
#include "zspool/store/store.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <nlohmann/json.hpp>
#include <optional>
#include <system_error>

#include "zspool/core/internal/stats_json.h"
#include "zspool/platform/internal/os.h"
#include "zspool/platform/internal/per_cpu.h"
#include "zspool/store/internal/backing_file.h"
#include "zspool/store/internal/stats_json.h"
#include "zspool/store/internal/writeback_batch.h"
#include "zspool/store/same_filled.h"

namespace zspool {

namespace {

// Per-thread scratch pages. Two of them: a write holds its compressed page in kCompress while
// make_room() may run the evict handler on the same thread, which stages objects in kIo. An
// empty span when the buffer cannot grow (out of memory). Used where the holder may wait for
// I/O: writes to a store with a backing file (make_room, store_in_backing), reads of
// written-back pages, recompression. A store without one lends write buffers per CPU instead
// (WriteBuffers below). Each scratch page is its own mapping, not malloc memory: it is unmapped
// when the thread exits, while a freed malloc chunk of this size stays resident in glibc's
// per-thread arena (nbdkit's 16 worker threads a connection left ~0.5 MiB at 32 KiB pages).
enum Scratch { kCompress, kIo };
std::span<std::byte> scratch(Scratch which, std::size_t bytes) noexcept {
  thread_local os::VirtualRange buffers[2];
  os::VirtualRange& buffer = buffers[which];
  if (!buffer.grow_to(bytes)) return {};
  return {buffer.base(), bytes};
}

}  // namespace

// A write's compressed page, when the store has no backing file: one buffer per CPU (PerCpu),
// not per thread, so a server with many worker threads (nbdkit: 16 a connection) holds a few
// page-sized buffers, not one a thread. Held from the compression to the pool's copy: without
// a backing file nothing in between waits for I/O (make_room and store_in_backing need one), only
// for the pool's short locks. Lease order: a write buffer, then the compressor's leases
// (compressor.cc); nothing holding those takes a write buffer.
struct Store::WriteBuffers {
  PerCpu<os::VirtualRange> buffers;
};

// ── creation ─────────────────────────────────────────────────────────────────────────────────

// The pool's reservations, sized from the capacity: every stored page holds at most one handle,
// and each writer holds one more for a moment (a rewrite allocates before it frees the old
// object); kWritersInFlight bounds the writers at once. (The pool adds its own spare slots and
// the handles a reclaim defers: reserve_for.) Without this a pool reserves 1.1 GiB of address
// space whatever the capacity, and a store under a low `ulimit -v` cannot be created.
PoolOptions Store::pool_options(const StoreOptions& options) {
  constexpr std::uint64_t kWritersInFlight = 4096;
  PoolOptions po;
  po.page_size = options.page_size;
  po.max_chain = options.max_chain;
  po.page_source = options.page_source;
  po.reserve_for(options.pages + kWritersInFlight);
  return po;
}

Store::Store(StoreOptions options)
    : options_(std::move(options)),
      entries_(options_.pages),
      stripes_(new (std::nothrow) std::mutex[kStripes]),
      reverse_(pool_options(options_).max_handles),
      access_(options_.pages) {}

std::uint64_t Store::max_pages() {
  // Two directories: the entries' and the access words'.
  const std::uint64_t directory_pointers = os::memory_budget().bytes / 2 / (2 * sizeof(Entry*));
  if (directory_pointers >= kMaxPages / kEntryChunk) return kMaxPages;
  return directory_pointers * kEntryChunk;
}

Result<std::unique_ptr<Store>> Store::create(StoreOptions options, std::string* why) {
  if (options.pages == 0 || options.accept_percent == 0 || options.accept_percent > 100)
    return Error::invalid_argument;
  // Before anything is sized by page_size (the writeback batch, scratch buffers, the backing
  // file's slots): a page size of 2^31 was out_of_memory after a 64 GiB batch buffer.
  if (!SizeClassTable::valid_geometry(options.page_size, options.max_chain) ||
      options.page_size % os::page_size() != 0)
    return Error::invalid_argument;
  if (options.high_watermark_percent < options.accept_percent ||
      options.high_watermark_percent > 100)
    return Error::invalid_argument;
  if (options.writeback_batch_pages == 0 || options.writeback_batch_pages > kMaxWritebackBatch)
    return Error::invalid_argument;
  if (options.pages > max_pages()) return Error::too_large;
  try {
    std::unique_ptr<Store> store(new (std::nothrow) Store(std::move(options)));
    if (!store || !store->stripes_ || !store->entries_.ok() || !store->reverse_.ok() ||
        !store->access_.ok())
      return Error::out_of_memory;  // the page table's directory, within max_pages() but not had
    if (const Error e = store->create_parts(why); e != Error::ok) return e;
    if (store->wants_background_thread())
      store->background_ = std::thread([s = store.get()] { s->background_loop(); });
    return store;
  } catch (const std::bad_alloc&) {  // a string or a std::function on the way
    return Error::out_of_memory;
  } catch (const std::system_error&) {  // the background thread could not start
    return Error::out_of_memory;
  }
}

// The compressor, the backing file and the pool, in that order (the pool's evict handler
// needs the backing file).
Error Store::create_parts(std::string* why) {
  auto compressor = make_compressor(options_.compressor);
  if (!compressor) return compressor.error();
  compressor_ = std::move(*compressor);
  if (const Error e = create_secondaries(); e != Error::ok) return e;
  compress_scratch_bytes_ = std::max<std::size_t>(
      options_.page_size, compressor_->max_compressed_size(options_.page_size));
  for (const auto& secondary : secondaries_) {
    compress_scratch_bytes_ =
        std::max(compress_scratch_bytes_, secondary->max_compressed_size(options_.page_size));
  }
  PoolOptions po = pool_options(options_);
  if (!options_.backing_path.empty()) {
    auto backing = BackingFile::open(options_.backing_path, options_.page_size, 0,
                                     {.allow_block_device = options_.allow_block_device}, why);
    if (!backing) return backing.error();
    backing_ = std::move(*backing);
    if (options_.writeback_batch_pages > 1)
      batch_ = std::make_unique<WritebackBatch>(options_.writeback_batch_pages, options_.page_size);
    po.evict = [this](Pool& pool, Handle h) { return evict(pool, h); };
  } else {
    write_buffers_ = std::make_unique<WriteBuffers>();
  }
  auto pool = Pool::create(std::move(po));
  if (!pool) return pool.error();
  pool_ = std::move(*pool);
  return Error::ok;
}

Error Store::create_secondaries() {
  if (options_.recompress_with.size() > kMaxSecondaryCompressors) return Error::invalid_argument;
  for (const std::string& spec : options_.recompress_with) {
    auto secondary = make_compressor(spec);
    if (!secondary) return secondary.error();
    secondaries_.push_back(std::move(*secondary));
  }
  return Error::ok;
}

std::string Store::backing_failure() const {
  return backing_ ? backing_->last_failure() : std::string();
}

void Store::adopt_backing_after_fork() noexcept {
  if (backing_) backing_->adopt_after_fork();
}

Store::~Store() {
  if (background_.joinable()) {
    {
      std::lock_guard lock(background_mutex_);
      background_stop_ = true;
    }
    background_cv_.notify_all();
    background_.join();
  }
  pool_.reset();  // before the reverse map and the backing file it may call into
}

// ── the reverse map: handle -> page ──────────────────────────────────────────────────────────

// A handle the map cannot hold would be a page writeback cannot find: refused, not stored. The
// map is indexed by Pool::handle_index (a handle's generation is checked against the entry,
// which holds the whole handle).
Error Store::make_reverse(Handle h) {
  if (!backing_) return Error::ok;
  const std::size_t slot = pool_->handle_index(h);
  if (slot >= reverse_.size()) return Error::invalid_handle;
  return reverse_.find_or_make(slot) != nullptr ? Error::ok : Error::out_of_memory;
}

void Store::set_reverse(Handle h, std::uint64_t index) {
  if (!backing_) return;  // only writeback needs it
  if (auto* slot = reverse_.find(pool_->handle_index(h)))
    slot->store(index + 1, std::memory_order_release);
}

void Store::clear_reverse(Handle h) {
  if (!backing_) return;
  if (auto* slot = reverse_.find(pool_->handle_index(h))) slot->store(0, std::memory_order_release);
}

// ── write ────────────────────────────────────────────────────────────────────────────────────

Error Store::write(std::uint64_t index, std::span<const std::byte> page) {
  if (index >= options_.pages || page.size() != options_.page_size) return Error::invalid_argument;
  if (!make_page_slots(index)) return Error::out_of_memory;
  if (auto word = same_filled_word(page)) return write_same_filled(index, *word);
  if (write_buffers_) {
    auto lease = write_buffers_->buffers.acquire();
    if (!lease->grow_to(compress_scratch_bytes_)) return Error::out_of_memory;
    return compress_and_store(index, page, {lease->base(), compress_scratch_bytes_});
  }
  const std::span<std::byte> out = scratch(kCompress, compress_scratch_bytes_);
  if (out.empty()) return Error::out_of_memory;
  return compress_and_store(index, page, out);
}

// Compresses `page` into `out` (compress_scratch_bytes_) and stores the result, or the page raw
// when compression does not pay.
Error Store::compress_and_store(std::uint64_t index, std::span<const std::byte> page,
                                std::span<std::byte> out) {
  bool incompressible = false;
  const std::optional<std::span<const std::byte>> compressed =
      compress_page(page, out, &incompressible);
  if (!compressed) {
    counters_.reject_compress_poor.fetch_add(1, std::memory_order_relaxed);
    return store_in_pool(index, page, true, incompressible);
  }
  return store_in_pool(index, *compressed, false);
}

// The page's entry and access word (the entry's chunk first: a made access word means a made
// entry).
bool Store::make_page_slots(std::uint64_t index) {
  return entries_.find_or_make(index) != nullptr && access_.find_or_make(index) != nullptr;
}

// The page's compressed form in this thread's scratch, or nullopt when it would not save
// memory (>= huge_class_size). The scratch holds the compressor's worst case, so lz4 runs its
// unbounded-output loop (no output checks) and zstd / lzo1x need no bounce copy; the pool copy
// in store_in_pool is then the only copy.
std::optional<std::span<const std::byte>> Store::compress_page(std::span<const std::byte> page,
                                                               std::span<std::byte> out,
                                                               bool* incompressible) {
  auto compressed = compressor_->compress(page, out);
  *incompressible = !compressed || *compressed >= page.size();
  if (!compressed || *compressed >= pool_->huge_class_size()) return std::nullopt;
  return out.first(*compressed);
}

Error Store::store_in_pool(std::uint64_t index, std::span<const std::byte> data, bool huge,
                           bool incompressible) {
  auto h = allocate_in_pool(data);
  if (!h && h.error() == Error::limit_reached) {
    if (backing_) return store_in_backing(index, data, huge);  // as zswap falls back to swap
    counters_.rejected_writes.fetch_add(1, std::memory_order_relaxed);
  }
  if (!h) return h.error();
  {
    std::lock_guard lock(stripe(index));
    set_reverse(*h, index);
    publish(
        index,
        {*h, static_cast<std::uint32_t>(data.size()), huge ? Kind::huge : Kind::compressed, false},
        incompressible);
  }
  kick_background_writer();
  return Error::ok;
}

// A pool object holding `data`, within the limit (making room first, no lock held; its reverse
// slot made): limit_reached when the pool stays over the limit despite writeback, or the pool's
// error. Nothing is left allocated on an error, and an allocation refused for the limit commits
// nothing: the pool is given what is left of the limit as its budget of new pages.
Result<Handle> Store::allocate_in_pool(std::span<const std::byte> data) {
  make_room(data.size());
  std::size_t pages_before = pool_->total_pages();
  auto h = pool_->malloc_copy(data, pages_left_under_limit());
  // Refused for want of a page (the pool within a page of the limit): make room for one.
  if (!h && h.error() == Error::limit_reached && room_after_writeback(pool_->page_size())) {
    pages_before = pool_->total_pages();
    h = pool_->malloc_copy(data, pages_left_under_limit());
  }
  if (!h) return h.error();
  Error e = make_reverse(*h);
  if (e == Error::ok && grew_past_limit(pages_before) && !room_after_writeback())
    e = Error::limit_reached;
  if (e != Error::ok) {
    (void)pool_->free(*h);
    return e;
  }
  return *h;
}

// The pages the pool may still take before it holds more than limit_bytes (any when 0: no
// limit).
std::size_t Store::pages_left_under(std::uint64_t limit_bytes) const {
  if (limit_bytes == 0) return Pool::kAnyNewPages;
  const std::uint64_t held = pool_->total_bytes();
  return held >= limit_bytes ? 0 : (limit_bytes - held) / pool_->page_size();
}

// Recompression's room: the limit's, and a slack beyond it while it runs of at least 16 pages
// and 1/64 of the limit (recompress() compacts at the end, so the pool ends within the limit
// when the replaced objects' room adds up to pages).
std::size_t Store::pages_left_for_recompression() const {
  if (options_.mem_limit == 0) return Pool::kAnyNewPages;
  const std::uint64_t slack =
      std::max<std::uint64_t>(16 * std::uint64_t{pool_->page_size()}, options_.mem_limit / 64);
  return pages_left_under(options_.mem_limit + slack);
}

// The budget keeps one thread's allocations within the limit; writers racing for its last
// pages can each be given them, and pass it. Such an allocation is refused after the fact, and
// lazy commit may keep its page committed (reused later at no cost): at most a frontier page or
// two per size class, and only while writers race.
bool Store::grew_past_limit(std::size_t pages_before) const {
  return over_limit() && pool_->total_pages() > pages_before;
}

// Over the limit after an allocation, or `incoming` bytes short of it: with a backing file,
// write back and look again (no lock held); without one, the write is refused.
bool Store::room_after_writeback(std::size_t incoming) {
  if (!backing_) {
    counters_.pool_limit_hit.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  make_room(incoming);
  return !over_limit(incoming);
}

// The pool stays over its limit despite writeback: the page goes straight to the backing file.
// If the backing file cannot take it either: no_space when its device is full (a full disk is
// not a memory limit), else limit_reached (the write was refused for the limit; the backing
// file's failure is counted in bd_write_failures and backing_failure() says why).
Error Store::store_in_backing(std::uint64_t index, std::span<const std::byte> data, bool huge) {
  if (!take_budget()) {
    counters_.rejected_writes.fetch_add(1, std::memory_order_relaxed);
    return Error::limit_reached;
  }
  auto slot = backing_->alloc_slot();
  Error e = slot ? backing_->write_slot(*slot, data) : slot.error();
  if (e != Error::ok) {
    if (slot) backing_->free_slot(*slot);
    return_budget();
    counters_.bd_write_failures.fetch_add(1, std::memory_order_relaxed);
    counters_.rejected_writes.fetch_add(1, std::memory_order_relaxed);
    return e == Error::no_space ? e : Error::limit_reached;
  }
  counters_.bd_writes.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(stripe(index));
  publish(index, {*slot, static_cast<std::uint32_t>(data.size()), Kind::written_back, huge, 0, 0});
  return Error::ok;
}

bool Store::over_limit(std::size_t extra) const {
  return options_.mem_limit != 0 && pool_->total_bytes() + extra > options_.mem_limit;
}

// zswap's hysteresis: once an allocation would pass the limit, write back until the pool is
// below accept_percent of it. No stripe lock may be held here (the evict handler takes them).
void Store::make_room(std::size_t incoming) {
  if (!backing_ || !over_limit(incoming)) return;
  std::lock_guard lock(writeback_mutex_);
  if (!over_limit(incoming)) return;  // someone (the background writer) made room meanwhile
  counters_.pool_limit_hit.fetch_add(1, std::memory_order_relaxed);
  counters_.writer_stalls.fetch_add(1, std::memory_order_relaxed);
  reclaim_to(percent_of_limit(options_.accept_percent));
}

std::uint64_t Store::percent_of_limit(std::uint32_t percent) const {
  const std::uint64_t limit = options_.mem_limit;
  return limit / 100 * percent + limit % 100 * percent / 100;
}

void Store::publish(std::uint64_t index, Entry entry, bool incompressible) {
  release(this->entry(index));
  set_access(index, entry.kind == Kind::compressed || entry.kind == Kind::huge, incompressible);
  count_in(entry);
  this->entry(index) = entry;
}

// Recompression changed the page's form, not its use: its recency and idle mark stay (a
// recompress of idle pages must not make them warm), and it is no longer incompressible.
void Store::publish_recompressed(std::uint64_t index, Entry entry) {
  release(this->entry(index));
  clear_incompressible(index);
  count_in(entry);
  this->entry(index) = entry;
}

void Store::count_in(const Entry& entry) {
  switch (entry.kind) {
    case Kind::same_filled:
      counters_.same_pages.fetch_add(1, std::memory_order_relaxed);
      counters_.stored_pages.fetch_add(1, std::memory_order_relaxed);
      break;
    case Kind::huge:
      counters_.huge_pages.fetch_add(1, std::memory_order_relaxed);
      counters_.huge_pages_since.fetch_add(1, std::memory_order_relaxed);
      [[fallthrough]];
    case Kind::compressed:
      counters_.compr_data_size.fetch_add(entry.length, std::memory_order_relaxed);
      counters_.stored_pages.fetch_add(1, std::memory_order_relaxed);
      break;
    case Kind::written_back:
      counters_.bd_count.fetch_add(1, std::memory_order_relaxed);
      break;
    case Kind::empty:
      break;
  }
}

// Undoes what an entry holds (stripe lock held): frees its handle or backing slot.
void Store::release(const Entry& old) {
  switch (old.kind) {
    case Kind::same_filled:
      counters_.same_pages.fetch_sub(1, std::memory_order_relaxed);
      counters_.stored_pages.fetch_sub(1, std::memory_order_relaxed);
      break;
    case Kind::huge:
      counters_.huge_pages.fetch_sub(1, std::memory_order_relaxed);
      [[fallthrough]];
    case Kind::compressed:
      counters_.compr_data_size.fetch_sub(old.length, std::memory_order_relaxed);
      counters_.stored_pages.fetch_sub(1, std::memory_order_relaxed);
      clear_reverse(old.value);
      (void)pool_->free(old.value);
      break;
    case Kind::written_back:
      counters_.bd_count.fetch_sub(1, std::memory_order_relaxed);
      backing_->free_slot(old.value);
      break;
    case Kind::empty:
      break;
  }
}

Error Store::discard(std::uint64_t index) {
  if (index >= options_.pages) return Error::invalid_argument;
  std::lock_guard lock(stripe(index));
  if (entries_.find(index) == nullptr) return Error::ok;  // never written: empty already
  publish(index, Entry{});
  return Error::ok;
}

Error Store::write_same_filled(std::uint64_t index, std::uint64_t word) {
  if (index >= options_.pages) return Error::invalid_argument;
  if (!make_page_slots(index)) return Error::out_of_memory;
  std::lock_guard lock(stripe(index));
  publish(index, {word, 0, Kind::same_filled, false, 0, 0});
  return Error::ok;
}

Store::PageState Store::page_state(std::uint64_t index) const {
  if (index >= options_.pages) return PageState::hole;
  std::lock_guard lock(stripe(index));
  const Entry* e = entries_.find(index);
  if (e == nullptr || e->kind == Kind::empty) return PageState::hole;
  if (e->kind == Kind::same_filled && e->value == 0) return PageState::zero;
  return PageState::data;
}

Error Store::sync_backing() {
  return backing_ ? backing_->sync() : Error::ok;
}

// ── writeback ────────────────────────────────────────────────────────────────────────────────

Error Store::evict(Pool& pool, Handle h) {
  auto* slot = reverse_.find(pool.handle_index(h));
  const std::uint64_t page_plus_one = slot ? slot->load(std::memory_order_acquire) : 0;
  if (page_plus_one == 0) return Error::ok;  // overwritten or discarded meanwhile
  const std::uint64_t index = page_plus_one - 1;
  std::lock_guard lock(stripe(index));
  Entry& e = entry(index);  // published, so its chunk was made
  if ((e.kind != Kind::compressed && e.kind != Kind::huge) || e.value != h) return Error::ok;
  (void)pool;                          // the store's own pool_
  return write_back_locked(index, e);  // an error: the pool restores the zspage
}

// Copies the object to a fresh backing slot (checksummed), points the entry at it and frees the
// handle (publish). On any failure the page stays in memory and the budget gets its page back.
Error Store::write_back_locked(std::uint64_t index, Entry& e) {
  if (!take_budget()) return Error::limit_reached;
  const Error w = copy_to_backing(index, e);
  if (w != Error::ok) return_budget();
  return w;
}

Error Store::copy_to_backing(std::uint64_t index, Entry& e) {
  std::span<std::byte> data = scratch(kIo, e.length);
  if (data.empty()) return Error::out_of_memory;
  if (const Error r = pool_->read(e.value, data); r != Error::ok) return r;
  auto backing_slot = backing_->alloc_slot();
  if (!backing_slot) {
    counters_.bd_write_failures.fetch_add(1, std::memory_order_relaxed);
    return backing_slot.error();
  }
  if (const Error w = backing_->write_slot(*backing_slot, data); w != Error::ok) {
    backing_->free_slot(*backing_slot);
    counters_.bd_write_failures.fetch_add(1, std::memory_order_relaxed);
    return w;
  }
  publish_written_back(index, e, *backing_slot);
  return Error::ok;
}

void Store::publish_written_back(std::uint64_t index, const Entry& e, std::uint64_t slot) {
  counters_.bd_writes.fetch_add(1, std::memory_order_relaxed);
  counters_.written_back_pages.fetch_add(1, std::memory_order_relaxed);
  // The slot holds the same bytes, so the page keeps its codec (and its flags).
  publish(index, {slot, e.length, Kind::written_back, e.kind == Kind::huge, e.codec, e.flags});
}

Result<std::size_t> Store::writeback(std::size_t n_pages) {
  if (!backing_) return Error::unsupported;
  std::lock_guard lock(writeback_mutex_);  // make_room() writes back only under it too
  const std::uint64_t before = counters_.written_back_pages.load();
  pool_->shrink(n_pages);
  return static_cast<std::size_t>(counters_.written_back_pages.load() - before);
}

std::size_t Store::compact() {
  return pool_->compact();
}

// ── recompress ───────────────────────────────────────────────────────────────────────────────

std::string_view recompress_kind_name(RecompressKind kind) {
  switch (kind) {
    case RecompressKind::all:
      return "all";
    case RecompressKind::huge:
      return "huge";
    case RecompressKind::idle:
      return "idle";
  }
  return "?";
}

std::optional<RecompressKind> parse_recompress_kind(std::string_view name) {
  for (const RecompressKind kind :
       {RecompressKind::all, RecompressKind::huge, RecompressKind::idle})
    if (recompress_kind_name(kind) == name) return kind;
  return std::nullopt;
}

Result<RecompressResult> Store::recompress(RecompressKind kind, std::uint32_t threshold,
                                           std::uint64_t max_pages, unsigned priority) {
  if (secondaries_.empty() || priority > secondaries_.size()) return Error::invalid_argument;
  RecompressRun run;
  for (std::uint64_t index = first_made(0); index < options_.pages; index = first_made(index + 1)) {
    if (max_pages != 0 && run.attempted >= max_pages) break;
    auto attempted = recompress_page(index, kind, threshold, priority, run);
    if (!attempted) return attempted.error();
  }
  // Replaced objects leave holes; under a limit, give them back so the pool ends within it.
  if (over_limit() && run.recompressed > run.compacted_after) (void)pool_->compact();
  return RecompressResult(run);
}

// The first page >= index whose chunk of the page table was made (capacity() if none): the
// pages of a chunk never made are all empty.
std::uint64_t Store::first_made(std::uint64_t index) const {
  while (index < options_.pages && entries_.find(index) == nullptr)
    index = (index / kEntryChunk + 1) * kEntryChunk;
  return std::min(index, options_.pages);
}

// The page's idle mark, in its access word (mark_idle sets it; a read or write clears it).
bool Store::page_is_idle(std::uint64_t index) const {
  const std::atomic<std::uint32_t>* w = access(index);
  return w != nullptr && (w->load(std::memory_order_relaxed) & kIdle) != 0;
}

bool Store::wants_recompression(const Entry& e, RecompressKind kind, std::uint32_t threshold,
                                std::uint64_t index, unsigned priority) const {
  if (e.kind != Kind::compressed && e.kind != Kind::huge) return false;
  if (e.length < threshold) return false;
  if (kind == RecompressKind::huge && e.kind != Kind::huge) return false;
  if (kind == RecompressKind::idle && !page_is_idle(index)) return false;
  const unsigned last = static_cast<unsigned>(secondaries_.size());
  if (priority == 0) return (e.flags & kNoSecondaryShrinks) == 0 && e.codec < last;
  return e.codec < priority;  // a raw page's codec is 0
}

// One page: decoded under its stripe lock, compressed again and stored without it. False when
// the page was not attempted.
Result<bool> Store::recompress_page(std::uint64_t index, RecompressKind kind,
                                    std::uint32_t threshold, unsigned priority,
                                    RecompressRun& run) {
  const std::span<std::byte> page = scratch(kIo, options_.page_size);
  const std::span<std::byte> out = scratch(kCompress, compress_scratch_bytes_);
  if (page.empty() || out.empty()) return Error::out_of_memory;
  Entry old;
  {
    std::lock_guard lock(stripe(index));
    old = entry(index);
    if (!wants_recompression(old, kind, threshold, index, priority)) return false;
    if (const Error e = read_from_pool(old, page); e != Error::ok) return e;
  }
  ++run.attempted;
  const auto smaller = shrink_with_secondaries(page, old.length, old.codec, priority, out);
  if (!smaller) {
    ++run.no_gain;
    counters_.recompress_no_gain.fetch_add(1, std::memory_order_relaxed);
    if (priority == 0) mark_no_secondary_shrinks(index, old.value);
    return true;
  }
  const Error e = replace_in_pool(index, old.value, smaller->second, smaller->first, run);
  if (e != Error::ok) return e;
  return true;
}

// The page compressed by the first secondary (above old_codec, or just `priority`) whose result
// is shorter than old_length and than huge_class_size: its codec and bytes (in `out`).
std::optional<std::pair<std::uint8_t, std::span<const std::byte>>> Store::shrink_with_secondaries(
    std::span<const std::byte> page, std::uint32_t old_length, std::uint8_t old_codec,
    unsigned priority, std::span<std::byte> out) const {
  const unsigned first = priority == 0 ? old_codec + 1u : priority;
  const unsigned last = priority == 0 ? static_cast<unsigned>(secondaries_.size()) : priority;
  const std::size_t fits = std::min<std::size_t>(old_length, pool_->huge_class_size());
  for (unsigned p = first; p <= last; ++p) {
    auto n = secondaries_[p - 1]->compress(page, out);
    if (n && *n < fits) return std::pair{static_cast<std::uint8_t>(p), out.first(*n)};
  }
  return std::nullopt;
}

// Stores the smaller form in a new object and publishes it if page `index` still holds
// old_handle; else (written, discarded or written back meanwhile) the new object goes. The new
// object lies in another size class and is made before the old one goes, and the old one's
// room comes back only through compaction: under mem_limit the new object gets the limit's
// room plus a slack (pages_left_for_recompression), the pool is compacted once that is spent
// (if anything was replaced since the last compaction), and a page that still does not fit is
// left as it is (tried again by a later recompress).
Error Store::replace_in_pool(std::uint64_t index, Handle old_handle,
                             std::span<const std::byte> data, std::uint8_t codec,
                             RecompressRun& run) {
  auto h = pool_->malloc_copy(data, pages_left_for_recompression());
  if (!h && h.error() == Error::limit_reached && run.recompressed > run.compacted_after) {
    // Out of room: the objects replaced so far left holes; compaction turns them into pages.
    run.compacted_after = run.recompressed;
    (void)pool_->compact();
    h = pool_->malloc_copy(data, pages_left_for_recompression());
  }
  if (!h && h.error() == Error::limit_reached) return Error::ok;  // left as it is
  if (!h) return h.error();
  if (const Error e = make_reverse(*h); e != Error::ok) {
    (void)pool_->free(*h);
    return e;
  }
  std::lock_guard lock(stripe(index));
  const Entry& now = entry(index);
  if ((now.kind != Kind::compressed && now.kind != Kind::huge) || now.value != old_handle) {
    (void)pool_->free(*h);
    return Error::ok;
  }
  const std::uint64_t saved = now.length - data.size();
  set_reverse(*h, index);
  publish_recompressed(
      index, {*h, static_cast<std::uint32_t>(data.size()), Kind::compressed, false, codec, 0});
  ++run.recompressed;
  run.saved_bytes += saved;
  counters_.recompressed_pages.fetch_add(1, std::memory_order_relaxed);
  counters_.recompress_saved_bytes.fetch_add(saved, std::memory_order_relaxed);
  return Error::ok;
}

void Store::mark_no_secondary_shrinks(std::uint64_t index, Handle old_handle) {
  std::lock_guard lock(stripe(index));
  Entry& now = entry(index);
  if ((now.kind == Kind::compressed || now.kind == Kind::huge) && now.value == old_handle)
    now.flags |= kNoSecondaryShrinks;
}

// ── dictionary training ──────────────────────────────────────────────────────────────────────

Result<std::vector<std::byte>> Store::train_dictionary(std::uint64_t sample_pages,
                                                       std::size_t dict_bytes, std::string* why) {
  if (sample_pages == 0) return Error::invalid_argument;
  std::vector<std::byte> samples;
  try {
    if (const Error e = this->sample_pages(sample_pages, samples); e != Error::ok) return e;
  } catch (const std::bad_alloc&) {
    return Error::out_of_memory;
  }
  if (samples.empty()) {
    if (why != nullptr) *why = "the store holds no page to sample";
    return Error::invalid_argument;
  }
  return train_zstd_dictionary(samples, options_.page_size, dict_bytes, why);
}

bool Store::holds_data(std::uint64_t index) const {
  std::lock_guard lock(stripe(index));
  const Entry* e = entries_.find(index);
  return e != nullptr &&
         (e->kind == Kind::compressed || e->kind == Kind::huge || e->kind == Kind::written_back);
}

// Every stride-th page holding data (stride: those pages / count, at least 1), read back, at
// most `count` of them, appended to `samples`.
Error Store::sample_pages(std::uint64_t count, std::vector<std::byte>& samples) {
  const std::uint64_t held =
      counters_.stored_pages.load() - counters_.same_pages.load() + counters_.bd_count.load();
  const std::uint64_t stride = std::max<std::uint64_t>(1, held / count);
  std::uint64_t seen = 0, taken = 0;
  for (std::uint64_t index = first_made(0); index < options_.pages && taken < count;
       index = first_made(index + 1)) {
    if (!holds_data(index) || seen++ % stride != 0) continue;
    samples.resize(samples.size() + options_.page_size);
    const Error e = read(index, std::span(samples).last(options_.page_size));
    if (e != Error::ok) return e;
    ++taken;
  }
  return Error::ok;
}

// ── read ─────────────────────────────────────────────────────────────────────────────────────

Error Store::read(std::uint64_t index, std::span<std::byte> out) {
  if (index >= options_.pages || out.size() != options_.page_size) return Error::invalid_argument;
  std::unique_lock lock(stripe(index));
  static constexpr Entry kNeverWritten{};
  const Entry* found = entries_.find(index);
  const Entry& e = found != nullptr ? *found : kNeverWritten;
  if (found != nullptr) touch(index, kRefOnRead);
  switch (e.kind) {
    case Kind::empty:
      std::memset(out.data(), 0, out.size());
      return Error::ok;
    case Kind::same_filled:
      fill_with_word(out, e.value);
      return Error::ok;
    case Kind::compressed:
    case Kind::huge:
      return read_from_pool(e, out);
    case Kind::written_back: {
      std::span<const std::byte> stored;
      const Error r = read_from_backing(e, out, &stored);
      if (r == Error::ok && options_.promote_on_read) promote(index, e, stored, lock);
      return r;
    }
  }
  return Error::invalid_argument;
}

// A written-back page just read (its stored bytes in this thread's kIo scratch, stripe lock held
// in `lock`) goes back into the pool, as a page read from swap comes back to memory: its stored
// bytes are copied (no recompression), the lock is dropped to make room, and the page is
// published only if it still holds the same backing slot (a write or discard meanwhile wins).
// A pool that cannot take it leaves the page where it was.
void Store::promote(std::uint64_t index, const Entry& e, std::span<const std::byte> stored,
                    std::unique_lock<std::mutex>& lock) {
  const std::span<std::byte> copy = scratch(kCompress, stored.size());
  if (copy.empty()) return;
  std::memcpy(copy.data(), stored.data(), stored.size());
  const Entry was = e;
  lock.unlock();
  auto h = allocate_in_pool(copy);
  if (!h) return;
  lock.lock();
  Entry& now = entry(index);
  if (now.kind != Kind::written_back || now.value != was.value) {
    (void)pool_->free(*h);
    return;
  }
  set_reverse(*h, index);
  publish(index, {*h, was.length, was.was_huge ? Kind::huge : Kind::compressed, false, was.codec,
                  was.flags});
  touch(index, kRefOnRead);
  counters_.promoted_pages.fetch_add(1, std::memory_order_relaxed);
}

// Decompresses straight from the mapped object: no copy out of the pool.
Error Store::read_from_pool(const Entry& e, std::span<std::byte> out) {
  auto mapping = pool_->map(e.value, MapMode::read_only);
  if (!mapping) return mapping.error();
  return decode({mapping->data(), e.length}, e.kind == Kind::huge, e.codec, out);
}

Error Store::read_from_backing(const Entry& e, std::span<std::byte> out,
                               std::span<const std::byte>* stored) {
  std::span<std::byte> data = scratch(kIo, options_.page_size);
  if (data.empty()) return Error::out_of_memory;
  std::size_t len = 0;
  const Error r = backing_->read_slot(e.value, data, &len);
  if (r != Error::ok || len != e.length) {
    counters_.bd_read_failures.fetch_add(1, std::memory_order_relaxed);
    return r != Error::ok ? r : Error::checksum_mismatch;
  }
  counters_.bd_reads.fetch_add(1, std::memory_order_relaxed);
  *stored = data.first(len);
  return decode(*stored, e.was_huge, e.codec, out);
}

Error Store::decode(std::span<const std::byte> stored, bool raw, std::uint8_t codec,
                    std::span<std::byte> out) const {
  if (!raw) return this->codec(codec).decompress(stored, out);
  if (stored.size() != out.size()) return Error::corrupt_data;
  std::memcpy(out.data(), stored.data(), out.size());
  return Error::ok;
}

// ── statistics ───────────────────────────────────────────────────────────────────────────────

StoreStats Store::stats() const {
  StoreStats s;
  s.compressor = compressor_->spec();
  s.page_size = options_.page_size;
  s.capacity_pages = options_.pages;
  s.pool = pool_->stats();
#define ZSPOOL_STORE_COPY(name, desc) s.name = counters_.name.load(std::memory_order_relaxed);
  ZSPOOL_STORE_OWN_MM_STAT(ZSPOOL_STORE_COPY)
  ZSPOOL_STORE_COUNTERS(ZSPOOL_STORE_COPY)
  ZSPOOL_STORE_POLICY_COUNTERS(ZSPOOL_STORE_COPY)
#undef ZSPOOL_STORE_COPY
  s.orig_data_size = s.stored_pages * options_.page_size;
  s.mem_used_total = s.pool.pages * options_.page_size;
  s.mem_limit = options_.mem_limit;
  s.mem_used_max = s.pool.pages_max * options_.page_size;
  s.pages_compacted = s.pool.pages_compacted;
  s.bd_write_ios = backing_ ? backing_->stats().write_calls : 0;  // the backing file counts them
  return s;
}

std::string mm_stat_line(const StoreStats& s) {
  std::string line;
#define ZSPOOL_MM_STAT_NUMBER(name, desc) \
  line += fmt::format("{}{}", line.empty() ? "" : " ", s.name);
  ZSPOOL_MM_STAT(ZSPOOL_MM_STAT_NUMBER)
#undef ZSPOOL_MM_STAT_NUMBER
  return line;
}

std::string format_store_stats_table(const StoreStats& s) {
  std::string out = fmt::format("compressor {}  page_size {}  capacity {} pages\n", s.compressor,
                                s.page_size, s.capacity_pages);
#define ZSPOOL_STORE_ROW(name, desc) out += fmt::format("{:<22} {:>14}  {}\n", #name, s.name, desc);
  ZSPOOL_MM_STAT(ZSPOOL_STORE_ROW)
  ZSPOOL_STORE_COUNTERS(ZSPOOL_STORE_ROW)
  ZSPOOL_STORE_POLICY_COUNTERS(ZSPOOL_STORE_ROW)
#undef ZSPOOL_STORE_ROW
  return out;
}

std::string bd_stat_line(const StoreStats& s) {
  return fmt::format("{} {} {}", s.bd_count, s.bd_reads, s.bd_writes);
}

std::string policy_stat_line(const StoreStats& s) {
  std::string line;
#define ZSPOOL_POLICY_WORD(name, desc) \
  line += fmt::format("{}{}={}", line.empty() ? "" : " ", #name, s.name);
  ZSPOOL_STORE_POLICY_COUNTERS(ZSPOOL_POLICY_WORD)
#undef ZSPOOL_POLICY_WORD
  return line;
}

MmStat mm_stat(const StoreStats& s) {
  return {
#define ZSPOOL_MM_STAT_VALUE(name, desc) s.name,
      ZSPOOL_MM_STAT(ZSPOOL_MM_STAT_VALUE)
#undef ZSPOOL_MM_STAT_VALUE
  };
}

double mm_stat_efficiency(const MmStat& s) {
  const double compr = static_cast<double>(s[1]), total = static_cast<double>(s[2]);
  return total > 0 ? compr / total : 0.0;
}

nlohmann::ordered_json mm_stat_json(const MmStat& mm_stat) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (std::size_t i = 0; i < mm_stat.size(); ++i) j[std::string(kMmStatNames[i])] = mm_stat[i];
  return j;
}

nlohmann::ordered_json store_counters_json(const StoreStats& s) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
#define ZSPOOL_STORE_KEY(name, desc) j[#name] = s.name;
  ZSPOOL_STORE_COUNTERS(ZSPOOL_STORE_KEY)
  ZSPOOL_STORE_POLICY_COUNTERS(ZSPOOL_STORE_KEY)
#undef ZSPOOL_STORE_KEY
  return j;
}

nlohmann::ordered_json trace_stats_json(const StoreStats& s) {
  nlohmann::ordered_json j = mm_stat_json(mm_stat(s));
  j["bd_count"] = s.bd_count;
  j["bd_reads"] = s.bd_reads;
  j["bd_writes"] = s.bd_writes;
#define ZSPOOL_POLICY_KEY(name, desc) j[#name] = s.name;
  ZSPOOL_STORE_POLICY_COUNTERS(ZSPOOL_POLICY_KEY)
#undef ZSPOOL_POLICY_KEY
  return j;
}

nlohmann::ordered_json store_stats_json(const StoreStats& s) {
  nlohmann::ordered_json j = {{"compressor", s.compressor},
                              {"page_size", s.page_size},
                              {"capacity_pages", s.capacity_pages}};
  j.update(mm_stat_json(mm_stat(s)));
  j.update(store_counters_json(s));
  j["pool"] = pool_stats_json(s.pool);
  return j;
}

std::string format_store_stats_json(const StoreStats& s) {
  return store_stats_json(s).dump();
}

}  // namespace zspool
