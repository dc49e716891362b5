#!/usr/bin/env bash
# cli_test.sh ATTNC CASE [RUNTIME_LIB RUNTIME_INC CC]: one check of attnc's command line (flags, outputs,
# exit statuses).  Each case fails loudly with what it expected.
set -uo pipefail
ATTNC=$1
CASE=$2
RUNTIME_LIB=${3:-}
RUNTIME_INC=${4:-}
CC=${5:-cc}
# CFLAGS: for the C programs some cases link (the sanitizers, when
# libattnrt.a is instrumented)
cflags=()
read -r -a cflags <<< "${CFLAGS:-}" || true
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
sdpa=$root/examples/sdpa.attn
tmp=$(mktemp -d "${TMPDIR:-/tmp}/attnc-cli.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL $CASE: $*" >&2; exit 1; }
# expect STATUS CMD...: runs CMD, checks its exit status
expect() {
  local want=$1; shift
  "$@" >"$tmp/stdout" 2>"$tmp/stderr"
  local got=$?
  [[ $got == "$want" ]] || { cat "$tmp/stderr" >&2; fail "'$*' exited $got, expected $want"; }
}
has() { grep -q -- "$2" "$1" || { cat "$1" >&2; fail "$1 lacks '$2'"; }; }
hostile=$here/hostile
# only_files NAME...: $tmp holds exactly these files besides stdout and
# stderr (no temporary file left behind, no output of a failed run)
only_files() {
  local got want
  got=$(cd "$tmp" && ls -A | grep -vx -e stdout -e stderr | sort | tr '\n' ' ')
  want=$(printf '%s\n' "$@" | grep . | sort | tr '\n' ' ')
  [[ $got == "$want" ]] || fail "files in the output directory: '$got', expected '$want'"
}

# hexbytes 'de ad ..': those bytes on stdout
hexbytes() { local h; for h in $1; do printf "\\x$h"; done; }
# st_file PATH HEADER DATA-HEX: a safetensors file (header padded to 8 bytes)
st_file() {
  local header=$2 n i
  while (( ${#header} % 8 )); do header+=" "; done
  n=${#header}
  { for i in 0 1 2 3 4 5 6 7; do printf "\\x$(printf %02x $(( (n >> (8 * i)) & 255 )))"; done
    printf '%s' "$header"; hexbytes "$3"; } > "$1"
}
# npy_file PATH SHAPE DATA-HEX [DESCR]: a version 1.0 .npy file of <f4 (or DESCR)
npy_file() {
  local dict="{'descr': '${4:-<f4}', 'fortran_order': False, 'shape': $2, }"
  while (( (10 + ${#dict} + 1) % 64 )); do dict+=" "; done
  dict+=$'\n'
  { printf '\x93NUMPY\x01\x00'; printf "\\x$(printf %02x $(( ${#dict} & 255 )))\\x$(printf %02x $(( ${#dict} >> 8 )))"
    printf '%s' "$dict"; hexbytes "$3"; } > "$1"
}
# prefixed_lin: $tmp/lin.attn, a Linear(2, 2); $tmp/w.safetensors, its
# state_dict under net.enc. with the weight in BF16 [[1, 2], [3, 4]] and the
# bias in F16 [0.5, -1], after an F64 tensor outside the prefix;
# $tmp/x.npy, x = [[1, 1], [2, -1]].  y = x W^T + b = [[3.5, 6], [0.5, 1]].
prefixed_lin() {
  printf 'model lin {\n  input x: f32[T, 2]\n  layer proj = Linear(2, 2)\n  output y = proj(x)\n}\n' > "$tmp/lin.attn"
  st_file "$tmp/w.safetensors" \
    '{"net.head.weight":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},"net.enc.proj.weight":{"dtype":"BF16","shape":[2,2],"data_offsets":[8,16]},"net.enc.proj.bias":{"dtype":"F16","shape":[2],"data_offsets":[16,20]}}' \
    '00 00 00 00 00 00 f0 3f  80 3f 00 40 40 40 80 40  00 38 00 bc'
  npy_file "$tmp/x.npy" '(2, 2)' '00 00 80 3f 00 00 80 3f  00 00 00 40 00 00 80 bf'
}

case $CASE in
help)
  expect 0 "$ATTNC" --help
  has "$tmp/stdout" "usage: attnc"
  has "$tmp/stdout" "--emit-ir"
  has "$tmp/stdout" "--weights-prefix P"
  has "$tmp/stdout" "--prefix P" ;;
version)
  expect 0 "$ATTNC" --version
  has "$tmp/stdout" "^attnc [0-9]" ;;
no-input) expect 2 "$ATTNC"; has "$tmp/stderr" "no input file" ;;
unknown-option) expect 2 "$ATTNC" "$sdpa" --frobnicate; has "$tmp/stderr" "unknown option '--frobnicate'" ;;
missing-value) expect 2 "$ATTNC" "$sdpa" -o; has "$tmp/stderr" "-o needs a value" ;;
two-modes) expect 2 "$ATTNC" "$sdpa" --check --emit-ir; has "$tmp/stderr" "choose one of" ;;
bad-cpu) expect 2 "$ATTNC" "$sdpa" -o "$tmp/x.o" --cpu pentium9000; has "$tmp/stderr" "unknown CPU 'pentium9000'"
  [[ ! -e $tmp/x.o ]] || fail "an object was written for a bad --cpu"
  # the hint names CPUs of the target's architecture
  expect 2 "$ATTNC" "$sdpa" -o "$tmp/x.o" --target aarch64-linux-gnu --cpu haswell
  has "$tmp/stderr" "unknown CPU 'haswell' for target 'aarch64-linux-gnu' (try generic, cortex-a72, neoverse-n1"
  [[ ! -e $tmp/x.o ]] || fail "an object was written for a bad --cpu" ;;
bad-target) expect 2 "$ATTNC" "$sdpa" -o "$tmp/x.o" --target nonsense-unknown-none; has "$tmp/stderr" "unknown target" ;;
missing-file) expect 1 "$ATTNC" "$tmp/nope.attn" --check; has "$tmp/stderr" "cannot read" ;;
source-too-large)
  # a source file is at most 1 MiB; a longer one (here a good model and a
  # long comment) is refused before it is parsed, and a device that never
  # ends is not read to its end
  { printf 'model m {\n  input x: f32[T]\n  output y = x\n}\n#'; head -c 1048576 /dev/zero | tr '\0' x; } > "$tmp/big.attn"
  expect 1 "$ATTNC" "$tmp/big.attn" --check
  has "$tmp/stderr" "big.attn: error: the file is larger than 1048576 bytes, the limit for a source file"
  expect 1 timeout 20 "$ATTNC" /dev/zero --check
  has "$tmp/stderr" "/dev/zero: error: the file is larger than 1048576 bytes" ;;
check-ok)
  expect 0 "$ATTNC" "$sdpa" --check
  [[ ! -s $tmp/stdout && ! -s $tmp/stderr ]] || fail "--check printed something for a good program" ;;
check-error)
  printf 'model m {\n  input x: f32[T, 64]\n  output y = x @ x\n}\n' > "$tmp/bad.attn"
  expect 1 "$ATTNC" "$tmp/bad.attn" --check
  has "$tmp/stderr" "bad.attn:3:16: error: shape mismatch in \`@\`" ;;
object)
  (cd "$tmp" && expect 0 "$ATTNC" "$sdpa")
  [[ -s $tmp/sdpa.o && -s $tmp/sdpa.h ]] || fail "attnc FILE did not write sdpa.o and sdpa.h in the current directory"
  mkdir -p "$tmp/inc"
  expect 0 "$ATTNC" "$sdpa" -o "$tmp/m.o" --header "$tmp/inc/model.h"
  [[ -s $tmp/m.o && -s $tmp/inc/model.h && ! -e $tmp/m.h ]] || fail "--header did not put the header where asked"
  has "$tmp/inc/model.h" "attnrt_status sdpa(attnrt_ctx \*ctx"
  file "$tmp/m.o" 2>/dev/null | grep -q "relocatable" || od -c "$tmp/m.o" | head -1 | grep -q "E   L   F" || fail "not an ELF object" ;;
no-half-written)
  printf 'model m {\n  input x: f32[T, 64]\n  output y = x @ x\n}\n' > "$tmp/bad.attn"
  echo "old" > "$tmp/m.o"
  expect 1 "$ATTNC" "$tmp/bad.attn" -o "$tmp/m.o"
  [[ $(cat "$tmp/m.o") == old ]] || fail "a failed compilation touched the output file"
  expect 1 "$ATTNC" "$sdpa" -o "$tmp/nodir/m.o"
  has "$tmp/stderr" "cannot write"
  ls -A "$tmp" | grep -q attnc- && fail "a temporary file was left behind"
  true ;;
emit-ir)
  expect 0 "$ATTNC" "$sdpa" --emit-ir
  has "$tmp/stdout" "^model sdpa(T, S)"
  has "$tmp/stdout" "softmax"
  has "$tmp/stdout" "output o = %"
  expect 0 "$ATTNC" "$sdpa" --emit-ir -o "$tmp/ir.txt"
  has "$tmp/ir.txt" "^model sdpa" ;;
emit-dot)
  expect 0 "$ATTNC" "$sdpa" --emit-dot -o "$tmp/g.dot"
  has "$tmp/g.dot" "^digraph attnc {"
  has "$tmp/g.dot" "subgraph cluster_0_fused_"
  has "$tmp/g.dot" "softmax (6:14)"
  if command -v dot >/dev/null; then dot -Tsvg "$tmp/g.dot" -o "$tmp/g.svg" || fail "Graphviz rejects the graph"; fi
  expect 0 "$ATTNC" "$sdpa" --emit-dot --no-fuse
  grep -q cluster_0_fused "$tmp/stdout" && fail "--no-fuse still draws a fused cluster"
  has "$tmp/stdout" "softmax" ;;
