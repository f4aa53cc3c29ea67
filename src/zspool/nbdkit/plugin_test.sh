#!/usr/bin/env bash
# The zspool nbdkit plugin under real NBD clients: nbdcopy, nbdinfo (libnbd-bin), qemu-io and
# qemu-img (qemu-utils), and plugin_test_client (libnbd). One case per ctest test:
#
#   plugin_test.sh CASE PLUGIN_SO TEST_CLIENT
#
# Each case makes a mktemp directory, starts its own nbdkit on a Unix socket there
# (-f --exit-with-parent, so the server dies with this shell even if it is killed), stops it at
# exit, and touches nothing outside that directory. Exit 0 pass, 1 fail, 77 skip (only when
# the nbdkit program is absent).
#
# ASan builds: a plugin linked against libasan is loaded by an uninstrumented nbdkit, so the
# sanitizer runtimes must come first in the process: LD_PRELOAD them, for the server only (not
# for the clients, which are not instrumented). Only the stats_file case runs nbdkit with -v (it
# checks the final figures in the debug log): an ASan-preloaded nbdkit that ran with -v and
# answered a request with an error hangs at exit in glibc's exit handlers (p11-kit's destructor
# waits on the setlocale lock; nbdkit's own memory plugin behind --filter=error does the same).
set -euo pipefail

case_name=${1:?usage: plugin_test.sh CASE PLUGIN_SO TEST_CLIENT [PARAMETER=VALUE...]}
plugin=$(realpath "${2:?plugin}")
client=$(realpath "${3:?test client}")
if ! command -v nbdkit >/dev/null; then
  echo "SKIP: nbdkit is not installed"
  exit 77
fi
for tool in nbdcopy nbdinfo qemu-io qemu-img; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is missing (scripts/deps.sh)"; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/zspool-nbdkit.XXXXXX")
sock=$tmp/sock
uri="nbd+unix:///?socket=$sock"
server=""

server_preload() {
  local deps libs="" lib
  deps=$(ldd "$plugin")  # once: `ldd | grep -q` would race with grep's early exit (pipefail)
  for lib in libasan.so libubsan.so libtsan.so; do
    libs+=$(awk -v l="$lib" -v sep="${libs:+:}" '$1 ~ l {print sep $3; exit}' <<<"$deps")
  done
  echo "$libs"
}

# start_server PARAM...: nbdkit with the plugin and PARAMs, ready when its pid file appears.
# $verbose: -v for the debug log. $filters: nbdkit filter options, before the plugin.
verbose=""
filters=()
launcher=()  # a command nbdkit is exec'd through (same pid), e.g. one that enters a cgroup
idle_threads=0  # the server's threads when it became ready (start_server)
start_server() {
  rm -f "$sock" "$tmp/pid"
  LD_PRELOAD=$(server_preload) ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=1 \
    "${launcher[@]}" nbdkit -f $verbose --exit-with-parent -U "$sock" -P "$tmp/pid" "${filters[@]}" "$plugin" "$@" \
    >>"$tmp/nbdkit.log" 2>&1 &
  server=$!
  while [[ ! -s $tmp/pid ]]; do
    if ! kill -0 "$server" 2>/dev/null; then
      cat "$tmp/nbdkit.log"
      fail "nbdkit did not start"
    fi
    sleep 0.05
  done
  idle_threads=$(ls "/proc/$server/task" | wc -l)
}

# Stops the server; it must exit on SIGTERM (within a minute, so a hang fails here rather than
# at ctest's timeout). Under a sanitizer preload (see the top) an nbdkit that logged an error
# through strerror can hang in glibc's exit handlers; there a hang after the requests is reported
# and tolerated (the sanitizer's reports during the requests are still checked).
stop_server() {
  [[ -n $server ]] || return 0
  local pid=$server tries=0 preload limit=600
  server=""
  preload=$(server_preload)
  # Under the preload a hang is tolerated anyway: give up on it after 15 s, not a minute.
  [[ -z $preload ]] || limit=150
  # A client's program can return before nbdkit has finished tearing its connection down, and
  # nbdkit stopped in that window leaks the connection's memory to the leak checker (280 bytes
  # from nbdkit itself: 40 of 40 ASan servers stopped right after `qemu-img info`, 0 of 40 after
  # this wait; it failed qemu_img once in CI). Wait (up to 5 s) until the server is back to the
  # threads it had when it became ready.
  while (($(ls "/proc/$pid/task" 2>/dev/null | wc -l) > idle_threads)) && ((tries++ < 50)); do
    sleep 0.1
  done
  tries=0
  kill "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && ((tries++ < limit)); do sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
    if [[ -z $preload ]]; then
      echo "FAIL ($case_name): nbdkit did not exit on SIGTERM"
      return 1
    fi
    echo "note: the sanitizer-preloaded nbdkit hung at exit (glibc exit handlers); killed"
  fi
  wait "$pid" 2>/dev/null || true
  if grep -E "ERROR: (Address|Leak|Thread)Sanitizer|runtime error:|ASan runtime does not" \
    "$tmp/nbdkit.log"; then
    echo "FAIL ($case_name): the sanitizer reported an error in the server (log above)"
    return 1
  fi
}

