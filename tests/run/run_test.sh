#!/usr/bin/env bash
# run_test.sh: one run test: compile and run tests/run/NAME.attn on the inputs
# in tests/run/NAME/ and compare every output with the golden out.*.npy.
#
#   run_test.sh jit ATTNC NPYCMP FILE CPU [ATTNC-FLAG...]
#       attnc FILE --run [--cpu CPU] [--weights DIR/weights.safetensors]
#             --input NAME=DIR/in.NAME.npy ... --output NAME=TMP/out.NAME.npy ...
#   run_test.sh obj ATTNC NPYCMP CC RUNTIME_LIB RUNTIME_INC HARNESS_C FILE CPU [ATTNC-FLAG...]
#       attnc FILE -o TMP/MODEL.o --header TMP/MODEL.h [--cpu CPU]; checks that
#       the header is clean C99 (-std=c99 -Wall -Wextra -pedantic -Werror,
#       included twice); builds HARNESS_C with -DMODEL_DESC=MODEL_model and
#       a call of the typed entry point MODEL(ctx, inputs..., outputs...,
#       dims...), links it with the object, RUNTIME_LIB, -lm and -lpthread;
#       runs it (tests/harness/run_model.c says what else it checks).
#
# CPU is an LLVM CPU name (x86-64, haswell, ...) or `host` (no --cpu given).
# Then, for every DIR/out.NAME.npy:  NPYCMP actual expected --atol A --rtol R
# with A and R from DIR/tol ("atol rtol") or 1e-4 1e-4 (DIR/tol.bf16 when the
# flags hold --weights-dtype bf16).  DIR is FILE without
# .attn; the model's name is read from FILE (`model NAME {`).
# Exit 0 when everything ran and every output matched.
#
# Environment: HARNESS_CFLAGS, extra flags for compiling and linking the
# harness (e.g. -fsanitize=address,undefined when RUNTIME_LIB was built so);
# HARNESS_EMULATOR, a command that runs the harness (e.g. `qemu-aarch64 -L
# /usr/aarch64-linux-gnu` when CC is a cross compiler and FILE is compiled
# with --target).
set -euo pipefail

die() { echo "run_test.sh: $*" >&2; exit 1; }
usage() { sed -n '2,/^set /{/^#/p}' "$0" >&2; exit 2; }

