// Writeback, as the seed (Linux 6.2's zs_reclaim_page with deferred handles in object headers)
// designs it, in named steps:
//
//   1. take     Isolate the LRU-coldest zspage: off the LRU, off its fullness list, and mark it
//               under_reclaim, so no allocation or compaction touches it.
//   2. evict    For each object whose header says OBJ_ALLOCATED, read its handle (class lock
//               held), then call the owner's evict(handle) with NO lock held. The handler reads
//               the object through the handle and normally frees it.
//               Any free of an object of this zspage meanwhile — from the handler or any other
//               thread — leaves the handle slot alone (it still locates the object) and writes
//               handle | OBJ_DEFERRED into the object's header. That is the seed's fix: the
//               pre-fix design chained deferred handles through the slots themselves, so a free
//               racing between step 2's read of a handle and its evict() call overwrote the
//               location evict() was about to use.
//   3a. free    Every object evicted (inuse == 0): release the deferred handles, free the zspage.
//   3b. restore An eviction failed (or left objects allocated): rebuild the freelist from the
//               headers, releasing deferred handles (restore_freelist); put the zspage back on
//               its fullness list and at the LRU head; try the next zspage, up to `retries`.
#include <exception>

#include "zspool/core/internal/pool_state.h"
#include "zspool/core/internal/sync_point.h"
#include "zspool/core/pool.h"

namespace zspool {

namespace {

struct Isolated {
  ZsPage* z = nullptr;
  ClassState* c = nullptr;
};

// Step 1.
Isolated take_coldest(PoolState& p) {
  for (;;) {
    std::uint32_t cls = 0;
    ZsPage* z = p.lru_peek_tail(&cls);
    if (z == nullptr) return {};
    ClassState& c = *p.state_at(cls);  // a zspage's state exists while the pool lives
    std::lock_guard lock(c.lock);
    if (!p.lru_isolate(z, cls)) continue;  // freed, reused or taken meanwhile: look again
    z->under_reclaim = true;
    p.remove_fullness(c, z);
    p.reclaim_attempts.fetch_add(1, std::memory_order_relaxed);
    return {z, &c};
  }
}

Error call_evict(PoolState& p, Pool& pool, Handle h) {
  p.evict_calls.fetch_add(1, std::memory_order_relaxed);
  Error e;
  try {
    e = p.options.evict(pool, h);
  } catch (...) {
    e = Error::evict_failed;  // a throwing handler is a failed eviction
  }
  if (e != Error::ok) p.evict_failures.fetch_add(1, std::memory_order_relaxed);
  return e;
}

// Step 2: true when every allocated object was evicted successfully.
bool evict_objects(PoolState& p, Pool& pool, const Isolated& r) {
  const std::uint32_t handed_out = r.z->bump;  // stable: no allocation while under reclaim
  for (std::uint32_t i = 0; i < handed_out; ++i) {
    std::uint64_t header;
    {
      std::lock_guard lock(r.c->lock);
      header = p.read_header(*r.c, r.z, i);
    }
    if (!header_allocated(header)) continue;
    const Handle h = header_payload(header);
    ZSPOOL_SYNC_POINT("reclaim.handle_read", h);
    if (call_evict(p, pool, h) != Error::ok) return false;
  }
  return true;
}

// Steps 3a / 3b; returns pages freed (0 after a restore).
std::size_t finish(PoolState& p, const Isolated& r) {
  ClassState& c = *r.c;
  ZsPage* z = r.z;
  std::lock_guard lock(c.lock);
  if (z->inuse == 0 && z->pins.load(std::memory_order_acquire) == 0) {
    p.release_deferred_handles(c, z);
    const std::size_t freed = z->committed;
    p.destroy_zspage(c, z);
    p.zspages_reclaimed.fetch_add(1, std::memory_order_relaxed);
    return freed;
  }
#ifdef ZSPOOL_PREFIX_RACE
  p.release_deferred_handles(c, z);
#endif
  p.restore_freelist(c, z);
  z->under_reclaim = false;
  p.insert_fullness(c, z);
  p.lru_push_head(z);
  return 0;
}

Error reclaim(PoolState& p, Pool& pool, unsigned retries, std::size_t* pages_freed) {
  *pages_freed = 0;
  if (!p.writeback()) return Error::unsupported;
  if (retries == 0) return Error::invalid_argument;
  for (unsigned attempt = 0; attempt < retries; ++attempt) {
    const Isolated r = take_coldest(p);
    if (r.z == nullptr) return Error::not_found;
    evict_objects(p, pool, r);
    *pages_freed = finish(p, r);
    if (*pages_freed != 0) return Error::ok;
  }
  return Error::evict_failed;
}

}  // namespace

Error Pool::reclaim_page(unsigned retries) {
  std::size_t pages = 0;
  return reclaim(*state_, *this, retries, &pages);
}

std::size_t Pool::shrink(std::size_t n_pages, unsigned retries) {
  std::size_t freed = 0;
  while (freed < n_pages) {
    std::size_t pages = 0;
    if (reclaim(*state_, *this, retries, &pages) != Error::ok) break;
    freed += pages;
  }
  return freed;
}

}  // namespace zspool
