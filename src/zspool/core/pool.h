// Folder core/: the allocator (uses platform). Pool (this file), size classes (size_class.h),
// statistics declared once (stats.h), the kernel-named C API (zsmalloc.h); internal/: the
// pool's state, lock order and bit layouts (pool_state.h), graded asserts, test sync points.
//
// zspool::Pool — a user-space zsmalloc.
//
// A pool packs variable-size objects (1 .. page_size bytes, typically compressed pages) densely
// into "zspages": runs of 1..max_chain pages, each holding objects of one size class back to
// back. malloc returns an opaque 64-bit handle that stays valid while compaction moves the
// object. Objects are reached through map() (in place) or read()/write() (copies).
//
//   auto pool = zspool::Pool::create({}).value();
//   zspool::Handle h = pool->malloc(1234).value();
//   pool->write(h, bytes);                        // copy in
//   { auto m = pool->map(h, zspool::MapMode::read_only).value(); use(m.data(), m.size()); }
//   pool->free(h);
//
// With an evict handler (PoolOptions::evict) the pool also keeps an LRU of zspages and can
// write back cold zspages: reclaim_page() hands each live object of the coldest zspage to the
// handler, which copies it elsewhere and frees its handle (see reclaim.cc for the protocol).
//
// Thread safety: every public member function may be called from any thread at any time.
// Threads that allocate in the same size classes at the same time spread over up to 4 class
// shards by themselves (see ClassState in pool_state.h); PoolStats::class_shards says how many.
// A Mapping must be released (destroyed or reset) before its handle is freed: free() of a
// mapped object is Error::busy (a checked build stops).
//
// Handles carry a generation (see pool_state.h): a freed handle stays stale (stale_handle)
// when its slot is reissued to a newer object, until the slot has been reused 2^30 times or
// more (2^35 with the default max_handles).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "zspool/core/size_class.h"
#include "zspool/core/stats.h"
#include "zspool/platform/error.h"
#include "zspool/platform/export.h"
#include "zspool/platform/page_source.h"

namespace zspool {

// An opaque object handle. 0 is never a valid handle.
using Handle = std::uint64_t;

class Pool;

// The owner's eviction callback (the kernel's zpool_ops.evict). Called with no pool lock held;
// it normally reads the object through map()/read(), stores it elsewhere, then calls free(h),
// and returns Error::ok. Any other return value (or an exception) is a failed eviction: the
// object stays where it is.
using EvictHandler = std::function<Error(Pool& pool, Handle handle)>;

struct PoolOptions {
  std::uint32_t page_size = 4096;           // power of two, 4 KiB .. 64 KiB
  std::uint32_t max_chain = kDefaultChain;  // pages per zspage at most, 1 .. 16
  // Where zspage memory comes from; nullptr: a fresh OsPageSource of the pool's own, which keeps
  // freed zspages resident for reuse for `page_cache_decay` (at most `page_cache_bytes` of
  // them) before returning them to the OS; 0 bytes: every freed zspage goes back at once.
  // compact() and trim() return the cache now; stats().cached_bytes reports it.
  std::shared_ptr<PageSource> page_source;
  std::size_t page_cache_bytes = kDefaultPageCacheBytes;
  std::chrono::nanoseconds page_cache_decay = kDefaultPageCacheDecay;
  // Commit a zspage's pages only as objects reach them (see pool_state.h). Off: every page of a
  // zspage is touched and counted at creation, as the kernel does (for like-for-like figures).
  bool lazy_commit = true;
  // Writeback: when set, the pool keeps an LRU of zspages and reclaim_page() works.
  EvictHandler evict;
  // Virtual capacity reserved for handle slots (8 bytes each) and zspage descriptors (40 bytes,
  // 48 with writeback), committed on use. The defaults reserve about 1.1 GiB of address space,
  // which a process under `ulimit -v` may not have: size them with reserve_for().
  // max_handles: 32 .. 2^32; max_zspages: 2 .. 2^32 - 1.
  std::uint64_t max_handles = std::uint64_t{1} << 27;
  std::uint32_t max_zspages = std::uint32_t{1} << 21;

  // Sizes max_handles and max_zspages for a pool that never holds more than `objects` live
  // objects at once (an owner that allocates a replacement before freeing the old object
  // counts both): adds what the pool itself may hold beyond them (per class shard a batch of
  // issued, unused slots; the deferred handles of one zspage under reclaim, for one reclaim at
  // a time) and as many zspages as those handles can occupy (every zspage holds an object, but
  // for at most the few thousand spare handles' worth of empty zspages kept by mappings).
  // Uses page_size and max_chain: set them first.
  void reserve_for(std::uint64_t objects);
};

// The largest PoolOptions::max_handles: slot indices have at most 32 bits (pool_state.h).
inline constexpr std::uint64_t kMaxHandles = std::uint64_t{1} << 32;

enum class MapMode : std::uint8_t { read_only, write_only, read_write };

struct ZsPage;

// A mapped object: an RAII guard. While it lives the object stays at data() (compaction skips
// its zspage) and free() of its handle is Error::busy. Objects lie contiguously in virtual memory
// even when they straddle a page boundary, so every mode maps in place with no bounce copy; the
// mode states intent. Lifetime: a Mapping must end (be destroyed or reset) before its Pool is
// destroyed; it points into the pool's zspage descriptors, and ending it afterwards is a
// use-after-free (as using a kernel mapping after zs_destroy_pool is). Handles carry no pool
// identity either: a handle is meaningful only to the pool that issued it (another pool's
// handle is refused when its slot or generation does not match, but may name an object there).
class ZSPOOL_API Mapping {
 public:
  Mapping() = default;
  ~Mapping() { reset(); }
  Mapping(Mapping&& other) noexcept { *this = std::move(other); }
  Mapping& operator=(Mapping&& other) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  std::byte* data() const { return data_; }
  // The object's capacity: its size class minus the header (at least the size requested).
  std::size_t size() const { return size_; }
  std::span<std::byte> bytes() const { return {data_, size_}; }
  Handle handle() const { return handle_; }
  MapMode mode() const { return mode_; }
  explicit operator bool() const { return data_ != nullptr; }
  // Unmaps now (idempotent).
  void reset();

