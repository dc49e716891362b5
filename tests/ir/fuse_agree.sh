#!/usr/bin/env bash
# fuse_agree.sh ATTNC NPYCMP FILE: runs a run/golden test's model through
# --run with fusion on and with --no-fuse, on the test's own inputs, and
# checks that the outputs agree within 1e-5 (abs + rel).
set -uo pipefail
ATTNC=$1 NPYCMP=$2 FILE=$3
dir=${FILE%.attn}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/attnc-fuse.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
args=()
for f in "$dir"/in.*.npy; do [[ -e $f ]] || continue; n=${f##*/in.}; n=${n%.npy}; args+=(--input "$n=$f"); done
[[ -e $dir/weights.safetensors ]] && args+=(--weights "$dir/weights.safetensors")
outs=()
for f in "$dir"/out.*.npy; do n=${f##*/out.}; n=${n%.npy}; outs+=("$n"); done
for mode in fused unfused; do
  mkdir "$tmp/$mode"
  extra=(); [[ $mode == unfused ]] && extra=(--no-fuse)
  oargs=(); for n in "${outs[@]}"; do oargs+=(--output "$n=$tmp/$mode/$n.npy"); done
  "$ATTNC" "$FILE" --run "${args[@]}" "${oargs[@]}" "${extra[@]}" || { echo "FAIL: attnc --run ($mode) exited $?"; exit 1; }
done
status=0
for n in "${outs[@]}"; do
  "$NPYCMP" "$tmp/fused/$n.npy" "$tmp/unfused/$n.npy" --atol 1e-5 --rtol 1e-5 || { echo "FAIL: output $n differs"; status=1; }
done
exit $status