emit-llvm)
  expect 0 "$ATTNC" "$sdpa" --emit-llvm -o "$tmp/m.ll"
  has "$tmp/m.ll" "define i32 @sdpa(ptr"
  has "$tmp/m.ll" "@sdpa_model = " ;;
asm-isa)
  # the vector ISA follows --cpu
  expect 0 "$ATTNC" "$sdpa" -S -o "$tmp/avx512.s" --cpu skylake-avx512
  has "$tmp/avx512.s" "zmm"
  expect 0 "$ATTNC" "$sdpa" -S -o "$tmp/avx2.s" --cpu haswell
  has "$tmp/avx2.s" "ymm"
  grep -q zmm "$tmp/avx2.s" && fail "AVX-512 registers in haswell code"
  expect 0 "$ATTNC" "$sdpa" -S -o "$tmp/sse.s" --cpu x86-64
  grep -q -e ymm -e zmm "$tmp/sse.s" && fail "AVX registers in x86-64 code"
  true ;;
asm-bf16-dot)
  # --weights-dtype bf16 on a CPU with AVX-512 BF16 (znver4): the one-row
  # product (the GEMV of a decoding step) uses vdpbf16ps on k-pair panels;
  # x86-64-v4 (AVX-512 without BF16) keeps the widening loads and FMAs
  gemv=$root/tests/golden/gemv.attn
  expect 0 "$ATTNC" "$gemv" -S -o "$tmp/zn4.s" --cpu znver4 --weights-dtype bf16
  has "$tmp/zn4.s" "vdpbf16ps"
  expect 0 "$ATTNC" "$gemv" -S -o "$tmp/v4.s" --cpu x86-64-v4 --weights-dtype bf16
  has "$tmp/v4.s" "zmm"
  grep -q -e vdpbf16ps -e bf16p "$tmp/v4.s" && fail "vdpbf16ps or k-pair panels in x86-64-v4 code"
  # f32 weights: no bf16 code on znver4 either
  expect 0 "$ATTNC" "$gemv" -S -o "$tmp/zn4f.s" --cpu znver4
  grep -q vdpbf16ps "$tmp/zn4f.s" && fail "vdpbf16ps with f32 weights"
  true ;;
asm-neon)
  # --target aarch64-linux-gnu (cpu generic: NEON, 4 lanes): the kernels
  # written with explicit vectors compute with vector FMAs (fmla vN.4s, also
  # the by-element form fmla vN.4s, vM.4s, vK.s[i] that a broadcast folds
  # into): the GEMM micro-kernel (attnc.gemm.v4: MR = 6 rows x 2 vectors of
  # accumulators = 12), the fused attention kernel and the LSTM recurrence
  expect 0 "$ATTNC" "$root/tests/golden/encoder.attn" -S --target aarch64-linux-gnu -o "$tmp/enc.s"
  expect 0 "$ATTNC" "$root/tests/golden/lstm_300.attn" -S --target aarch64-linux-gnu -o "$tmp/lstm.s"
  grep -q -e '%xmm' -e '%ymm' -e '%zmm' -e '%rsp' "$tmp/enc.s" && fail "x86 code for --target aarch64-linux-gnu"
  # fmla_in FILE FUNCTION-ERE MIN: some function's label matches, and each
  # that does holds at least MIN vector fmla
  fmla_in() {
    awk -v re="^($2)\$" -v min="$3" '
      /^[A-Za-z_$][A-Za-z0-9_.$]*:$/ { fn = substr($1, 1, length($1) - 1); if (fn ~ re) seen[fn] = 1 }
      fn ~ re && /^[ \t]*fmla[ \t]+v[0-9]+\.4s,/ { n[fn]++ }
      END {
        bad = 1                       # no such function
        for (f in seen) { printf "%s: %d vector fmla\n", f, n[f]; if (bad == 1) bad = 0 }
        for (f in seen) if (n[f] < min) bad = 2
        exit bad
      }' "$1" > "$tmp/fmla" || { cat "$tmp/fmla" >&2; fail "$1: functions $2 lack $3 vector fmla each"; }
  }
  fmla_in "$tmp/enc.s" 'attnc\.gemm\.v4' 12
  fmla_in "$tmp/enc.s" 'attnc\.encoder\.[0-9]+\.attention' 12
  fmla_in "$tmp/lstm.s" 'attnc\.lstm_300\.[0-9]+\.lstm_seq' 8 ;;
opt-levels)
  for o in -O0 -O1 -O2 -O3; do expect 0 "$ATTNC" "$sdpa" $o -o "$tmp/m$o.o"; done
  expect 2 "$ATTNC" "$sdpa" -O4 ;;
cross-target)
  expect 0 "$ATTNC" "$sdpa" --target aarch64-linux-gnu -o "$tmp/arm.o"
  od -A d -t x1 -j 18 -N 2 "$tmp/arm.o" | head -1 | grep -q "b7 00" || fail "not an aarch64 object" ;;
run-print)
  expect 0 "$ATTNC" "$sdpa" --run --input q="$root/tests/run/sdpa/in.q.npy" --input k="$root/tests/run/sdpa/in.k.npy" \
    --input v="$root/tests/run/sdpa/in.v.npy"
  has "$tmp/stdout" "^o: f32\[6, 64\] = \[" ;;
run-unknown-input)
  expect 1 "$ATTNC" "$sdpa" --run --input x="$root/tests/run/sdpa/in.q.npy"
  has "$tmp/stderr" "model \`sdpa\` has no input \`x\`; its inputs are q, k, v" ;;
run-missing-input)
  expect 1 "$ATTNC" "$sdpa" --run --input q="$root/tests/run/sdpa/in.q.npy"
  has "$tmp/stderr" "needs input \`k\`" ;;
run-dim-conflict)
  expect 1 "$ATTNC" "$sdpa" --run --input q="$root/tests/run/sdpa/in.q.npy" --input k="$root/tests/run/sdpa/in.q.npy" \
    --input v="$root/tests/run/sdpa/in.v.npy"
  has "$tmp/stderr" "input 'v': dim 0 (S)" ;;
run-no-weights)
  expect 1 "$ATTNC" "$root/tests/run/mlp.attn" --run --input x="$root/tests/run/mlp/in.x.npy"
  has "$tmp/stderr" "give them with --weights" ;;
run-bad-npy)
  printf 'not an npy file' > "$tmp/bad.npy"
  expect 1 "$ATTNC" "$sdpa" --run --input q="$tmp/bad.npy" --input k="$tmp/bad.npy" --input v="$tmp/bad.npy"
  has "$tmp/stderr" "input \`q\`" ;;
weights-missing-param)
  # a weights file that lacks a param is an error naming it, also at compile time
  expect 1 "$ATTNC" "$root/tests/run/mlp.attn" -o "$tmp/m.o" --weights "$root/tests/run/linear_nobias/weights.safetensors"
  has "$tmp/stderr" "missing parameter"
  [[ ! -e $tmp/m.o ]] || fail "an object was written with bad weights" ;;
weights-prefix-run)
  # a state_dict saved from a bigger module, in BF16 and F16: --run binds
  # proj.weight to net.enc.proj.weight, converted to f32, and says in one
  # line what it ignored outside the prefix
  prefixed_lin
  expect 0 "$ATTNC" "$tmp/lin.attn" --run --weights "$tmp/w.safetensors" --weights-prefix net.enc. --input x="$tmp/x.npy"
  has "$tmp/stdout" "^y: f32\[2, 2\] = \[3.5, 6, 0.5, 1\]$"
  [[ $(cat "$tmp/stderr") == "attnc: warning: ignoring 1 tensor outside the prefix 'net.enc.'" ]] ||
    { cat "$tmp/stderr" >&2; fail "expected exactly one warning line"; }
  expect 0 "$ATTNC" "$tmp/lin.attn" --bench --dim T=4 --weights "$tmp/w.safetensors" --weights-prefix net.enc.
  has "$tmp/stderr" "ignoring 1 tensor outside the prefix 'net.enc.'"
  # --check, --emit-ir and --emit-dot check the file with the prefix
  for mode in --check --emit-ir --emit-dot; do
    expect 0 "$ATTNC" "$tmp/lin.attn" $mode --weights "$tmp/w.safetensors" --weights-prefix net.enc.
  done
  # without the prefix, or with a wrong one: the error says which would do
  expect 1 "$ATTNC" "$tmp/lin.attn" --run --weights "$tmp/w.safetensors" --input x="$tmp/x.npy"
  has "$tmp/stderr" "^attnc: error: missing parameter 'proj.weight' in $tmp/w.safetensors; the file has 'net.enc.proj.weight': use --weights-prefix 'net.enc.' (attnrt_ctx_load_weights_prefix)$"
  expect 1 "$ATTNC" "$tmp/lin.attn" --check --weights "$tmp/w.safetensors" --weights-prefix net.
  has "$tmp/stderr" "^attnc: error: missing parameter 'proj.weight' (tensor 'net.proj.weight') in $tmp/w.safetensors; the file has 'net.enc.proj.weight': use --weights-prefix 'net.enc.' (attnrt_ctx_load_weights_prefix)$"
  only_files lin.attn w.safetensors x.npy ;;