 private:
  friend class Pool;
  Mapping(Pool* pool, ZsPage* zspage, Handle h, std::byte* data, std::size_t size, MapMode mode,
          bool counted)
      : pool_(pool),
        zspage_(zspage),
        handle_(h),
        data_(data),
        size_(size),
        mode_(mode),
        counted_(counted) {}

  Pool* pool_ = nullptr;
  ZsPage* zspage_ = nullptr;
  Handle handle_ = 0;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  MapMode mode_ = MapMode::read_only;
  bool counted_ = false;  // counted in the handle's slot (not for a deferred object)
};

class PoolState;  // the internals: classes, zspages, handle table (pool_state.h)

class ZSPOOL_API Pool {
 public:
  static Result<std::unique_ptr<Pool>> create(PoolOptions options = {});
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Allocates an object of `size` bytes (1 .. page_size). Errors: invalid_argument (0),
  // too_large (> page_size), out_of_memory (page source or handle/zspage capacity exhausted).
  Result<Handle> malloc(std::size_t size);
  // malloc(data.size()) then write(h, data), as one call: the bytes are copied into the new
  // object under the class lock malloc took, so the handle is not resolved and locked a second
  // time (the store's write path: one per stored page). Errors: those of malloc, and
  // limit_reached when the object would make the pool count more than `max_new_pages` pages
  // beyond what it counts now (a new zspage, or pages its class's frontier has not reached):
  // nothing is allocated or committed then. A memory limit passes what is left of it, so that
  // refused writes commit nothing (the store's mem_limit).
  static constexpr std::size_t kAnyNewPages = ~std::size_t{0};
  Result<Handle> malloc_copy(std::span<const std::byte> data,
                             std::size_t max_new_pages = kAnyNewPages);
  // Frees an object. Errors: invalid_handle (never issued), stale_handle (already freed, even
  // if its slot now holds a newer object), busy (a Mapping of it is live: nothing is freed).
  Error free(Handle h);

  // Maps the object in place until the returned guard is released (there is no unmap by
  // handle: only the guard ends a mapping). Errors: invalid_argument (not a MapMode), those of
  // free() for the handle, busy (the handle is mapped 63 times already).
  Result<Mapping> map(Handle h, MapMode mode);

  // Copy-based access (the kernel's zs_obj_read / zs_obj_write): [offset, offset + n) of the
  // object's capacity. Error out_of_bounds if it reaches past the capacity.
  Error read(Handle h, std::span<std::byte> out, std::size_t offset = 0);
  Error write(Handle h, std::span<const std::byte> in, std::size_t offset = 0);
  // The object's capacity in bytes (what map() exposes). It may grow when compaction spills the
  // object into a larger class (lazy commit only); it never shrinks below the size requested.
  Result<std::size_t> capacity(Handle h);

  // Moves objects from the emptiest zspages of each class into the fullest, frees zspages that
  // empty; under lazy commit, also condenses each class's last partly-used zspage, giving the
  // pages past its last live object back to the OS, and spills the objects on a class's last
  // partly used page into room in the next few larger classes when that frees the page
  // (compact.cc). Returns the number of pages freed. Mapped zspages are skipped.
  std::size_t compact();

  // Returns freed zspages the page source still caches to the OS now.
  void trim();

  // Writeback (needs PoolOptions::evict). reclaim_page evicts the LRU-coldest zspage: ok when a
  // zspage was freed, evict_failed when `retries` zspages each had an eviction fail,
  // not_found when no zspage is available, unsupported without an evict handler.
  Error reclaim_page(unsigned retries = 8);
  // Calls reclaim_page until n_pages pages were freed or it fails; returns pages freed.
  std::size_t shrink(std::size_t n_pages, unsigned retries = 8);

  // Pages (of page_size) the pool holds now, and the bytes they are.
  std::size_t total_pages() const;
  std::size_t total_bytes() const { return total_pages() * page_size(); }
  std::uint32_t page_size() const;
  std::uint32_t huge_class_size() const;
  const SizeClassTable& classes() const;
  PoolStats stats() const;
  PageSource& page_source() const;

  // A dense index for an owner's own per-object tables: below PoolOptions::max_handles, and no
  // two live handles share one (a freed handle's index goes to a later handle).
  std::uint64_t handle_index(Handle h) const;

 private:
  friend class Mapping;
  explicit Pool(std::unique_ptr<PoolState> state);
  void unpin(ZsPage* zspage, Handle h, bool counted);

  std::unique_ptr<PoolState> state_;
};

}  // namespace zspool
