#!/usr/bin/env bash
# Installs the Debian packages zspool builds, tests and benchmarks with (skips what is there).
set -euo pipefail
packages=(build-essential cmake pkg-config git
  liblz4-dev libzstd-dev liblzo2-dev libxxhash-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libjemalloc-dev libmimalloc-dev clang valgrind
  nbdkit nbdkit-plugin-dev libnbd-bin libnbd-dev qemu-utils)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update
$sudo apt-get install -y --no-install-recommends "${missing[@]}"