cleanup() {
  local rc=$?
  stop_server || rc=1
  [[ -z $cgroup ]] || rmdir "$cgroup" 2>/dev/null || true
  if [[ $rc -ne 0 && -f $tmp/nbdkit.log ]]; then
    echo "---- last lines of the server's log"
    tail -n 40 "$tmp/nbdkit.log"
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT

fail() {
  echo "FAIL ($case_name): $*"
  exit 1
}

# 64 MiB of real data: the shared libraries, as the page cache would hold them.
make_real_data() {
  local out=$1
  find /usr/lib/x86_64-linux-gnu /usr/lib -maxdepth 1 -name '*.so*' -type f -print0 2>/dev/null |
    sort -z | xargs -0 cat 2>/dev/null | head -c $((64 << 20)) >"$out" || true
  while (($(stat -c %s "$out") < 64 << 20)); do  # a small system: repeat what there is
    cat "$out" "$out" | head -c $((64 << 20)) >"$out.more"
    mv "$out.more" "$out"
  done
}

# qemu_io CMD...: runs the commands against the export; any failed command or pattern fails.
qemu_io() {
  local args=() c out
  for c in "$@"; do args+=(-c "$c"); done
  out=$(qemu-io -f raw "${args[@]}" "$uri" 2>&1) || fail "qemu-io: $out"
  if grep -qiE "fail|error" <<<"$out"; then fail "qemu-io: $out"; fi
}

case_nbdcopy() {
  make_real_data "$tmp/data"
  start_server size=64M
  nbdcopy "$tmp/data" "$uri"
  nbdcopy "$uri" "$tmp/back"
  cmp "$tmp/data" "$tmp/back" || fail "the data read back differs"
  echo "64 MiB of shared libraries copied in and out, byte for byte"
}

# nbdcopy hands its connections work in 128 MiB pieces, one thread a connection (and no more
# threads than cores unless told), so a 64 MiB image would go through one of them. Here the 64 MiB of real data lie in 4 pieces of 16 MiB at the start of each 128 MiB
# of a sparse 512 MiB image (the rest holes, which nbdcopy writes as zero requests), and
# nbdkit's log filter shows that all 4 connections wrote.
case_nbdcopy_multi_conn() {
  local piece connections
  make_real_data "$tmp/data"
  truncate -s 512M "$tmp/image"
  for piece in 0 1 2 3; do
    dd if="$tmp/data" of="$tmp/image" bs=1M count=16 skip=$((piece * 16)) seek=$((piece * 128)) \
      conv=notrunc,sparse status=none
  done
  filters=(--filter=log)
  start_server size=512M compressor=zstd "logfile=$tmp/requests.log"  # the filter's parameter
  filters=()
  nbdcopy --connections=4 --threads=4 --requests=16 "$tmp/image" "$uri"
  connections=$(grep -oE "connection=[0-9]+ Write" "$tmp/requests.log" | sort -u | wc -l)
  ((connections == 4)) || fail "nbdcopy wrote through $connections connections, not 4"
  nbdcopy --connections=4 --threads=4 --requests=16 "$uri" "$tmp/back"
  cmp "$tmp/image" "$tmp/back" || fail "the data read back differs"
  echo "512 MiB (64 MiB of data) in and out over 4 connections x 16 requests, byte for byte"
}

# The same requests on 4 KiB pages (the page numbers in the comments) and on 32 KiB pages, where
# every one of them is a partial page.
case_qemu_io() {
  local pages
  for pages in 4K 32K; do
    start_server size=16M page-size=$pages
    qemu_io "write -P 0x11 0 65536" \
      "write -P 0xab 1000 5000" \
      "read -P 0x11 0 1000" "read -P 0xab 1000 5000" "read -P 0x11 6000 59536"
    # write -z over parts of three pages (8000 .. 20100): page 2 whole, 1 and 4 partly.
    qemu_io "write -z 8000 12100" \
      "read -P 0x11 6000 2000" "read -P 0 8000 12100" "read -P 0x11 20100 45436"
    # discard 30000 .. 50000: pages 8-11 whole, 7 and 12 partly (read as zeros here).
    qemu_io "discard 30000 20000" \
      "read -P 0x11 20100 9900" "read -P 0 30000 20000" "read -P 0x11 50000 15536"
    # Unaligned at the very end of the device.
    qemu_io "write -P 0xcd 16777000 216" "read -P 0xcd 16777000 216" "read -P 0 16700000 77000"
    [[ $(nbdinfo --json "$uri" | grep -o '"block_size_preferred": *[0-9]*' | grep -o '[0-9]*$') \
      == $(($(numfmt --from=iec "$pages"))) ]] || fail "preferred block size is not $pages"
    stop_server
    echo "page-size=$pages: unaligned write / write -z / discard kept every neighbour"
  done
}

case_qemu_img() {
  # A 32 MiB raw image with data, a zero run and holes.
  truncate -s 32M "$tmp/in.img"
  head -c $((3 << 20)) /usr/bin/qemu-img >"$tmp/part" 2>/dev/null || true
  dd if="$tmp/part" of="$tmp/in.img" bs=1M seek=1 conv=notrunc status=none
  dd if=/dev/zero of="$tmp/in.img" bs=1M seek=8 count=4 conv=notrunc status=none
  head -c 1000001 /usr/bin/nbdkit | dd of="$tmp/in.img" bs=1 seek=$((20 << 20)) conv=notrunc \
    status=none
  start_server size=32M compressor=lz4:2
  qemu-img convert -n -f raw -O raw "$tmp/in.img" "$uri"
  qemu-img compare -f raw -F raw "$tmp/in.img" "$uri" || fail "qemu-img compare: the export differs"
  qemu-img convert -f raw -O raw "$uri" "$tmp/out.img"
  qemu-img compare -f raw -F raw "$tmp/in.img" "$tmp/out.img" || fail "the image read back differs"
  echo "qemu-img convert in and back: equal"
}

case_map() {
  start_server size=8M
  # data 0..1M; zero pages 2M..3M (write -z: NBD_CMD_FLAG_NO_HOLE, so zero pages); 4M..5M
  # written then discarded (holes); 5M..5M+10 a partial page of data; the rest never written.
  qemu_io "write -P 0x5a 0 1M" "write -z 2M 1M" "write -P 0x77 4M 1M" "discard 4M 1M" \
    "write -P 0x33 5M 10"
  nbdinfo --map "$uri" >"$tmp/map"
  cat "$tmp/map"
  # nbdinfo --map: offset length type description
  local want
  want=$(printf '%s\n' \
    "0 1048576 0" \
    "1048576 1048576 3" \
    "2097152 1048576 2" \
    "3145728 2097152 3" \
    "5242880 4096 0" \
    "5246976 3141632 3")
  diff <(awk '{print $1, $2, $3}' "$tmp/map") <(echo "$want") || fail "unexpected map"
  grep -q "hole,zero" "$tmp/map" && grep -qE "^ *2097152 +1048576 +2 +zero" "$tmp/map" ||
    fail "the map lacks the hole or the zero run"
  echo "nbdinfo --map shows the data, the zero run and the holes"
}

# concurrent: byte-disjoint writes sharing pages, checked exactly (this is the part that fails
# without the page locks: a lost read-modify-write shows as an older round's bytes); overlap:
# byte-overlapping writes, each byte one of its writers' (a semantic check: with the overlaps
# this heavy a stale byte is usually another writer's too, so it rarely catches a lost update).
case_concurrent() {
  # parallel=on: several requests of one connection at once too, whatever nbdkit this is (the
  # default serves them one at a time on nbdkit before 1.33.10: case_killed_copier).
  local parallel
  for parallel in on auto; do
    start_server size=64K parallel=$parallel
    "$client" concurrent "$sock" 8 300 || fail "concurrent writers (parallel=$parallel)"
    "$client" overlap "$sock" 8 40 || fail "overlapping writers (parallel=$parallel)"
    stop_server
  done
}

case_limit_backing() {
  make_real_data "$tmp/data"
  start_server size=64M limit=8M backing="$tmp/backing" stats-file="$tmp/stats"
  nbdcopy --connections=4 "$tmp/data" "$uri"
  nbdcopy "$uri" "$tmp/back"
  cmp "$tmp/data" "$tmp/back" || fail "the data read back differs"
  stop_server
  # The final stats file: pages went to the backing file and came back from it.
  local bd_count bd_reads bd_writes
  read -r bd_count bd_reads bd_writes < <(sed -n 2p "$tmp/stats")
  echo "bd_stat: $bd_count $bd_reads $bd_writes"
  ((bd_count > 0 && bd_reads > 0 && bd_writes > 0)) || fail "nothing went through the backing file"
  echo "64 MiB through an 8 MiB limit and a backing file, byte for byte"
}

case_corrupt_backing() {
  # 2048 pages of text into a 1 MiB limit: most are written back, in slot order.
  start_server size=16M limit=1M backing="$tmp/backing" stats-file="$tmp/stats"
  "$client" write-pages "$sock" 2048 5 || fail "write-pages"
  # The backing file has no header: slot s is bytes [s*4096, (s+1)*4096) (backing_file.h).
  # Flip a byte inside slot 0's data.
  local size
  size=$(stat -c %s "$tmp/backing")
  ((size >= 4096)) || fail "nothing was written back (backing file: $size bytes)"
  local b
  b=$(od -An -tu1 -j 5 -N 1 "$tmp/backing" | tr -d ' ')
  printf "$(printf '\\%03o' $((255 - b)))" |
    dd of="$tmp/backing" bs=1 seek=5 conv=notrunc status=none
  "$client" check-pages "$sock" 2048 5 || fail "a corrupt slot read as data, or no EIO"
  grep -q "checksum" "$tmp/nbdkit.log" || fail "the server did not log the checksum mismatch"
}

case_enospc() {
  start_server size=64M limit=2M
  "$client" fill "$sock" || fail "fill"
}

case_killed_client() {
  make_real_data "$tmp/data"
  head -c $((8 << 20)) "$tmp/data" >"$tmp/small"
  start_server size=64M
  local rc=0
  "$client" kill-mid "$sock" || rc=$?
  ((rc == 137)) || fail "the client was meant to die of SIGKILL (status $rc)"
  # A second client dies while nbdcopy is mid-transfer on its 4 connections.
  nbdcopy --connections=4 "$tmp/data" "$uri" &
  local copier=$!
  "$client" kill-mid "$sock" || true
  wait "$copier" || fail "the nbdcopy running beside a killed client failed"
  kill -0 "$server" || fail "the server died with its client"
  nbdcopy "$tmp/small" "$uri"
  nbdcopy "$uri" "$tmp/back"
  cmp -n $((8 << 20)) "$tmp/small" "$tmp/back" || fail "after the killed clients, a new client reads wrong data"
  echo "clients killed mid-transfer; the server kept serving the others"
}

# Clients that hang up with replies queued (the test client asks for 256 reads of 64 KiB and
# closes without reading a reply), then nbdcopy killed mid-transfer. On nbdkit 1.32 a parallel
# server aborted at once ("raw_send_socket: Assertion `sock >= 0' failed": a worker sent a queued
# reply after another had closed the socket; fixed in nbdkit 1.33.10), so by default
# (parallel=auto) the plugin serves one request a connection at a time there. The server must
# outlive every client and keep the data of the one that was not killed.
case_killed_copier() {
  make_real_data "$tmp/data"
  head -c $((8 << 20)) "$tmp/data" >"$tmp/small"
  verbose=-v
  start_server size=64M "$@"
  nbdcopy "$tmp/small" "$uri"
  local round copier
  for round in $(seq 1 10); do
    "$client" hang-up "$sock" 1 || fail "hang-up client $round could not connect"
    kill -0 "$server" 2>/dev/null || fail "the server died when hang-up client $round left"
    nbdcopy --connections=1 --requests=64 "$tmp/data" "$uri" 2>/dev/null &
    copier=$!
    sleep "0.0$((round % 5 + 1))"
    kill -9 "$copier" 2>/dev/null || true
    wait "$copier" 2>/dev/null || true
    kill -0 "$server" 2>/dev/null || fail "the server died when copier $round was killed"
  done
  nbdcopy "$tmp/small" "$uri"
  nbdcopy "$uri" "$tmp/back"
  cmp -n $((8 << 20)) "$tmp/small" "$tmp/back" || fail "after the killed clients, wrong data"
  grep -q "using thread model: $(expected_thread_model "$@")" "$tmp/nbdkit.log" ||
    fail "not the expected thread model: $(grep 'thread model' "$tmp/nbdkit.log")"
  echo "10 clients hung up with replies queued, 10 nbdcopy killed mid-transfer; the server served on"
}

# The thread model the plugin asks for with these parameters on the nbdkit installed here:
# parallel unless parallel=off, or parallel=auto on an nbdkit before 1.33.10.
expected_thread_model() {
  local version major minor micro
  version=$(nbdkit --version | awk '{print $2}')
  IFS=. read -r major minor micro <<<"$version"
  case " $* " in
    *" parallel=on "*) echo parallel ;;
    *" parallel=off "*) echo serialize_requests ;;
    *) if ((major > 1 || minor > 33 || (minor == 33 && micro >= 10))); then echo parallel;
       else echo serialize_requests; fi ;;
  esac
}

