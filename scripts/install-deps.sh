#!/bin/sh
# Install the Debian (bookworm) packages scalexd needs to build and test
# (with --bench also those of the benchmarks: wrk for bench/bench_daemon.sh).
# Idempotent: apt-get skips what is already installed. Needs root (or sudo).
set -eu
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

BUILD_PKGS="build-essential cmake pkg-config
 libhdf5-dev liblzf-dev libdeflate-dev libopenblas-dev zlib1g-dev
 libsqlite3-dev libuv1-dev libmicrohttpd-dev libjansson-dev libpq-dev libssl-dev
 libigraph-dev libcairo2-dev check
 clang libclang-rt-14-dev"
TEST_PKGS="python3 python3-anndata python3-h5py python3-scipy python3-numpy python3-pandas
 curl sqlite3
 chromium systemd jq
 postgresql"
# clang + libclang-rt-14-dev: the fuzz build of scripts/test.sh (tests/fuzz). Debian's clang
# does not pull in libclang-rt-14-dev, which holds libFuzzer (-fsanitize=fuzzer) and clang's
# ASan/UBSan runtimes; libfuzzer-14-dev is only the standalone libFuzzer.a, not needed.
# Benchmarks only (bench/bench_daemon.sh): installed with --bench, so CI does not need them.
BENCH_PKGS="wrk"
WANT="$BUILD_PKGS $TEST_PKGS"
for arg in "$@"; do
  case "$arg" in
    --bench) WANT="$WANT $BENCH_PKGS" ;;
    *) echo "usage: scripts/install-deps.sh [--bench]" >&2; exit 2 ;;
  esac
done

# Only touch apt when something is missing, so re-runs are fast and offline-safe.
missing=""
for p in $WANT; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "install-deps: installing:$missing"
  $SUDO apt-get update -q
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -q --no-install-recommends $missing
else
  echo "install-deps: all packages present"
fi
