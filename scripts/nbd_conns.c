// nbd_conns: N real NBD connections at once, for what nbdcopy cannot show. nbdcopy hands out
// work in 128 MiB pieces, so on a 64 MiB image its --connections=4 copies through one connection
// (checked with nbdkit's log filter: 512 writes, all on connection 1). This client gives each
// of N connections a 1/N slice of IMAGE (first 64 MiB), writes them at once (16 requests of
// 256 KiB in flight per connection), reads them back at once, compares, and prints write and
// read MB/s. Given the server's PID it also prints the server's RSS while all N are still
// connected, and after they have gone (KiB over its RSS before the first connection).
//
//   cc -O2 -pthread scripts/nbd_conns.c -lnbd -o /tmp/nbd_conns     (libnbd-dev)
//   nbdkit -U - -P /tmp/pid SERVER ARGS --run '/tmp/nbd_conns "$uri" IMAGE 4 $(cat /tmp/pid)'
//
// BENCHMARKS.md ("nbdkit", session 10) quotes it. Exit status 1 on any error or mismatch.
#include <libnbd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { kMaxConns = 64, kInFlight = 16 };
static const size_t kBytes = (size_t)64 << 20;
static const size_t kChunk = (size_t)256 << 10;

static char *image, *back;
static int conns;
static const char* uri;
static pthread_barrier_t barrier;
static double write_start, write_end, read_start, read_end;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static long rss_kib(int pid) {
  char path[64], line[256];
  long kib = -1;
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE* f = fopen(path, "r");
  if (f == NULL) return -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) kib = atol(line + 6);
  fclose(f);
  return kib;
}

static void die(const char* what) {
  fprintf(stderr, "nbd_conns: %s: %s\n", what, nbd_get_error());
  exit(1);
}

// Writes (or reads) [off, end) with kInFlight requests in flight.
static void copy_slice(struct nbd_handle* h, int write, size_t off, size_t end) {
  while (off < end || nbd_aio_in_flight(h) > 0) {
    while (off < end && nbd_aio_in_flight(h) < kInFlight) {
      const int64_t id = write ? nbd_aio_pwrite(h, image + off, kChunk, off, NBD_NULL_COMPLETION, 0)
                               : nbd_aio_pread(h, back + off, kChunk, off, NBD_NULL_COMPLETION, 0);
      if (id < 0) die(write ? "pwrite" : "pread");
      off += kChunk;
    }
    if (nbd_poll(h, -1) < 0) die("poll");
    int64_t id;
    while ((id = nbd_aio_peek_command_completed(h)) > 0)
      if (nbd_aio_command_completed(h, id) < 0) die("request");
  }
}

// Every connection passes the barrier; connection 0 reads the clock in between.
static void all_at(double* stamp, int me) {
  pthread_barrier_wait(&barrier);
  if (me == 0 && stamp != NULL) *stamp = now();
  pthread_barrier_wait(&barrier);
}

static int server_pid;
static long rss_connected = -1;

static void* connection(void* arg) {
  const int me = (int)(long)arg;
  struct nbd_handle* h = nbd_create();
  if (h == NULL || nbd_connect_uri(h, uri) < 0) die("connect");
  const size_t slice = kBytes / conns;
  all_at(&write_start, me);
  copy_slice(h, 1, me * slice, (me + 1) * slice);
  all_at(&write_end, me);
  if (me == 0 && server_pid > 0) rss_connected = rss_kib(server_pid);
  all_at(&read_start, me);
  copy_slice(h, 0, me * slice, (me + 1) * slice);
  all_at(&read_end, me);
  nbd_shutdown(h, 0);
  nbd_close(h);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: nbd_conns URI IMAGE CONNECTIONS [SERVER_PID]\n");
    return 2;
  }
  uri = argv[1];
  conns = atoi(argv[3]);
  server_pid = argc > 4 ? atoi(argv[4]) : 0;
  if (conns < 1 || conns > kMaxConns || kBytes % ((size_t)conns * kChunk) != 0) {
    fprintf(stderr, "nbd_conns: CONNECTIONS must be 1, 2, 4, 8, 16, 32 or 64\n");
    return 2;
  }
  FILE* f = fopen(argv[2], "rb");
  image = malloc(kBytes);
  back = malloc(kBytes);
  if (f == NULL || image == NULL || back == NULL || fread(image, 1, kBytes, f) != kBytes) {
    fprintf(stderr, "nbd_conns: cannot read 64 MiB of %s\n", argv[2]);
    return 1;
  }
  fclose(f);
  const long rss_before = server_pid > 0 ? rss_kib(server_pid) : -1;
  pthread_barrier_init(&barrier, NULL, conns);
  pthread_t threads[kMaxConns];
  for (long i = 0; i < conns; i++) pthread_create(&threads[i], NULL, connection, (void*)i);
  for (int i = 0; i < conns; i++) pthread_join(threads[i], NULL);
  const int same = memcmp(image, back, kBytes) == 0;
  printf("connections %d  write %.0f MB/s  read %.0f MB/s  %s", conns,
         kBytes / (write_end - write_start) / 1e6, kBytes / (read_end - read_start) / 1e6,
         same ? "read back equal" : "READ BACK DIFFERS");
  if (server_pid > 0) {
    usleep(300 * 1000);  // the server's worker threads exit after the disconnects
    printf("  held KiB: connected %ld, after %ld", rss_connected - rss_before,
           rss_kib(server_pid) - rss_before);
  }
  printf("\n");
  return same ? 0 : 1;
}
