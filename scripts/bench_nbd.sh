#!/usr/bin/env bash
# The zspool nbdkit plugin side by side with nbdkit's memory plugin: same client (nbdcopy), same
# data, same run. For each corpus (64 MiB each) and each server
#
#   sparse     nbdkit memory allocator=sparse      the protocol's ceiling on this machine
#   mem-zstd   nbdkit memory allocator=zstd        a compressed RAM disk peer
#   zs-lz4     nbdkit zspool compressor=lz4
#   zs-zstd    nbdkit zspool compressor=zstd
#   zs-zstd32  nbdkit zspool compressor=zstd page-size=32K  (nbdkit's zstd allocator compresses
#              32 KiB pages; the same unit here)
#   zs-zstd64  nbdkit zspool compressor=zstd page-size=64K  (not in the default list)
#   raw-lz4    scripts/nbdkit_rawlz4.c, built here: lz4 into fixed, pre-touched slots, no
#              allocator and no locks: the fastest any lz4 RAM disk could serve through nbdkit
#              on this machine. raw-lz4 / sparse is lz4's own price; zs-lz4 / raw-lz4 is
#              zspool's. Its "held" is ~0: its slots are touched at load, before "before".
#
# The zspool servers run with parallel=on, the thread model nbdkit's memory plugin and raw-lz4
# use. The plugin's default (parallel=auto) serves one request a connection at a time on an
# nbdkit before 1.33.10, which a client hanging up early can abort (README): on 2 cores that
# cost a 64 MiB write through one connection about a quarter of its rate (BENCHMARKS.md).
#
# and 1 and 4 nbdcopy connections (--connections=N --requests=16; nbdcopy hands out work in
# 128 MiB pieces, so on these 64 MiB images its 4 connections copy through one: scripts/
# nbd_conns.c drives N connections at once), it starts a fresh server,
# copies the corpus in (write MB/s), reads the server's RSS (VmRSS, /proc/PID/status), copies it
# back out to null: (read MB/s; one run per cell also copies to a file and compares it with the
# corpus), and stops the server. Each figure is the median of RUNS runs (default 3).
# "held" is the server's RSS after the write (the client gone) minus its RSS before it: the memory
# the data cost. "peak" is its peak RSS during the write (VmHWM) minus the same: what it needed
# while the client was connected, nbdkit's worker threads (16 a connection) and every buffer and
# compression context included.
#
# Usage: scripts/bench_nbd.sh [BUILD_DIR]   (env: RUNS=3, CORPORA="builtin libs headers heap",
#                                                SERVERS="sparse raw-lz4 mem-zstd zs-lz4 zs-zstd zs-zstd32")
# Corpora, made in a mktemp directory that is removed at exit:
#   builtin  `zspool corpus --size 64M`: the main job's default input
#   libs     /usr/lib/x86_64-linux-gnu/*.so* (regular files, sorted) concatenated: first 64 MiB
#   headers  /usr/include/**/*.h (sorted) concatenated: first 64 MiB
#   heap     the [heap] and anonymous rw-p mappings of a CPython process this script starts
#            (BENCHMARKS.md "Corpora" has the same program), read through /proc/PID/mem: first
#            64 MiB
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
plugin=$(realpath "$build/nbdkit-zspool-plugin.so")
runs=${RUNS:-3}
corpora=${CORPORA:-builtin libs headers heap}
size=$((64 << 20))
for tool in nbdkit nbdcopy python3; do
  command -v "$tool" >/dev/null || { echo "bench_nbd: $tool is missing (scripts/deps.sh)" >&2; exit 1; }
