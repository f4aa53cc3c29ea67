/* An installed-zspool consumer written in C: the zsmalloc.h API through find_package(zspool)
 * or pkg-config (compiled as C, linked with a C++ linker). Prints OK and exits 0. */
#include <stdio.h>
#include <string.h>
#include <zspool/core/zsmalloc.h>

static int fail(const char* what) {
  fprintf(stderr, "zspool C consumer: %s\n", what);
  return 1;
}

int main(void) {
  static const char kText[] = "pack me densely";
  char out[sizeof(kText)];
  struct zs_pool* pool = zs_create_pool("c-consumer");
  if (pool == NULL) return fail("zs_create_pool");
  const unsigned long h = zs_malloc(pool, sizeof(kText), 0);
  if (zs_is_error(h)) return fail("zs_malloc");
  char* p = zs_map_object(pool, h, ZS_MM_WO);
  if (p == NULL) return fail("zs_map_object");
  memcpy(p, kText, sizeof(kText));
  zs_unmap_object(pool, h);
  if (zs_obj_read(pool, h, out, 0, sizeof(out)) != 0) return fail("zs_obj_read");
  if (memcmp(out, kText, sizeof(kText)) != 0) return fail("bytes differ");
  if (zs_free_checked(pool, h) != 0) return fail("zs_free");
  if (zs_free_checked(pool, h) == 0) return fail("double free not reported");
  if (zs_get_total_pages(pool) != 0) return fail("pages left after free");
  zs_destroy_pool(pool);
  puts("OK");
  return 0;
}
