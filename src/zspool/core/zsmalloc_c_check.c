/* zsmalloc_c_check: the C API compiled as C, with writeback through zpool_ops.
 * Exits 0 when every check passes; prints the first failure and exits 1 otherwise. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zspool/core/zsmalloc.h"

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

enum { kObjects = 512, kSize = 700 };

struct backend {
  unsigned long handles[kObjects];
  unsigned char saved[kObjects];
  int evicted;
};

static unsigned char fill_byte(int i) {
  return (unsigned char)(i * 37 + 11);
}

static int index_of(const struct backend* b, unsigned long handle) {
  for (int i = 0; i < kObjects; ++i)
    if (b->handles[i] == handle) return i;
  return -1;
}

static int evict(struct zs_pool* pool, unsigned long handle, void* ctx) {
  struct backend* b = ctx;
  const int i = index_of(b, handle);
  if (i < 0) return -ENOENT;
  const unsigned char* src = zs_map_object(pool, handle, ZS_MM_RO);
  if (src == NULL) return -EIO;
  b->saved[i] = src[kSize - 1];
  zs_unmap_object(pool, handle);
  if (zs_free_checked(pool, handle) != 0) return -EIO;
  b->handles[i] = 0;
  ++b->evicted;
  return 0;
}

int main(void) {
  static struct backend b;
  const struct zpool_ops ops = {evict, &b};
  struct zs_pool_config cfg;
  memset(&cfg, 0, sizeof(cfg));
  cfg.name = "c-check";
  cfg.ops = &ops;
  struct zs_pool* pool = zs_create_pool_ex(&cfg);
  CHECK(pool != NULL);
  CHECK(strcmp(zs_pool_name(pool), "c-check") == 0);
  CHECK(zs_huge_class_size(pool) == 3625);

  /* errors */
  CHECK(zs_malloc(pool, 0, 0) == (unsigned long)-EINVAL);
  CHECK(zs_malloc(pool, 4097, 0) == (unsigned long)-ENOSPC);
  CHECK(zs_is_error(zs_malloc(NULL, 1, 0)));
  CHECK(!zs_is_error(1));

  /* objects, written through a map and through the copy API */
  unsigned char buf[kSize];
  for (int i = 0; i < kObjects; ++i) {
    const unsigned long h = zs_malloc(pool, kSize, 0);
    CHECK(!zs_is_error(h));
    b.handles[i] = h;
    if (i % 2 == 0) {
      unsigned char* dst = zs_map_object(pool, h, ZS_MM_WO);
      CHECK(dst != NULL);
      memset(dst, fill_byte(i), kSize);
      zs_unmap_object(pool, h);
    } else {
      memset(buf, fill_byte(i), kSize);
      CHECK(zs_obj_write(pool, h, buf, 0, kSize) == 0);
    }
  }
  for (int i = 0; i < kObjects; ++i) {
    CHECK(zs_obj_read(pool, b.handles[i], buf, 0, kSize) == 0);
    CHECK(buf[0] == fill_byte(i) && buf[kSize - 1] == fill_byte(i));
  }
#ifndef ZSPOOL_CHECKED /* a checked build stops on an out-of-bounds access instead */
  CHECK(zs_obj_read(pool, b.handles[0], buf, 4096, 1) == -ERANGE);
#endif

  /* free half, compact, then write back a zspage */
  for (int i = 0; i < kObjects; i += 2) {
    CHECK(zs_free_checked(pool, b.handles[i]) == 0);
    b.handles[i] = 0;
  }
  const unsigned long before = zs_get_total_pages(pool);
  const unsigned long freed = zs_compact(pool);
  CHECK(freed > 0 && zs_get_total_pages(pool) == before - freed);

  CHECK(zs_reclaim_page(pool, 8) == 0);
  CHECK(b.evicted > 0);
  for (int i = 0; i < kObjects; ++i) {
    if (i % 2 == 0) continue;
    if (b.handles[i] == 0) {
      CHECK(b.saved[i] == fill_byte(i));
    } else {
      CHECK(zs_obj_read(pool, b.handles[i], buf, kSize - 1, 1) == 0 && buf[0] == fill_byte(i));
    }
  }

  struct zs_pool_stats stats;
  zs_pool_stats(pool, &stats);
  CHECK(stats.pages_compacted == freed);
  CHECK(stats.zspages_reclaimed == 1);
  CHECK(stats.evict_calls == (unsigned long)b.evicted);
  CHECK(stats.objects == (unsigned long)(kObjects / 2 - b.evicted));
  CHECK(stats.pages == zs_get_total_pages(pool));
  CHECK(stats.mapped_objects == 0);

  for (int i = 0; i < kObjects; ++i)
    if (b.handles[i] != 0) zs_free(pool, b.handles[i]);
  CHECK(zs_get_total_pages(pool) == 0);
  CHECK(zs_reclaim_page(pool, 8) == -ENOENT);
  zs_destroy_pool(pool);
  puts("zsmalloc_c_check: OK");
  return 0;
}
