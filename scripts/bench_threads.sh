#!/usr/bin/env bash
# Thread scaling on one pool and one store (issue 16): builds Release in BUILD_DIR, then prints
# the 1/2/4/8-thread figures and each one's ratio to 1 thread, medians of RUNS runs.
#
#   bash scripts/bench_threads.sh [BUILD_DIR]        # default build-threads; RUNS=3
#   INPUT=/usr/lib/x86_64-linux-gnu MAX_BYTES=256M bash scripts/bench_threads.sh
#
# Cases: core_benchmark's BM_ZspoolMallocFreeThreaded (N threads on one shared pool, each
# mallocs a batch of 4096 lz4-page-sized objects then frees them; real time) beside
# BM_GlibcMallocFreeThreaded (the same on glibc) and BM_ZspoolMallocFreePrivateThreaded (a pool per
# thread: the machine's own ceiling for zspool's work), and `zspool bench store --threads N` (store
# writes and reads, raw lz4 on the same N threads as the ceiling). Needs cmake, a C++20 compiler,
# the packages of scripts/deps.sh, and python3. Run it on an otherwise idle machine with at least
# 8 cores: on fewer cores than threads the figures measure the scheduler.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-threads}
runs=${RUNS:-3}
input=${INPUT:-/usr/lib/x86_64-linux-gnu}
max_bytes=${MAX_BYTES:-256M}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DZSPOOL_BUILD_SHARED=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target core_benchmark zspool_cli >/dev/null
out=$(mktemp -d)
echo "cores: $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg); commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
for r in $(seq "$runs"); do
  "$build/core_benchmark" --benchmark_filter='MallocFree(Private)?Threaded' --benchmark_min_time=0.5 \
    --benchmark_format=json >"$out/core_$r.json"
  for t in 1 2 4 8; do
    "$build/zspool" bench store --input "$input" --max-bytes "$max_bytes" --threads "$t" --json \
      >"$out/store_${t}_$r.json"
  done
done
python3 - "$out" "$runs" <<'PY'
import glob, json, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
rates = {}  # (case, threads) -> [per-run rates]
for r in range(1, runs + 1):
    for b in json.load(open(f"{out}/core_{r}.json"))["benchmarks"]:
        name, _, threads = b["name"].partition("/real_time/threads:")
        rates.setdefault((name.replace("BM_", "").replace("MallocFreePrivateThreaded",
                          " pool/thread M/s").replace("MallocFreeThreaded", " malloc+free M/s"),
                          int(threads)), []).append(b["items_per_second"] / 1e6)
    for t in (1, 2, 4, 8):
        d = json.load(open(f"{out}/store_{t}_{r}.json"))
        lz4 = next(x for x in d["raw"] if x["compressor"] == "lz4")
        for case, v in (("store write MB/s", d["store"]["write_MBps"]),
                        ("store read MB/s", d["store"]["read_MBps"]),
                        ("raw lz4 compress MB/s", lz4["compress_MBps"])):
            rates.setdefault((case, t), []).append(v)
cases = sorted({c for c, _ in rates})
print(f"\nmedian of {runs} runs; (x) = that median / the 1-thread median")
print(f"{'case':28}" + "".join(f"{f'{t} thr':>18}" for t in (1, 2, 4, 8)))
for c in cases:
    one = statistics.median(rates[(c, 1)])
    cells = []
    for t in (1, 2, 4, 8):
        m = statistics.median(rates.get((c, t), [float("nan")]))
        cells.append(f"{m:10.1f} ({m / one:4.2f}x)")
    print(f"{c:28}" + "".join(f"{x:>18}" for x in cells))
PY
rm -rf "$out"
