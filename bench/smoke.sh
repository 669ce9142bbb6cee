#!/usr/bin/env bash
# Smoke check of the benchmark harness, cheap enough for ctest: builds the load generator, starts
# the given server binary on a free loopback port, runs the relay scenario for 2 seconds and
# asserts that messages were delivered, in order, with nothing lost, and that the generator
# exited 0; then the post-quantum scenarios for about a second each (handshakes with every
# response verified, rekeys, a relay inside PQ sessions), so that they cannot silently rot.
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
         "--rate-messages 10000000" "--rate-bytes 1024m" "--lookup-rate 100000000" \
         "--api-port -1"; do
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

lg() { "$work/bin/loadgen" "$@" --port "$port" --server-pid "$server_pid" --timeout 60 2>"$work/loadgen.err"; }
num() { grep -o "\"$2\":[0-9]*" <<<"$1" | head -1 | cut -d: -f2; }
fail=0
bad() { echo "smoke: $*" >&2; fail=1; }

# 1. Plaintext relay, 2 s.
rc=0
out="$(lg relay --pairs 50 --window 8 --duration 2 --warmup 0.5 --tag smoke)" || rc=$?
echo "$out"
cat "$work/loadgen.err" >&2
delivered="$(num "$out" delivered)"
[ "$rc" = 0 ] || bad "relay: loadgen exited $rc"
[ "${delivered:-0}" -gt 0 ] || bad "relay: no message delivered"
[ "$(num "$out" order_errors)" = 0 ] || bad "relay: messages out of order"
[ "$(num "$out" lost)" = 0 ] || bad "relay: messages lost"

# 2. The post-quantum scenarios (bench/run.mjs: pq-handshake, pq-relay, pq-latency), briefly:
# every response fully verified (signature, keys, a sealed ping) for the hybrid; rekeys inside
# the session for ML-KEM-768; and a relay where every frame is sealed.
for args in "--pq X25519MLKEM768 --verify-every 1" "--pq ML-KEM-768 --per-conn 4 --verify-every 3"; do
  rc=0
  # shellcheck disable=SC2086
  out="$(lg pq-handshake $args --pq-pool 8 --concurrency 8 --conns 100000 --duration 1 \
         --warmup 0.2 --tag smokeh)" || rc=$?
  echo "$out"
  cat "$work/loadgen.err" >&2
  [ "$rc" = 0 ] || bad "pq-handshake $args: loadgen exited $rc"
  [ "$(num "$out" handshakes)" -gt 0 ] 2>/dev/null || bad "pq-handshake $args: no handshake"
  [ "$(num "$out" key_checks)" -gt 0 ] 2>/dev/null || bad "pq-handshake $args: no key proved"
  [ "$(num "$out" bad_response)" = 0 ] || bad "pq-handshake $args: bad responses"
done
rc=0
out="$(lg relay --pq ML-KEM-768 --pq-pool 8 --pairs 20 --window 8 --duration 1 --warmup 0.3 \
       --tag smokep)" || rc=$?
echo "$out"
cat "$work/loadgen.err" >&2
[ "$rc" = 0 ] || bad "pq relay: loadgen exited $rc"
[ "$(num "$out" delivered)" -gt 0 ] 2>/dev/null || bad "pq relay: no message delivered"
[ "$(num "$out" frames_opened)" -gt "$(num "$out" delivered)" ] 2>/dev/null ||
  bad "pq relay: frames were not sealed"
[ "$(num "$out" open_failed)" = 0 ] || bad "pq relay: frames failed to open"
[ "$(num "$out" order_errors)" = 0 ] || bad "pq relay: messages out of order"
[ "$(num "$out" lost)" = 0 ] || bad "pq relay: messages lost"

kill -0 "$server_pid" 2>/dev/null || bad "server died"
if [ "$fail" = 0 ]; then
  echo "smoke: ok, $delivered messages relayed in 2 s; PQ handshakes, rekeys and sealed relay ok"
fi
exit "$fail"
