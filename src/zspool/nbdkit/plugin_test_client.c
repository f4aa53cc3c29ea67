/* plugin_test_client: the libnbd client plugin_test.sh drives the zspool nbdkit plugin with, for
 * what the stock clients (nbdcopy, qemu-io, qemu-img, nbdinfo) cannot check.
 *
 *   concurrent SOCK CONNS ROUNDS   CONNS connections, one thread each, write unaligned ranges
 *                                  that share pages, at once; the final bytes must equal a model
 *   overlap SOCK CONNS WRITES      CONNS connections write overlapping unaligned ranges of their
 *                                  own byte at once; each byte must be one of its writers'
 *   fill SOCK                      writes incompressible pages until the server refuses one;
 *                                  the refusal must be ENOSPC and every page written before it
 *                                  (and the refused page's old zeros) must read back
 *   write-pages SOCK PAGES SEED    writes PAGES pages of compressible data made from SEED
 *   check-pages SOCK PAGES SEED    reads them back: each page reads correctly or fails with
 *                                  EIO (never wrong bytes); prints how many failed; exit 0 iff
 *                                  none read wrong bytes and at least one failed with EIO
 *   kill-mid SOCK                  queues 64 writes of 1 MiB and kills itself (SIGKILL) with
 *                                  them in flight: a client dying mid-transfer
 *
 * Exit status 0 on success, 1 on a failed check (with one line on stderr saying what). */
#include <errno.h>
#include <libnbd.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 4096

static int fail(const char* what) {
  fprintf(stderr, "plugin_test_client: %s\n", what);
  return 1;
}

/* A stateless hash of x (xorshift64* of x + 1), enough to make each byte's writer differ; the
 * C++ side's generator is workload/rng.h, which C cannot include. */
static uint64_t mix(uint64_t x) {
  x += 1;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  return x * 0x2545f4914f6cdd1dull;
}

static struct nbd_handle* connect_to(const char* sock) {
  struct nbd_handle* h = nbd_create();
  if (h == NULL || nbd_connect_unix(h, sock) == -1) {
    fprintf(stderr, "plugin_test_client: connect %s: %s\n", sock, nbd_get_error());
    if (h != NULL) nbd_close(h);
    return NULL;
  }
  return h;
}

/* Runs fn on n threads, thread t on the struct at args + t * stride (whose first member is its
 * `int failed`), waits for them all, then reads the whole device through h: the bytes
 * (malloc'd), or NULL with a message when a thread failed or the read did. */
static uint8_t* run_then_read(struct nbd_handle* h, int64_t size, void* (*fn)(void*), void* args,
                              size_t stride, int n) {
  pthread_t threads[64];
  int failed = 0;
  for (int t = 0; t < n; ++t) pthread_create(&threads[t], NULL, fn, (char*)args + t * stride);
  for (int t = 0; t < n; ++t) {
    pthread_join(threads[t], NULL);
    failed |= *(const int*)((char*)args + t * stride);
  }
  uint8_t* got = malloc((size_t)size);
  if (failed || got == NULL || nbd_pread(h, got, (size_t)size, 0, 0) == -1) {
    fail(failed ? "a writer failed" : nbd_get_error());
    free(got);
    return NULL;
  }
  return got;
}

/* ── concurrent: byte-disjoint, page-sharing writes from several connections ──────────────── */

/* The device is cut into segments of 1..1500 bytes (seeded); segment i belongs to
 * connection i % conns. Neighbouring segments belong to different connections and most share a
 * page, so every page is read-modify-written by several connections at once. Each round rewrites
 * every segment with new bytes; after all rounds the device must hold the last round's bytes
 * everywhere. A lost read-modify-write (a page written back with a stale neighbour) shows up as
 * an older round's bytes. */
struct segment {
  uint64_t offset, length;
};

struct writer {
  int failed; /* first: run_then_read() reads it */
  const char* sock;
  int id, conns, rounds;
  const struct segment* segs;
  size_t nsegs;
};

static uint8_t model_byte(uint64_t offset, int round) {
  return (uint8_t)(mix(offset * 131 + (uint64_t)round) >> 56);
}

