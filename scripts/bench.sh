#!/usr/bin/env bash
# Builds repro and runs the benchmark programs (tests/bench); each prints ratios against a
# baseline measured in the same run. Pass a name to run one: scripts/bench.sh journal_bench
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --bench
scripts/build.sh
export REPRO_BIN_DIR=$PWD/build/bin REPRO_LIB_DIR=$PWD/build/lib REPRO_SOURCE_DIR=$PWD
benches=("$@")
if ((${#benches[@]} == 0)); then
  benches=(register_bench journal_bench webhook_bench cluster_bench shim_bench view_bench isolate_bench export_bench auth_bench fair_share_bench)
fi
for b in "${benches[@]}"; do
  echo "== $b"
  "build/bin/$b"
done
