#!/usr/bin/env bash
# run.sh ATTNC CC RUNTIME_SRC RUNTIME_INC SANITIZE MODEL.attn DIR
#
# Compiles MODEL.attn with ATTNC to an object, then builds
# concurrent_run.c, the runtime's sources (RUNTIME_SRC/*.c, instrumented
# too) and the object with CC -fsanitize=SANITIZE, and runs it on DIR
# (see concurrent_run.c).  SANITIZE is `thread` (ThreadSanitizer) or
# `address,undefined`.
set -euo pipefail
[ $# -eq 7 ] || { sed -n '2,/^set /{/^#/p}' "$0" >&2; exit 2; }
ATTNC=$1 CC=$2 SRC=$3 INC=$4 SAN=$5 FILE=$6 DIR=$7
here=$(cd "$(dirname "$0")" && pwd)
model=$(sed -n 's/^[[:space:]]*model[[:space:]]\{1,\}\([A-Za-z_][A-Za-z0-9_]*\)[[:space:]]*{.*$/\1/p' "$FILE" | head -n 1)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/attnc-concurrent.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

"$ATTNC" "$FILE" -o "$tmp/$model.o"
"$CC" -std=c11 -O1 -g -fsanitize="$SAN" -fno-omit-frame-pointer -DMODEL_DESC="${model}_model" -I "$INC" \
  "$here/concurrent_run.c" "$SRC"/*.c "$tmp/$model.o" -lm -lpthread -o "$tmp/concurrent_run"
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
ASAN_OPTIONS="detect_leaks=1 abort_on_error=1" UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1" \
  "$tmp/concurrent_run" "$DIR"
