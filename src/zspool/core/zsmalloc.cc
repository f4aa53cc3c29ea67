// The C API (zsmalloc.h): the kernel's zs_* names over zspool::Pool.
//
// ─── zs_map_object / zs_unmap_object ──────────────────────────────────────────────────────
//
// Pool::map returns a Mapping guard that pins the object's zspage (compaction skips it) until
// the guard dies. The C API has no guard, so each zs_map_object moves its Mapping into a table
// of live C mappings kept in the zs_pool wrapper, and zs_unmap_object takes one Mapping of that
// handle out of the table and destroys it, which unpins.
//
//   zs_pool ─▶ CMappings: kShards × { mutex, unordered_multimap<Handle, {Mapping,
//              free_pending}>, spare nodes }          shard = handle % kShards
//
// Why a per-pool table rather than an unmap by handle or a per-thread table:
//   * An unmap by handle (Pool had one) cannot tell whose pin it drops: an unbalanced
//     zs_unmap_object would steal a pin held by a C++ Mapping or by another object of the
//     zspage, letting compaction move a mapped object. Through the table, a C unmap can only
//     end a C map.
//   * A per-thread table would break callers that map on one thread and unmap on another
//     (legal here: nothing disables preemption as the kernel's per-CPU mapping area does).
//   * Several live maps of one handle (nested, or from several threads) are several entries.
//     They are interchangeable: a pinned zspage never moves, so every Mapping of a handle pins
//     the same zspage, and zs_unmap_object may release any one of them.
//   * Sharded locks keep unrelated handles from contending; extracted nodes are kept as spares
//     and reused, so a map/unmap pair allocates nothing once a shard is warm.
//   * Pool::free refuses (busy) to free a mapped handle, so zs_free_checked returns -EBUSY for a
//     handle with live C maps, and a table entry never outlives its object. zs_free, which can
//     return nothing, marks the handle's entries free_pending instead: from then on the handle
//     is dead to every call (stale: -EINVAL, NULL) but zs_unmap_object, and the unmap that
//     removes its last entry frees the object. No allocation: the mark lives in the entries.
//     zs_map_object calls Pool::map with its shard locked, and the last unmap and zs_free's
//     fallback call Pool::free with it locked: under that lock "h has no C mapping" stays
//     true until the free, so a racing map can neither revive a dead handle nor make the
//     free fail (busy) and leak the object. (Using a handle after zs_free returned is the
//     caller's use-after-free, as in the kernel; zspool answers it -EINVAL / NULL.) A reissued
//     handle never meets a stale entry: handles carry a generation, so its value differs from the
//     freed one's.
//   * Lock order: a CMappings shard mutex, then the Pool's own locks (Pool::map and Pool::free
//     run under it). The pool calls out (zpool_ops.evict) with none of its locks held, so an
//     evict callback may zs_map_object / zs_free.
//   * zs_destroy_pool releases the table before the Pool: a Mapping's destructor touches the
//     pool's zspage descriptors.
#include "zspool/core/zsmalloc.h"

#include <array>
#include <atomic>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "zspool/core/internal/pool_state.h"
#include "zspool/core/pool.h"
#include "zspool/platform/error.h"

static_assert(sizeof(unsigned long) == sizeof(zspool::Handle),
              "the C API passes handles as unsigned long: LP64 targets only");

namespace zspool {
namespace {

// Live zs_map_object mappings of one pool (see the comment at the top of this file).
class CMappings {
 public:
  CMappings() {
    for (Shard& s : shards_) s.spare.reserve(kMaxSpare);
  }