# Clients that do not speak NBD at all, or break it mid-way, beside one that does: each ends only
# its own connection; the server keeps serving and the data stays.
case_garbage_client() {
  make_real_data "$tmp/data"
  head -c $((8 << 20)) "$tmp/data" >"$tmp/small"
  start_server size=16M
  nbdcopy "$tmp/small" "$uri"
  "$client" garbage "$sock" 64 7 &
  local garbler=$!
  nbdcopy --connections=2 "$uri" "$tmp/during"
  wait "$garbler" || fail "the garbage client could not connect"
  kill -0 "$server" || fail "the server died of a garbage client"
  cmp -n $((8 << 20)) "$tmp/small" "$tmp/during" || fail "a read beside garbage clients got wrong data"
  nbdcopy "$uri" "$tmp/back"
  cmp -n $((8 << 20)) "$tmp/small" "$tmp/back" || fail "after garbage clients, the data changed"
  echo "64 garbage connections ended; the server kept serving and the data stayed"
}

# control=PATH: store commands written to the FIFO act on the live device; bad lines are refused
# and logged; the FIFO goes at exit; an existing path is refused and left alone.
case_control() {
  make_real_data "$tmp/data"
  head -c $((4 << 20)) "$tmp/data" >"$tmp/small"
  start_server size=8M limit=64M backing="$tmp/backing" stats-file="$tmp/stats" control="$tmp/ctl"
  [[ -p $tmp/ctl ]] || fail "control= made no FIFO"
  nbdcopy "$tmp/small" "$uri"
  echo idle >"$tmp/ctl"
  printf 'writeback idle\nwrite 0 1\nbogus\n' >"$tmp/ctl"
  local tries=0
  until grep -q '"bd_count": *[1-9]' "$tmp/stats.json" 2>/dev/null; do
    ((++tries < 600)) || fail "writeback idle through the FIFO wrote nothing back: $(cat "$tmp/stats")"
    sleep 0.1
  done
  until (($(grep -c "control: line" "$tmp/nbdkit.log") >= 2)); do
    ((++tries < 1200)) || fail "the bad control lines were not logged: $(cat "$tmp/nbdkit.log")"
    sleep 0.1
  done
  grep -q "control: line 3: 'write' is not a control command" "$tmp/nbdkit.log" ||
    fail "the page command was not refused by name"
  grep -q "control: line 4: unknown command 'bogus'" "$tmp/nbdkit.log" || fail "bogus not refused"
  nbdcopy "$uri" "$tmp/back"
  cmp -n $((4 << 20)) "$tmp/small" "$tmp/back" || fail "data read back wrong after writeback"
  stop_server
  [[ ! -e $tmp/ctl ]] || fail "the control FIFO was left behind"
  echo keep >"$tmp/precious"
  expect_refused "control=$tmp/precious: exists" size=1M control="$tmp/precious"
  [[ $(cat "$tmp/precious") == keep ]] || fail "control= changed an existing file"
  echo "control FIFO: idle + writeback idle wrote back $(awk '{print $1}' <(sed -n 2p "$tmp/stats")) pages; bad lines refused"
}

