#!/usr/bin/env bash
# Smoke check of the benchmark harness, cheap enough for ctest: builds the load generator, starts
# the given server binary on a free loopback port, runs the relay scenario for 2 seconds and
# asserts that messages were delivered, in order, with nothing lost, and that the generator
# exited 0.
#   bench/smoke.sh [path/to/volli-signal]      (default: $VOLLI_BIN, else build/volli-signal)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:-${VOLLI_BIN:-$here/../build/volli-signal}}"
[ -x "$bin" ] || { echo "smoke: server binary not found: $bin" >&2; exit 2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/volli-bench-smoke.XXXXXX")"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

"$here/build.sh" "$work/bin"

# The abuse limits would (rightly) stop a generator flooding from a few addresses.
flags=()
help="$("$bin" --help)"
for f in "--max-connections-per-ip 10000000" "--register-rate 10000000" \
         "--rate-messages 10000000" "--rate-bytes 1024m" "--lookup-rate 100000000"; do
  grep -q -- "${f%% *} " <<<"$help" && flags+=($f)
done
"$bin" --host 127.0.0.1 --port 0 --data-dir "$work/data" --log-format json "${flags[@]}" \
  2>"$work/server.log" &
server_pid=$!
port=""
for _ in $(seq 100); do
  port="$(grep -o '"msg":"listening".*"port":[0-9]*' "$work/server.log" | grep -o '[0-9]*$' || true)"
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; echo "smoke: server exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "smoke: server did not log its port" >&2; exit 1; }

rc=0
out="$("$work/bin/loadgen" relay --port "$port" --server-pid "$server_pid" --pairs 50 --window 8 \
       --duration 2 --warmup 0.5 --timeout 60 --tag smoke 2>"$work/loadgen.err")" || rc=$?
echo "$out"
cat "$work/loadgen.err" >&2
num() { grep -o "\"$1\":[0-9]*" <<<"$out" | head -1 | cut -d: -f2; }
delivered="$(num delivered)"; order="$(num order_errors)"; lost="$(num lost)"
fail=0
[ "$rc" = 0 ] || { echo "smoke: loadgen exited $rc" >&2; fail=1; }
[ "${delivered:-0}" -gt 0 ] || { echo "smoke: no message delivered" >&2; fail=1; }
[ "${order:-1}" = 0 ] || { echo "smoke: $order messages out of order" >&2; fail=1; }
[ "${lost:-1}" = 0 ] || { echo "smoke: $lost messages lost" >&2; fail=1; }
kill -0 "$server_pid" 2>/dev/null || { echo "smoke: server died" >&2; fail=1; }
if [ "$fail" = 0 ]; then
  echo "smoke: ok, $delivered messages relayed in 2 s"
fi
exit "$fail"
