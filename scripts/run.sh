#!/usr/bin/env bash
# Set-up command 1: install dependencies, build (Release), run the main job on the built-in
# default corpus. Extra arguments go to `zspool run` (e.g. --input /usr/lib --json).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target zspool_cli
exec ./build/zspool run "$@"
