#!/usr/bin/env bash
# Builds repro with sanitizers into its own build dir and runs the tests under them.
#   scripts/test-sanitize.sh                      ASan+UBSan (build-asan/), every test
#   SANITIZE=thread scripts/test-sanitize.sh      TSan (build-tsan/)
#   scripts/test-sanitize.sh -LE integration      extra arguments go to ctest
# The LD_PRELOAD shim stays uninstrumented (it runs inside uninstrumented programs); everything
# else, reprod and reproctl included, is instrumented. Not part of scripts/test.sh: a sanitizer
# build is a second full build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
sanitize=${SANITIZE:-address,undefined}
dir=build-asan
[[ $sanitize == thread ]] && dir=build-tsan
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREPRO_SANITIZE="$sanitize" \
  "${launcher[@]}" >/dev/null
cmake --build "$dir" -j"${JOBS:-$(nproc)}"
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
ctest --test-dir "$dir" --output-on-failure -j"${JOBS:-$(nproc)}" "$@"