done
[[ -f $plugin ]] || { echo "bench_nbd: no $plugin: build it first" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/zspool-bench-nbd.XXXXXX")
server=""
helper=""
cleanup() {
  [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  [[ -n $helper ]] && kill "$helper" 2>/dev/null && wait "$helper" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# ── corpora ──────────────────────────────────────────────────────────────────────────────────

first_64m() { head -c "$size" >"$1"; }

# concat_64m OUT FIND-ARGS...: the files find lists, sorted, concatenated, cut at 64 MiB (cat's
# SIGPIPE when head has enough is expected).
concat_64m() {
  local out=$1
  shift
  (
    set +o pipefail
    find "$@" -type f -print0 | sort -z | xargs -0 cat 2>/dev/null | first_64m "$out"
  )
}

make_builtin() { "$build/zspool" corpus -o "$1" --size "$size" >/dev/null; }
make_libs() { concat_64m "$1" /usr/lib/x86_64-linux-gnu -maxdepth 1 -name '*.so*'; }
make_headers() { concat_64m "$1" /usr/include -name '*.h'; }

make_heap() {
  cat >"$work/heapproc.py" <<'PY'
import random, time
random.seed(7)
words = ["alpha","beta","gamma","delta","user","name","id","value","count","status","error",
         "ok","path","/usr/lib","config","timeout"]
d = {f"key-{i}-{random.choice(words)}": {"id": i, "score": random.random()*100,
     "name": random.choice(words)+str(random.randint(0,9999)),
     "tags": [random.choice(words) for _ in range(random.randint(0,4))],
     "n": random.randint(0, 1<<40)} for i in range(400000)}
lst = [random.randint(0, 1000) for _ in range(1000000)]
s = set(str(x) for x in range(200000))
print("ready", flush=True); time.sleep(3600)
PY
  cat >"$work/dump.py" <<'PY'
import sys
pid = int(sys.argv[1]); out = open(sys.argv[2], "wb"); mem = open(f"/proc/{pid}/mem", "rb", 0)
for line in open(f"/proc/{pid}/maps"):
    f = line.split()
    if f[1] != "rw-p" or (len(f) > 5 and f[5] != "[heap]"): continue
    a, b = (int(x, 16) for x in f[0].split("-"))
    try: mem.seek(a); out.write(mem.read(b - a))
    except OSError: pass
PY
  python3 "$work/heapproc.py" >"$work/hp.out" &
  helper=$!
  until grep -q ready "$work/hp.out"; do sleep 0.5; done
  python3 "$work/dump.py" "$helper" "$work/heap.full"
  kill "$helper"
  wait "$helper" 2>/dev/null || true
  helper=""
  first_64m "$1" <"$work/heap.full"
  rm -f "$work/heap.full"
}

# ── one measurement ──────────────────────────────────────────────────────────────────────────

server_args() {
  case $1 in
    sparse) echo "memory size=$size allocator=sparse" ;;
    mem-zstd) echo "memory size=$size allocator=zstd" ;;
    zs-lz4) echo "$plugin size=$size compressor=lz4 parallel=on" ;;
    zs-zstd) echo "$plugin size=$size compressor=zstd parallel=on" ;;
    zs-zstd32) echo "$plugin size=$size compressor=zstd page-size=32K parallel=on" ;;
    zs-zstd64) echo "$plugin size=$size compressor=zstd page-size=64K parallel=on" ;;
    raw-lz4) echo "$work/nbdkit-rawlz4-plugin.so size=$size" ;;
  esac
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
now() { date +%s.%N; }

# measure SERVER CORPUS CONNS CHECK -> "write_MBps read_MBps held_bytes peak_bytes"
measure() {
  local name=$1 data=$2 conns=$3 check=$4 sock=$work/sock uri t0 t1 t2 before after peak
  rm -f "$sock" "$work/pid"
  # shellcheck disable=SC2046  # the server's words
  nbdkit -f --exit-with-parent -U "$sock" -P "$work/pid" $(server_args "$name") 2>>"$work/nbdkit.log" &
  server=$!
  while [[ ! -s $work/pid ]]; do sleep 0.02; done
  uri="nbd+unix:///?socket=$sock"
  before=$(rss_kib "$server")
  t0=$(now)
  nbdcopy --connections="$conns" --requests=16 "$data" "$uri"
  t1=$(now)
  after=$(rss_kib "$server")
  peak=$(hwm_kib "$server")
  nbdcopy --connections="$conns" --requests=16 "$uri" null:
  t2=$(now)
  if [[ $check == 1 ]]; then
    nbdcopy "$uri" "$work/back"
    cmp "$data" "$work/back" >/dev/null || { echo "bench_nbd: $name read back wrong data" >&2; exit 1; }
    rm -f "$work/back"
  fi
  kill "$server"
  wait "$server" 2>/dev/null || true
  server=""
  awk -v s="$size" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v b="$before" -v a="$after" -v p="$peak" \
    'BEGIN { printf "%.1f %.1f %d %d\n", s / (t1 - t0) / 1e6, s / (t2 - t1) / 1e6, (a - b) * 1024,
             (p - b) * 1024 }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# ── the table ────────────────────────────────────────────────────────────────────────────────

servers=${SERVERS:-sparse raw-lz4 mem-zstd zs-lz4 zs-zstd zs-zstd32}
if [[ " $servers " == *" raw-lz4 "* ]]; then
  cc -O2 -shared -fPIC scripts/nbdkit_rawlz4.c -llz4 -o "$work/nbdkit-rawlz4-plugin.so" ||
    { echo "bench_nbd: cannot build scripts/nbdkit_rawlz4.c (nbdkit-plugin-dev, liblz4-dev)" >&2; exit 1; }
