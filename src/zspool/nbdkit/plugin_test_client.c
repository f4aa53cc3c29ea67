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
 *   garbage SOCK ROUNDS SEED       ROUNDS raw connections (no libnbd) that break the protocol:
 *                                  random bytes before the handshake, after the client flags,
 *                                  after a finished handshake (NBD_OPT_EXPORT_NAME), and request
 *                                  headers with a valid magic but random flags, command, offset
 *                                  and length, back to back (trim and write-zeroes only past the
 *                                  end: nothing valid changes data); each connection ends when
 *                                  the server closes it (or after 2 s of silence). Exit 0 when
 *                                  every connection was made: what the server kept is checked
 *                                  by the caller
 *   hang-up SOCK ROUNDS            ROUNDS raw connections that each ask for 256 reads of 64 KiB
 *                                  and close the socket without reading a reply: the server
 *                                  has replies queued when every send fails
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
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

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

/* ── garbage: a client that does not speak NBD ──────────────────────────────────────────── */

static int raw_connect(const char* sock) {
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (strlen(sock) >= sizeof addr.sun_path) return -1;
  strcpy(addr.sun_path, sock);
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const struct timeval two_seconds = {2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &two_seconds, sizeof two_seconds);
  if (connect(fd, (struct sockaddr*)&addr, sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static void put_be(uint8_t* at, uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i, value >>= 8) at[i] = (uint8_t)value;
}

/* Reads what the server sends until it closes the connection or is silent for 2 s. */
static void drain(int fd) {
  uint8_t buf[4096];
  while (read(fd, buf, sizeof buf) > 0) {
  }
}

static void read_exactly(int fd, size_t n) {
  uint8_t buf[256];
  while (n > 0) {
    const ssize_t got = read(fd, buf, n < sizeof buf ? n : sizeof buf);
    if (got <= 0) return;
    n -= (size_t)got;
  }
}

/* The newstyle handshake up to transmission: the server's 18-byte greeting, our flags (fixed
 * newstyle, no zeroes), NBD_OPT_EXPORT_NAME "" and the server's 10-byte answer (size, flags). */
static void handshake(int fd) {
  uint8_t msg[20];
  read_exactly(fd, 18);
  put_be(msg, 3, 4);              /* NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES */
  memcpy(msg + 4, "IHAVEOPT", 8); /* option magic */
  put_be(msg + 12, 1, 4);         /* NBD_OPT_EXPORT_NAME */
  put_be(msg + 16, 0, 4);         /* the default export: "" */
  if (write(fd, msg, sizeof msg) != (ssize_t)sizeof msg) return;
  read_exactly(fd, 10);
}

static int run_garbage(const char* sock, int rounds, uint64_t seed) {
  signal(SIGPIPE, SIG_IGN); /* the server may close first: a write then fails, no more */
  uint8_t junk[8192];
  for (int round = 0; round < rounds; ++round) {
    const int fd = raw_connect(sock);
    if (fd < 0) return fail("cannot connect for a garbage round");
    const uint64_t r = mix(seed + (uint64_t)round);
    for (size_t i = 0; i < sizeof junk; ++i) junk[i] = (uint8_t)mix(r + i);
    size_t n = 1 + (size_t)(r % sizeof junk);
    switch (round % 4) {
      case 0: /* bytes before the greeting is even read */
        break;
      case 1: /* the greeting, then junk where the client flags and options go */
        read_exactly(fd, 18);
        break;
      case 2: /* a finished handshake, then junk where requests go */
        handshake(fd);
        break;
      case 3: { /* back-to-back requests with random flags, offsets and lengths; no payloads.
                 * Only commands that change nothing when valid (the caller checks the data);
                 * trim and write-zeroes only past the end, where they must be refused. */
        static const uint16_t commands[] = {0 /* read */,
                                            3 /* flush */,
                                            5 /* cache */,
                                            7 /* block status */,
                                            99 /* unknown */,
                                            4 /* trim */,
                                            6 /* write zeroes */};
        handshake(fd);
        n = sizeof junk / 28 * 28;
        for (size_t at = 0; at < n; at += 28) {
          const uint64_t f = mix(r ^ at);
          put_be(junk + at, 0x25609513, 4); /* NBD_REQUEST_MAGIC */
          put_be(junk + at + 6, commands[f % 7], 2);
          if ((f & 0x3800) != 0x3800) /* seven in eight: none, or FUA, NO_HOLE, DF, REQ_ONE */
            put_be(junk + at + 4, (f & 0x100) ? (f >> 20) & 0xf : 0, 2);
          if (f % 7 >= 5) {
            put_be(junk + at + 16, (16u << 20) + (f >> 60), 8); /* past the end */
          } else if (f & 0x600) { /* three in four: a range inside the device */
            put_be(junk + at + 16, (f >> 8) % (16u << 20), 8);
            put_be(junk + at + 24, (f >> 40) % 70000 % ((16u << 20) - (f >> 8) % (16u << 20)), 4);
          }
          if (commands[f % 7] == 3 && (f & 0x10000)) memset(junk + at + 16, 0, 12); /* a flush */
        }
        memset(junk + n - 28, 0, 28); /* last, NBD_CMD_DISC: the server closes, no waiting */
        put_be(junk + n - 28, 0x25609513, 4);
        put_be(junk + n - 22, 2, 2);
        break;
      }
    }
    if (write(fd, junk, n) < 0 && errno != EPIPE && errno != ECONNRESET) {
      close(fd);
      return fail("a garbage write failed oddly");
    }
    drain(fd);
    close(fd);
  }
  return 0;
}

/* ── hang-up: a client that leaves with replies queued ──────────────────────────────────── */

/* ROUNDS raw connections, each of which asks for 256 reads of 64 KiB, never reads a reply, and
 * closes the socket 50 ms later: the server's replies fill the socket, one worker waits to send
 * while others hold replies ready, then every send fails at once. Exit 0 when every connection
 * was made; whether the server lived is checked by the caller. */
static int run_hang_up(const char* sock, int rounds) {
  signal(SIGPIPE, SIG_IGN);
  enum { kReads = 256, kLength = 64 << 10 };
  static uint8_t requests[kReads * 28];
  for (int round = 0; round < rounds; ++round) {
    const int fd = raw_connect(sock);
    if (fd < 0) return fail("cannot connect for a hang-up round");
    handshake(fd);
    memset(requests, 0, sizeof requests);
    for (int i = 0; i < kReads; ++i) {
      uint8_t* at = requests + (size_t)i * 28;
      put_be(at, 0x25609513, 4);      /* NBD_REQUEST_MAGIC; NBD_CMD_READ = 0 */
      put_be(at + 8, (uint64_t)i, 8); /* the handle */
      put_be(at + 16, (uint64_t)i * kLength % (8u << 20), 8);
      put_be(at + 24, kLength, 4);
    }
    if (write(fd, requests, sizeof requests) < 0 && errno != EPIPE && errno != ECONNRESET) {
      close(fd);
      return fail("a hang-up write failed oddly");
    }
    usleep(50 * 1000);
    close(fd); /* unread replies: the server's sends fail */
  }
  return 0;
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
  if (argc >= 5 && strcmp(argv[1], "garbage") == 0)
    return run_garbage(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 0));
  if (argc >= 4 && strcmp(argv[1], "hang-up") == 0) return run_hang_up(argv[2], atoi(argv[3]));
  fprintf(stderr,
          "usage: plugin_test_client concurrent SOCK CONNS ROUNDS | overlap SOCK CONNS WRITES |\n"
          "       fill SOCK |\n"
          "       write-pages SOCK PAGES SEED | check-pages SOCK PAGES SEED | kill-mid SOCK |\n"
          "       garbage SOCK ROUNDS SEED | hang-up SOCK ROUNDS\n");
  return 2;
}
