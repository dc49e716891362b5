#!/usr/bin/env bash
# fuzz/run.sh [SECONDS] [TARGET...]: build the libFuzzer targets with
# clang-19 (ASan + UBSan) in build-fuzz/ and run each for SECONDS (default
# 60), two at a time.  Fails if any target crashes, leaks, hangs (a single
# input over 25 s) or runs out of memory (2 GiB); the input that did it is
# left in build-fuzz/crashes/TARGET/ and the fuzzer's log beside it.
#
# Each target starts from its committed seeds (fuzz/corpus/TARGET) and the
# inputs that once crashed it (fuzz/regress/TARGET), read-only, and adds
# what it finds to build-fuzz/corpus/TARGET, which later runs reuse.  A
# crash, once fixed, goes into fuzz/regress/TARGET/ (git add it): ctest
# then replays it in every build (the fuzz/TARGET/regress tests).
# Targets: frontend pipeline npy safetensors (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(frontend pipeline npy safetensors)
out=build-fuzz

CC=${FUZZ_CC:-clang-19}
command -v "$CC" >/dev/null || { echo "fuzz/run.sh: $CC not found (setup.sh installs clang-19)" >&2; exit 1; }
cmake -S . -B "$out" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER="$CC" -DATTNC_FUZZ=ON >/dev/null
cmake --build "$out" -j"$(nproc)" --target "${targets[@]/#/fuzz_}" >/dev/null

dict_of() {
  case $1 in frontend|pipeline) echo fuzz/attn.dict ;; npy) echo fuzz/npy.dict ;; *) echo fuzz/safetensors.dict ;; esac
}

run_one() {
  local t=$1
  mkdir -p "$out/corpus/$t" "$out/crashes/$t"
  local opts=(-max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -max_len=4096
              -dict="$(dict_of "$t")" -artifact_prefix="$out/crashes/$t/" -print_final_stats=1)
  if ASAN_OPTIONS=abort_on_error=1:detect_stack_use_after_return=1 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     "$out/fuzz/fuzz_$t" "${opts[@]}" "$out/corpus/$t" "fuzz/corpus/$t" "fuzz/regress/$t" \
       >"$out/crashes/$t/log" 2>&1; then
    echo "fuzz $t: ok, $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/crashes/$t/log" | grep -o '[0-9]*$') runs in ${seconds}s, corpus $(ls "$out/corpus/$t" | wc -l) inputs"
  else
    echo "fuzz $t: FAILED; the input and the log are in $out/crashes/$t/:" >&2
    grep -E 'ERROR|error|SUMMARY|fuzz check failed|internal error|Test unit written' "$out/crashes/$t/log" | head -20 >&2
    return 1
  fi
}

# two at a time: the machine has two cores
status=0
pids=()
for t in "${targets[@]}"; do
  run_one "$t" & pids+=($!)
  if [ ${#pids[@]} -eq 2 ]; then
    for p in "${pids[@]}"; do wait "$p" || status=1; done
    pids=()
  fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
