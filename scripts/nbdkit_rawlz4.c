/* nbdkit-rawlz4: the fastest lz4 block device this machine can serve, as a yardstick.
 *
 * A measuring instrument for scripts/bench_nbd.sh, not a product: it answers "how fast could
 * *any* lz4-compressed RAM disk go through nbdkit here", so that zspool's lz4 figures can be
 * split into what lz4 itself costs (this plugin against nbdkit's memory allocator=sparse) and
 * what zspool adds (zspool against this plugin). It does only what that takes:
 *
 *   - each 4 KiB page has a fixed slot of kSlotBytes in one mapping, touched at load, so no
 *     write ever faults, allocates or frees memory (a real store must: it holds no more than it
 *     stores, and zspool does);
 *   - a write compresses a page straight into its slot (LZ4_compress_default), a read
 *     decompresses straight from it (LZ4_decompress_safe): nothing else, no locks;
 *   - a page that lz4 cannot shrink below kRawAt is copied raw; all-zero pages (write_zeroes,
 *     trim) are a length of 0 and read as zeros, and extents reports them as holes, as nbdkit's
 *     sparse allocator does, so nbdcopy skips the same pages with either server.
 *
 * Requests must be whole, 4 KiB-aligned pages (nbdcopy's are: 256 KiB); anything else is
 * refused with EINVAL. Two requests writing the same page at once are not serialised: a
 * client that does so gets one of the two or a torn page. Volatile; memory held = pages *
 * kSlotBytes whatever the data. Never use it to store anything.
 *
 * Build and use (bench_nbd.sh does both):
 *   cc -O2 -shared -fPIC scripts/nbdkit_rawlz4.c -llz4 -o /tmp/nbdkit-rawlz4-plugin.so
 *   nbdkit -U SOCK /tmp/nbdkit-rawlz4-plugin.so size=64M
 */
#define NBDKIT_API_VERSION 2
#include <errno.h>
#include <lz4.h>
#include <nbdkit-plugin.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

enum {
  kPage = 4096,
  kRawAt = kPage, /* a compressed length >= this is stored raw, length kPage */
  kSlotBytes = (LZ4_COMPRESSBOUND(kPage) + 63) / 64 * 64,
};

static int64_t size_bytes = -1;
static uint64_t pages;
static unsigned char *slots;   /* pages * kSlotBytes, touched at load */
static uint16_t *lengths;      /* per page: 0 = zero page, kPage = raw, else lz4 bytes */

static int rawlz4_config(const char *key, const char *value) {
  if (strcmp(key, "size") == 0) {
    size_bytes = nbdkit_parse_size(value);
    return size_bytes < 0 ? -1 : 0;
  }
  nbdkit_error("rawlz4: unknown parameter '%s'", key);
  return -1;
}

static void *map_touched(size_t bytes) {
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  memset(p, 0, bytes); /* commit every page now: writes never fault */
  return p;
}

static int rawlz4_config_complete(void) {
  if (size_bytes <= 0 || size_bytes % kPage != 0) {
    nbdkit_error("rawlz4: size= is required, a positive multiple of %d", kPage);
    return -1;
  }
  pages = (uint64_t)size_bytes / kPage;
  slots = map_touched(pages * kSlotBytes);
  lengths = map_touched(pages * sizeof *lengths);
  if (slots == NULL || lengths == NULL) {
    nbdkit_error("rawlz4: cannot map %llu pages", (unsigned long long)pages);
    return -1;
  }
  return 0;
}

static void *rawlz4_open(int readonly) {
  (void)readonly;
  return NBDKIT_HANDLE_NOT_NEEDED;
}

static int64_t rawlz4_get_size(void *h) {
  (void)h;
  return size_bytes;
}

static int rawlz4_can_multi_conn(void *h) { (void)h; return 1; }
static int rawlz4_can_zero(void *h) { (void)h; return 1; }
static int rawlz4_can_trim(void *h) { (void)h; return 1; }
static int rawlz4_can_extents(void *h) { (void)h; return 1; }

static int rawlz4_block_size(void *h, uint32_t *minimum, uint32_t *preferred, uint32_t *maximum) {
  (void)h;
  *minimum = kPage;
  *preferred = kPage;
  *maximum = 32u << 20;
  return 0;
}

