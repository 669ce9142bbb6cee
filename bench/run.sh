#!/usr/bin/env bash
# `make bench`: builds the server (Release, its own build directory), the load generator and the
# Node servers it is compared with, then runs every scenario and writes bench/RESULTS.md and
# bench/plots/*.png. QUICK=1 (or --quick): one run each at smaller sizes, written under
# bench/out/quick/ instead (a smoke run, not for quoting).
#
# Environment: BENCH_BUILD (server build directory, default build/bench), VOLLI_BIN (use this
# server binary instead of building one), JOBS (parallel build jobs, default 2), ONLY (a comma-
# separated list of scenarios, e.g. `make bench ONLY=pq-handshake,pq-relay,pq-latency`: the
# other sections of RESULTS.md keep the previous sitting's runs), and BENCH_BUDGET /
# BENCH_MAX_OTHERS (see bench/run.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."

args=("$@")
if [ "${QUICK:-}" = 1 ] && [[ ! " ${args[*]-} " =~ " --quick " ]]; then args+=(--quick); fi

need() { command -v "$1" >/dev/null 2>&1 || { echo "bench: $1 is missing ($2)" >&2; exit 2; }; }
need cmake "run scripts/bootstrap"
need node "run scripts/bootstrap"
need npm "run scripts/bootstrap"
need taskset "apt-get install util-linux"
need gnuplot "apt-get install gnuplot-nox"
[ "$(nproc)" -ge 2 ] || { echo "bench: needs 2 CPU cores (server and generator are pinned apart)" >&2; exit 2; }

if [ -z "${VOLLI_BIN:-}" ]; then
  build="${BENCH_BUILD:-build/bench}"
  if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  # client_driver (the C client library's test driver) for the cluster failover scenario.
  cmake --build "$build" -j "${JOBS:-2}" --target volli-signal client_driver
  export VOLLI_BIN="$build/volli-signal"
fi
bench/build.sh bench/out
export LOADGEN=bench/out/loadgen

# The PeerJS server and ws, pinned by bench/peers/package-lock.json.
if [ ! -d bench/peers/node_modules/peer ] || [ bench/peers/package-lock.json -nt bench/peers/node_modules/.package-lock.json ]; then
  (cd bench/peers && npm ci --no-audit --no-fund --loglevel=error </dev/null)
fi

export BENCH_COMMAND="${BENCH_COMMAND:-${BENCH_BUILD:+BENCH_BUILD=$BENCH_BUILD }make bench${QUICK:+ QUICK=$QUICK}${ONLY:+ ONLY=$ONLY}}"
exec node bench/run.mjs "${args[@]}"
