#!/usr/bin/env bash
# Installs a built zspool into a scratch prefix and builds, links and runs two consumers of it:
#   1. a CMake project using find_package(zspool) and zspool::zspool (C++ and C programs);
#   2. the same sources compiled by hand with `pkg-config --cflags --libs zspool`.
# Usage: tests/consumer/run.sh BUILD_DIR     (BUILD_DIR: a configured and built zspool tree)
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
build_dir=$(cd "$1" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zspool-consumer.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

step() { printf '== %s\n' "$*"; }

step "install $build_dir into $prefix"
# The install needs the libraries built; build them (a no-op when they are current).
cmake --build "$build_dir" --target zspool_platform zspool_core zspool_store zspool_shared >/dev/null
cmake --install "$build_dir" --prefix "$prefix" >/dev/null
test -f "$prefix/include/zspool/core/zsmalloc.h"

step "installed headers: no internal one, none includes one, each compiles alone"
# Internal headers live in internal/ folders (and testing/, workload/, bench/, cli/ are never
# installed); the install takes platform/, core/ and store/ by folder. Both halves are checked
# here, so a header moved or included the wrong way fails this test.
src=$(cd "$here/../../src" && pwd)
while IFS= read -r internal; do
  rel=${internal#"$src/"}
  if [[ -e "$prefix/include/$rel" ]]; then
    echo "internal header installed: $rel" >&2
    exit 1
  fi
done < <(find "$src/zspool" -name '*.h' \( -path '*/internal/*' -o -path '*/testing/*' -o \
  -path '*/workload/*' -o -path '*/bench/*' -o -path '*/cli/*' \) | sort)
while IFS= read -r header; do
  rel=${header#"$prefix/include/"}
  if grep -nE '#include [<"]zspool/([a-z]+/)*(internal|testing|workload|bench|cli)/' "$header"; then
    echo "installed header includes an internal one: $rel" >&2
    exit 1
  fi
  printf '#include <%s>\n' "$rel" >"$tmp/alone.cc"
  ${CXX:-c++} -std=c++20 -fsyntax-only -I"$prefix/include" "$tmp/alone.cc" ||
    { echo "installed header does not compile alone: $rel" >&2; exit 1; }
done < <(find "$prefix/include/zspool" -name '*.h' | sort)

step "find_package(zspool): configure, build, run"
cmake -S "$here" -B "$tmp/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=Release >"$tmp/configure.log" 2>&1 || { cat "$tmp/configure.log"; exit 1; }
cmake --build "$tmp/cmake-build" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }
test "$("$tmp/cmake-build/zspool_consumer")" = OK
test "$("$tmp/cmake-build/zspool_consumer_c")" = OK

step "pkg-config zspool: compile, link, run"
libdir=$(find "$prefix" -name zspool.pc -printf '%h\n' | head -n 1)
test -n "$libdir"
export PKG_CONFIG_PATH="$libdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
pkg-config --exists --print-errors zspool
cflags=$(pkg-config --cflags zspool)
libs=$(pkg-config --libs zspool)
case " $cflags " in *" -std="*) echo "pkg-config --cflags names a language standard: $cflags" >&2; exit 1;; esac
# shellcheck disable=SC2086  # the flags are word lists
${CXX:-c++} -std=c++20 $cflags "$here/main.cc" -o "$tmp/pc_consumer" $libs
test "$("$tmp/pc_consumer")" = OK
# C: compile as C with exactly what pkg-config gives (only include paths), link as C++.
# shellcheck disable=SC2086
${CC:-cc} -std=c99 -Wall -Wextra -Werror $cflags -c "$here/pkgconfig_main.c" -o "$tmp/pc_main.o"
# shellcheck disable=SC2086
${CXX:-c++} "$tmp/pc_main.o" -o "$tmp/pc_consumer_c" $libs
test "$("$tmp/pc_consumer_c")" = OK

step "libzspool.so: a soname, only the public API exported, consumers link and run"
so=$(find "$prefix" -name 'libzspool.so.*.*' | head -n 1)
test -n "$so"
readelf -d "$so" | grep -q 'SONAME.*libzspool\.so\.[0-9]' || { echo "no soname: $so" >&2; exit 1; }
# Defined dynamic symbols: the C API (zs_*) and C++ symbols of namespace zspool only; none of the
# internals (PoolState, OsPageSource, BackingFile, the spin mutex, sync points).
nm -D --defined-only -C "$so" | awk '{ $1 = ""; $2 = ""; print }' >"$tmp/exports.txt"
if grep -E '(PoolState|OsPageSource|BackingFile|SpinThenBlockMutex|StoreInternals|ClassState|ZsPage)::|sync_point' \
  "$tmp/exports.txt"; then
  echo "libzspool.so exports internals (above)" >&2
  exit 1
fi
grep -q ' zs_malloc$' "$tmp/exports.txt" || { echo "zs_malloc not exported" >&2; exit 1; }
grep -q 'zspool::Pool::create' "$tmp/exports.txt" || { echo "Pool::create not exported" >&2; exit 1; }
libdir_so=$(dirname "$so")
${CXX:-c++} -std=c++20 -I"$prefix/include" "$here/main.cc" -o "$tmp/so_consumer" \
  -L"$libdir_so" -lzspool -Wl,-rpath,"$libdir_so"
test "$("$tmp/so_consumer")" = OK
${CC:-cc} -std=c99 -I"$prefix/include" "$here/pkgconfig_main.c" -o "$tmp/so_consumer_c" \
  -L"$libdir_so" -lzspool -Wl,-rpath,"$libdir_so"
test "$("$tmp/so_consumer_c")" = OK

echo "installed consumer: OK"