/* The first page of a whole-page request, or -1 (EINVAL set) for anything else. */
static int64_t first_page(uint32_t count, uint64_t offset) {
  if (offset % kPage != 0 || count % kPage != 0) {
    nbdkit_set_error(EINVAL);
    nbdkit_error("rawlz4: only whole 4 KiB pages (offset %llu, count %u)",
                 (unsigned long long)offset, count);
    return -1;
  }
  return (int64_t)(offset / kPage);
}

static int rawlz4_pread(void *h, void *buf, uint32_t count, uint64_t offset, uint32_t flags) {
  (void)h, (void)flags;
  const int64_t first = first_page(count, offset);
  if (first < 0) return -1;
  char *out = buf;
  for (uint64_t p = (uint64_t)first; p < (uint64_t)first + count / kPage; ++p, out += kPage) {
    const char *slot = (const char *)slots + p * kSlotBytes;
    const int length = lengths[p];
    if (length == 0) {
      memset(out, 0, kPage);
    } else if (length == kPage) {
      memcpy(out, slot, kPage);
    } else if (LZ4_decompress_safe(slot, out, length, kPage) != kPage) {
      nbdkit_set_error(EIO);
      return -1;
    }
  }
  return 0;
}

static int rawlz4_pwrite(void *h, const void *buf, uint32_t count, uint64_t offset,
                         uint32_t flags) {
  (void)h, (void)flags;
  const int64_t first = first_page(count, offset);
  if (first < 0) return -1;
  const char *in = buf;
  for (uint64_t p = (uint64_t)first; p < (uint64_t)first + count / kPage; ++p, in += kPage) {
    char *slot = (char *)slots + p * kSlotBytes;
    const int length = LZ4_compress_default(in, slot, kPage, kRawAt - 1);
    if (length > 0) {
      lengths[p] = (uint16_t)length;
    } else {
      memcpy(slot, in, kPage);
      lengths[p] = kPage;
    }
  }
  return 0;
}

static int rawlz4_zero(void *h, uint32_t count, uint64_t offset, uint32_t flags) {
  (void)h, (void)flags;
  const int64_t first = first_page(count, offset);
  if (first < 0) return -1;
  memset(lengths + first, 0, count / kPage * sizeof *lengths);
  return 0;
}

static int rawlz4_trim(void *h, uint32_t count, uint64_t offset, uint32_t flags) {
  return rawlz4_zero(h, count, offset, flags);
}

static int rawlz4_extents(void *h, uint32_t count, uint64_t offset, uint32_t flags,
                          struct nbdkit_extents *extents) {
  (void)h, (void)flags;
  uint64_t p = offset / kPage;
  const uint64_t end = (offset + count + kPage - 1) / kPage;
  while (p < end) {
    const int zero = lengths[p] == 0;
    uint64_t q = p + 1;
    while (q < end && (lengths[q] == 0) == zero) ++q;
    const uint64_t from = p * kPage > offset ? p * kPage : offset;
    if (nbdkit_add_extent(extents, from, q * kPage - from,
                          zero ? NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO : 0) == -1)
      return -1;
    p = q;
  }
  return 0;
}

static struct nbdkit_plugin plugin = {
    .name = "rawlz4",
    .longname = "lz4 yardstick for zspool's bench_nbd.sh (not for data)",
    .config = rawlz4_config,
    .config_complete = rawlz4_config_complete,
    .config_help = "size=<SIZE>  (required) the export's size, a multiple of 4096",
    .open = rawlz4_open,
    .get_size = rawlz4_get_size,
    .block_size = rawlz4_block_size,
    .can_multi_conn = rawlz4_can_multi_conn,
    .can_zero = rawlz4_can_zero,
    .can_trim = rawlz4_can_trim,
    .can_extents = rawlz4_can_extents,
    .pread = rawlz4_pread,
    .pwrite = rawlz4_pwrite,
    .zero = rawlz4_zero,
    .trim = rawlz4_trim,
    .extents = rawlz4_extents,
};

NBDKIT_REGISTER_PLUGIN(plugin)
