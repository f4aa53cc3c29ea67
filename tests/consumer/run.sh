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
cmake --build "$build_dir" --target zspool_platform zspool_core zspool_store >/dev/null
cmake --install "$build_dir" --prefix "$prefix" >/dev/null
test -f "$prefix/include/zspool/core/zsmalloc.h"

step "installed headers: public ones each compile alone, internal ones are not installed"
for internal in core/pool_state.h core/debug.h core/sync_point.h core/test_util.h core/bench_pages.h \
  platform/proc_maps.h; do
  if [[ -e "$prefix/include/zspool/$internal" ]]; then
    echo "internal header installed: $internal" >&2
    exit 1
  fi
done
while IFS= read -r header; do
  rel=${header#"$prefix/include/"}
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
# shellcheck disable=SC2086  # the flags are word lists
${CXX:-c++} $cflags "$here/main.cc" -o "$tmp/pc_consumer" $libs
test "$("$tmp/pc_consumer")" = OK
# C: compile as C with the include flags only (the C++ standard flag is for C++), link as C++.
# shellcheck disable=SC2086
${CC:-cc} -std=c99 -Wall -Wextra -Werror $(pkg-config --cflags-only-I zspool) \
  -c "$here/pkgconfig_main.c" -o "$tmp/pc_main.o"
# shellcheck disable=SC2086
${CXX:-c++} "$tmp/pc_main.o" -o "$tmp/pc_consumer_c" $libs
test "$("$tmp/pc_consumer_c")" = OK

echo "installed consumer: OK"
