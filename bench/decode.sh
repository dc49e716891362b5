#!/usr/bin/env bash
# bench/decode.sh — one GPT-style decoding step (bench/models/decode.attn:
# 4 layers, D = 512, 8 heads, vocabulary 8192, T = 1) after P = 128, 1024
# and 4096 cached positions, one thread: attnc (caches appended in place)
# against PyTorch eager (caches grown with torch.cat), and against the
# memory floor (the weight and cache bytes over the read bandwidth
# measured in the same run); with the weights in f32 and in bf16 (attnc
# --weights-dtype bf16; PyTorch's model.to(torch.bfloat16)).  Then one
# decoder step of a seq2seq translator (bench/models/seq2seq_step.attn:
# additive attention over S encoder outputs, an LSTMCell, scores over 8192
# tokens) at S = 32 and 128, against PyTorch eager and its memory floor,
# with attnc's outputs checked against PyTorch's on the same weights.  See
# bench/README.md.
#
#   bench/decode.sh [P...]
#
# Environment: ATTNC_BUILD (default <repo>/build), CC, PYTHON (default
# /usr/bin/python3; without torch its column is left out), BENCH_OUT,
# SEQ2SEQ_S (default "32 128").
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
    while ((getline l < bfile) > 0) {
      split(l, f, " ")
      if (f[1] == "DECODE") { b[f[2]] = f[3]; bfl[f[2]] = f[4]; bw16[f[2]] = f[5]; bcold[f[2]] = f[9]; n++; ps[n] = f[2] }
    }
  }
  function tcol(x, ms) { return torch && (x != "") ? sprintf("%8.3f %7.2fx", x, x / ms) : sprintf("%8s %8s", "-", "-") }
  $1 == "DECODE" {
    P = $2
    printf "%-5s | %8.3f %s | %8.3f %s | %8.3f %8.3f %6.2fx | %8.2fx %7s | %7.1f %7.1f %7.1f\n", P, $3,
           tcol(t[P], $3), b[P], tcol(tb[P], b[P]), $4, bfl[P], b[P] / bfl[P], $3 / b[P],
           torch && (P in tb) ? sprintf("%6.2fx", t[P] / tb[P]) : "-", $5, bw16[P], $6
    step[P] = $3; cache[P] = $6; bw = $7; cold[P] = $9; flr[P] = $4
  }
  END {
    if ((128 in step) && (4096 in step)) {
      printf "P=4096 step - P=128 step (f32): %.3f ms; the extra cache bytes at the read bandwidth: %.3f ms\n",
             step[4096] - step[128], (cache[4096] - cache[128]) / bw
      printf "the same, each step after evicting the CPU caches (%.3f and %.3f ms): %.3f ms\n",
             cold[128], cold[4096], cold[4096] - cold[128]
    }
    # a warm step finds part of the weights in the last-level cache; cold
    # steps read them all from memory, as the floors assume
    printf "cold steps (CPU caches evicted before each), ms:"
    for (i = 1; i <= n; i++)
      printf "  P=%s f32 %.3f (%.2fx floor) bf16 %.3f (%.2fx floor) gain %.2fx", ps[i], cold[ps[i]],
             cold[ps[i]] / flr[ps[i]], bcold[ps[i]], bcold[ps[i]] / bfl[ps[i]], cold[ps[i]] / bcold[ps[i]]
    printf "\n"
  }' "$out/decode.txt"

# ---- the seq2seq decoder step ----
ss=(${SEQ2SEQ_S:-32 128})
"$build/attnc" "$here/models/seq2seq_step.attn" -o "$out/seq2seq_step.o"
"$CC" -std=c11 -O3 -march=native -Wall -Wextra -I"$out" -I"$repo/runtime/include" -I"$here" \
  "$here/seq2seq_step.c" "$here/bench_util.c" "$out/seq2seq_step.o" "$build/libattnrt.a" -lm -lpthread -o "$out/seq2seq_step"
bw=$(awk '{print $7; exit}' "$out/decode.txt")
"$out/seq2seq_step" "$bw" "${ss[@]}" > "$out/seq2seq_step.txt"
torch=1
rm -rf "$out/seq2seq_check"
"$PYTHON" "$here/torch_seq2seq_step.py" --check "$out/seq2seq_check" "${ss[@]}" > "$out/torch_seq2seq_step.txt" 2>/dev/null || torch=0
echo
echo "seq2seq decoder step (hidden 512, embedding 256, vocabulary 8192, additive attention over S), 1 thread"
printf '%-6s %10s %10s %9s %10s %9s %10s %10s\n' S attnc_ms torch_ms vs_torch floor_ms vs_floor weights_MB memory_MB
awk -v torch="$torch" -v tfile="$out/torch_seq2seq_step.txt" '
  BEGIN { if (torch) while ((getline l < tfile) > 0) { split(l, f, " "); t[f[2]] = f[3] } }
  $1 == "S2S" {
    tm = torch && ($2 in t) ? sprintf("%10.3f %8.2fx", t[$2], t[$2] / $3) : sprintf("%10s %9s", "-", "-")
    printf "%-6s %10.3f %s %10.3f %8.2fx %10.1f %10.2f\n", $2, $3, tm, $4, $3 / $4, $5, $6
  }' "$out/seq2seq_step.txt"
# attnc on PyTorch's weights and inputs (one step at the first S), against its outputs
chk=$out/seq2seq_check
if [ "$torch" = 1 ] && [ -x "$build/tests/tools/npycmp" ]; then
  args=()
  for i in tok h c memory; do args+=(--input "$i=$chk/in.$i.npy"); done
  for o in logits h_next c_next attention; do args+=(--output "$o=$chk/got.$o.npy"); done
  "$build/attnc" "$here/models/seq2seq_step.attn" --run --weights "$chk/weights.safetensors" "${args[@]}" > /dev/null
  ok=1
  for o in logits h_next c_next attention; do
    "$build/tests/tools/npycmp" "$chk/got.$o.npy" "$chk/out.$o.npy" > "$chk/cmp.$o.txt" 2>&1 || ok=0
  done
  if [ $ok = 1 ]; then
    printf "attnc's outputs at S = %s equal PyTorch's on the same weights (atol 1e-4, rtol 1e-4), max |diff|:" "${ss[0]}"
    for o in logits h_next c_next attention; do printf ' %s %s' "$o" "$(sed -n 's/.*max |diff| \([^,]*\),.*/\1/p' "$chk/cmp.$o.txt")"; done
    echo
  else
    echo "outputs at S = ${ss[0]} DIFFER from PyTorch's:"; cat "$chk"/cmp.*.txt; exit 1
  fi
else
  echo "(no torch or no $build/tests/tools/npycmp: attnc's outputs not checked against PyTorch's)"
fi
