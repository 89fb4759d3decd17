# Sourced, from the repository root: exports the sanitizers' runtime options for the programs of a
# sanitized build dir ($1: build-asan or build-tsan), with the suppressions of tests/sanitizers/.
# Options already set in the environment are kept.
supp=$PWD/tests/sanitizers
# verify_asan_link_order=0: tests run our instrumented helpers with the (uninstrumented) shim
# preloaded, which puts the shim before libasan in the library list; that is expected here.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:check_initialization_order=1:verify_asan_link_order=0}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$supp/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp}
# TSan's reports, also those of the reprods that tests start, are written to $1/tsan/report.PID.
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp:log_path=$PWD/$1/tsan/report}