weights-prefix-usage)
  # --weights-prefix names tensors of a --weights file: alone it is bad usage
  prefixed_lin
  expect 2 "$ATTNC" "$tmp/lin.attn" --run --weights-prefix net.enc. --input x="$tmp/x.npy"
  has "$tmp/stderr" "^attnc: --weights-prefix goes with --weights FILE$"
  expect 2 "$ATTNC" "$tmp/lin.attn" --weights-prefix net.enc. -o "$tmp/lin.o"
  has "$tmp/stderr" "--weights-prefix goes with --weights FILE"
  expect 2 "$ATTNC" "$tmp/lin.attn" --check --weights-prefix net.enc.
  expect 2 "$ATTNC" "$tmp/lin.attn" --check --weights "$tmp/w.safetensors" --weights-prefix
  has "$tmp/stderr" "--weights-prefix needs a value"
  only_files lin.attn w.safetensors x.npy ;;
weights-prefix-embed)
  # compiling with --weights and --weights-prefix embeds the converted
  # weights: the object links and runs with no weights file, and computes
  # what --run computes
  [[ -n $RUNTIME_LIB ]] || fail "needs RUNTIME_LIB RUNTIME_INC CC"
  prefixed_lin
  expect 0 "$ATTNC" "$tmp/lin.attn" -o "$tmp/lin.o" --weights "$tmp/w.safetensors" --weights-prefix net.enc.
  has "$tmp/stderr" "ignoring 1 tensor outside the prefix 'net.enc.'"
  has "$tmp/lin.h" "proj.weight: f32\[2, 2\] (embedded)"
  cat > "$tmp/main.c" <<'C'
#include <stdio.h>
#include "lin.h"
int main(void) {
  const float x[4] = {1, 1, 2, -1};
  float y[4];
  attnrt_ctx *ctx = attnrt_ctx_new(&lin_model);
  if (ctx == NULL || lin(ctx, x, y, 2) != ATTNRT_OK) return 1;
  printf("y: f32[2, 2] = [%g, %g, %g, %g]\n", y[0], y[1], y[2], y[3]);
  attnrt_ctx_free(ctx);
  return 0;
}
C
  expect 0 "$CC" -std=c99 ${cflags[@]+"${cflags[@]}"} -I"$RUNTIME_INC" -I"$tmp" "$tmp/main.c" "$tmp/lin.o" "$RUNTIME_LIB" -lm -lpthread -o "$tmp/lin"
  rm "$tmp/w.safetensors"
  expect 0 "$tmp/lin"
  cp "$tmp/stdout" "$tmp/embedded.txt"
  has "$tmp/embedded.txt" "^y: f32\[2, 2\] = \[3.5, 6, 0.5, 1\]$"
  prefixed_lin
  expect 0 "$ATTNC" "$tmp/lin.attn" --run --weights "$tmp/w.safetensors" --weights-prefix net.enc. --input x="$tmp/x.npy"
  cmp -s "$tmp/stdout" "$tmp/embedded.txt" || fail "--run and the embedded object disagree" ;;
bench)
  expect 0 "$ATTNC" "$sdpa" --bench --dim T=40 --dim S=24
  has "$tmp/stdout" "^sdpa: T=40 S=24, 1 thread, fused"
  has "$tmp/stdout" "median [0-9.]* ms"
  has "$tmp/stdout" " GFLOP/s" ;;
bench-no-fuse)
  expect 0 "$ATTNC" "$sdpa" --bench --no-fuse --dim T=8 --dim S=8 --threads 2
  has "$tmp/stdout" "2 threads, --no-fuse" ;;
remarks-no-fuse)
  # --remarks with --no-fuse says once that fusion is off, in every mode that optimizes
  expect 0 "$ATTNC" "$sdpa" --emit-ir --no-fuse --remarks
  [[ $(cat "$tmp/stderr") == "attnc: note: --remarks: fusion is off (--no-fuse), so nothing is fused" ]] ||
    { cat "$tmp/stderr" >&2; fail "expected exactly the note"; }
  expect 0 "$ATTNC" "$sdpa" --check --no-fuse --remarks
  [[ ! -s $tmp/stderr ]] || fail "--check printed the note" ;;
bench-missing-dim)
  # a usage error (exit 2), as docs/cli.md says
  expect 2 "$ATTNC" "$sdpa" --bench --dim T=8
  has "$tmp/stderr" "^attnc: model \`sdpa\` has the symbolic dim \`S\`: give its size with --dim S=N$" ;;
bench-threads)
  # --threads 0 prints the thread count it resolved to, not 0
  expect 0 "$ATTNC" "$sdpa" --bench --dim T=8 --dim S=8 --threads 0
  has "$tmp/stdout" "^sdpa: T=8 S=8, [1-9][0-9]* threads*, fused"
  grep -q " 0 threads" "$tmp/stdout" && fail "--threads 0 printed 0 threads"
  true ;;
bench-input)
  # --input gives real data for some inputs and binds their dims; the others stay random
  d=$root/tests/run/sdpa
  expect 0 "$ATTNC" "$sdpa" --bench --input q="$d/in.q.npy" --input k="$d/in.k.npy" --input v="$d/in.v.npy"
  has "$tmp/stdout" "^sdpa: T=6 S=11, 1 thread, fused"
  [[ ! -s $tmp/stderr ]] || { cat "$tmp/stderr" >&2; fail "stderr is not empty"; }
  expect 0 "$ATTNC" "$sdpa" --bench --input q="$d/in.q.npy" --dim S=5
  has "$tmp/stdout" "^sdpa: T=6 S=5, "
  expect 1 "$ATTNC" "$sdpa" --bench --input q="$d/in.q.npy" --dim T=7 --dim S=5
  has "$tmp/stderr" "^attnc: error: input \`q\`: dim 0 (T) is 6 in the file, but 7 from --dim or another input$"
  expect 1 "$ATTNC" "$sdpa" --bench --input x="$d/in.q.npy" --dim T=7 --dim S=5
  has "$tmp/stderr" "model \`sdpa\` has no input \`x\`"
  expect 2 "$ATTNC" "$sdpa" --bench --dim T=7 --dim S=5 --output o="$tmp/o.npy"
  has "$tmp/stderr" "--output goes with --run"
  only_files ;;
bench-nonfinite)
  # log of random inputs in [-1, 1) is NaN: a warning says so; real
  # positive inputs make it go away
  printf 'model lg {\n  input x: f32[T, 2]\n  output y = log(x)\n}\n' > "$tmp/lg.attn"
  expect 0 "$ATTNC" "$tmp/lg.attn" --bench --dim T=4
  [[ $(cat "$tmp/stderr") == "attnc: warning: output \`y\` has NaN or infinite values (random inputs? give real ones with --input)" ]] ||
    { cat "$tmp/stderr" >&2; fail "expected the warning"; }
  npy_file "$tmp/x.npy" '(1, 2)' '00 00 80 3f 00 00 00 40'
  expect 0 "$ATTNC" "$tmp/lg.attn" --bench --input x="$tmp/x.npy"
  [[ ! -s $tmp/stderr ]] || { cat "$tmp/stderr" >&2; fail "a warning for finite outputs"; } ;;
bench-bad-dim)
  expect 2 "$ATTNC" "$sdpa" --bench --dim T=0 --dim S=8
  has "$tmp/stderr" "--dim T wants a size from 1" ;;
bench-unknown-dim)
  expect 1 "$ATTNC" "$sdpa" --bench --dim T=8 --dim S=8 --dim Q=3
  has "$tmp/stderr" "no symbolic dim \`Q\`" ;;
run-ids-out-of-range)
  # an id outside the Embedding's table is an error naming the input and the
  # table, found before any kernel runs; a failed run writes no output
  emb=(--weights "$root/tests/golden/embedding/weights.safetensors" --output e="$tmp/e.npy")
  expect 1 "$ATTNC" "$hostile/emb.attn" --run --input ids="$hostile/ids_50.npy" "${emb[@]}"
  has "$tmp/stderr" "attnc: error: input 'ids': ids\[1\] = 50 is out of range \[0, 50) for emb.weight"
  echo old > "$tmp/e.npy"
  expect 1 "$ATTNC" "$hostile/emb.attn" --run --input ids="$hostile/ids_neg.npy" "${emb[@]}"
  has "$tmp/stderr" "attnc: error: input 'ids': ids\[1\] = -1 is out of range \[0, 50) for emb.weight"
  [[ $(cat "$tmp/e.npy") == old ]] || fail "a failed run touched its output file"
  rm "$tmp/e.npy"
  expect 0 "$ATTNC" "$hostile/emb.attn" --run --input ids="$hostile/ids_ok.npy" "${emb[@]}"
  [[ -s $tmp/e.npy ]] || fail "a good run wrote no output"
  only_files e.npy ;;
run-ids-position)
  # the position of a bad id in a 2-D ids input, from i32 and int64 files;
  # an int64 id beyond int32 is an error with its position before the run
  printf 'model emb2 {\n  input ids: i32[B, T]\n  layer emb = Embedding(50, 6)\n  output e = emb(ids)\n}\n' > "$tmp/emb2.attn"
  w=(--weights "$root/tests/golden/embedding/weights.safetensors")
  npy_file "$tmp/ids32.npy" '(2, 3)' '01 00 00 00 02 00 00 00 03 00 00 00  04 00 00 00 32 00 00 00 05 00 00 00' '<i4'
  expect 1 "$ATTNC" "$tmp/emb2.attn" --run --input ids="$tmp/ids32.npy" "${w[@]}"
  [[ $(cat "$tmp/stderr") == "attnc: error: input 'ids': ids[1, 1] = 50 is out of range [0, 50) for emb.weight" ]] ||
    { cat "$tmp/stderr" >&2; fail "expected the position [1, 1]"; }
  npy_file "$tmp/ids64.npy" '(2, 2)' '01 00 00 00 00 00 00 00  02 00 00 00 00 00 00 00  03 00 00 00 00 00 00 00  00 f2 05 2a 01 00 00 00' '<i8'
  expect 1 "$ATTNC" "$tmp/emb2.attn" --run --input ids="$tmp/ids64.npy" "${w[@]}"
  [[ $(cat "$tmp/stderr") == "attnc: error: input \`ids\`: ids[1, 1] = 5000000000 does not fit in i32" ]] ||
    { cat "$tmp/stderr" >&2; fail "expected the int64 id out of i32's range"; }
  npy_file "$tmp/ids64.npy" '(2, 2)' '01 00 00 00 00 00 00 00  02 00 00 00 00 00 00 00  32 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00' '<i8'
  expect 1 "$ATTNC" "$tmp/emb2.attn" --run --input ids="$tmp/ids64.npy" "${w[@]}"
  [[ $(cat "$tmp/stderr") == "attnc: note: input \`ids\`: converted int64 to i32"$'\n'"attnc: error: input 'ids': ids[1, 0] = 50 is out of range [0, 50) for emb.weight" ]] ||
    { cat "$tmp/stderr" >&2; fail "expected the note and the position [1, 0]"; } ;;