# recompress-with=: the control FIFO's recompress uses the secondaries given; pages written with
# lz4 are recompressed smaller with zstd and read back the same; recompress-with= refuses a
# compressor it cannot make, naming it.
case_recompress() {
  make_real_data "$tmp/data"
  head -c $((16 << 20)) "$tmp/data" >"$tmp/small"
  verbose=-v  # the FIFO's commands are logged at debug level
  start_server size=16M compressor=lz4 recompress-with=lzo1x,zstd stats-file="$tmp/stats" \
    control="$tmp/ctl"
  nbdcopy "$tmp/small" "$uri"
  printf 'recompress all 0 2\ncompact\n' >"$tmp/ctl"
  local tries=0
  until grep -q '"recompressed_pages": *[1-9]' "$tmp/stats.json" 2>/dev/null &&
    grep -q "control: compact" "$tmp/nbdkit.log"; do
    ((++tries < 600)) || fail "recompress all through the FIFO recompressed nothing: $(cat "$tmp/stats")"
    sleep 0.1
  done
  grep -q "control: recompress all 0 2: recompressed" "$tmp/nbdkit.log" ||
    fail "the recompression was not logged: $(grep control: "$tmp/nbdkit.log")"
  nbdcopy "$uri" "$tmp/back"
  cmp "$tmp/small" "$tmp/back" || fail "data read back wrong after recompression"
  stop_server
  expect_refused "recompress-with=lz5: unknown compressor" size=1M recompress-with=zstd,lz5
  expect_refused "recompress-with: 4 compressors, at most 3" size=1M recompress-with=zstd,lz4,lzo1x,zstd:9
  echo "recompress all with zstd (priority 2 of lzo1x,zstd): $(grep -o 'control: recompress[^"]*' "$tmp/nbdkit.log" | head -1)"
}

