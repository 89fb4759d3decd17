#!/usr/bin/env bash
# Configures and builds repro into build/ (binaries in build/bin, the shim in build/lib).
#   scripts/build.sh                 everything (tests and benchmarks included)
#   scripts/build.sh TARGET...       only these targets, e.g. reprod reproctl reproshim
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" >/dev/null
targets=()
(($# > 0)) && targets=(--target "$@")
cmake --build build -j"$(nproc)" "${targets[@]}"