static void* writer_main(void* arg) {
  struct writer* w = arg;
  struct nbd_handle* h = connect_to(w->sock);
  uint8_t* buf = malloc(1500);
  if (h == NULL || buf == NULL) {
    w->failed = 1;
    goto out;
  }
  for (int round = 0; round < w->rounds && !w->failed; ++round) {
    for (size_t i = (size_t)w->id; i < w->nsegs; i += (size_t)w->conns) {
      const struct segment* s = &w->segs[i];
      for (uint64_t b = 0; b < s->length; ++b) buf[b] = model_byte(s->offset + b, round);
      if (nbd_pwrite(h, buf, s->length, s->offset, 0) == -1) {
        fprintf(stderr, "plugin_test_client: pwrite: %s\n", nbd_get_error());
        w->failed = 1;
        break;
      }
    }
  }
out:
  free(buf);
  if (h != NULL) nbd_close(h);
  return NULL;
}

static int run_concurrent(const char* sock, int conns, int rounds) {
  struct nbd_handle* h = connect_to(sock);
  if (h == NULL) return 1;
  const int64_t size = nbd_get_size(h);
  if (size <= 0 || conns < 1 || conns > 64 || rounds < 1) return fail("bad size or arguments");
  struct segment* segs = calloc((size_t)size, sizeof *segs); /* at most one per byte */
  size_t nsegs = 0;
  uint64_t seed = 7;
  for (uint64_t at = 0; at < (uint64_t)size; ++nsegs) {
    seed = mix(seed);
    uint64_t len = 1 + seed % 1500; /* about 5 segments, of 3 or more connections, a page */
    if (len > (uint64_t)size - at) len = (uint64_t)size - at;
    segs[nsegs] = (struct segment){at, len};
    at += len;
  }
  struct writer writers[64];
  for (int t = 0; t < conns; ++t) {
    writers[t] = (struct writer){0, sock, t, conns, rounds, segs, nsegs};
  }
  uint8_t* got = run_then_read(h, size, writer_main, writers, sizeof *writers, conns);
  if (got == NULL) return 1;
  for (uint64_t b = 0; b < (uint64_t)size; ++b) {
    if (got[b] != model_byte(b, rounds - 1)) {
      fprintf(stderr, "plugin_test_client: byte %llu is %u, the model says %u\n",
              (unsigned long long)b, got[b], model_byte(b, rounds - 1));
      return 1;
    }
  }
  printf("concurrent: %d connections, %d rounds, %zu segments: all %lld bytes match\n", conns,
         rounds, nsegs, (long long)size);
  free(got);
  free(segs);
  nbd_close(h);
  return 0;
}

/* ── overlap: byte-overlapping writes from several connections ─────────────────────────────── */

/* Connection t writes `writes` ranges (seeded offsets, 1..3000 bytes, unaligned) all of byte t+1,
 * overlapping each other's ranges, at once, on a device zeroed first. Afterwards a byte that no
 * range covered must be 0, a byte covered by one connection only must be that connection's byte
 * (a read-modify-write that wrote back a stale neighbour breaks this), and a byte covered by
 * several must be one of theirs. */
struct overlapper {
  int failed; /* first: run_then_read() reads it */
  const char* sock;
  int id, writes;
  uint64_t size;
  uint64_t* covered; /* bit t of covered[b]: connection t wrote byte b */
};

static void overlap_range(uint64_t size, int id, int i, uint64_t* offset, uint64_t* length) {
  const uint64_t s = mix((uint64_t)id * 7919 + (uint64_t)i * 104729 + 3);
  *offset = s % size;
  *length = 1 + (s >> 32) % 3000;
  if (*length > size - *offset) *length = size - *offset;
}

static void* overlapper_main(void* arg) {
  struct overlapper* o = arg;
  struct nbd_handle* h = connect_to(o->sock);
  uint8_t buf[3000];
  memset(buf, o->id + 1, sizeof buf);
  for (int i = 0; h != NULL && i < o->writes; ++i) {
    uint64_t offset, length;
    overlap_range(o->size, o->id, i, &offset, &length);
    if (nbd_pwrite(h, buf, length, offset, 0) == -1) {
      fprintf(stderr, "plugin_test_client: pwrite: %s\n", nbd_get_error());
      break;
    }
  }
  if (h == NULL) o->failed = 1;
  if (h != NULL) nbd_close(h);
  return NULL;
}

