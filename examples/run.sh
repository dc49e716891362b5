#!/usr/bin/env bash
# Build and run every example end to end: .attn -> object + header -> a
# linked C program -> its output.
#   examples/run.sh              uses the installed attnc and libattnrt
#   ATTNC=build/attnc ATTNRT_LIB=build/libattnrt.a ATTNRT_INC=runtime/include examples/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ATTNC=${ATTNC:-attnc}
CC=${CC:-cc}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
inc=()
[ -n "${ATTNRT_INC:-}" ] && inc=(-I"$ATTNRT_INC")
lib=(-lattnrt)
[ -n "${ATTNRT_LIB:-}" ] && lib=("$ATTNRT_LIB")
for name in sdpa mlp; do
  echo "== $name: $ATTNC examples/$name.attn -o $name.o; $CC $name.c $name.o ${lib[*]} -lm -lpthread"
  "$ATTNC" "$here/$name.attn" -o "$out/$name.o"
  "$CC" -std=c99 -Wall -Wextra -pedantic -Werror -O2 -I"$out" "${inc[@]}" "$here/$name.c" "$out/$name.o" \
    "${lib[@]}" -lm -lpthread -o "$out/$name"
  "$out/$name"
done
