#!/usr/bin/env bash
# Smoke check of the benchmark harness, cheap enough for ctest: builds the load generator, starts
# the given server binary on a free loopback port, runs the relay scenario for 2 seconds and
# asserts that messages were delivered, in order, with nothing lost, and that the generator
# exited 0; then the post-quantum scenarios for about a second each (handshakes with every
# response verified, rekeys, a relay inside PQ sessions), so that they cannot silently rot.
# Last, a tiny cluster (bench/run.mjs: cluster-relay): its own Redis and PostgreSQL through
# scripts/redis-service and scripts/pg-service, two nodes, and a 1-second relay with every
# sender on one node and its receiver on the other, then the load spread over both. Everything
# it started is stopped on any exit (trap), only by the PIDs it recorded.
#   bench/smoke.sh [path/to/volli-signal]      (default: $VOLLI_BIN, else build/volli-signal)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:-${VOLLI_BIN:-$here/../build/volli-signal}}"
[ -x "$bin" ] || { echo "smoke: server binary not found: $bin" >&2; exit 2; }

root="$here/.."
work="$(mktemp -d "${TMPDIR:-/tmp}/volli-bench-smoke.XXXXXX")"
server_pid=""
node_pids=()
redis_dir=""
pg_dir=""
stop_pid() {
  if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
  fi
}
cleanup() {
  stop_pid "$server_pid"
  for p in "${node_pids[@]}"; do stop_pid "$p"; done
  # The services' scripts signal only the PID recorded in their own directory.
  if [ -n "$redis_dir" ]; then
    "$root/scripts/redis-service" stop "$redis_dir" >/dev/null 2>&1 ||
      "$root/scripts/redis-service" kill "$redis_dir" >/dev/null 2>&1 || true
  fi
  if [ -n "$pg_dir" ]; then
    "$root/scripts/pg-service" stop "$pg_dir" >/dev/null 2>&1 ||
      "$root/scripts/pg-service" kill "$pg_dir" >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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
stop_pid "$server_pid"
server_pid=""

# 3. A two-node cluster. The services' output goes to files: a daemon may keep an inherited
# descriptor open, and a pipe (command substitution) would then never end.
redis_dir="$work/redis"
mkdir -p "$redis_dir"
# Its own directory under TMPDIR, not inside $work (0700): run as root, pg-service hands the
# directory to the postgres user, who must be able to reach it.
pg_dir="$(mktemp -d "${TMPDIR:-/tmp}/volli-bench-smoke-pg.XXXXXX")"
# The last line of defence when this script is killed outright (a ctest timeout's SIGKILL runs
# no trap): a detached watchdog, once this shell is gone, kills the nodes listed in $work/pids
# (each only while its command line still names $work: a recycled PID is left alone), stops
# both services and removes the directories.
setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done
  for p in $(cat "$5/pids" 2>/dev/null); do
    tr "\0" " " <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "$5/" && kill -KILL "$p" 2>/dev/null
  done
  "$2/scripts/redis-service" kill "$3" >/dev/null 2>&1; "$2/scripts/pg-service" kill "$4" >/dev/null 2>&1
  rm -rf "$3" "$4" "$5"' watchdog "$$" "$root" "$redis_dir" "$pg_dir" "$work" </dev/null >/dev/null 2>&1 &
CI=true "$root/scripts/redis-service" start "$redis_dir" >"$work/redis.url" 2>"$work/redis.err" ||
  { cat "$work/redis.err" >&2; echo "smoke: redis-service start failed" >&2; exit 1; }
CI=true "$root/scripts/pg-service" start "$pg_dir" >"$work/pg.url" 2>"$work/pg.err" ||
  { tail -20 "$work/pg.err" >&2; echo "smoke: pg-service start failed" >&2; exit 1; }
redis_url="$(tail -1 "$work/redis.url")"
pg_url="$(tail -1 "$work/pg.url")"
redis_pid="$(cat "$redis_dir/redis.pid")"
node_ports=()
for n in 1 2; do
  mkdir -p "$work/node$n"
  "$bin" --host 127.0.0.1 --port 0 --data-dir "$work/node$n" --log-format json "${flags[@]}" \
    --redis "$redis_url" --database "$pg_url" --node-id "smoke$n-$$" \
    --cluster-heartbeat 0.2 --cluster-node-timeout 1 2>"$work/node$n.log" &
  node_pids+=($!)
  echo "$!" >>"$work/pids"
done
for n in 1 2; do
  p=""
  for _ in $(seq 150); do
    p="$(grep -o '"msg":"listening".*"port":[0-9]*' "$work/node$n.log" | grep -o '[0-9]*$' || true)"
    [ -n "$p" ] && break
    kill -0 "${node_pids[$((n - 1))]}" 2>/dev/null ||
      { tail -20 "$work/node$n.log" >&2; echo "smoke: node $n exited" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$p" ] || { tail -20 "$work/node$n.log" >&2; echo "smoke: node $n did not log its port" >&2; exit 1; }
  node_ports+=("$p")
done
# Both nodes must see each other (healthy, two nodes in volli_cluster_nodes) before the run.
for p in "${node_ports[@]}"; do
  ok=""
  for _ in $(seq 100); do
    m="$(curl -fsS "http://127.0.0.1:$p/metrics" 2>/dev/null || true)"
    grep -q '^volli_cluster_nodes 2$' <<<"$m" && { ok=1; break; }
    sleep 0.1
  done
  [ -n "$ok" ] || { echo "smoke: node on port $p does not count 2 cluster nodes" >&2; exit 1; }
done
for place in cross spread; do
  rc=0
  out="$("$work/bin/loadgen" relay --port "${node_ports[0]}" --port2 "${node_ports[1]}" \
         --place "$place" --server-pid "${node_pids[0]}" --server-pid2 "${node_pids[1]}" \
         --redis-pid "$redis_pid" --pairs 20 --window 8 --duration 1 --warmup 0.3 \
         --tag "smokec$place" --timeout 60 2>"$work/loadgen.err")" || rc=$?
  echo "$out"
  cat "$work/loadgen.err" >&2
  [ "$rc" = 0 ] || bad "cluster relay ($place): loadgen exited $rc"
  [ "$(num "$out" delivered)" -gt 0 ] 2>/dev/null || bad "cluster relay ($place): no message delivered"
  [ "$(num "$out" order_errors)" = 0 ] || bad "cluster relay ($place): messages out of order"
  [ "$(num "$out" lost)" = 0 ] || bad "cluster relay ($place): messages lost"
  [ "$(num "$out" other_msgs)" = 0 ] || bad "cluster relay ($place): unexpected messages (peer_offline?)"
  grep -q "\"place\":\"$place\"" <<<"$out" || bad "cluster relay ($place): not run across two nodes"
  [ "$place" = cross ] && cross_sent="$(num "$out" sent)"
done
# Every message of the cross run went over the bus from the first node to the second (the
# spread run's stay on their node).
bus_out="$(curl -fsS "http://127.0.0.1:${node_ports[0]}/metrics" |
           grep -o '^volli_bus_messages_out_total [0-9]*' | cut -d' ' -f2 || true)"
echo "smoke: node 1 sent ${bus_out:-?} records over the bus for ${cross_sent:-?} cross-node messages"
[ "${bus_out:-0}" -ge "${cross_sent:-1}" ] 2>/dev/null || bad "cluster relay: messages did not cross the bus"
for p in "${node_pids[@]}"; do kill -0 "$p" 2>/dev/null || bad "a cluster node died"; done

if [ "$fail" = 0 ]; then
  echo "smoke: ok, $delivered messages relayed in 2 s; PQ handshakes, rekeys and sealed relay ok;" \
       "cluster relay across two nodes ok"
fi
exit "$fail"