run-npy-convert)
  # float64 and int64 .npy inputs (NumPy's defaults) are converted, with a note
  prefixed_lin
  npy_file "$tmp/x64.npy" '(2, 2)' '00 00 00 00 00 00 f0 3f  00 00 00 00 00 00 f0 3f  00 00 00 00 00 00 00 40  00 00 00 00 00 00 f0 bf' '<f8'
  expect 0 "$ATTNC" "$tmp/lin.attn" --run --weights "$tmp/w.safetensors" --weights-prefix net.enc. --input x="$tmp/x64.npy"
  has "$tmp/stdout" "^y: f32\[2, 2\] = \[3.5, 6, 0.5, 1\]$"
  [[ $(cat "$tmp/stderr") == "attnc: warning: ignoring 1 tensor outside the prefix 'net.enc.'"$'\n'"attnc: note: input \`x\`: converted float64 to f32" ]] ||
    { cat "$tmp/stderr" >&2; fail "expected the warning and the note"; }
  # a float64 beyond f32's range is an error with its position; an int64
  # file for an f32 input is not converted
  npy_file "$tmp/x64.npy" '(2, 2)' '00 00 00 00 00 00 f0 3f  00 00 00 00 00 00 f0 7f  00 00 00 00 00 00 00 40  00 00 00 00 00 00 f0 ff' '<f8'
  expect 0 "$ATTNC" "$tmp/lin.attn" --run --weights "$tmp/w.safetensors" --weights-prefix net.enc. --input x="$tmp/x64.npy"
  npy_file "$tmp/x64.npy" '(2, 2)' '00 00 00 00 00 00 f0 3f  00 00 00 00 00 00 f0 47  00 00 00 00 00 00 00 40  00 00 00 00 00 00 f0 bf' '<f8'
  expect 1 "$ATTNC" "$tmp/lin.attn" --run --weights "$tmp/w.safetensors" --weights-prefix net.enc. --input x="$tmp/x64.npy"
  has "$tmp/stderr" "^attnc: error: input \`x\`: x\[0, 1\] = 3.402823669e+38 is beyond the range of f32$"
  npy_file "$tmp/x64.npy" '(2, 2)' '00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00' '<i8'
  expect 1 "$ATTNC" "$tmp/lin.attn" --run --weights "$tmp/w.safetensors" --weights-prefix net.enc. --input x="$tmp/x64.npy"
  has "$tmp/stderr" "dtype '<i8' is not supported" ;;
run-index-out-of-range)
  expect 1 "$ATTNC" "$hostile/index.attn" --run --input x="$hostile/x_3x4.npy" --output y="$tmp/y.npy"
  has "$tmp/stderr" "attnc: error: index 5 at 4:15 is out of range: the first dim of input 'x' (T) is 3"
  only_files
  expect 0 "$ATTNC" "$hostile/index.attn" --run --input x="$hostile/x_6x4.npy"
  has "$tmp/stdout" "y: f32\[4\] = \[20, 21, 22, 23\]" ;;
run-sums)
  # design.md 5.3/5.7: a sum below 0 at the call, a slice past a symbolic
  # dim (not clamped: ATTNRT_E_RANGE), an input whose sum dim disagrees
  mkdir "$tmp/d"
  "$ATTNC" "$hostile/sums.attn" -o "$tmp/d/sums.o" || fail "sums.attn does not compile"
  has "$tmp/d/sums.h" "dims    T (bound at call time)"
  has "$tmp/d/sums.h" "sums    T+1, T-2, 2\*T+1 (computed from them; each must come out at least 0)"
  has "$tmp/d/sums.h" "input   m: f32\[T+1, 4\]"
  has "$tmp/d/sums.h" "const float \*m, float \*a, float \*b, float \*c, int64_t T);"
  expect 1 "$ATTNC" "$hostile/sums.attn" --run --input x="$hostile/x_3x4.npy" --input m="$hostile/x_3x4.npy"
  has "$tmp/stderr" "attnc: error: input 'm': dim 0 (T+1) is 3 but T+1 = 4 (T = 3)"
  expect 1 "$ATTNC" "$hostile/sums.attn" --run --input x="$hostile/x_1x4.npy" --input m="$hostile/x_2x4.npy"
  has "$tmp/stderr" "attnc: error: dim T-2 = -1 (T = 1) is out of range \[0, 2147483647\]"
  expect 1 "$ATTNC" "$hostile/sums.attn" --run --input x="$hostile/x_2x4.npy" --input m="$hostile/x_3x4.npy"
  has "$tmp/stderr" "attnc: error: the slice at 6:15 is out of range for input 'x', whose first dim T is 2 (slices are not clamped)"
  expect 0 "$ATTNC" "$hostile/sums.attn" --run --input x="$hostile/x_3x4.npy" --input m="$hostile/x_4x4.npy"
  has "$tmp/stdout" "a: f32\[1, 4\] = "
  has "$tmp/stdout" "c: f32\[7, 4\] = " ;;
run-lying-weights)
  # a weights file cut short: its header promises data the file lacks
  head -c 1000 "$root/tests/golden/embedding/weights.safetensors" > "$tmp/cut.safetensors"
  expect 1 "$ATTNC" "$hostile/emb.attn" --run --weights "$tmp/cut.safetensors" \
    --input ids="$hostile/ids_ok.npy" --output e="$tmp/e.npy"
  has "$tmp/stderr" "tensor 'emb.weight': data_offsets \[0, 1200\] are outside the data region"
  only_files cut.safetensors ;;
run-output-unwritable)
  # outputs go through a temporary file and a rename: one that cannot be
  # written leaves nothing behind, and an existing file is replaced whole
  sdpa_in=(--input q="$root/tests/run/sdpa/in.q.npy" --input k="$root/tests/run/sdpa/in.k.npy"
           --input v="$root/tests/run/sdpa/in.v.npy")
  expect 1 "$ATTNC" "$sdpa" --run "${sdpa_in[@]}" --output o="$tmp/nodir/o.npy"
  has "$tmp/stderr" "attnc: error: output \`o\`: cannot write $tmp/nodir/o.npy: No such file or directory"
  mkdir "$tmp/adir"
  expect 1 "$ATTNC" "$sdpa" --run "${sdpa_in[@]}" --output o="$tmp/adir"
  has "$tmp/stderr" "cannot write $tmp/adir: Is a directory"
  [[ -d $tmp/adir && -z $(ls -A "$tmp/adir") ]] || fail "the directory named as the output was changed"
  only_files adir
  echo old > "$tmp/o.npy"
  expect 0 "$ATTNC" "$sdpa" --run "${sdpa_in[@]}" --output o="$tmp/o.npy"
  [[ $(head -c 6 "$tmp/o.npy" | tail -c 5) == NUMPY ]] || fail "o.npy was not replaced by the output"
  only_files adir o.npy ;;
jobs)
  # -j N compiles the object in up to N parts side by side: -v names them
  enc=$root/examples/encoder.attn
  for j in 1 2 4; do
    expect 0 "$ATTNC" "$enc" -o "$tmp/e$j.o" -j$j -v
    has "$tmp/stderr" "optimize and compile the object"
    cp "$tmp/stderr" "$tmp/v$j.txt"
  done
  has "$tmp/v1.txt" "in 1 part (-j1)"
  has "$tmp/v2.txt" "in 2 parts (-j2), side by side"
  has "$tmp/v4.txt" "in 4 parts (-j4), side by side"
  has "$tmp/v4.txt" "part 3: "
  # each function is compiled in exactly one part
  for j in 1 2 4; do
    n=$(grep -o 'part [0-9]*: *[0-9]* functions' "$tmp/v$j.txt" | awk '{s += $3} END {print s}')
    [[ $n == $(grep -o 'part 0: *[0-9]* functions' "$tmp/v1.txt" | awk '{print $3}') ]] ||
      fail "-j$j compiles $n functions"
  done
  # the same symbols, global and undefined, whatever the parts: what was
  # internal to the module stays local to the object
  nm -g "$tmp/e1.o" | awk '{print $NF, $(NF-1)}' | sort > "$tmp/g1.txt"
  [[ -s $tmp/g1.txt ]] || fail "nm lists no global symbol"
  for j in 2 4; do
    nm -g "$tmp/e$j.o" | awk '{print $NF, $(NF-1)}' | sort > "$tmp/g$j.txt"
    diff "$tmp/g1.txt" "$tmp/g$j.txt" >&2 || fail "-j$j exports other symbols than -j1"
  done
  # the object depends on N only, not on which thread finishes first
  expect 0 "$ATTNC" "$enc" -o "$tmp/e2b.o" -j2
  cmp -s "$tmp/e2.o" "$tmp/e2b.o" || fail "two -j2 compilations differ"
  # one part for other targets than ELF64 x86-64 and AArch64, and for
  # objects that embed their weights; -S and --emit-llvm are whole too
  expect 0 "$ATTNC" "$enc" -o "$tmp/w.o" -j4 -v --weights "$root/tests/golden/encoder/weights.safetensors"
  has "$tmp/stderr" "in 1 part (-j1)"
  expect 0 "$ATTNC" "$enc" -o "$tmp/arm.o" -j4 -v --target aarch64-linux-gnu
  has "$tmp/stderr" "in 4 parts"
  expect 0 "$ATTNC" "$enc" -o "$tmp/i686.o" -j4 -v --target i686-linux-gnu
  has "$tmp/stderr" "in 1 part (-j4)"
  for bad in 0 65 x ""; do
    expect 2 "$ATTNC" "$enc" -o "$tmp/bad.o" -j "$bad"
    has "$tmp/stderr" "-j wants a number from 1 to 64"
  done
  [[ ! -e $tmp/bad.o ]] || fail "an object was written for a bad -j" ;;
