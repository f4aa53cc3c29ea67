#!/usr/bin/env bash
# CPU of one nbdcopy write and one read through a fresh nbdkit server: wall time, the server's
# utime+stime (/proc/PID/stat, 10 ms ticks) and the client's (/usr/bin/time). BENCHMARKS.md
# ("nbdkit", session 9) quotes it to show what a write costs beyond the protocol.
#
#   bash scripts/nbd_cpu.sh IMAGE SERVER-ARGS...
#   bash scripts/nbd_cpu.sh libs.img memory size=64M allocator=sparse
#   bash scripts/nbd_cpu.sh libs.img build/nbdkit-zspool-plugin.so size=64M compressor=lz4
set -euo pipefail
[[ $# -ge 2 ]] || { echo "usage: nbd_cpu.sh IMAGE SERVER-ARGS..." >&2; exit 2; }
img=$1
shift
for tool in nbdkit nbdcopy /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "nbd_cpu: $tool is missing" >&2; exit 1; }
done
[[ -r $img ]] || { echo "nbd_cpu: cannot read $img" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/zspool-nbd-cpu.XXXXXX")
server=""
cleanup() {
  [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
nbdkit -f --exit-with-parent -U "$work/sock" -P "$work/pid" "$@" 2>"$work/log" &
server=$!
while [[ ! -s $work/pid ]]; do
  kill -0 "$server" 2>/dev/null || { cat "$work/log" >&2; exit 1; }
  sleep 0.02
done
uri="nbd+unix:///?socket=$work/sock"
cpu_ms() { awk '{ print ($14 + $15) * 1000 / 100 }' "/proc/$server/stat"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
for dir in write read; do
  c0=$(cpu_ms)
  t0=$(now_ms)
  if [[ $dir == write ]]; then src=$img dst=$uri; else src=$uri dst=null:; fi
  /usr/bin/time -f "%U %S" -o "$work/time" nbdcopy --connections=1 --requests=16 "$src" "$dst"
  t1=$(now_ms)
  c1=$(cpu_ms)
  read -r cu cs <"$work/time"
  awk -v d="$dir" -v w=$((t1 - t0)) -v s="$c0" -v e="$c1" -v cu="$cu" -v cs="$cs" \
    'BEGIN { printf "%s: wall %d ms, server cpu %d ms, client cpu %d ms\n", d, w, e - s, (cu + cs) * 1000 }'
done