# nbdkit's default mode: it forks into the background (its parent exits) and changes directory
# to /. Relative path parameters must still name files in the directory nbdkit was started
# from, the parent's exit must leave the control FIFO and the backing file to the server, and
# when the server stops, the files zspool made (the backing file, the FIFO) are gone.
case_daemon() {
  make_real_data "$tmp/data"
  head -c $((8 << 20)) "$tmp/data" >"$tmp/small"
  mkdir "$tmp/cwd"
  local stats=zspool-daemon-test-$$.stat
  rm -f "$sock" "$tmp/pid"
  (cd "$tmp/cwd" && LD_PRELOAD=$(server_preload) ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 \
    nbdkit --log=stderr -U "$sock" -P "$tmp/pid" "$plugin" size=16M limit=1M backing=bk \
    stats-file="$stats" control=ctl >>"$tmp/nbdkit.log" 2>&1) || fail "nbdkit did not start"
  local tries=0
  until [[ -s $tmp/pid ]]; do
    ((++tries < 600)) || fail "no pid file from the background server"
    sleep 0.05
  done
  server=$(cat "$tmp/pid")
  idle_threads=$(ls "/proc/$server/task" | wc -l)
  kill -0 "$server" 2>/dev/null || fail "the background server is gone: $(cat "$tmp/nbdkit.log")"
  [[ -p $tmp/cwd/ctl ]] || fail "the control FIFO is gone once nbdkit forked"
  [[ -f $tmp/cwd/bk ]] || fail "the backing file is gone once nbdkit forked"
  nbdcopy "$tmp/small" "$uri"
  echo compact >"$tmp/cwd/ctl"
  until grep -q '"bd_count": *[1-9]' "$tmp/cwd/$stats.json" 2>/dev/null; do
    ((++tries < 1200)) || fail "the stats file in the start directory shows no writeback"
    sleep 0.1
  done
  [[ ! -e /$stats ]] || { rm -f "/$stats" "/$stats.json"; fail "the stats file went to /"; }
  nbdcopy "$uri" "$tmp/back"
  cmp -n $((8 << 20)) "$tmp/small" "$tmp/back" || fail "data read back wrong"
  kill -0 "$server" 2>/dev/null || fail "the server died: $(cat "$tmp/nbdkit.log")"
  stop_server
  [[ ! -e $tmp/cwd/bk ]] || fail "the backing file zspool made was left behind"
  [[ ! -e $tmp/cwd/ctl ]] || fail "the control FIFO was left behind"
  [[ -f $tmp/cwd/$stats ]] || fail "the stats file is gone (it should stay for the operator)"
  echo "background server: relative paths in its start directory, FIFO and backing file kept" \
    "while it served and removed when it stopped"
}

