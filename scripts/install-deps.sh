#!/usr/bin/env bash
# Installs the Debian 12 packages that build, test and demo repro need. Idempotent; run as root.
#   scripts/install-deps.sh            build + tests + demo
#   scripts/install-deps.sh --bench    also the peers the benchmarks compare against
#   scripts/install-deps.sh --fuzz     also clang and libFuzzer (scripts/fuzz.sh)
set -euo pipefail

packages=(
  build-essential cmake pkg-config git ca-certificates
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev librocksdb-dev libssl-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libgtest-dev libgmock-dev
  openssl coreutils procps strace busybox-static
  etcd-server etcd-client
  rocksdb-tools  # ldb: the tamper tests edit a stopped reprod's database from outside
  python3 python3-numpy python3-torch python3-jsonpatch python3-yaml
  python3-jsonschema python3-securesystemslib systemd
  slurm-wlm slurmctld slurmd slurm-client munge libslurm-dev
)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(reprozip)
fi
if [[ "${1:-}" == "--fuzz" ]]; then
  packages+=(clang-14 libfuzzer-14-dev)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: need root to install: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
