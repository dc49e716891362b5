#!/usr/bin/env bash
# bench/decode.sh — one GPT-style decoding step (bench/models/decode.attn:
# 4 layers, D = 512, 8 heads, vocabulary 8192, T = 1) after P = 128, 1024
# and 4096 cached positions, one thread: attnc (caches appended in place)
# against PyTorch eager (caches grown with torch.cat), and against the
# memory floor (the weight and cache bytes over the read bandwidth
# measured in the same run); with the weights in f32 and in bf16 (attnc
# --weights-dtype bf16; PyTorch's model.to(torch.bfloat16)).  See
# bench/README.md.
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
mkdir -p "$out/f32" "$out/bf16"
# the same step twice: weights in f32, and in bf16 (attnc --weights-dtype
# bf16: every weight matrix in bf16, biases, LayerNorm and the embedding
# tables in f32)
for dt in f32 bf16; do
  "$build/attnc" "$here/models/decode.attn" -o "$out/$dt/decode.o" --weights-dtype "$dt"
  "$CC" -std=c11 -O3 -march=native -Wall -Wextra -I"$out/$dt" -I"$repo/runtime/include" -I"$here" \
    "$here/decode.c" "$here/bench_util.c" "$out/$dt/decode.o" "$build/libattnrt.a" -lm -lpthread -o "$out/$dt/decode"
done
"$out/f32/decode" "${ps[@]}" > "$out/decode.txt"
"$out/bf16/decode" "${ps[@]}" > "$out/decode_bf16.txt"
torch=1
{ "$PYTHON" "$here/torch_decode.py" "${ps[@]}" && "$PYTHON" "$here/torch_decode.py" --bf16 "${ps[@]}"; } \
  > "$out/torch_decode.txt" 2>/dev/null || torch=0
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "decode step, T = 1, 1 thread; $cpu; read bandwidth $(awk '{print $7; exit}' "$out/decode.txt") GB/s" \
     "(f32 run), $(awk '{print $7; exit}' "$out/decode_bf16.txt") GB/s (bf16 run), one thread"
printf '%-5s | %8s %8s %8s | %8s %8s %8s | %8s %8s %7s | %8s %8s | %7s %7s %7s\n' P f32_ms torch_ms vs_torch \
  bf16_ms torch_bf vs_torch f32_flr bf16_flr vs_flr bf16_gain torch_gn w32_MB w16_MB cache_MB
awk -v torch="$torch" -v tfile="$out/torch_decode.txt" -v bfile="$out/decode_bf16.txt" '
  BEGIN {
    if (torch) while ((getline l < tfile) > 0) { split(l, f, " "); if (f[1] == "TORCH") t[f[2]] = f[3]; else tb[f[2]] = f[3] }
    while ((getline l < bfile) > 0) { split(l, f, " "); if (f[1] == "DECODE") { b[f[2]] = f[3]; bfl[f[2]] = f[4]; bw16[f[2]] = f[5] } }
  }
  function tcol(x, ms) { return torch && (x != "") ? sprintf("%8.3f %7.2fx", x, x / ms) : sprintf("%8s %8s", "-", "-") }
  $1 == "DECODE" {
    P = $2
    printf "%-5s | %8.3f %s | %8.3f %s | %8.3f %8.3f %6.2fx | %8.2fx %7s | %7.1f %7.1f %7.1f\n", P, $3,
           tcol(t[P], $3), b[P], tcol(tb[P], b[P]), $4, bfl[P], b[P] / bfl[P], $3 / b[P],
           torch && (P in tb) ? sprintf("%6.2fx", t[P] / tb[P]) : "-", $5, bw16[P], $6
    step[P] = $3; cache[P] = $6; bw = $7
  }
  END {
    if ((128 in step) && (4096 in step))
      printf "P=4096 step - P=128 step (f32): %.3f ms; the extra cache bytes at the read bandwidth: %.3f ms\n",
             step[4096] - step[128], (cache[4096] - cache[128]) / bw
  }' "$out/decode.txt"
