#!/usr/bin/env bash
# Builds the benchmark load generator: bench/build.sh [OUTDIR] -> OUTDIR/loadgen (default
# bench/out). Same warnings as the server (-Werror). SANITIZE=1 adds ASan+UBSan.
# The post-quantum client (lg_pq.c) uses the server's own primitives: src/crypto (ML-KEM-768,
# the PQ key schedule and AES-GCM frames, Ed25519) and the src/common files they need.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/out}"
mkdir -p "$out"
flags=(-std=gnu11 -O2 -g -D_GNU_SOURCE -Wall -Wextra -Wformat=2 -Wstrict-prototypes
       -Wmissing-prototypes -Wshadow -Werror -fno-strict-aliasing)
if [ "${SANITIZE:-0}" = 1 ]; then
  flags+=(-O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
fi
src="$here/../src"
srcs=("$here"/loadgen.c "$here"/lg_net.c "$here"/lg_proto.c "$here"/lg_relay.c
      "$here"/lg_presence.c "$here"/lg_stats.c "$here"/lg_pq.c "$here"/lg_pqhs.c
      "$src"/crypto/mlkem.c "$src"/crypto/mlkem_poly.c "$src"/crypto/pqkx.c "$src"/crypto/sign.c
      "$src"/common/base64.c "$src"/common/error.c)
flags+=(-I"$src")
# Rebuild only when a source is newer than the binary (or the flags changed).
stamp="$out/.loadgen-flags"
if [ -x "$out/loadgen" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "${flags[*]}" ]; then
  newer=0
  for f in "${srcs[@]}" "$here/lg.h" "$src"/crypto/*.h "$src"/common/*.h; do
    [ "$f" -nt "$out/loadgen" ] && newer=1
  done
  [ "$newer" = 0 ] && exit 0
fi
${CC:-cc} "${flags[@]}" -o "$out/loadgen" "${srcs[@]}" -ljansson -lcrypto -lm
printf '%s' "${flags[*]}" > "$stamp"