[[ $# -ge 1 ]] || usage
mode=$1; shift
case $mode in
  jit) [[ $# -ge 4 ]] || usage
       ATTNC=$1 NPYCMP=$2 FILE=$3 CPU=$4; shift 4 ;;
  obj) [[ $# -ge 8 ]] || usage
       ATTNC=$1 NPYCMP=$2 CC=$3 RUNTIME_LIB=$4 RUNTIME_INC=$5 HARNESS_C=$6 FILE=$7 CPU=$8
       shift 8 ;;
  *) usage ;;
esac
extra=("$@")
hflags=()
read -r -a hflags <<< "${HARNESS_CFLAGS:-}" || true
emulator=()
read -r -a emulator <<< "${HARNESS_EMULATOR:-}" || true

[[ -f $FILE ]] || die "no such test program: $FILE"
dir=${FILE%.attn}
[[ -d $dir ]] || die "no golden data in $dir (run: /usr/bin/python3 tests/run/gen.py)"
model=$(sed -n 's/^[[:space:]]*model[[:space:]]\{1,\}\([A-Za-z_][A-Za-z0-9_]*\)[[:space:]]*{.*$/\1/p' "$FILE" | head -n 1)
[[ -n $model ]] || die "$FILE: no \`model NAME {\` line"

atol=1e-4 rtol=1e-4
tolfile=$dir/tol
# --weights-dtype bf16: the tolerance of the bf16 variant (tests/golden/bf16.py)
for ((i = 0; i + 1 < ${#extra[@]}; i++)); do
  if [[ ${extra[i]} == --weights-dtype && ${extra[i+1]} == bf16 ]]; then
    tolfile=$dir/tol.bf16
    [[ -f $tolfile ]] || die "no $tolfile for a bf16 run (tests/golden/bf16.py writes it)"
  fi
done
if [[ -f $tolfile ]]; then
  read -r atol rtol < "$tolfile" || true
  [[ -n $atol && -n $rtol ]] || die "$tolfile: expected one line \"atol rtol\""
fi

cpuflag=()
[[ $CPU == host ]] || cpuflag=(--cpu "$CPU")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/attnc-run-$model.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/out"

inputs=() outputs=()
for f in "$dir"/in.*.npy; do
  [[ -e $f ]] || continue
  n=${f##*/in.}; inputs+=("${n%.npy}")
done
for f in "$dir"/out.*.npy; do
  [[ -e $f ]] || continue
  n=${f##*/out.}; outputs+=("${n%.npy}")
done
[[ ${#outputs[@]} -gt 0 ]] || die "$dir: no out.*.npy"

run() {  # echo a command, then run it
  printf '+'; printf ' %q' "$@"; printf '\n'
  "$@"
}

case $mode in
  jit)
    args=("$FILE" --run ${cpuflag[@]+"${cpuflag[@]}"})
    [[ -f $dir/weights.safetensors ]] && args+=(--weights "$dir/weights.safetensors")
    for n in ${inputs[@]+"${inputs[@]}"}; do args+=(--input "$n=$dir/in.$n.npy"); done
    for n in "${outputs[@]}"; do args+=(--output "$n=$tmp/out/out.$n.npy"); done
    args+=(${extra[@]+"${extra[@]}"})
    run "$ATTNC" "${args[@]}" || die "attnc --run failed (exit $?)"
    ;;
  obj)
    run "$ATTNC" "$FILE" -o "$tmp/$model.o" --header "$tmp/$model.h" \
        ${cpuflag[@]+"${cpuflag[@]}"} ${extra[@]+"${extra[@]}"} \
      || die "attnc -o failed (exit $?)"
    [[ -s $tmp/$model.o ]] || die "attnc wrote no object $tmp/$model.o"
    [[ -s $tmp/$model.h ]] || die "attnc wrote no header $tmp/$model.h"
    # the header alone must be clean C99, and safe to include twice
    cat > "$tmp/header_check.c" <<EOF
#include "$model.h"
#include "$model.h"
const attnrt_model_desc *header_check_desc(void);
const attnrt_model_desc *header_check_desc(void) { return &${model}_model; }
EOF
    run "$CC" -std=c99 -Wall -Wextra -pedantic -Werror -I"$RUNTIME_INC" -I"$tmp" \
        -c "$tmp/header_check.c" -o "$tmp/header_check.o" \
      || { sed 's/^/    /' "$tmp/$model.h" >&2; die "the generated header is not clean C99"; }
    # a call of the typed entry point NAME(ctx, inputs..., outputs..., dims...),
    # with the counts read from FILE: inputs and outputs in order of
    # appearance, symbolic dims in order of first appearance in input and
    # param types
    # (a block's body declares the block's inputs, not the model's; `output
    # a, b = f(x)` declares two outputs, `_` none)
    read -r ni no nd < <(awk '
      { sub(/#.*/, "") }
      /^[ \t]*block[ \t]/ { inblock = 1; next }
      inblock && /^[ \t]*}/ { inblock = 0; next }
      inblock { next }
      /^[ \t]*const[ \t]/ { c = $2; sub(/=.*/, "", c); isconst[c] = 1 }
      /^[ \t]*input[ \t]/ { ni++ }
      /^[ \t]*output[ \t]/ {
        s = $0; sub(/=.*/, "", s); sub(/^[ \t]*output[ \t]+/, "", s)
        n = split(s, o, ",")
        for (i = 1; i <= n; i++) { gsub(/[ \t]/, "", o[i]); if (o[i] != "_") no++ }
      }
      /^[ \t]*(input|param)[ \t]/ && match($0, /\[[^]]*\]/) {
        n = split(substr($0, RSTART + 1, RLENGTH - 2), d, ",")
        for (i = 1; i <= n; i++) {
          gsub(/[ \t]/, "", d[i])
          if (d[i] ~ /^[A-Za-z_][A-Za-z_0-9]*$/ && !(d[i] in isconst) && !(d[i] in seen)) { seen[d[i]] = 1; nd++ }
        }
      }
      END { print ni + 0, no + 0, nd + 0 }' "$FILE")
    {
      echo "#include \"$model.h\""
      echo "int typed_call(attnrt_ctx *ctx, void *const *in, void *const *out, const int64_t *dims);"
      echo "int typed_call(attnrt_ctx *ctx, void *const *in, void *const *out, const int64_t *dims) {"
      printf '  return (int)%s(ctx' "$model"
      for ((i = 0; i < ni; i++)); do printf ', in[%d]' $i; done
      for ((i = 0; i < no; i++)); do printf ', out[%d]' $i; done
      for ((i = 0; i < nd; i++)); do printf ', dims[%d]' $i; done
      printf ');\n}\n'
    } > "$tmp/typed_call.c"
    [[ $nd -gt 0 ]] || sed -i 's/const int64_t \*dims) {/const int64_t *dims) {\n  (void)dims;/' "$tmp/typed_call.c"
    run "$CC" -std=c99 -Wall -Wextra -pedantic -Werror -I"$RUNTIME_INC" -I"$tmp" \
        -c "$tmp/typed_call.c" -o "$tmp/typed_call.o" \
      || { cat "$tmp/typed_call.c" >&2; die "a call of the typed entry point $model(...) does not compile"; }
    run "$CC" -std=c99 -O1 -g -Wall -Wextra -I"$RUNTIME_INC" -I"$tmp" \
        -DMODEL_DESC="${model}_model" -DMODEL_HEADER="\"$model.h\"" \
        -DTYPED_CALL -DTYPED_NI="$ni" -DTYPED_NO="$no" -DTYPED_ND="$nd" ${hflags[@]+"${hflags[@]}"} \
        "$HARNESS_C" "$tmp/typed_call.o" "$tmp/$model.o" "$RUNTIME_LIB" -lm -lpthread \
        -o "$tmp/run_model" \
      || die "building the harness against $model.o failed"
    run ${emulator[@]+"${emulator[@]}"} "$tmp/run_model" "$dir" "$tmp/out" || die "run_model failed (exit $?)"
    ;;
esac

# obj mode has the results of a serial run in out1.NAME.npy, of a threaded
# run in out.NAME.npy (see tests/harness/run_model.c); check both
fail=0
for n in "${outputs[@]}"; do
  for kind in out out1; do
    what="output $n"
    if [[ $kind == out1 ]]; then
      [[ $mode == obj ]] || continue
      what="output $n (run on 1 thread)"
    elif [[ $mode == obj ]]; then
      what="output $n (run on threads)"
    fi
    if [[ ! -f $tmp/out/$kind.$n.npy ]]; then
      echo "FAIL $what: not written" >&2; fail=1; continue
    fi
    if run "$NPYCMP" "$tmp/out/$kind.$n.npy" "$dir/out.$n.npy" --atol "$atol" --rtol "$rtol"; then
      echo "ok   $what"
    else
      echo "FAIL $what (atol $atol rtol $rtol)" >&2; fail=1
    fi
  done
done
[[ $fail == 0 ]] || die "$model ($mode, cpu $CPU): outputs differ from NumPy"
echo "PASS $model ($mode, cpu $CPU)"
