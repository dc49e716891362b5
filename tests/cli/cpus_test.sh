#!/usr/bin/env bash
# cpus_test.sh ATTNC CASE RUNTIME_LIB RUNTIME_INC CC: one object for several
# CPUs (attnc --cpu A,B,...; docs/cli.md, docs/c-api.md "Several CPUs").
#
#   dispatch  tests/golden/encoder (attention, GEMMs, LayerNorm) and
#             lstm_2layer (LSTM), compiled with --cpu x86-64-v2,haswell,x86-64-v4
#             and for each of x86-64, x86-64-v2, haswell, x86-64-v4 alone; each
#             linked with tests/harness/run_model.c.  The list's object, with
#             each CPU forced (ATTNRT_CPU), gives the bits of that CPU's own
#             object; unforced, those of the best CPU this machine has; with
#             features hidden (ATTNRT_CPU_HIDE), those of the best CPU left,
#             down to the baseline x86-64 on a CPU with none of the listed
#             features; a forced CPU the machine lacks, or one the object does
#             not have, falls back with a note.  Under qemu-x86_64 (if
#             installed), emulated CPUs without AVX-512 or without SSE4 pick
#             what they can run.
#   usage     the usage errors of a list
#   object    what the object exports and its header are a single CPU's; the
#             embedded weights are in it once; --prefix; -v
set -uo pipefail
ATTNC=$1
CASE=$2
RUNTIME_LIB=$3
RUNTIME_INC=$4
CC=${5:-cc}
cflags=()
read -r -a cflags <<< "${CFLAGS:-}" || true
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
golden=$root/tests/golden
tmp=$(mktemp -d "${TMPDIR:-/tmp}/attnc-cpus.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL cpus-$CASE: $*" >&2; exit 1; }
expect() {
  local want=$1; shift
  "$@" >"$tmp/stdout" 2>"$tmp/stderr"
  local got=$?
  [[ $got == "$want" ]] || { cat "$tmp/stderr" >&2; fail "'$*' exited $got, expected $want"; }
}
has() { grep -q -- "$2" "$1" || { cat "$1" >&2; fail "$1 lacks '$2'"; }; }
LIST=x86-64-v2,haswell,x86-64-v4
CPUS=(x86-64 x86-64-v2 haswell x86-64-v4)

# harness MODEL OBJECT EXE: run_model.c linked with OBJECT
harness() {
  "$CC" ${cflags[@]+"${cflags[@]}"} -O1 -DMODEL_DESC="$1_model" -I"$RUNTIME_INC" "$root/tests/harness/run_model.c" \
    "$2" "$RUNTIME_LIB" -lm -lpthread -o "$3" || fail "cannot link $2"
}
# run OUTDIR EXE MODEL [PREFIX...]: EXE on MODEL's golden inputs (PREFIX: env
# assignments or an emulator), its stderr in OUTDIR.err
run() {
  local out=$1 exe=$2 model=$3; shift 3
  rm -rf "$out"; mkdir -p "$out"
  "$@" "$exe" "$golden/$model" "$out" >/dev/null 2>"$out.err" || { cat "$out.err" >&2; fail "$exe failed ($*)"; }
}
# same A B WHAT: output folders A and B hold the same files, bit for bit
same() {
  local f n=0
  for f in "$1"/*.npy; do
    cmp -s "$f" "$2/${f##*/}" || fail "$3: ${f##*/} differs from $2"
    n=$((n + 1))
  done
  (( n > 0 )) || fail "$3: no outputs in $1"
}
notes_none() { ! grep -q 'attnrt:' "$1.err" || { cat "$1.err" >&2; fail "unexpected note in $1.err"; }; }