static int check_overlap(const uint8_t* got, const uint64_t* covered, uint64_t size) {
  uint64_t shared = 0;
  for (uint64_t b = 0; b < size; ++b) {
    const uint64_t mask = covered[b];
    const int ok = got[b] == 0 ? mask == 0 : got[b] <= 64 && (mask >> (got[b] - 1) & 1) != 0;
    if (!ok) {
      fprintf(stderr, "plugin_test_client: byte %llu is %u; the connections that wrote it: %#llx\n",
              (unsigned long long)b, got[b], (unsigned long long)mask);
      return 1;
    }
    shared += (mask & (mask - 1)) != 0;
  }
  printf(
      "overlap: %llu of %llu bytes written by several connections; every byte is one of its "
      "writers'\n",
      (unsigned long long)shared, (unsigned long long)size);
  return shared > 0 ? 0 : fail("no byte was written by two connections: nothing was tested");
}

static int run_overlap(const char* sock, int conns, int writes) {
  struct nbd_handle* h = connect_to(sock);
  if (h == NULL) return 1;
  const int64_t size = nbd_get_size(h);
  if (size <= 0 || conns < 1 || conns > 64 || writes < 1) return fail("bad size or arguments");
  if (nbd_zero(h, (uint64_t)size, 0, 0) == -1) return fail(nbd_get_error());
  uint64_t* covered = calloc((size_t)size, sizeof *covered);
  struct overlapper os[64];
  for (int t = 0; t < conns; ++t) {
    os[t] = (struct overlapper){0, sock, t, writes, (uint64_t)size, covered};
    for (int i = 0; i < writes; ++i) {
      uint64_t offset, length;
      overlap_range((uint64_t)size, t, i, &offset, &length);
      for (uint64_t b = offset; b < offset + length; ++b) covered[b] |= UINT64_C(1) << t;
    }
  }
  uint8_t* got = run_then_read(h, size, overlapper_main, os, sizeof *os, conns);
  if (got == NULL) return 1;
  const int rc = check_overlap(got, covered, (uint64_t)size);
  free(got);
  free(covered);
  nbd_close(h);
  return rc;
}

/* ── pages of known content ──────────────────────────────────────────────────────────────── */

/* Page `index` made from `seed`: incompressible when `random`, else text-like (compresses). */
static void make_page(uint8_t* page, uint64_t index, uint64_t seed, int random) {
  static const char* words[] = {"zspool ", "keeps ",  "pages ", "compressed ", "in ",    "memory, ",
                                "and ",    "writes ", "cold ",  "ones ",       "back. ", "\n"};
  uint64_t s = mix(index * 1000003 + seed);
  if (random) {
    for (size_t i = 0; i < PAGE; i += 8) {
      s = mix(s);
      memcpy(page + i, &s, 8);
    }
  } else {
    size_t at = 0;
    while (at < PAGE) {
      s = mix(s);
      const char* w = words[s % 12];
      size_t n = strlen(w);
      if (n > PAGE - at) n = PAGE - at;
      memcpy(page + at, w, n);
      at += n;
    }
  }
  memcpy(page, &index, 8); /* every page differs: a misplaced page cannot pass */
  memcpy(page + 8, &seed, 8);
}

static int run_fill(const char* sock) {
  struct nbd_handle* h = connect_to(sock);
  if (h == NULL) return 1;
  const uint64_t pages = (uint64_t)nbd_get_size(h) / PAGE;
  uint8_t want[PAGE], got[PAGE];
  uint64_t stored = 0;
  for (; stored < pages; ++stored) {
    make_page(want, stored, 1, 1);
    if (nbd_pwrite(h, want, PAGE, stored * PAGE, 0) == -1) break;
  }
  if (stored == pages) return fail("the whole device was written: no limit was hit");
  if (nbd_get_errno() != ENOSPC) {
    fprintf(stderr, "plugin_test_client: refused write: errno %d (%s), want ENOSPC\n",
            nbd_get_errno(), nbd_get_error());
    return 1;
  }
  for (uint64_t i = 0; i < stored; ++i) {
    make_page(want, i, 1, 1);
    if (nbd_pread(h, got, PAGE, i * PAGE, 0) == -1) return fail(nbd_get_error());
    if (memcmp(want, got, PAGE) != 0) return fail("a page written before the refusal changed");
  }
  memset(want, 0, PAGE);
  if (nbd_pread(h, got, PAGE, stored * PAGE, 0) == -1) return fail(nbd_get_error());
  if (memcmp(want, got, PAGE) != 0) return fail("the refused page is not its old zeros");
  printf("fill: %llu pages stored, then ENOSPC; all read back\n", (unsigned long long)stored);
  nbd_close(h);
  return 0;
}

