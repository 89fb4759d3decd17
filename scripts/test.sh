#!/usr/bin/env bash
# The test command (README; CI runs it through .ci/run). On a fresh Debian 12 machine:
#   1. installs what is missing;
#   2. runs the whole suite under ASan+UBSan (scripts/test-sanitize.sh: build-asan/, -O1 -g1);
#   3. runs the demo on those sanitized binaries (scripts/demo.sh: a real reprod, pins, a Python job
#      under the shim in record and enforce mode, verify), as a smoke test of the story the README
#      tells;
#   4. runs each libFuzzer target for a few seconds from its corpus (scripts/fuzz.sh: clang-14,
#      build-fuzz/), so a parser change that crashes on a mutated input fails here, not later.
# The suite runs once, sanitized, and the plain build (build/) is left to the demo command and
# --plain: each would add about 5 minutes to CI's 2 cores (figures: README, "Hardening").
#   scripts/test.sh --plain [CTEST ARGS]   every test on the plain build instead (build/)
set -euo pipefail
cd "$(dirname "$0")/.."
phase() { echo "== test: $* (at ${SECONDS}s)"; }
if [[ "${1:-}" == --plain ]]; then
  shift
  scripts/install-deps.sh
  scripts/build.sh
  exec ctest --test-dir build --output-on-failure -j"$(nproc)" "$@"
fi
phase "dependencies"
scripts/install-deps.sh
phase "the whole suite under ASan+UBSan"
scripts/test-sanitize.sh "$@"
phase "the demo on the sanitized binaries, as a smoke test"
log=$(mktemp /tmp/repro-demo-log.XXXXXX)
(source scripts/sanitizer-env.sh build-asan && REPRO_BUILD_DIR=build-asan scripts/demo.sh) \
  >"$log" 2>&1 || { tail -50 "$log"; exit 1; }
phase "fuzz smoke: each libFuzzer target for ${FUZZ_SECONDS:-5}s"
scripts/fuzz.sh "${FUZZ_SECONDS:-5}"
phase "done"
