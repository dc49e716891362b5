#!/usr/bin/env bash
# checkpoint_test.sh: one checkpoint test: tests/checkpoints/NAME.attn on the
# weights file NAME/weights.DTYPE.safetensors, bound with --weights-prefix,
# against NAME/out.DTYPE.*.npy (tests/checkpoints/gen.py says how PyTorch
# made them), at atol = rtol = 1e-5.
#
#   checkpoint_test.sh jit ATTNC NPYCMP FILE DTYPE PREFIX
#   checkpoint_test.sh obj ATTNC NPYCMP CC RUNTIME_LIB RUNTIME_INC HARNESS_C FILE DTYPE PREFIX
#
# It lays out a run-test folder (tests/run/README.md) of that dtype in a
# temporary directory and hands it to tests/run/run_test.sh: jit runs
# attnc --run --weights W --weights-prefix PREFIX; obj compiles with the
# same two options, so the object embeds the converted weights, and runs it
# through the harness, which then binds nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mode=$1; shift
case $mode in
  jit) [[ $# -eq 5 ]] || { echo "usage: see $0" >&2; exit 2; }
       lead=("$1" "$2"); FILE=$3 DTYPE=$4 PREFIX=$5 ;;
  obj) [[ $# -eq 9 ]] || { echo "usage: see $0" >&2; exit 2; }
       lead=("$1" "$2" "$3" "$4" "$5" "$6"); FILE=$7 DTYPE=$8 PREFIX=$9 ;;
  *) echo "usage: see $0" >&2; exit 2 ;;
esac
src=${FILE%.attn}
name=$(basename "$src")
weights=$src/weights.$DTYPE.safetensors
[[ -f $weights ]] || { echo "checkpoint_test.sh: no $weights (run /usr/bin/python3 tests/checkpoints/gen.py)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/attnc-ckpt-$name.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/$name"
cp "$FILE" "$tmp/$name.attn"
for f in "$src"/in.*.npy; do ln -s "$f" "$tmp/$name/"; done
for f in "$src"/out."$DTYPE".*.npy; do
  n=${f##*/out."$DTYPE".}
  ln -s "$f" "$tmp/$name/out.$n"
done
echo "1e-5 1e-5" > "$tmp/$name/tol"
bash "$here/../run/run_test.sh" "$mode" "${lead[@]}" "$tmp/$name.attn" host \
  --weights "$weights" --weights-prefix "$PREFIX"
