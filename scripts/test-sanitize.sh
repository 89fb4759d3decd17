#!/usr/bin/env bash
# Builds repro with sanitizers into its own build dir and runs the tests under them.
#   scripts/test-sanitize.sh                      ASan+UBSan (build-asan/), every test
#   scripts/test-sanitize.sh thread               TSan (build-tsan/), the tests of the journal group
#                                                 commit, the shim server, session and process
#                                                 ends, the etcd client and mirror, and the
#                                                 cluster (real reprods on a real etcd); not run
#                                                 by CI
#   scripts/test-sanitize.sh address -LE integration   extra arguments go to ctest
# The LD_PRELOAD shim stays uninstrumented (it runs inside uninstrumented programs); everything
# else, reprod and reproctl included, is instrumented. The build is -O1 -g1 (line tables for the
# reports, no variable info: about a third less compile time than -O2 -g) and leaves out the
# benchmark programs, which ctest does not run. Suppressions: tests/sanitizers/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
sanitize=address,undefined
dir=build-asan
case "${1:-}" in
  thread) sanitize=thread; dir=build-tsan; shift ;;
  address|address,undefined) shift ;;
esac
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREPRO_SANITIZE="$sanitize" \
  -DREPRO_BUILD_BENCH=OFF -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" "${launcher[@]}" >/dev/null
jobs=${JOBS:-$(nproc)}
source scripts/sanitizer-env.sh "$dir"
if [[ $sanitize == thread ]]; then
  # etcd_pin_store_test: the mirror; shim_programs_test: real programs under the shim against an
  # instrumented reprod; abuse_test: that reprod's shim server under floods; cluster_test:
  # instrumented reprods on a real etcd; shim_restart_test: processes that end without their count
  # (ProcessEnds' thread); daemon_test: Record and RecordStream answered from the journal's
  # committer thread. absl::Mutex is made visible to TSan by
  # tests/sanitizers/tsan_absl_sync.cc.
  tests=(journal_test shim_server_test shim_session_test shim_fair_queue_test shim_programs_test
         shim_process_ends_test shim_restart_test daemon_test abuse_test etcd_client_test
         etcd_pin_store_test cluster_test)
  cmake --build "$dir" -j"$jobs" --target "${tests[@]}" reprod reproctl reproshim shim_probe \
    shim_flood
  rm -rf "$dir/tsan"
  mkdir -p "$dir/tsan"
  status=0
  ctest --test-dir "$dir" --output-on-failure -j"$jobs" -R "^($(IFS='|'; echo "${tests[*]}"))\$" "$@" ||
    status=$?
  if compgen -G "$dir/tsan/report.*" >/dev/null; then
    cat "$dir"/tsan/report.*
    echo "ThreadSanitizer reported races: $dir/tsan/" >&2
    status=1
  fi
  exit "$status"
else
  cmake --build "$dir" -j"$jobs"
  ctest --test-dir "$dir" --output-on-failure -j"$jobs" "$@"
fi
