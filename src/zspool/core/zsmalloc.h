/* zsmalloc.h — the C API of zspool, with the Linux kernel's zsmalloc names.
 *
 * A C header (C99 and later, and C++): include it from C code and link zspool::zspool.
 *
 *   struct zs_pool* pool = zs_create_pool("zram0");
 *   unsigned long h = zs_malloc(pool, len, 0);
 *   if (zs_is_error(h)) return (int)(long)h;          // -EINVAL, -ENOSPC, -ENOMEM
 *   zs_obj_write(pool, h, src, 0, len);                // or zs_map_object / zs_unmap_object
 *   zs_obj_read(pool, h, dst, 0, len);
 *   zs_free(pool, h);
 *   zs_destroy_pool(pool);
 *
 * Errors. Nothing here aborts on bad input (a NULL pool, size 0, an oversized request, a handle
 * that was never issued or is already freed): each call returns an error value instead —
 * a negative errno from int functions, an IS_ERR_VALUE-style handle from zs_malloc, NULL from
 * zs_create_pool* and zs_map_object. The errno values come from zspool::error_errno:
 *   EINVAL  bad argument, unknown handle, double free, use after free, unmap without map.
 *           A freed handle stays invalid when a later zs_malloc reuses its slot: handles carry
 *           a generation (at least 2^30 reuses of one slot before a handle value recurs).
 *   ENOSPC  zs_malloc size above the pool's page size (as the kernel)
 *   ENOMEM  out of memory / handle or zspage capacity exhausted
 *   ERANGE  zs_obj_read / zs_obj_write past the object's capacity
 *   EBUSY   zs_free_checked of an object that is still mapped through zs_map_object
 *   ENOENT  zs_reclaim_page: no zspage to reclaim
 *   EAGAIN  zs_reclaim_page: every attempt had an eviction fail
 *   EOPNOTSUPP zs_reclaim_page on a pool created without zpool_ops.evict
 * (A checked build of zspool, -DZSPOOL_CHECKED=ON, instead stops with a message on handle
 * misuse: double free, use after free, unmap without map, access past the end, free of a
 * mapped object.)
 *
 * Threads. Every function may be called from any thread at any time, except that a pool must
 * not be used during or after zs_destroy_pool. zs_map_object / zs_unmap_object pairs may nest
 * and may come from different threads (see zs_map_object).
 */
#ifndef ZSPOOL_CORE_ZSMALLOC_H_
#define ZSPOOL_CORE_ZSMALLOC_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every function declared here is exported from libzspool.so (the library is built with
 * -fvisibility=hidden; see zspool/platform/export.h). */
#pragma GCC visibility push(default)

struct zs_pool;

/* The owner's writeback hooks (the kernel's struct zpool_ops). evict is called by
 * zs_reclaim_page with no pool lock held, once per live object of the zspage being reclaimed;
 * it normally reads the object (zs_obj_read or zs_map_object), stores it elsewhere, calls
 * zs_free(pool, handle) and returns 0. A nonzero return (a negative errno) is a failed
 * eviction: the object stays in the pool. ctx is passed back unchanged. */
struct zpool_ops {
  int (*evict)(struct zs_pool* pool, unsigned long handle, void* ctx);
  void* ctx;
};

/* Pool configuration for zs_create_pool_ex; zero fields take the defaults. Fields are only
 * ever appended, so a zero-initialised config of an older zspool keeps its meaning.
 *
 * Reservations: a pool reserves address space (committed only as it is used) for max_handles
 * handle slots (8 bytes each) and max_zspages zspage descriptors (40 bytes, 48 with writeback).
 * The defaults, 2^27 and 2^21, reserve about 1.1 GiB, which a process under a low `ulimit -v`
 * (RLIMIT_AS) does not have: zs_create_pool then returns NULL. A pool that holds at most N
 * objects at once needs max_handles = N + 16,401 (spare slots of its size classes) +
 * page_size * max_chain / 32 (handles deferred while one zspage is under zs_reclaim_page); more
 * objects than that make zs_malloc fail with -ENOMEM. */
struct zs_pool_config {
  const char* name;            /* copied; NULL: "" */
  size_t page_size;            /* power of two, 4096 .. 65536, a multiple of the OS page;
                                  0: 4096 */
  unsigned int max_chain;      /* pages per zspage at most, 1 .. 16; 0: the default (8) */
  const struct zpool_ops* ops; /* copied; NULL or ops->evict NULL: no writeback */
  unsigned long max_handles;   /* handle slots, 32 .. 2^32; 0: 2^27 */
  unsigned long max_zspages;   /* zspage descriptors, 2 .. 2^32 - 1; 0: 2^21, or max_handles
                                  when that is set and smaller */
};

/* Returns NULL on failure (bad configuration, out of memory). */
struct zs_pool* zs_create_pool(const char* name);
struct zs_pool* zs_create_pool_ex(const struct zs_pool_config* cfg);
/* Frees every object and mapping of the pool, then the pool. NULL: no-op. */
void zs_destroy_pool(struct zs_pool* pool);
/* The name given at creation ("" for a NULL pool). */
const char* zs_pool_name(const struct zs_pool* pool);

/* The largest error a handle-returning call encodes, as the kernel's MAX_ERRNO. */
#define ZS_MAX_ERRNO 4095UL