model-names)
  # a model may take any identifier but a C keyword, main, the runtime's
  # prefix attnrt_ and another model's symbols: attn, attn_block and
  # attnc_x compile, link and run side by side
  [[ -n $RUNTIME_LIB ]] || fail "needs RUNTIME_LIB RUNTIME_INC CC"
  cat > "$tmp/names.attn" <<'ATTN'
model attn {
  input x: f32[T]
  output y = x * 2
}
model attn_block {
  input x: f32[T]
  output y = x + 10
}
model attnc_x {
  input x: f32[T]
  output y = -x
}
ATTN
  cat > "$tmp/main.c" <<'C'
#include <stdio.h>
#include "names.h"
int main(void) {
  const float x[3] = {1, 2, 3};
  float a[3], b[3], c[3];
  attnrt_ctx *ca = attnrt_ctx_new(&attn_model), *cb = attnrt_ctx_new(&attn_block_model),
             *cc = attnrt_ctx_new(&attnc_x_model);
  if (attn(ca, x, a, 3) != ATTNRT_OK || attn_block(cb, x, b, 3) != ATTNRT_OK || attnc_x(cc, x, c, 3) != ATTNRT_OK)
    return 1;
  printf("%g %g %g | %g %g %g | %g %g %g\n", a[0], a[1], a[2], b[0], b[1], b[2], c[0], c[1], c[2]);
  attnrt_ctx_free(ca);
  attnrt_ctx_free(cb);
  attnrt_ctx_free(cc);
  /* NAME_scratch_size checks its dims as attnrt_scratch_size does */
  printf("scratch %d %d %d\n", attn_scratch_size(3) >= 0, (int)attn_scratch_size(-1), attn_scratch_size(0) >= 0);
  return 0;
}
C
  expect 0 "$ATTNC" "$tmp/names.attn" -o "$tmp/names.o"
  expect 0 "$CC" -std=c99 ${cflags[@]+"${cflags[@]}"} -I"$RUNTIME_INC" -I"$tmp" "$tmp/main.c" "$tmp/names.o" \
    "$RUNTIME_LIB" -lm -lpthread -o "$tmp/names"
  expect 0 "$tmp/names"
  has "$tmp/stdout" "^2 4 6 | 11 12 13 | -1 -2 -3$"
  has "$tmp/stdout" "^scratch 1 -1 1$" ;;
append-in-place)
  # design.md 5.4/5.7: an output concat(in, x, axis=0) of an unbatched input
  # may be given in's buffer (with room): only the new rows are written; any
  # other overlap is refused; MultiheadAttention's unbatched cache form too
  [[ -n $RUNTIME_LIB ]] || fail "needs RUNTIME_LIB RUNTIME_INC CC"
  cat > "$tmp/cache.attn" <<'ATTN'
model cache {
  input x: f32[T, 2]
  input past: f32[P, 2]
  output kc = concat(past, x, axis=0)
  output y = sum(kc, axis=0)
}
model step {
  input x: f32[T, 8]
  input pk: f32[P, 8]
  input pv: f32[P, 8]
  layer attn = MultiheadAttention(8, heads=2)
  output o, k, v = attn(x, x, x, past_key=pk, past_value=pv, mask=causal_lower_right)
}
ATTN
  cat > "$tmp/main.c" <<'C'
#include <stdio.h>
#include <string.h>
#include "cache.h"
int main(void) {
  float buf[20] = {1, 2, 3, 4}, x[4] = {5, 6, 7, 8}, y[2], copy[12], y2[2];
  attnrt_ctx *ctx = attnrt_ctx_new(&cache_model);
  /* P = 2 rows in buf, T = 2 new: out == past */
  if (cache(ctx, x, buf, buf, y, 2, 2) != ATTNRT_OK) return 1;
  printf("in place: %g %g %g %g %g %g %g %g | %g %g\n", buf[0], buf[1], buf[2], buf[3], buf[4], buf[5], buf[6],
         buf[7], y[0], y[1]);
  /* the same call into a separate buffer gives the same */
  if (cache(ctx, x, buf, copy, y2, 2, 2) != ATTNRT_OK) return 1;
  printf("copy: %d %d\n", memcmp(copy, buf, 8 * sizeof(float)) == 0, memcmp(y, y2, sizeof y) == 0);
  /* a shifted buffer overlaps without being the same: refused */
  attnrt_status s = cache(ctx, x, buf, buf + 2, y, 2, 2);
  printf("shifted: %s: %s\n", attnrt_status_str(s), attnrt_ctx_error(ctx));
  s = cache(ctx, x, buf, copy, buf + 1, 2, 2);
  printf("y on past: %s: %s\n", attnrt_status_str(s), attnrt_ctx_error(ctx));
  attnrt_ctx_free(ctx);
  /* MultiheadAttention's caches in place, one token after a prompt of 3 */
  float w[3 * 64 + 64], ob[8], bias[3 * 8 + 8];
  for (int i = 0; i < 3 * 64 + 64; i++) w[i] = (float)((i * 37) % 11 - 5) / 10.0f;
  for (int i = 0; i < 32; i++) bias[i] = (float)(i % 5) / 10.0f;
  attnrt_tensor win = {ATTNRT_F32, 2, {24, 8}, w}, wo = {ATTNRT_F32, 2, {8, 8}, w + 192};
  attnrt_tensor bin = {ATTNRT_F32, 1, {24}, bias}, bo = {ATTNRT_F32, 1, {8}, bias + 24};
  attnrt_ctx *c2 = attnrt_ctx_new(&step_model);
  attnrt_ctx_bind_param(c2, "attn.in_proj_weight", &win);
  attnrt_ctx_bind_param(c2, "attn.out_proj.weight", &wo);
  attnrt_ctx_bind_param(c2, "attn.in_proj_bias", &bin);
  attnrt_ctx_bind_param(c2, "attn.out_proj.bias", &bo);
  float xs[32], kbuf[64], vbuf[64], k2[64], v2[64], o3[24], o1[8], o1c[8];
  for (int i = 0; i < 32; i++) xs[i] = (float)((i * 7) % 13 - 6) / 6.0f;
  if (step(c2, xs, kbuf, vbuf, o3, kbuf, vbuf, 3, 0) != ATTNRT_OK) return 1;   /* the prompt: P = 0 */
  memcpy(k2, kbuf, sizeof kbuf), memcpy(v2, vbuf, sizeof vbuf);
  if (step(c2, xs + 24, kbuf, vbuf, o1, kbuf, vbuf, 1, 3) != ATTNRT_OK) return 1;   /* in place */
  float k4[64], v4[64];
  if (step(c2, xs + 24, k2, v2, o1c, k4, v4, 1, 3) != ATTNRT_OK) return 1;   /* into new buffers */
  printf("mha: %d %d %d\n", memcmp(o1, o1c, sizeof o1) == 0, memcmp(kbuf, k4, 32 * sizeof(float)) == 0,
         memcmp(vbuf, v4, 32 * sizeof(float)) == 0);
  (void)ob;
  attnrt_ctx_free(c2);
  return 0;
}
C
  expect 0 "$ATTNC" "$tmp/cache.attn" -o "$tmp/cache.o"
  has "$tmp/cache.h" "output  kc: f32\[T+P, 2\] (may be given past's buffer, with room: then only its new rows are written)"
  has "$tmp/cache.h" "output  k: f32\[T+P, 8\] (may be given pk's buffer"
  expect 0 "$CC" -std=c99 ${cflags[@]+"${cflags[@]}"} -I"$RUNTIME_INC" -I"$tmp" "$tmp/main.c" "$tmp/cache.o" \
    "$RUNTIME_LIB" -lm -lpthread -o "$tmp/cache"
  expect 0 "$tmp/cache"
  has "$tmp/stdout" "^in place: 1 2 3 4 5 6 7 8 | 16 20$"
  has "$tmp/stdout" "^copy: 1 1$"
  has "$tmp/stdout" "^shifted: bad argument: output 'kc' overlaps input 'past' in memory without being it: it may be given exactly the input's buffer (an in-place append), or a separate one$"
  has "$tmp/stdout" "^y on past: bad argument: output 'y' overlaps input 'past' in memory; an output may not share"
  has "$tmp/stdout" "^mha: 1 1 1$" ;;
stacked-capacity)
  # docs/c-api.md "Caches": a layer array's stacked cache in the capacity
  # form.  Dense separate buffers are the reference; with a capacity the
  # same calls in place (and into a separate buffer of the same layout)
  # give the same bits, leave the rows past P+T alone, and never write an
  # old row (its pages are read-only); misuse is refused with a message
  [[ -n $RUNTIME_LIB ]] || fail "needs RUNTIME_LIB RUNTIME_INC CC"
  cat > "$tmp/stk.attn" <<'ATTN'
