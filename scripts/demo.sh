#!/usr/bin/env bash
# The repro story on one node (embedded mode): installs what is missing, builds, starts reprod on a
# temporary directory, registers two versions of a dataset, pins a job, admits it, runs a Python
# "training" script under the shim that reads latest/ (-> v2) and gets v1, shows enforce mode
# refusing v2, records facts, replays and verifies the journal (with the hashes of what was read),
# then shows verify and the shim catching data that changed on disk.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# REPRO_BUILD_DIR: use the binaries already built there (CI runs the demo on its sanitized build,
# build-asan/); by default build them into build/ as users do.
build=${REPRO_BUILD_DIR:-build}
[[ -n ${REPRO_BUILD_DIR:-} ]] || scripts/build.sh reprod reproctl reproshim

work=$(mktemp -d /tmp/repro-demo.XXXXXX)
# Each run starts a new node with a new key: reproctl pins the keys of the nodes it has verified
# (trust on first use) under $XDG_CONFIG_HOME/repro, so keep this throwaway node out of yours.
export XDG_CONFIG_HOME="$work/config"
ctl() { echo "\$ reproctl $*" >&2; "$build/bin/reproctl" --addr "unix:$work/reprod.sock" "$@"; }
cleanup() { [[ -n "${daemon:-}" ]] && kill "$daemon" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "A dataset with two versions and a mutable alias: $work/ml/user_ctr/{v1,v2}, latest -> v2"
mkdir -p "$work/ml/user_ctr/v1" "$work/ml/user_ctr/v2"
printf 'user,clicks\n1,3\n2,5\n' >"$work/ml/user_ctr/v1/part-0.csv"
printf 'user,clicks\n1,3\n2,5\n3,8\n' >"$work/ml/user_ctr/v2/part-0.csv"
ln -s v2 "$work/ml/user_ctr/latest"

say "Start reprod (embedded mode: pins, versions and journal in RocksDB under $work/data)"
"$build/bin/reprod" --data_dir "$work/data" --grpc_listen "unix:$work/reprod.sock" \
  --shim_socket "$work/shim.sock" --node_name demo-node --log_level warn &
daemon=$!
for _ in $(seq 100); do [[ -S "$work/reprod.sock" ]] && break; sleep 0.1; done
ctl node

say "Register both versions (every file hashed; the digest identifies the content)"
ctl version add user_ctr v1 "$work/ml/user_ctr/v1"
ctl version add user_ctr v2 "$work/ml/user_ctr/v2"
ctl version list

say "A scheduler refuses a job that is not pinned"
ctl admit train-42 || echo "(exit $?: refused)"

say "Pin the job to v1 with a seed; the same pin again is a no-op, a different one is refused"
ctl pin train-42 user_ctr@v1 --seed 1234
ctl pin train-42 user_ctr@v1 --seed 1234
ctl pin train-42 user_ctr@v2 || echo "(exit $?: pins are immutable)"
ctl admit train-42

say "Train: reproctl run starts the script under the shim; it reads latest/ (-> v2) and gets v1"
cat >"$work/train.py" <<'PY'
import os, sys
sys.path.insert(0, os.environ["REPRO_HELPERS"])
import repro_seed
seed = repro_seed.seed_everything()  # random, numpy, torch from REPRO_RANK_SEED
try:
    with open(os.path.join(sys.argv[1], "part-0.csv")) as f:
        rows = f.read().splitlines()[1:]
except PermissionError as e:
    sys.exit(f"train.py: {e}")
print(f"train.py: {len(rows)} rows from {sys.argv[1]}: {rows}; rank seed {seed}")
PY
export REPRO_HELPERS="$PWD/client/python"
ctl run --job train-42 -- /usr/bin/python3 "$work/train.py" "$work/ml/user_ctr/latest"

say "Enforce mode: the same job reading another version is refused (and journaled)"
ctl run --job train-42 --mode enforce -- /usr/bin/python3 "$work/train.py" \
  "$work/ml/user_ctr/v2" || echo "(exit $?: refused)"

say "Record what people usually write by hand into model_meta.json"
ctl record train-42 git/commit=3f2a9c1 lr=0.001 batch_size=256

say "Reproduce it later: a new job with the same data and seed"
ctl pin train-42-rerun --like train-42

say "The journal: processes, data files read (with SHA-256), the refusal; chained and signed"
ctl journal train-42 >"$work/journal.txt"
awk '$3 != "libraries"' "$work/journal.txt"
echo "  ... and $(awk '$3 == "libraries"' "$work/journal.txt" | wc -l) libraries entries, one per" \
  "shared object the job's processes loaded (version, SHA-256), for instance:"
grep -E ' (libc\.so\.6@|libtorch_cpu\.so)' "$work/journal.txt" || true
ctl verify train-42

say "Someone back-fills v1 in place: verify --rehash notices"
printf 'user,clicks\n1,4\n2,5\n' >"$work/ml/user_ctr/v1/part-0.csv"
ctl verify train-42 --rehash || echo "(exit $?: drift detected)"
ctl run --job train-42 --mode enforce -- /usr/bin/python3 "$work/train.py" \
  "$work/ml/user_ctr/latest" || echo "(exit $?: the shim refuses the changed file)"

say "Done. Everything is under $work"
