#!/usr/bin/env bash
# bench/decode.sh — one GPT-style decoding step (bench/models/decode.attn:
# 4 layers, D = 512, 8 heads, vocabulary 8192, T = 1) after P = 128, 1024
# and 4096 cached positions, one thread: attnc (caches appended in place)
# against PyTorch eager (caches grown with torch.cat), and against the
# memory floor (the weight and cache bytes over the read bandwidth
# measured in the same run).  See bench/README.md.
#
#   bench/decode.sh [P...]
#
# Environment: ATTNC_BUILD (default <repo>/build), CC, PYTHON (default
# /usr/bin/python3; without torch its column is left out), BENCH_OUT.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
build=${ATTNC_BUILD:-$repo/build}
CC=${CC:-cc}
PYTHON=${PYTHON:-/usr/bin/python3}
out=${BENCH_OUT:-$build/bench}
ps=("$@")
[ ${#ps[@]} -gt 0 ] || ps=(128 1024 4096)
[ -x "$build/attnc" ] && [ -f "$build/libattnrt.a" ] || {
  echo "decode.sh: no attnc in $build: cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build" >&2
  exit 2
}
mkdir -p "$out"
"$build/attnc" "$here/models/decode.attn" -o "$out/decode.o"
"$CC" -std=c11 -O3 -march=native -Wall -Wextra -I"$out" -I"$repo/runtime/include" -I"$here" \
  "$here/decode.c" "$here/bench_util.c" "$out/decode.o" "$build/libattnrt.a" -lm -lpthread -o "$out/decode"
"$out/decode" "${ps[@]}" > "$out/decode.txt"
torch=1
"$PYTHON" "$here/torch_decode.py" "${ps[@]}" > "$out/torch_decode.txt" 2>/dev/null || torch=0
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "decode step, T = 1, 1 thread; $cpu; read bandwidth $(awk '{print $7; exit}' "$out/decode.txt") GB/s (one thread)"
printf '%-6s %10s %10s %9s %10s %9s %10s %10s\n' P attnc_ms torch_ms vs_torch floor_ms vs_floor weights_MB cache_MB
awk -v torch="$torch" -v tfile="$out/torch_decode.txt" '
  BEGIN { if (torch) while ((getline l < tfile) > 0) { split(l, f, " "); t[f[2]] = f[3] } }
  $1 == "DECODE" {
    tm = torch && ($2 in t) ? sprintf("%10.3f %8.2fx", t[$2], t[$2] / $3) : sprintf("%10s %9s", "-", "-")
    printf "%-6s %10.3f %s %10.3f %8.2fx %10.1f %10.1f\n", $2, $3, tm, $4, $3 / $4, $5, $6
    step[$2] = $3; cache[$2] = $6; bw = $7
  }
  END {
    if ((128 in step) && (4096 in step))
      printf "P=4096 step - P=128 step: %.3f ms; the extra cache bytes at the read bandwidth: %.3f ms\n",
             step[4096] - step[128], (cache[4096] - cache[128]) / bw
  }' "$out/decode.txt"