block Step() {
  input x: f32[T, 4]
  input past: f32[P, 4]
  let kc = concat(past, x * 0.5, axis=0)
  output y = x + sum(kc, axis=0)
  output k = kc
}
model stk {
  input x: f32[T, 4]
  input past: f32[3, P, 4]
  layer layers[3] = Step()
  let h, k = layers(x, past)
  output y = h
  output k_cache = k
}
ATTN
  cat > "$tmp/main.c" <<'C'
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "stk.h"
#define L 3
#define D 4
/* dense reference: cache [L, P, D] -> [L, P+T, D] in fresh buffers */
static float *ref_cache;
static int ref_p;
static int step_ref(attnrt_ctx *c, const float *x, int T, float *y) {
  float *out = malloc(sizeof(float) * L * (ref_p + T) * D + 4);
  if (stk(c, x, ref_cache, y, out, T, ref_p) != ATTNRT_OK) return 1;
  free(ref_cache);
  ref_cache = out, ref_p += T;
  return 0;
}
int main(void) {
  float xs[64], y[16], y2[16];
  for (int i = 0; i < 64; i++) xs[i] = (float)((i * 7) % 13 - 6) / 4.0f;
  int Ts[5] = {3, 1, 1, 2, 1};
  attnrt_ctx *ref = attnrt_ctx_new(&stk_model), *ctx = attnrt_ctx_new(&stk_model);
  ref_cache = malloc(4);
  /* capacity 16: one buffer of [3, 16, 4], the caches grown in place */
  enum { C = 16 };
  float *buf = malloc(sizeof(float) * L * C * D), *sep = malloc(sizeof(float) * L * C * D);
  for (int i = 0; i < L * C * D; i++) buf[i] = -7.0f;
  if (attnrt_ctx_set_capacity(ctx, "past", C) != ATTNRT_OK) return 1;
  int p = 0, off = 0, same = 1, untouched = 1;
  for (int s = 0; s < 5; s++) {
    int T = Ts[s];
    if (step_ref(ref, xs + off, T, y)) return 1;
    /* the same step into a separate buffer of the capacity layout */
    if (stk(ctx, xs + off, buf, y2, sep, T, p) != ATTNRT_OK) return 1;
    for (int l = 0; l < L; l++) same &= memcmp(sep + l * C * D, ref_cache + l * ref_p * D, sizeof(float) * ref_p * D) == 0;
    same &= memcmp(y, y2, sizeof(float) * T * D) == 0;
    if (stk(ctx, xs + off, buf, y2, buf, T, p) != ATTNRT_OK) { printf("%s\n", attnrt_ctx_error(ctx)); return 1; }
    p += T, off += T * D;
    same &= memcmp(y, y2, sizeof(float) * T * D) == 0;
    for (int l = 0; l < L; l++) {
      same &= memcmp(buf + l * C * D, ref_cache + l * p * D, sizeof(float) * p * D) == 0;
      for (int i = p * D; i < C * D; i++) untouched &= buf[l * C * D + i] == -7.0f;
    }
  }
  printf("capacity: P = %d, same %d, untouched %d\n", p, same, untouched);
  /* old rows are never written: 256 rows of 16 bytes fill one page per
   * layer, made read-only; the step writes row 256 of each layer */
  enum { C2 = 512 };
  size_t bytes = sizeof(float) * L * C2 * D;
  float *pg = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (pg == MAP_FAILED) return 1;
  for (size_t i = 0; i < (size_t)L * C2 * D; i++) pg[i] = (float)(i % 5);
  for (int l = 0; l < L; l++)
    if (mprotect(pg + l * C2 * D, 4096, PROT_READ) != 0) return 1;
  if (attnrt_ctx_set_capacity(ctx, "past", C2) != ATTNRT_OK) return 1;
  if (stk(ctx, xs, pg, y2, pg, 1, 256) != ATTNRT_OK) { printf("%s\n", attnrt_ctx_error(ctx)); return 1; }
  printf("read-only old rows: appended %g %g\n", pg[256 * D], pg[C2 * D + 256 * D]);
  /* misuse */
  attnrt_status st = attnrt_ctx_set_capacity(ctx, "x", 8);
  printf("not a cache: %s: %s\n", attnrt_status_str(st), attnrt_ctx_error(ctx));
  st = attnrt_ctx_set_capacity(ctx, "past", -1);
  printf("negative: %s: %s\n", attnrt_status_str(st), attnrt_ctx_error(ctx));
  attnrt_ctx_set_capacity(ctx, "past", 4);
  st = stk(ctx, xs, buf, y2, buf, 2, 3);
  printf("too small: %s: %s\n", attnrt_status_str(st), attnrt_ctx_error(ctx));
  attnrt_ctx_set_capacity(ctx, "past", C);
  st = stk(ctx, xs, buf, y2, buf + D, 1, 3);
  printf("shifted: %s: %s\n", attnrt_status_str(st), attnrt_ctx_error(ctx));
  attnrt_ctx_set_capacity(ctx, "past", 0);
  st = stk(ctx, xs, buf, y2, buf, 1, 3);
  printf("dense in place: %s: %s\n", attnrt_status_str(st), attnrt_ctx_error(ctx));
  attnrt_ctx_free(ctx);
  attnrt_ctx_free(ref);
  free(buf), free(sep), free(ref_cache);
  munmap(pg, bytes);
  return 0;
}
C
  expect 0 "$ATTNC" "$tmp/stk.attn" -o "$tmp/stk.o"
  has "$tmp/stk.h" "output  k_cache: f32\[3, T+P, 4\] (extends each layer of past: after attnrt_ctx_set_capacity(ctx, \"past\", C)"
  expect 0 "$CC" -std=c99 ${cflags[@]+"${cflags[@]}"} -I"$RUNTIME_INC" -I"$tmp" "$tmp/main.c" "$tmp/stk.o" \
    "$RUNTIME_LIB" -lm -lpthread -o "$tmp/stk"
  expect 0 "$tmp/stk"
  has "$tmp/stdout" "^capacity: P = 8, same 1, untouched 1$"
  has "$tmp/stdout" "^read-only old rows: appended"
  has "$tmp/stdout" "^not a cache: bad argument: input 'x' of model 'stk' is not a stacked cache (no output extends its layers): a capacity applies to a layer array's cache \[N, P, ...\]$"
  has "$tmp/stdout" "^negative: bad argument: capacity -1 of input 'past' is out of range \[0, 2147483647\]$"
  has "$tmp/stdout" "^too small: shape mismatch: output 'k_cache' of shape \[3, T+P, 4\] has 5 rows per layer, more than the capacity 4 set for input 'past'$"
  has "$tmp/stdout" "^shifted: bad argument: output 'k_cache' overlaps input 'past' in memory without being it: with a capacity it may be given exactly the input's buffer (an append in place), or a separate one$"
  has "$tmp/stdout" "^dense in place: bad argument: output 'k_cache' overlaps input 'past' in memory: a stacked cache is appended in place only with a capacity (attnrt_ctx_set_capacity)$" ;;
weights-dtype-bf16)
  # --weights-dtype bf16 (issue 17), on tests/cli/bf16/ (gen_bf16.py):
  # the F32 file and that file rounded to bf16 by PyTorch give the same
  # bytes, at --run and embedded; the bf16 params are stored as PyTorch's
  # bf16 bytes (storage.c)
  [[ -n $RUNTIME_LIB ]] || fail "needs RUNTIME_LIB RUNTIME_INC CC"
  d=$here/bf16
  expect 0 "$ATTNC" "$d/bf16.attn" --emit-ir --weights-dtype bf16
  has "$tmp/stdout" "param lin.weight, bf16 :"
  has "$tmp/stdout" "param w, bf16 :"
  has "$tmp/stdout" "pack %1, transposed, bf16 :"
  ! grep -q "lin.bias, bf16" "$tmp/stdout" || fail "lin.bias (an epilogue's operand) is stored in bf16"
  for f in w32 w16 f32; do
    dt=bf16 wf=$f
    [[ $f == f32 ]] && dt=f32 wf=w32
    expect 0 "$ATTNC" "$d/bf16.attn" --run --weights-dtype $dt --weights "$d/$wf.safetensors" --input x="$d/x.npy"       --output y="$tmp/y.$f.npy" --output z="$tmp/z.$f.npy"
  done
  cmp "$tmp/y.w32.npy" "$tmp/y.w16.npy" || fail "y: the F32 and BF16 files give different outputs"
  cmp "$tmp/z.w32.npy" "$tmp/z.w16.npy" || fail "z: the F32 and BF16 files give different outputs"
  ! cmp -s "$tmp/y.w32.npy" "$tmp/y.f32.npy" || fail "y: bf16 weights give the f32 result (nothing was rounded)"
  expect 0 "$ATTNC" "$d/bf16.attn" -o "$tmp/a.o" --weights "$d/w32.safetensors" --weights-dtype bf16
  expect 0 "$ATTNC" "$d/bf16.attn" -o "$tmp/b.o" --weights "$d/w16.safetensors" --weights-dtype bf16
  cmp "$tmp/a.o" "$tmp/b.o" || fail "the objects embedding the F32 and the BF16 file differ"
  expect 0 "$ATTNC" "$d/bf16.attn" -o "$tmp/bf.o" --weights-dtype bf16
  has "$tmp/bf.h" "param   w: f32\[8, 20\] (stored as bf16"
  ! grep -q "lin.bias.*bf16" "$tmp/bf.h" || fail "the header says lin.bias is bf16"
  expect 0 "$CC" -std=c99 ${cflags[@]+"${cflags[@]}"} -I"$RUNTIME_INC" -I"$tmp" "$d/storage.c" "$tmp/bf.o" \
    "$RUNTIME_LIB" -lm -lpthread -o "$tmp/storage"
  expect 0 "$tmp/storage" "$d"
  has "$tmp/stdout" "^ok$"
  has "$tmp/stdout" "data of parameter 'lin.weight' is not 2-byte aligned"
  has "$tmp/stdout" "parameter 'lin.weight' has dtype i32, but model 'bf' expects bf16" ;;