  // Maps h and keeps the mapping's pin in the table; null when h cannot be mapped, was
  // zs_free'd while mapped (a dead handle), or memory runs out. The shard lock is held across
  // Pool::map so that a mapping and its table entry appear together: remove() and
  // free_when_unmapped() decide under the same lock whether a handle has C mappings left, and a
  // Pool::map between their look and their Pool::free would revive a dead handle or make that
  // free fail (busy) with nobody left to retry it.
  void* map(Handle h, MapMode mode, Pool& pool) {
    Shard& s = shard(h);
    std::lock_guard lock(s.mutex);
    if (free_pending_locked(s, h)) {
      (void)report_misuse(Error::stale_handle, h, "zs_map_object");
      return nullptr;
    }
    auto m = pool.map(h, mode);
    if (!m) return nullptr;
    void* data = m->data();
    try {
      if (s.spare.empty()) {
        s.live.emplace(h, CMapping{std::move(*m)});
      } else {
        auto node = std::move(s.spare.back());
        s.spare.pop_back();
        node.key() = h;
        node.mapped() = CMapping{std::move(*m)};
        s.live.insert(std::move(node));
      }
    } catch (const std::bad_alloc&) {
      return nullptr;  // *m unpins as it goes
    }
    count_.fetch_add(1, std::memory_order_relaxed);
    return data;
  }

  // Releases one live mapping of h; false when there is none. Frees h's object when that was
  // the last mapping of a handle zs_free'd while mapped.
  bool remove(Handle h, Pool& pool) {
    Shard& s = shard(h);
    std::lock_guard lock(s.mutex);
    auto it = s.live.find(h);
    if (it == s.live.end()) return false;
    auto node = s.live.extract(it);
    const bool free_pending = node.mapped().free_pending;
    node.mapped().mapping.reset();  // unpins now: the object may be freed below
    // Kept for reuse: the spare vector's capacity is reserved.
    if (s.spare.size() < kMaxSpare) s.spare.push_back(std::move(node));
    count_.fetch_sub(1, std::memory_order_relaxed);
    if (free_pending && s.live.count(h) == 0) {
      // Cannot be busy: every pin of h was a C mapping (the C API hands out no Mapping), and
      // none can start while this shard is locked.
      (void)pool.free(h);
      pending_.fetch_sub(1, std::memory_order_relaxed);
    }
    return true;
  }

