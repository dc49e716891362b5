#!/usr/bin/env bash
# Build and run every example end to end: .attn -> object + header -> a
# linked C program -> its output.
#   examples/run.sh              uses the installed attnc and libattnrt
#   ATTNC=build/attnc ATTNRT_LIB=build/libattnrt.a ATTNRT_INC=runtime/include examples/run.sh
#   examples/run.sh encoder ...  only these examples
# Environment: ATTNC, CC, ATTNRT_LIB, ATTNRT_INC as above; OUT, the folder
# for the objects, headers and programs (default: a new temporary one);
# CFLAGS, extra flags for compiling and linking the C programs (e.g.
# -fsanitize=address,undefined when libattnrt was built so).
# The examples with weights (encoder, sentiment, tagger) load
# examples/weights/NAME.safetensors (written by export_weights.py from
# PyTorch) and compare their outputs with PyTorch's in
# examples/weights/NAME.ref.safetensors; a mismatch fails the script.
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
cflags=()
read -r -a cflags <<< "${CFLAGS:-}" || true
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(sdpa mlp encoder sentiment tagger encoder_stack generate translate)
for name in "${names[@]}"; do
  if [ -d "$here/$name" ]; then
    # a folder: one .attn model, NAME.c, and the files its program reads
    # (made by the folder's PyTorch script)
    src=("$here/$name"/*.attn)
    model=$(basename "${src[0]}" .attn)
    echo "== $name: $ATTNC examples/$name/$model.attn -o $model.o; $CC $name.c $model.o ${lib[*]} -lm -lpthread"
    "$ATTNC" "${src[0]}" -o "$out/$model.o"
    "$CC" -std=c99 -Wall -Wextra -pedantic -Werror -O2 ${cflags[@]+"${cflags[@]}"} -I"$out" \
      ${inc[@]+"${inc[@]}"} "$here/$name/$name.c" "$out/$model.o" "${lib[@]}" -lm -lpthread -o "$out/$name"
    (cd "$here/.." && "$out/$name")
    continue
  fi
  echo "== $name: $ATTNC examples/$name.attn -o $name.o; $CC $name.c $name.o ${lib[*]} -lm -lpthread"
  "$ATTNC" "$here/$name.attn" -o "$out/$name.o"
  "$CC" -std=c99 -Wall -Wextra -pedantic -Werror -O2 ${cflags[@]+"${cflags[@]}"} -I"$out" -I"$here" \
    ${inc[@]+"${inc[@]}"} "$here/$name.c" "$out/$name.o" "${lib[@]}" -lm -lpthread -o "$out/$name"
  args=()
  if [ -f "$here/weights/$name.safetensors" ]; then
    args=("$here/weights/$name.safetensors")
    [ -f "$here/weights/$name.ref.safetensors" ] && args+=("$here/weights/$name.ref.safetensors")
  fi
  "$out/$name" ${args[@]+"${args[@]}"}
  # a checkpoint saved in bfloat16 loads as it is (converted to f32); its
  # reference is PyTorch's output for the weights rounded to bfloat16
  if [ -f "$here/weights/$name.bf16.safetensors" ]; then
    "$out/$name" "$here/weights/$name.bf16.safetensors" "$here/weights/$name.ref.safetensors" y_bf16
  fi
done