weights-dtype-bad)
  expect 2 "$ATTNC" "$sdpa" --weights-dtype f16
  has "$tmp/stderr" "--weights-dtype wants f32 or bf16, got 'f16'"
  expect 2 "$ATTNC" "$sdpa" --weights-dtype
  has "$tmp/stderr" "--weights-dtype needs a value" ;;
rebind-weights)
  # weights are laid out for the GEMM once per binding (c-api.md): binding
  # another tensor, or loading a file, lays them out again before the next
  # call; a second call with the same binding gives the same bits
  [[ -n $RUNTIME_LIB ]] || fail "needs RUNTIME_LIB RUNTIME_INC CC"
  cat > "$tmp/lin.attn" <<'ATTN'
model lin {
  input x: f32[T, 3]
  layer fc = Linear(3, 2, bias=false)
  output y = fc(x)
}
ATTN
  cat > "$tmp/main.c" <<'C'
#include <stdio.h>
#include "lin.h"
int main(void) {
  const float x[6] = {1, 2, 3, 4, 5, 6};
  float w1[6] = {1, 0, 0, 0, 1, 0}, w2[6] = {0, 0, 1, 1, 1, 1}, y[4];
  attnrt_tensor t1 = {ATTNRT_F32, 2, {2, 3}, w1}, t2 = {ATTNRT_F32, 2, {2, 3}, w2};
  attnrt_ctx *ctx = attnrt_ctx_new(&lin_model);
  for (int i = 0; i < 3; i++) {
    attnrt_tensor *t = i == 1 ? &t2 : &t1;
    if (i != 2 && attnrt_ctx_bind_param(ctx, "fc.weight", t) != ATTNRT_OK) return 1;
    if (lin(ctx, x, y, 2) != ATTNRT_OK) return 1;
    printf("%g %g %g %g\n", y[0], y[1], y[2], y[3]);
  }
  attnrt_ctx_free(ctx);
  return 0;
}
C
  expect 0 "$ATTNC" "$tmp/lin.attn" -o "$tmp/lin.o"
  expect 0 "$CC" -std=c99 ${cflags[@]+"${cflags[@]}"} -I"$RUNTIME_INC" -I"$tmp" "$tmp/main.c" "$tmp/lin.o" \
    "$RUNTIME_LIB" -lm -lpthread -o "$tmp/lin"
  expect 0 "$tmp/lin"
  [[ $(cat "$tmp/stdout") == $'1 2 4 5\n3 6 6 15\n3 6 6 15' ]] || { cat "$tmp/stdout"; fail "rebinding does not take effect"; } ;;
kernels-shared)
  # identical nodes share one kernel body: the six layers of
  # examples/encoder_stack.attn compile about the instructions of one layer
  # (the bodies once, six small wrappers), not six times as many
  stack=$root/examples/encoder_stack.attn
  sed 's/layer layers\[6\]/layer layers[1]/' "$stack" > "$tmp/one.attn"
  instrs() { "$ATTNC" "$1" -o "$tmp/k.o" -v 2>&1 | awk '/ part [0-9]+:/ { for (i = 1; i <= NF; i++) if ($i ~ /^instructions/) n += $(i - 1) } END { print n + 0 }'; }
  six=$(instrs "$stack")
  one=$(instrs "$tmp/one.attn")
  [[ $one -gt 1000 && $six -lt $((2 * one)) ]] || fail "6 layers compile $six instructions, 1 layer $one"
  rm -f "$tmp/k.o" "$tmp/k.h" ;;
out-special)
  # only a regular file is replaced by a rename: a device or a FIFO is
  # written in place (-o /dev/null discards, as with cc), a symbolic link's
  # target is replaced and the link stays
  sdpa_in=(--input q="$root/tests/run/sdpa/in.q.npy" --input k="$root/tests/run/sdpa/in.k.npy"
           --input v="$root/tests/run/sdpa/in.v.npy")
  if mknod -m 666 "$tmp/mynull" c 1 3 2>/dev/null; then
    expect 0 "$ATTNC" "$sdpa" --emit-ir -o "$tmp/mynull"
    expect 0 "$ATTNC" "$sdpa" --emit-llvm -o "$tmp/mynull"
    expect 0 "$ATTNC" "$sdpa" -o "$tmp/mynull"
    expect 0 "$ATTNC" "$sdpa" --run "${sdpa_in[@]}" --output o="$tmp/mynull"
    [[ -c $tmp/mynull ]] || fail "a character device was replaced by a regular file"
    rm "$tmp/mynull"
  else
    echo "skip: mknod needs root"
  fi
  expect 0 "$ATTNC" "$sdpa" -o /dev/null
  [[ -c /dev/null ]] || fail "/dev/null is no longer a device"
  mkfifo "$tmp/fifo"
  cat "$tmp/fifo" > "$tmp/from-fifo" & reader=$!
  expect 0 timeout 60 "$ATTNC" "$sdpa" --emit-ir -o "$tmp/fifo"
  wait $reader
  [[ -p $tmp/fifo ]] || fail "a FIFO was replaced by a regular file"
  has "$tmp/from-fifo" "model sdpa(T, S)"
  ln -s real.o "$tmp/link.o"
  expect 0 "$ATTNC" "$sdpa" -o "$tmp/link.o"
  [[ -L $tmp/link.o && -s $tmp/real.o && -s $tmp/link.h ]] || fail "the link was not kept, or its target not written"
  only_files fifo from-fifo link.o link.h real.o ;;
out-collisions)
  # two outputs on one file, or an output on an input: refused before
  # anything is written (exit 2), every file as it was
  cp "$sdpa" "$tmp/m.attn"
  echo keep > "$tmp/keep.o"
  echo keep > "$tmp/y.o"
  expect 2 "$ATTNC" "$tmp/m.attn" -o "$tmp/x.h"
  has "$tmp/stderr" "attnc: the object (-o) and the header are the same file ('$tmp/x.h' and '$tmp/x.h')"
  expect 2 "$ATTNC" "$tmp/m.attn" -o "$tmp/y.o" --header "$tmp/y.o"
  has "$tmp/stderr" "the object (-o) and the header are the same file"
  expect 2 "$ATTNC" "$tmp/m.attn" -o "$tmp/m.attn"
  has "$tmp/stderr" "attnc: the object (-o) would overwrite the source file: '$tmp/m.attn' and '$tmp/m.attn' are the same file"
  expect 2 "$ATTNC" "$tmp/m.attn" --emit-ir -o "$tmp/../$(basename "$tmp")/m.attn"
  has "$tmp/stderr" "would overwrite the source file"
  ln -s m.attn "$tmp/alias.ll"
  expect 2 "$ATTNC" "$tmp/m.attn" --emit-llvm -o "$tmp/alias.ll"
  has "$tmp/stderr" "would overwrite the source file"
  rm "$tmp/alias.ll"
  expect 2 "$ATTNC" "$tmp/m.attn" -o "$tmp/keep.o" --header "$tmp/m.attn"
  has "$tmp/stderr" "the header would overwrite the source file"
  q=$root/tests/run/sdpa/in.q.npy
  cp "$q" "$tmp/q.npy"
  expect 2 "$ATTNC" "$tmp/m.attn" --run --input q="$tmp/q.npy" --input k="$q" --input v="$q" --output o="$tmp/q.npy"
  has "$tmp/stderr" "attnc: --output o would overwrite --input q"
  cmp -s "$q" "$tmp/q.npy" || fail "an input was changed"
  printf 'model two {\n  input x: f32[T]\n  output a = x + 1\n  output b = x + 2\n}\n' > "$tmp/two.attn"
  expect 2 "$ATTNC" "$tmp/two.attn" --run --input x="$q" --output a="$tmp/o.npy" --output b="$tmp/o.npy"
  has "$tmp/stderr" "attnc: --output a and --output b are the same file"
  [[ $(cat "$tmp/keep.o") == keep && $(cat "$tmp/y.o") == keep ]] || fail "a refused command changed a file"
  cmp -s "$sdpa" "$tmp/m.attn" || fail "the source was changed"
  only_files m.attn keep.o y.o q.npy two.attn ;;
out-both-or-neither)
  # the object and its header are written both or neither
  expect 1 "$ATTNC" "$sdpa" -o "$tmp/z.o" --header "$tmp/nodir/z.h"
  has "$tmp/stderr" "attnc: error: cannot write $tmp/nodir/z.h: No such file or directory"
  echo old > "$tmp/w.o"
  mkdir "$tmp/w.h"
  expect 1 "$ATTNC" "$sdpa" -o "$tmp/w.o"
  has "$tmp/stderr" "cannot write $tmp/w.h: Is a directory"
  [[ $(cat "$tmp/w.o") == old ]] || fail "the object was replaced although its header could not be written"
  only_files w.o w.h ;;