static int run_write_pages(const char* sock, uint64_t pages, uint64_t seed) {
  struct nbd_handle* h = connect_to(sock);
  if (h == NULL) return 1;
  uint8_t page[PAGE];
  for (uint64_t i = 0; i < pages; ++i) {
    make_page(page, i, seed, 0);
    if (nbd_pwrite(h, page, PAGE, i * PAGE, 0) == -1) return fail(nbd_get_error());
  }
  nbd_close(h);
  return 0;
}

static int run_check_pages(const char* sock, uint64_t pages, uint64_t seed) {
  struct nbd_handle* h = connect_to(sock);
  if (h == NULL) return 1;
  uint8_t want[PAGE], got[PAGE];
  uint64_t eio = 0;
  for (uint64_t i = 0; i < pages; ++i) {
    make_page(want, i, seed, 0);
    if (nbd_pread(h, got, PAGE, i * PAGE, 0) == -1) {
      if (nbd_get_errno() != EIO) {
        fprintf(stderr, "plugin_test_client: page %llu: errno %d (%s), want EIO\n",
                (unsigned long long)i, nbd_get_errno(), nbd_get_error());
        return 1;
      }
      ++eio;
      continue;
    }
    if (memcmp(want, got, PAGE) != 0) {
      fprintf(stderr, "plugin_test_client: page %llu read wrong bytes\n", (unsigned long long)i);
      return 1;
    }
  }
  printf("check-pages: %llu pages, %llu failed with EIO, the rest read back\n",
         (unsigned long long)pages, (unsigned long long)eio);
  nbd_close(h);
  return eio > 0 ? 0 : fail("no page failed: the corruption went unnoticed");
}

static int run_kill_mid(const char* sock) {
  struct nbd_handle* h = connect_to(sock);
  if (h == NULL) return 1;
  const size_t chunk = (size_t)1 << 20;
  const int64_t size = nbd_get_size(h);
  uint8_t* buf = malloc(chunk);
  for (size_t i = 0; i < chunk; ++i) buf[i] = (uint8_t)mix(i);
  for (int i = 0; i < 64; ++i) {
    const uint64_t at = ((uint64_t)i * chunk) % (uint64_t)(size - (int64_t)chunk);
    if (nbd_aio_pwrite(h, buf, chunk, at, NBD_NULL_COMPLETION, 0) == -1) break;
  }
  nbd_poll(h, 0); /* push some of them onto the socket */
  raise(SIGKILL);
  return fail("still alive after SIGKILL");
}

int main(int argc, char** argv) {
  if (argc >= 5 && strcmp(argv[1], "concurrent") == 0)
    return run_concurrent(argv[2], atoi(argv[3]), atoi(argv[4]));
  if (argc >= 5 && strcmp(argv[1], "overlap") == 0)
    return run_overlap(argv[2], atoi(argv[3]), atoi(argv[4]));
  if (argc >= 3 && strcmp(argv[1], "fill") == 0) return run_fill(argv[2]);
  if (argc >= 5 && strcmp(argv[1], "write-pages") == 0)
    return run_write_pages(argv[2], strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0));
  if (argc >= 5 && strcmp(argv[1], "check-pages") == 0)
    return run_check_pages(argv[2], strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0));
  if (argc >= 3 && strcmp(argv[1], "kill-mid") == 0) return run_kill_mid(argv[2]);
  fprintf(stderr,
          "usage: plugin_test_client concurrent SOCK CONNS ROUNDS | overlap SOCK CONNS WRITES |\n"
          "       fill SOCK |\n"
          "       write-pages SOCK PAGES SEED | check-pages SOCK PAGES SEED | kill-mid SOCK\n");
  return 2;
}