case $CASE in
dispatch)
  # What this machine has, as the kernel reports it: which CPUs the
  # runtime must find runnable.
  flags=$(grep -m1 '^flags' /proc/cpuinfo)
  runnable=(x86-64 x86-64-v2)
  [[ $flags == *" avx2 "* && $flags == *" fma "* && $flags == *" bmi2 "* ]] && runnable+=(haswell)
  [[ $flags == *" avx512bw "* && $flags == *" avx512vl "* && $flags == *" avx512dq "* ]] && runnable+=(x86-64-v4)
  best=${runnable[-1]}
  differ=0
  for model in encoder lstm_2layer; do
    src=$golden/$model.attn
    expect 0 "$ATTNC" "$src" --cpu $LIST -o "$tmp/$model.multi.o"
    harness $model "$tmp/$model.multi.o" "$tmp/$model.multi"
    for cpu in "${CPUS[@]}"; do
      expect 0 "$ATTNC" "$src" --cpu $cpu -o "$tmp/$model.$cpu.o"
      harness $model "$tmp/$model.$cpu.o" "$tmp/$model.$cpu"
      run "$tmp/$model.single.$cpu" "$tmp/$model.$cpu" $model
    done
    for f in "$tmp/$model.single.x86-64"/*.npy; do
      cmp -s "$f" "$tmp/$model.single.$best/${f##*/}" || differ=1
    done
    # each CPU forced: its own object's bits
    for cpu in "${runnable[@]}"; do
      run "$tmp/$model.forced.$cpu" "$tmp/$model.multi" $model env ATTNRT_CPU=$cpu
      notes_none "$tmp/$model.forced.$cpu"
      same "$tmp/$model.forced.$cpu" "$tmp/$model.single.$cpu" "$model, ATTNRT_CPU=$cpu"
    done
    # unforced: the best this machine has
    run "$tmp/$model.auto" "$tmp/$model.multi" $model
    notes_none "$tmp/$model.auto"
    same "$tmp/$model.auto" "$tmp/$model.single.$best" "$model, unforced (expected $best)"
    # features hidden: the best CPU left; none of the listed CPUs' (SSE3,
    # under all of them): the baseline
    for hide in avx512f:haswell avx2:x86-64-v2 sse3:x86-64; do
      want=${hide#*:}
      [[ " ${runnable[*]} " == *" $want "* ]] || continue
      run "$tmp/$model.hide" "$tmp/$model.multi" $model env ATTNRT_CPU_HIDE=${hide%%:*}
      same "$tmp/$model.hide" "$tmp/$model.single.$want" "$model, ATTNRT_CPU_HIDE=${hide%%:*} (expected $want)"
    done
    # forcing a CPU the machine lacks: a note, and the best it has
    run "$tmp/$model.lacks" "$tmp/$model.multi" $model env ATTNRT_CPU=haswell ATTNRT_CPU_HIDE=fma
    has "$tmp/$model.lacks.err" "attnrt: ATTNRT_CPU=haswell: this machine lacks fma; running the x86-64-v2 code"
    same "$tmp/$model.lacks" "$tmp/$model.single.x86-64-v2" "$model, ATTNRT_CPU=haswell without fma"
    run "$tmp/$model.other" "$tmp/$model.multi" $model env ATTNRT_CPU=znver4
    has "$tmp/$model.other.err" \
      "attnrt: ATTNRT_CPU=znver4 is not one of this object's CPUs (x86-64-v4, haswell, x86-64-v2, x86-64); running the $best code"
    same "$tmp/$model.other" "$tmp/$model.single.$best" "$model, ATTNRT_CPU=znver4"
  done
  (( differ )) || fail "x86-64's and $best's objects gave the same bits for both models: forcing would prove nothing"
  # bf16 weights: each CPU's code prepares its own panels, in k pairs for
  # vdpbf16ps on a CPU with AVX-512 BF16 (znver4; its GEMV rounds the
  # activations to bf16), widened rows on the others: a list with both runs
  # each one's own bits
  if [[ $flags == *" avx512_bf16 "* ]]; then
    expect 0 "$ATTNC" "$golden/gemv.attn" --cpu haswell,znver4 --weights-dtype bf16 -o "$tmp/gemv.multi.o"
    harness gemv "$tmp/gemv.multi.o" "$tmp/gemv.multi"
    for cpu in haswell znver4; do
      expect 0 "$ATTNC" "$golden/gemv.attn" --cpu $cpu --weights-dtype bf16 -o "$tmp/gemv.$cpu.o"
      harness gemv "$tmp/gemv.$cpu.o" "$tmp/gemv.$cpu"
      run "$tmp/gemv.single.$cpu" "$tmp/gemv.$cpu" gemv
      run "$tmp/gemv.forced.$cpu" "$tmp/gemv.multi" gemv env ATTNRT_CPU=$cpu
      notes_none "$tmp/gemv.forced.$cpu"
      same "$tmp/gemv.forced.$cpu" "$tmp/gemv.single.$cpu" "gemv bf16, ATTNRT_CPU=$cpu"
    done
    run "$tmp/gemv.auto" "$tmp/gemv.multi" gemv
    same "$tmp/gemv.auto" "$tmp/gemv.single.znver4" "gemv bf16, unforced (expected znver4)"
    [[ -f $tmp/gemv.single.znver4/out.a.npy ]] || fail "gemv bf16: no out.a.npy"
    cmp -s "$tmp/gemv.single.haswell/out.a.npy" "$tmp/gemv.single.znver4/out.a.npy" &&
      fail "gemv bf16: haswell's and znver4's one-row product gave the same bits (no vdpbf16ps?)"
  else
    echo "cpus-dispatch: no avx512_bf16: the bf16 list with znver4 not run"
  fi
  # Real CPUs without the features, emulated: qemu's TCG has AVX2 but no
  # AVX-512 (max), SSE4.2 but no AVX (Nehalem), SSE3 only (qemu64).  The
  # single CPU's object runs under the same emulator for the reference.
  # Not with the sanitizers (the ASan stage's CFLAGS): ASan's shadow memory
  # under qemu's user mode is terabytes of mappings, and the run is killed.
  if [[ ${CFLAGS:-} == *-fsanitize* ]]; then
    echo "cpus-dispatch: built with sanitizers: emulated CPUs tested in the release stage only"
  elif command -v qemu-x86_64 >/dev/null; then
    for pair in max:haswell Nehalem:x86-64-v2 qemu64:x86-64; do
      qcpu=${pair%%:*} want=${pair#*:}
      run "$tmp/q.multi" "$tmp/encoder.multi" encoder qemu-x86_64 -cpu $qcpu
      run "$tmp/q.single" "$tmp/encoder.$want" encoder qemu-x86_64 -cpu $qcpu
      same "$tmp/q.multi" "$tmp/q.single" "encoder under qemu-x86_64 -cpu $qcpu (expected $want)"
    done
  else
    echo "cpus-dispatch: no qemu-x86_64: emulated CPUs not tested"
  fi ;;
usage)
  sdpa=$root/examples/sdpa.attn
  expect 2 "$ATTNC" "$sdpa" --cpu x86-64-v3,x86-64-v4 --run
  has "$tmp/stderr" "attnc: --cpu with a list of CPUs makes an object; --run takes one CPU"
  expect 2 "$ATTNC" "$sdpa" --cpu x86-64-v3,x86-64-v4 --bench
  has "$tmp/stderr" "--bench takes one CPU"
  expect 2 "$ATTNC" "$sdpa" --cpu x86-64-v3,x86-64-v4 -S
  has "$tmp/stderr" "; -S takes one CPU"
  expect 2 "$ATTNC" "$sdpa" --cpu x86-64-v3,x86-64-v4 --emit-llvm
  has "$tmp/stderr" "; --emit-llvm takes one CPU"
  expect 2 "$ATTNC" "$sdpa" --cpu x86-64-v3, -o "$tmp/a.o"
  has "$tmp/stderr" "attnc: --cpu 'x86-64-v3,': a list of CPUs has an empty name"
  expect 2 "$ATTNC" "$sdpa" --cpu haswell,x86-64-v3,haswell -o "$tmp/a.o"
  has "$tmp/stderr" "attnc: --cpu 'haswell,x86-64-v3,haswell' names haswell twice"
  expect 2 "$ATTNC" "$sdpa" --cpu host,native -o "$tmp/a.o"
  has "$tmp/stderr" "names native twice"
  expect 2 "$ATTNC" "$sdpa" --cpu haswell,pentium9 -o "$tmp/a.o"
  has "$tmp/stderr" "attnc: --cpu pentium9: not a 64-bit x86 CPU that LLVM's target parser knows, so attnc cannot tell"
  expect 2 "$ATTNC" "$sdpa" --cpu generic,haswell -o "$tmp/a.o"
  has "$tmp/stderr" "attnc: --cpu generic: not a 64-bit x86 CPU that LLVM's target parser knows"
  expect 2 "$ATTNC" "$sdpa" --cpu haswell,i686 -o "$tmp/a.o"
  has "$tmp/stderr" "attnc: --cpu i686 is a 32-bit CPU; a list names 64-bit x86 CPUs"
  expect 2 "$ATTNC" "$sdpa" --target aarch64-linux-gnu --cpu cortex-a72,neoverse-n1 -o "$tmp/a.o"
  has "$tmp/stderr" "attnc: --cpu with a list of CPUs needs an x86-64 target ('aarch64-linux-gnu' is not one)"
  expect 2 "$ATTNC" "$sdpa" --target x86_64-unknown-freebsd --cpu host,x86-64-v3 -o "$tmp/a.o"
  has "$tmp/stderr" "attnc: --cpu host in a list means this machine's CPU, which --target x86_64-unknown-freebsd is not"
  expect 2 "$ATTNC" "$sdpa" --cpu a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p -o "$tmp/a.o"
  has "$tmp/stderr" "at most 15 CPUs"
  [[ ! -e $tmp/a.o && ! -e $tmp/a.h ]] || fail "a refused list wrote an output"
  # no codegen in these modes: a list is accepted as it is
  expect 0 "$ATTNC" "$sdpa" --cpu x86-64-v3,x86-64-v4 --emit-ir ;;
object)
  src=$root/examples/encoder.attn
  w=$root/examples/weights/encoder.safetensors
  mkdir "$tmp/one" "$tmp/list"
  expect 0 "$ATTNC" "$src" --cpu haswell -o "$tmp/one/enc.o" --prefix p_
  expect 0 "$ATTNC" "$src" --cpu x86-64-v4,haswell,host -o "$tmp/list/enc.o" --prefix p_ -v
  has "$tmp/stderr" "attnc:   x86-64-v4 (x86-64-v4, 16-lane vectors):"
  has "$tmp/stderr" "attnc:   haswell (haswell, 8-lane vectors):"
  has "$tmp/stderr" "attnc:   x86-64 (x86-64, 4-lane vectors):"
  has "$tmp/stderr" "attnc:   the dispatch code (x86-64):"
  cmp -s "$tmp/one/enc.h" "$tmp/list/enc.h" || { diff "$tmp/one/enc.h" "$tmp/list/enc.h" >&2; fail "the headers differ"; }
  # the same exports; the runtime's chooser is one more import
  nm -g --defined-only "$tmp/one/enc.o" | awk '{print $2, $3}' > "$tmp/one.syms"
  nm -g --defined-only "$tmp/list/enc.o" | awk '{print $2, $3}' > "$tmp/list.syms"
  cmp -s "$tmp/one.syms" "$tmp/list.syms" || { diff "$tmp/one.syms" "$tmp/list.syms" >&2; fail "the exports differ"; }
  has "$tmp/list.syms" "^T p_encoder$"
  nm -u "$tmp/list/enc.o" > "$tmp/undef"
  has "$tmp/undef" "attnrt_cpu_pick"
  # floorf: libm (always linked), for the exp of a scalar loop on the baseline (no SSE4.1 round)
  if grep -v -e attnrt_ -e memcpy -e memset -e floorf "$tmp/undef"; then fail "the object needs more than the runtime, libc and libm"; fi
  # embedded weights are in the object once, not once per CPU: the list's
  # object grows by what a single CPU's does (give or take alignment)
  for k in one list; do
    cpu=haswell; [[ $k == list ]] && cpu=x86-64-v4,haswell
    expect 0 "$ATTNC" "$src" --cpu $cpu -o "$tmp/$k/plain.o"
    expect 0 "$ATTNC" "$src" --cpu $cpu -o "$tmp/$k/w.o" --weights "$w"
    eval "grow_$k=\$(( \$(stat -c %s \"\$tmp/\$k/w.o\") - \$(stat -c %s \"\$tmp/\$k/plain.o\") ))"
  done
  # shellcheck disable=SC2154
  (( grow_one > 1000000 && grow_list - grow_one < 4096 && grow_one - grow_list < 4096 )) ||
    fail "weights grow one CPU's object by $grow_one bytes, the list's by $grow_list"
  # and the object runs with them embedded, binding nothing
  cat > "$tmp/main.c" <<'C'
#include <stdio.h>
#include "w.h"
int main(void) {
  static float x[4 * 256], y[4 * 256];
  for (int i = 0; i < 4 * 256; i++) x[i] = (float)(i % 7) - 3.0f;
  attnrt_ctx *c = attnrt_ctx_new(&encoder_model);
  if (!c || encoder(c, x, y, 4) != ATTNRT_OK) return 1;
  printf("%.6g %.6g\n", y[0], y[4 * 256 - 1]);
  attnrt_ctx_free(c);
  return 0;
}
C
  for k in one list; do
    "$CC" ${cflags[@]+"${cflags[@]}"} -I"$RUNTIME_INC" -I"$tmp/$k" "$tmp/main.c" "$tmp/$k/w.o" "$RUNTIME_LIB" \
      -lm -lpthread -o "$tmp/$k/main" || fail "cannot link $k/w.o"
    ATTNRT_CPU=haswell "$tmp/$k/main" > "$tmp/$k.out" || fail "$k/main failed"
  done
  cmp -s "$tmp/one.out" "$tmp/list.out" || fail "embedded weights: $(cat "$tmp/one.out") alone, $(cat "$tmp/list.out") in the list" ;;
*) fail "unknown case" ;;
esac
exit 0