out-names)
  # a name near NAME_MAX (255 bytes) gets its temporary file beside it
  long=$(printf 'a%.0s' $(seq 251))
  expect 0 "$ATTNC" "$sdpa" -o "$tmp/$long.o"
  [[ -s $tmp/$long.o && -s $tmp/$long.h ]] || fail "a 253-byte output name was not written"
  rm "$tmp/$long.o" "$tmp/$long.h"
  # -o - writes the object to stdout (never to a terminal) and no header
  (cd "$tmp" && "$ATTNC" "$sdpa" -o - > "$tmp/obj.bin" 2>"$tmp/stderr") || fail "-o - to a file failed"
  [[ $(head -c 4 "$tmp/obj.bin" | tail -c 3) == ELF ]] || fail "-o - did not write an ELF object"
  if command -v script >/dev/null; then
    script -qec "$ATTNC $sdpa -o -" /dev/null > "$tmp/tty.txt" 2>&1
    grep -q "refusing to write an object file to a terminal" "$tmp/tty.txt" || { cat "$tmp/tty.txt"; fail "-o - wrote to a terminal"; }
    rm "$tmp/tty.txt"
  else
    echo "skip the terminal check: no script(1)"
  fi
  only_files obj.bin ;;
out-ignored-options)
  # options that would do nothing are errors, not silently dropped
  expect 2 "$ATTNC" "$sdpa" --run -o "$tmp/x.o"
  has "$tmp/stderr" "attnc: -o goes with compiling and the --emit options; --run writes outputs with --output NAME=FILE"
  expect 2 "$ATTNC" "$sdpa" --check -o "$tmp/x.o"
  has "$tmp/stderr" "this mode writes no file"
  expect 1 "$ATTNC" "$sdpa" --check --weights "$tmp/nope.safetensors"
  has "$tmp/stderr" "cannot open $tmp/nope.safetensors"
  expect 1 "$ATTNC" "$root/examples/encoder.attn" --emit-ir --weights "$tmp/nope.safetensors"
  has "$tmp/stderr" "cannot open $tmp/nope.safetensors"
  expect 0 "$ATTNC" "$root/examples/encoder.attn" --check --weights "$root/examples/weights/encoder.safetensors"
  only_files ;;
prefix-link)
  # one .attn compiled twice, with --prefix v1_ and v2_ and other embedded
  # weights, into headers of one name in two folders: both link into one
  # program, which calls both (the include guards differ by the prefix)
  [[ -n $RUNTIME_LIB ]] || fail "needs RUNTIME_LIB RUNTIME_INC CC"
  prefixed_lin
  # v2: the identity, in F32 (y = x)
  st_file "$tmp/id.safetensors" \
    '{"proj.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"proj.bias":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}}' \
    '00 00 80 3f 00 00 00 00  00 00 00 00 00 00 80 3f  00 00 00 00 00 00 00 00'
  mkdir "$tmp/v1" "$tmp/v2"
  expect 0 "$ATTNC" "$tmp/lin.attn" -o "$tmp/v1/lin.o" --prefix v1_ --weights "$tmp/w.safetensors" --weights-prefix net.enc.
  expect 0 "$ATTNC" "$tmp/lin.attn" -o "$tmp/v2/lin.o" --prefix v2_ --weights "$tmp/id.safetensors"
  has "$tmp/v1/lin.h" "^#ifndef ATTNC_V1_LIN_H_$"
  has "$tmp/v1/lin.h" "^extern const attnrt_model_desc v1_lin_model;$"
  has "$tmp/v1/lin.h" "^attnrt_status v1_lin(attnrt_ctx \*ctx, const float \*x, float \*y, int64_t T);$"
  has "$tmp/v1/lin.h" "^int64_t v1_lin_scratch_size(int64_t T);$"
  has "$tmp/v2/lin.h" "^#ifndef ATTNC_V2_LIN_H_$"
  cat > "$tmp/main.c" <<'C'
#include <stdio.h>
#include "v1/lin.h"
#include "v2/lin.h"
static void show(const char *who, const float *y) {
  printf("%s: [%g, %g, %g, %g]\n", who, y[0], y[1], y[2], y[3]);
}
int main(void) {
  const float x[4] = {1, 1, 2, -1};
  float y1[4], y2[4];
  attnrt_ctx *c1 = attnrt_ctx_new(&v1_lin_model), *c2 = attnrt_ctx_new(&v2_lin_model);
  if (!c1 || !c2 || v1_lin(c1, x, y1, 2) != ATTNRT_OK || v2_lin(c2, x, y2, 2) != ATTNRT_OK) return 1;
  show("v1_lin", y1);
  show("v2_lin", y2);
  printf("scratch: %lld %lld\n", (long long)v1_lin_scratch_size(2), (long long)v2_lin_scratch_size(2));
  /* a context of one version is refused by the other */
  if (v2_lin(c1, x, y2, 2) == ATTNRT_OK) return 1;
  printf("%s\n", attnrt_ctx_error(c1));
  attnrt_ctx_free(c1);
  attnrt_ctx_free(c2);
  return 0;
}
C
  expect 0 "$CC" -std=c99 -Wall -Werror ${cflags[@]+"${cflags[@]}"} -I"$RUNTIME_INC" -I"$tmp" "$tmp/main.c" \
    "$tmp/v1/lin.o" "$tmp/v2/lin.o" "$RUNTIME_LIB" -lm -lpthread -o "$tmp/both"
  expect 0 "$tmp/both"
  printf '%s\n' "v1_lin: [3.5, 6, 0.5, 1]" "v2_lin: [1, 1, 2, -1]" "scratch: 0 0" \
    "v2_lin: the context was made for another model" > "$tmp/want.txt"
  diff -u "$tmp/want.txt" "$tmp/stdout" >&2 || fail "the program's output differs" ;;
prefix-symbols)
  # a prefixed object defines only prefixed globals (in one part and in
  # two, for every model of a file); what it leaves undefined is the
  # runtime's and libc's mem* (LLVM's memset and memcpy)
  printf 'model a {\n  input x: f32[T, 8]\n  output y = softmax(x @ transpose(x))\n}\nmodel b {\n  input x: f32[T]\n  output y = x + 1\n}\n' > "$tmp/ab.attn"
  for j in 1 2; do
    expect 0 "$ATTNC" "$tmp/ab.attn" -o "$tmp/ab$j.o" --prefix zz_ -j$j
    nm -g --defined-only "$tmp/ab$j.o" | awk '{print $3}' | sort > "$tmp/defined.txt"
    printf '%s\n' zz_a zz_a_model zz_a_scratch_size zz_b zz_b_model zz_b_scratch_size > "$tmp/want.txt"
    diff -u "$tmp/want.txt" "$tmp/defined.txt" >&2 || fail "-j$j: the globals are not exactly the prefixed ones"
    nm -u "$tmp/ab$j.o" | awk '{print $2}' | grep -v -e '^attnrt_' -e '^mem\(set\|cpy\|move\)$' > "$tmp/other.txt"
    [[ ! -s $tmp/other.txt ]] || { cat "$tmp/other.txt" >&2; fail "-j$j: undefined symbols besides attnrt_* and mem*"; }
  done
  has "$tmp/ab1.h" "^attnrt_status zz_b(attnrt_ctx \*ctx, const float \*x, float \*y, int64_t T);$"
  # the same with embedded weights (one part) and for the other outputs
  prefixed_lin
  expect 0 "$ATTNC" "$tmp/lin.attn" -o "$tmp/lin.o" --prefix P9 --weights "$tmp/w.safetensors" --weights-prefix net.enc.
  [[ $(nm -g --defined-only "$tmp/lin.o" | awk '{print $3}' | sort | tr '\n' ' ') == "P9lin P9lin_model P9lin_scratch_size " ]] ||
    { nm -g "$tmp/lin.o" >&2; fail "embedded weights: globals not prefixed"; }
  expect 0 "$ATTNC" "$tmp/ab.attn" --emit-llvm --prefix zz_
  has "$tmp/stdout" "^define i32 @zz_a(ptr"
  has "$tmp/stdout" "^@zz_b_model = "
  expect 0 "$ATTNC" "$tmp/ab.attn" -S --prefix zz_
  has "$tmp/stdout" "^zz_a_scratch_size:"
  # --run and --bench look the model up under its prefixed name
  expect 0 "$ATTNC" "$tmp/lin.attn" --run --prefix v1_ --weights "$tmp/w.safetensors" --weights-prefix net.enc. --input x="$tmp/x.npy"
  has "$tmp/stdout" "^y: f32\[2, 2\] = \[3.5, 6, 0.5, 1\]$"
  expect 0 "$ATTNC" "$tmp/ab.attn" --bench --model b --prefix v1_ --dim T=8
  has "$tmp/stdout" "^b: T=8" ;;
prefix-bad)
  # a prefix must start a C identifier and not be the runtime's
  for p in 1x a-b 'a b' '' 'é' attnrt_ attnrt_v1; do
    expect 2 "$ATTNC" "$sdpa" -o "$tmp/x.o" --prefix "$p"
    has "$tmp/stderr" "^attnc: --prefix"
  done
  has "$tmp/stderr" "^attnc: --prefix 'attnrt_v1': names starting with attnrt_ belong to the runtime$"
  expect 2 "$ATTNC" "$sdpa" -o "$tmp/x.o" --prefix 9
  has "$tmp/stderr" "^attnc: --prefix wants the start of a C identifier (letters, digits and _, not a digit first), got '9'$"
  expect 2 "$ATTNC" "$sdpa" --prefix
  has "$tmp/stderr" "--prefix needs a value"
  expect 2 "$ATTNC" "$sdpa" --check --prefix v1_
  has "$tmp/stderr" "--prefix goes with compiling"
  # underscores and digits after the first character are fine
  expect 0 "$ATTNC" "$sdpa" -o "$tmp/ok.o" --prefix _v2_0_
  has "$tmp/ok.h" "^int64_t _v2_0_sdpa_scratch_size(int64_t T, int64_t S);$"
  only_files ok.o ok.h ;;
*) fail "no such case" ;;
esac
echo "ok $CASE"
