#!/usr/bin/env bash
# memory_test.sh ATTNC RANDNPY PEAKRSS N MAX_MIB: examples/sdpa.attn at
# T = S = N through --run; its peak RSS must stay under MAX_MIB, far below
# the 4*N*N bytes an unfused score matrix would take.
set -euo pipefail
ATTNC=$1 RANDNPY=$2 PEAKRSS=$3 N=$4 MAX=$5
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/attnc-mem.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for x in q k v; do "$RANDNPY" "$tmp/$x.npy" "$N" 64 "${#x}$N"; done
echo "scores unfused: $((4 * N * N / 1048576)) MiB"
"$PEAKRSS" "$MAX" "$ATTNC" "$root/examples/sdpa.attn" --run --threads 2 \
  --input q="$tmp/q.npy" --input k="$tmp/k.npy" --input v="$tmp/v.npy" --output o="$tmp/o.npy"
