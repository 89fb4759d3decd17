#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (ASan+UBSan, into build-fuzz/) and runs each
# for SECONDS (default 60), one after the other, on one core. New inputs go to
# build-fuzz/corpus/<target>/, crashes to build-fuzz/crashes/; copy a crasher into
# tests/fuzz/corpus/<target>/ once fixed so that fuzz_corpus_replay keeps it fixed.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --fuzz
seconds=${1:-60}
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(http_request admission_review journal_entry manifest shim_datagram shim_reply)
fi
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
# -O1 -g1, as the sanitized suite: about half the compile time of -O2 -g, and what libFuzzer's
# documentation builds with.
CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
  -DREPRO_FUZZ=ON "${launcher[@]}" >/dev/null
cmake --build build-fuzz -j"${JOBS:-$(nproc)}" --target "${targets[@]/#/fuzz_}"
mkdir -p build-fuzz/crashes
status=0
for t in "${targets[@]}"; do
  echo "== fuzz_$t for ${seconds}s"
  mkdir -p "build-fuzz/corpus/$t"
  nice build-fuzz/bin/"fuzz_$t" "build-fuzz/corpus/$t" "tests/fuzz/corpus/$t" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="build-fuzz/crashes/$t-" 2>&1 | grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY|fuzz invariant)' || true
  [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
done
# A crasher is printed as base64 too, so that a CI log alone is enough to reproduce it.
for crash in build-fuzz/crashes/*; do
  [[ -f $crash ]] || continue
  echo "== $crash ($(stat -c %s "$crash") bytes), base64 (first 8 KiB):"
  head -c 8192 "$crash" | base64 -w 0
  echo
done
exit $status