  // zs_free of a handle that Pool::free found mapped: marks its mappings so that the last
  // unmap frees it. False when h is free pending already (a double free).
  bool free_when_unmapped(Handle h, Pool& pool) {
    Shard& s = shard(h);
    std::lock_guard lock(s.mutex);
    auto [first, last] = s.live.equal_range(h);
    if (first == last) {  // its last C mapping went meanwhile; no new one while locked
      (void)pool.free(h);
      return true;
    }
    if (first->second.free_pending) return false;
    for (auto it = first; it != last; ++it) it->second.free_pending = true;
    pending_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  // True when h was zs_free'd while mapped and is waiting for its last unmap: a dead handle.
  bool free_pending(Handle h) {
    if (pending_.load(std::memory_order_relaxed) == 0) return false;  // the common case
    Shard& s = shard(h);
    std::lock_guard lock(s.mutex);
    return free_pending_locked(s, h);
  }

  std::uint64_t live() const { return count_.load(std::memory_order_relaxed); }

  // Releases every mapping (before the pool goes away).
  void clear() {
    for (Shard& s : shards_) {
      std::lock_guard lock(s.mutex);
      s.live.clear();
      s.spare.clear();
    }
    count_.store(0, std::memory_order_relaxed);
    pending_.store(0, std::memory_order_relaxed);
  }

 private:
  static constexpr std::size_t kShards = 64;
  static constexpr std::size_t kMaxSpare = 32;
  struct CMapping {
    Mapping mapping;
    bool free_pending = false;  // zs_free'd while mapped: every entry of the handle says so
  };
  using Table = std::unordered_multimap<Handle, CMapping>;

  struct alignas(64) Shard {
    std::mutex mutex;
    Table live;
    std::vector<Table::node_type> spare;
  };

  Shard& shard(Handle h) { return shards_[h % kShards]; }
  static bool free_pending_locked(Shard& s, Handle h) {
    auto it = s.live.find(h);
    return it != s.live.end() && it->second.free_pending;
  }

  std::array<Shard, kShards> shards_;
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> pending_{0};  // handles free pending
};

int negative_errno(Error e) {
  return -error_errno(e);
}

unsigned long error_value(Error e) {
  return static_cast<unsigned long>(static_cast<long>(negative_errno(e)));
}

Result<MapMode> map_mode(zs_mapmode mm) {
  switch (mm) {
    case ZS_MM_RW:
      return MapMode::read_write;
    case ZS_MM_RO:
      return MapMode::read_only;
    case ZS_MM_WO:
      return MapMode::write_only;
  }
  return Error::invalid_argument;
}

}  // namespace
}  // namespace zspool

// Members are destroyed in reverse order: the mappings before the Pool they pin.
struct zs_pool {
  std::string name;
  zpool_ops ops{};
  std::unique_ptr<zspool::Pool> pool;
  zspool::CMappings mappings;
};

extern "C" {

struct zs_pool* zs_create_pool(const char* name) {
  const zs_pool_config cfg{.name = name};
  return zs_create_pool_ex(&cfg);
}

struct zs_pool* zs_create_pool_ex(const struct zs_pool_config* cfg) {
  using zspool::Error;
  if (cfg == nullptr) return nullptr;
  if (cfg->page_size > std::numeric_limits<std::uint32_t>::max()) return nullptr;
  try {
    auto zp = std::make_unique<zs_pool>();
    zp->name = cfg->name != nullptr ? cfg->name : "";
    zspool::PoolOptions options;
    if (cfg->page_size != 0) options.page_size = static_cast<std::uint32_t>(cfg->page_size);
    if (cfg->max_chain != 0) options.max_chain = cfg->max_chain;
    if (cfg->max_handles != 0) options.max_handles = cfg->max_handles;
    if (cfg->max_zspages > std::numeric_limits<std::uint32_t>::max()) return nullptr;
    if (cfg->max_zspages != 0)
      options.max_zspages = static_cast<std::uint32_t>(cfg->max_zspages);
    else if (cfg->max_handles != 0 && cfg->max_handles < options.max_zspages)
      options.max_zspages = static_cast<std::uint32_t>(cfg->max_handles);
    if (cfg->ops != nullptr && cfg->ops->evict != nullptr) {
      zp->ops = *cfg->ops;
      zs_pool* self = zp.get();
      options.evict = [self](zspool::Pool&, zspool::Handle h) {
        return self->ops.evict(self, h, self->ops.ctx) == 0 ? Error::ok : Error::evict_failed;
      };
    }
    auto pool = zspool::Pool::create(std::move(options));
    if (!pool) return nullptr;
    zp->pool = std::move(*pool);
    return zp.release();
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}

void zs_destroy_pool(struct zs_pool* pool) {
  if (pool == nullptr) return;
  pool->mappings.clear();
  pool->pool.reset();
  delete pool;
}

const char* zs_pool_name(const struct zs_pool* pool) {
  return pool != nullptr ? pool->name.c_str() : "";
}

unsigned long zs_malloc(struct zs_pool* pool, size_t size, unsigned int /*gfp*/) {
  using zspool::Error;
  if (pool == nullptr) return zspool::error_value(Error::invalid_argument);
  auto h = pool->pool->malloc(size);
  if (!h) return zspool::error_value(h.error());
  return static_cast<unsigned long>(*h);  // slot indices stay far below the error range
}

int zs_free_checked(struct zs_pool* pool, unsigned long handle) {
  using zspool::Error;
  if (pool == nullptr) return zspool::negative_errno(Error::invalid_argument);
  if (pool->mappings.free_pending(handle))
    return zspool::negative_errno(zspool::report_misuse(Error::stale_handle, handle, "zs_free"));
  return zspool::negative_errno(pool->pool->free(handle));
}

void zs_free(struct zs_pool* pool, unsigned long handle) {
  using zspool::Error;
  if (pool == nullptr) return;
  if (pool->mappings.free_pending(handle)) {
    (void)zspool::report_misuse(Error::stale_handle, handle, "zs_free");
    return;
  }
  if (pool->pool->free(handle) == Error::busy &&
      !pool->mappings.free_when_unmapped(handle, *pool->pool))
    (void)zspool::report_misuse(Error::stale_handle, handle, "zs_free");
}

void* zs_map_object(struct zs_pool* pool, unsigned long handle, enum zs_mapmode mm) {
  if (pool == nullptr) return nullptr;
  auto mode = zspool::map_mode(mm);
  if (!mode) return nullptr;
  return pool->mappings.map(handle, *mode, *pool->pool);
}

void zs_unmap_object(struct zs_pool* pool, unsigned long handle) {
  if (pool == nullptr) return;
  if (!pool->mappings.remove(handle, *pool->pool))
    (void)zspool::report_misuse(zspool::Error::not_mapped, handle, "zs_unmap_object");
}

int zs_obj_read(struct zs_pool* pool, unsigned long handle, void* dst, size_t offset, size_t len) {
  using zspool::Error;
  if (pool == nullptr || (dst == nullptr && len != 0))
    return zspool::negative_errno(Error::invalid_argument);
  if (pool->mappings.free_pending(handle))
    return zspool::negative_errno(zspool::report_misuse(Error::stale_handle, handle, "read"));
  std::byte empty;  // memcpy wants a valid pointer even for 0 bytes
  const std::span out(len != 0 ? static_cast<std::byte*>(dst) : &empty, len);
  return zspool::negative_errno(pool->pool->read(handle, out, offset));
}

int zs_obj_write(struct zs_pool* pool, unsigned long handle, const void* src, size_t offset,
                 size_t len) {
  using zspool::Error;
  if (pool == nullptr || (src == nullptr && len != 0))
    return zspool::negative_errno(Error::invalid_argument);
  if (pool->mappings.free_pending(handle))
    return zspool::negative_errno(zspool::report_misuse(Error::stale_handle, handle, "write"));
  const std::byte empty{};
  const std::span in(len != 0 ? static_cast<const std::byte*>(src) : &empty, len);
  return zspool::negative_errno(pool->pool->write(handle, in, offset));
}

unsigned long zs_compact(struct zs_pool* pool) {
  return pool != nullptr ? pool->pool->compact() : 0;
}

unsigned long zs_get_total_pages(struct zs_pool* pool) {
  return pool != nullptr ? pool->pool->total_pages() : 0;
}

size_t zs_huge_class_size(struct zs_pool* pool) {
  return pool != nullptr ? pool->pool->huge_class_size() : 0;
}

void zs_pool_stats(struct zs_pool* pool, struct zs_pool_stats* stats) {
  if (stats == nullptr) return;
  std::memset(stats, 0, sizeof(*stats));
  if (pool == nullptr) return;
  zspool::PoolStats s;
  try {
    s = pool->pool->stats();
  } catch (const std::bad_alloc&) {
    // The per-class table did not fit; the pool-wide figures below need none of it.
    s.page_size = pool->pool->page_size();
    s.huge_class_size = pool->pool->huge_class_size();
    s.pages = pool->pool->total_pages();
  }
  stats->page_size = s.page_size;
  stats->max_chain = s.max_chain;
  stats->huge_class_size = s.huge_class_size;
  // Every pool-wide statistic of the X-macro that struct zs_pool_stats has a field for (a C
  // struct is an ABI: a statistic added to stats.h appears here once the field is added).
#define ZSPOOL_COPY_STAT(name, desc) \
  if constexpr (requires { stats->name; }) stats->name = s.name;
  ZSPOOL_POOL_STATS(ZSPOOL_COPY_STAT)
#undef ZSPOOL_COPY_STAT
  stats->mapped_objects = pool->mappings.live();
}

int zs_reclaim_page(struct zs_pool* pool, unsigned int retries) {
  if (pool == nullptr) return zspool::negative_errno(zspool::Error::invalid_argument);
  return zspool::negative_errno(pool->pool->reclaim_page(retries));
}

}  // extern "C"