fi
echo "# bench_nbd: $(date -u +%F\ %T) UTC, $(nproc) CPUs, nbdkit $(nbdkit --version | awk '{print $2}'), zspool $(git rev-parse --short HEAD 2>/dev/null || echo '?'), median of $runs runs"
echo
echo "| corpus | server | conns | write MB/s | read MB/s | held MiB | held / data | peak MiB |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
results=$work/results
: >"$results"
for corpus in $corpora; do
  "make_$corpus" "$work/$corpus.img"
  cat "$work/$corpus.img" >/dev/null  # into the page cache before any timing
  for conns in 1 4; do
    for name in $servers; do
      : >"$work/w"; : >"$work/r"; : >"$work/h"; : >"$work/p"
      for ((run = 1; run <= runs; run++)); do
        read -r w r h p < <(measure "$name" "$work/$corpus.img" "$conns" $((run == 1)))
        echo "$w" >>"$work/w"; echo "$r" >>"$work/r"; echo "$h" >>"$work/h"; echo "$p" >>"$work/p"
      done
      w=$(median <"$work/w"); r=$(median <"$work/r"); h=$(median <"$work/h"); p=$(median <"$work/p")
      echo "$corpus $name $conns $w $r $h $p" >>"$results"
      awk -v c="$corpus" -v n="$name" -v k="$conns" -v w="$w" -v r="$r" -v h="$h" -v p="$p" -v s="$size" \
        'BEGIN { printf "| %s | %s | %d | %.0f | %.0f | %.1f | %.3f | %.1f |\n", c, n, k, w, r, h / 1048576, h / s, p / 1048576 }'
    done
  done
  rm -f "$work/$corpus.img"
done

# ── the issue's targets, as ratios within this run ───────────────────────────────────────────
echo
echo "| target | corpus | conns | ratio | met |"
echo "|---|---|---:|---:|---|"
awk '
  { w[$1, $2, $3] = $4; r[$1, $2, $3] = $5; h[$1, $2, $3] = $6; p[$1, $2, $3] = $7; c[$1] = 1; k[$3] = 1 }
  function row(what, corpus, conns, ratio, ok) {
    printf "| %s | %s | %d | %.2fx | %s |\n", what, corpus, conns, ratio, ok ? "yes" : "**no**"
  }
  function info(what, corpus, conns, ratio) {
    printf "| %s | %s | %d | %.2fx | - |\n", what, corpus, conns, ratio
  }
  END {
    for (corpus in c) for (conns in k) {
      if (!((corpus, "zs-lz4", conns) in h) || !((corpus, "sparse", conns) in h)) lz4 = 0
      else lz4 = 1
      if (lz4) {
      x = w[corpus, "zs-lz4", conns] / w[corpus, "sparse", conns]
      row("zspool lz4 write >= 0.8x sparse", corpus, conns, x, x >= 0.8)
      x = r[corpus, "zs-lz4", conns] / r[corpus, "sparse", conns]
      row("zspool lz4 read >= 0.8x sparse", corpus, conns, x, x >= 0.8)
      if ((corpus, "raw-lz4", conns) in h) {
        x = w[corpus, "raw-lz4", conns] / w[corpus, "sparse", conns]
        info("lz4 alone: raw lz4 write / sparse", corpus, conns, x)
        x = r[corpus, "raw-lz4", conns] / r[corpus, "sparse", conns]
        info("lz4 alone: raw lz4 read / sparse", corpus, conns, x)
        x = w[corpus, "zs-lz4", conns] / w[corpus, "raw-lz4", conns]
        info("zspool vs ideal: zspool lz4 write / raw lz4", corpus, conns, x)
        x = r[corpus, "zs-lz4", conns] / r[corpus, "raw-lz4", conns]
        info("zspool vs ideal: zspool lz4 read / raw lz4", corpus, conns, x)
      }
      if (corpus == "libs") {
        x = h[corpus, "zs-lz4", conns] / h[corpus, "sparse", conns]
        row("zspool lz4 held <= 0.7x sparse", corpus, conns, x, x <= 0.7)
      }
      }
      for (z = 1; z <= 3; z++) {
        zs = z == 1 ? "zs-zstd" : z == 2 ? "zs-zstd32" : "zs-zstd64"
        if (!((corpus, zs, conns) in h) || !((corpus, "mem-zstd", conns) in h)) continue
        x = h[corpus, zs, conns] / h[corpus, "mem-zstd", conns]
        row("zspool " zs " held <= nbdkit zstd", corpus, conns, x, x <= 1.0)
        x = p[corpus, zs, conns] / p[corpus, "mem-zstd", conns]
        row("zspool " zs " peak <= nbdkit zstd", corpus, conns, x, x <= 1.0)
        x = w[corpus, zs, conns] / w[corpus, "mem-zstd", conns]
        row("zspool " zs " write >= 1.3x nbdkit zstd", corpus, conns, x, x >= 1.3)
      }
    }
  }' "$results" | sort -t'|' -k2,2 -k3,3 -k4,4n