/* True if `value` (from zs_malloc) is a negative errno rather than a handle: the kernel's
 * IS_ERR_VALUE, value >= (unsigned long)-4095. Handles are never 0 and never in this range. */
static inline bool zs_is_error(unsigned long value) {
  return value >= (unsigned long)-ZS_MAX_ERRNO;
}

/* Allocates `size` bytes (1 .. page size). Returns a handle, or an error value (zs_is_error):
 * (unsigned long)-EINVAL for size 0 or a NULL pool, -ENOSPC when size exceeds the page size,
 * -ENOMEM when memory runs out. gfp is accepted for source compatibility and ignored. */
unsigned long zs_malloc(struct zs_pool* pool, size_t size, unsigned int gfp);
/* Frees an object; errors (double free, unknown handle, NULL pool) are ignored. A handle
 * that is still mapped through zs_map_object is dead from this call on (every call but
 * zs_unmap_object treats it as freed: -EINVAL, NULL) and its object is freed by the
 * zs_unmap_object that ends its last mapping; until then its mappings stay valid. (A checked
 * build stops instead.) */
void zs_free(struct zs_pool* pool, unsigned long handle);
/* zs_free reporting the outcome: 0, -EINVAL (NULL pool, never-issued or already-freed handle),
 * or -EBUSY (the object is still mapped through zs_map_object; it is not freed, and the handle
 * stays valid). */
int zs_free_checked(struct zs_pool* pool, unsigned long handle);

enum zs_mapmode { ZS_MM_RW, ZS_MM_RO, ZS_MM_WO };

/* Maps an object in place and returns its address, or NULL on error (NULL pool, bad handle,
 * unknown mode). The object stays at that address (compaction skips it) until the matching
 * zs_unmap_object. The whole capacity (at least the size allocated) is addressable, even when
 * the object straddles a page boundary: no bounce buffer, so every mode is zero-copy.
 * Maps of one handle may nest, from any threads, 63 at most at once (then NULL); each
 * zs_unmap_object ends one of them. */
void* zs_map_object(struct zs_pool* pool, unsigned long handle, enum zs_mapmode mm);
/* Ends one zs_map_object of this handle. Unmapping a handle with no live zs_map_object does
 * nothing (it never releases a mapping held through the C++ API). */
void zs_unmap_object(struct zs_pool* pool, unsigned long handle);

/* Copy access to bytes [offset, offset + len) of the object's capacity. 0, or -EINVAL (NULL
 * pool, NULL buffer with len > 0, bad handle), -ERANGE (past the capacity). zs_obj_write on an
 * object freed during its reclaim is -EINVAL; zs_obj_read of it still works (evict needs it). */
int zs_obj_read(struct zs_pool* pool, unsigned long handle, void* dst, size_t offset, size_t len);
int zs_obj_write(struct zs_pool* pool, unsigned long handle, const void* src, size_t offset,
                 size_t len);

/* Compacts every class; returns the number of pages freed (0 for a NULL pool). */
unsigned long zs_compact(struct zs_pool* pool);
/* Pages the pool holds now (0 for a NULL pool). */
unsigned long zs_get_total_pages(struct zs_pool* pool);
/* The smallest request stored as a huge (one object per page) object; 0 for a NULL pool. */
size_t zs_huge_class_size(struct zs_pool* pool);

/* Pool-wide statistics. pages_compacted is the kernel's only field; the others are zspool's
 * (see zspool/core/stats.h for their meaning; `zspool run` prints them in its class table). */
struct zs_pool_stats {
  unsigned long pages_compacted;
  unsigned long page_size;
  unsigned long max_chain;
  unsigned long huge_class_size;
  unsigned long pages;
  unsigned long pages_max;
  unsigned long cached_bytes; /* freed zspage memory kept for reuse */
  unsigned long objects;
  unsigned long handle_slots_in_use;
  unsigned long handle_slot_bytes;
  unsigned long descriptor_bytes;
  unsigned long metadata_bytes;
  unsigned long reclaim_attempts;
  unsigned long zspages_reclaimed;
  unsigned long evict_calls;
  unsigned long evict_failures;
  unsigned long deferred_handles_created;
  unsigned long deferred_handles_released;
  unsigned long alloc_failures;
  unsigned long mapped_objects; /* live zs_map_object mappings */
  unsigned long class_shards;   /* class shards in use (1 until threads contend) */
};

/* Fills *stats (all zero for a NULL pool); a NULL stats is ignored. */
#if defined(__cplusplus) && defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow" /* the kernel's name: the function hides the struct */
#endif
void zs_pool_stats(struct zs_pool* pool, struct zs_pool_stats* stats);
#if defined(__cplusplus) && defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

/* Writes back the LRU-coldest zspage through zpool_ops.evict (the seed's zs_reclaim_page), trying
 * up to `retries` zspages. 0 when a zspage was freed; -EAGAIN when every attempt had an eviction
 * fail; -ENOENT when there is nothing to reclaim; -EOPNOTSUPP without an evict op; -EINVAL for a
 * NULL pool or retries 0. */
int zs_reclaim_page(struct zs_pool* pool, unsigned int retries);

#pragma GCC visibility pop

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ZSPOOL_CORE_ZSMALLOC_H_ */