# make_memory_cgroup BYTES: a fresh memory cgroup (v2 or v1) limited to BYTES, its directory in
# $cgroup (removed at exit); returns 1 when none can be made here (not root, no controller).
cgroup=""
make_memory_cgroup() {
  local name=zspool-test-$$ dir
  if [[ -f /sys/fs/cgroup/cgroup.controllers ]] && grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
    dir=/sys/fs/cgroup/$name
    mkdir "$dir" 2>/dev/null && echo "$1" >"$dir/memory.max" 2>/dev/null &&
      { echo 0 >"$dir/memory.swap.max" 2>/dev/null || true; } ||
      { rmdir "$dir" 2>/dev/null; return 1; }
  elif [[ -d /sys/fs/cgroup/memory ]]; then
    dir=/sys/fs/cgroup/memory/$name
    mkdir "$dir" 2>/dev/null && echo "$1" >"$dir/memory.limit_in_bytes" 2>/dev/null ||
      { rmdir "$dir" 2>/dev/null; return 1; }
  else
    return 1
  fi
  cgroup=$dir
}

# Under a memory cgroup smaller than the device, a server without limit= was SIGKILLed by the
# kernel at the cgroup's limit, taking every client's data with it. Now the pool is capped at
# half of what the cgroup leaves: the client gets ENOSPC, the server lives, the data written
# before reads back.
case_cgroup() {
  if [[ -n $(server_preload) ]]; then
    echo "SKIP: a sanitizer runtime's own memory (ASan's quarantine) would not fit the cgroup"
    exit 77
  fi
  make_memory_cgroup $((128 << 20)) || { echo "SKIP: cannot make a memory cgroup here"; exit 77; }
  head -c $((192 << 20)) /dev/urandom >"$tmp/random"  # incompressible: 192 MiB of pool
  # shellcheck disable=SC2016  # $0 and $@ belong to the inner shell
  launcher=(sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cgroup")
  verbose=-v
  start_server size=512M
  grep -q "limit= not given: pool memory capped at" "$tmp/nbdkit.log" ||
    fail "no cap under a 128 MiB cgroup: $(cat "$tmp/nbdkit.log")"
  local rc=0 out
  # nbdcopy hangs up at its first error with requests in flight: on nbdkit 1.32 this failed 1
  # run in 8 (the server aborted) until parallel=auto served one request at a time there.
  out=$(nbdcopy "$tmp/random" "$uri" 2>&1) || rc=$?
  ((rc != 0)) || fail "192 MiB of random data fitted a 128 MiB cgroup?"
  kill -0 "$server" 2>/dev/null || fail "the server was killed: $out"
  grep -q "No space left on device" <<<"$out" || fail "the client did not get ENOSPC: $out"
  nbdcopy "$uri" "$tmp/back"
  cmp -n $((8 << 20)) "$tmp/random" "$tmp/back" || fail "the first 8 MiB do not read back"
  echo "128 MiB cgroup, 512 MiB device: ENOSPC for the client, the server alive, data intact"
}

case_stats_file() {
  make_real_data "$tmp/data"
  head -c $((1 << 20)) "$tmp/data" >"$tmp/1m"
  verbose=-v
  start_server size=16M stats-file="$tmp/stats"
  nbdcopy "$tmp/1m" "$uri"
  qemu_io "write -z 1M 64k"
  # 1 MiB of data and 16 zero pages: 272 pages stored. The file is rewritten about once a
  # second; wait for a rewrite that shows them (ctest's timeout bounds the wait).
  until [[ -f $tmp/stats ]] && (($(cut -d' ' -f1 <"$tmp/stats" | head -1) == 1114112)); do
    sleep 0.2
  done
  local mm bd
  mm=$(sed -n 1p "$tmp/stats")
  bd=$(sed -n 2p "$tmp/stats")
  echo "mm_stat: $mm"
  echo "bd_stat: $bd"
  [[ $(wc -w <<<"$mm") -eq 9 && $(wc -w <<<"$bd") -eq 3 ]] || fail "bad stats file: $mm / $bd"
  (($(cut -d' ' -f6 <<<"$mm") >= 16)) || fail "same_pages should count the 16 zero pages"
  (($(cut -d' ' -f3 <<<"$mm") > 0)) || fail "mem_used_total should count the compressed data"
  grep -q '"orig_data_size":1114112' "$tmp/stats.json" || fail "bad stats.json"
  stop_server
  grep -q "final mm_stat: 1114112 " "$tmp/nbdkit.log" || fail "no final figures in the log"
  echo "stats file, stats.json and the final log line show the data"
}

# expect_refused WHAT PARAM...: nbdkit must refuse to start, with one error line containing WHAT.
expect_refused() {
  local what=$1 out rc=0 preload
  shift
  preload=$(server_preload)
  # A sanitizer-preloaded nbdkit can hang in its exit handlers after the error (see the top):
  # there it is killed after 15 s and only its message is checked.
  local wait_s=60
  [[ -z $preload ]] || wait_s=15
  out=$(LD_PRELOAD=$preload ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 \
    timeout -s KILL "$wait_s" nbdkit -f -U "$tmp/never.sock" "$plugin" "$@" 2>&1 </dev/null) || rc=$?
  ((rc != 0)) || fail "nbdkit started with $*"
  ((rc != 137)) || [[ -n $preload ]] || fail "nbdkit hung after refusing $*"
  echo "$* -> $out"
  grep -qF -- "$what" <<<"$out" || fail "the error does not say '$what': $out"
  (($(grep -c "error" <<<"$out") == 1)) || fail "want one error line: $out"
}

case_bad_parameters() {
  expect_refused "size= is required" compressor=lz4
  expect_refused "compressor=lz5: unknown compressor" size=1M compressor=lz5
  expect_refused "max-chain=99: must be 1..16" size=1M max-chain=99
  expect_refused "page-size=5000: must be a power of two from 4096 to 65536" size=1M page-size=5000
  expect_refused "page-size=131072: must be a power of two" size=1M page-size=128K
  expect_refused "backing file $tmp/no/dir/f: " size=1M backing="$tmp/no/dir/f"
  echo data >"$tmp/precious"  # a non-empty file is never a backing file (never truncated)
  expect_refused "backing file $tmp/precious: not empty" size=1M backing="$tmp/precious"
  [[ $(cat "$tmp/precious") == data ]] || fail "the refused backing file was changed"
  expect_refused "stats-file=$tmp/no/dir/s: cannot write" size=1M stats-file="$tmp/no/dir/s"
  # stats-file= never replaces a file it did not write: not one of other contents, nor what a
  # symlink points to, nor a device.
  expect_refused "stats-file=$tmp/precious: exists and is not a zspool stats file" \
    size=1M stats-file="$tmp/precious"
  ln -s "$tmp/precious" "$tmp/link"
  expect_refused "stats-file=$tmp/link: is a symbolic link" size=1M stats-file="$tmp/link"
  expect_refused "stats-file=/dev/null: exists and is not a regular file" \
    size=1M stats-file=/dev/null
  [[ $(cat "$tmp/precious") == data ]] || fail "stats-file= changed a file that was not its own"
  [[ ! -e $tmp/precious.json ]] || fail "stats-file= wrote beside a file it refused"
  expect_refused "unknown parameter 'colour'" size=1M colour=blue
  expect_refused "could not decipher boolean (maybe)" size=1M parallel=maybe  # nbdkit_parse_bool
  expect_refused "could not parse size string (lots)" size=lots  # nbdkit_parse_size's line
  expect_refused "size cannot be negative" size=1M limit=-5
  [[ ! -e $tmp/never.sock ]] || fail "a refused server made its socket"
  # The magic key: a bare size works.
  start_server 1M
  [[ $(nbdinfo --size "$uri") == 1048576 ]] || fail "nbdkit zspool 1M is not 1 MiB"
}

# Extra plugin parameters after the client go to the cases that take them (killed_copier), e.g.
# parallel=on to see what the default protects from.
"case_$case_name" "${@:4}"
