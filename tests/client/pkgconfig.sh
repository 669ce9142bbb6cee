#!/bin/sh
# ctest client/pkg-config: installs the build into a temporary prefix and builds the example of
# docs/client.md against it with nothing but `pkg-config volli`, then runs it (usage: exit 2).
# Usage: pkgconfig.sh BUILD_DIR EXAMPLE_C CC    (VOLLI_EXTRA_CFLAGS: e.g. sanitizer flags)
set -eu
build=$1 example=$2 cc=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
cmake --install "$build" --prefix "$tmp" >"$tmp/install.log"
pc=$(find "$tmp" -name volli.pc | head -n 1)
[ -n "$pc" ] || { echo "volli.pc was not installed"; exit 1; }
export PKG_CONFIG_PATH="$(dirname "$pc")"
flags=$(pkg-config --define-prefix --cflags --libs volli)
echo "pkg-config --cflags --libs volli: $flags"
for h in volli.h client.h error.h; do
    [ -f "$tmp/include/volli/$h" ] || { echo "include/volli/$h was not installed"; exit 1; }
done
# shellcheck disable=SC2086 # word splitting of the flags is intended
"$cc" ${VOLLI_EXTRA_CFLAGS:-} -std=c11 -Wall -Wextra -Werror -o "$tmp/example" "$example" $flags
libdir=$(pkg-config --define-prefix --variable=libdir volli)
set +e
LD_LIBRARY_PATH="$libdir" "$tmp/example" >"$tmp/out" 2>&1
status=$?
set -e
if [ "$status" -ne 2 ] || ! grep -q usage "$tmp/out"; then
    echo "the installed example did not run as expected (status $status):"
    cat "$tmp/out"
    exit 1
fi
echo "installed libvolli links and runs through pkg-config"
