#!/usr/bin/env bash
# run-tests.sh: the whole test suite.  Builds and tests attnc and the
# runtime twice, a release build, then an ASan+UBSan build (build-asan/);
# in between, the concurrency test under ThreadSanitizer; at the end the
# fuzzers (build-fuzz/), FUZZ_SECONDS each (default 45).  Each stage prints
# how long it took.  Needs what setup.sh installs.
set -euo pipefail
cd "$(dirname "$0")"
jobs=$(nproc)

stage_start=$SECONDS
stage() {   # stage NAME: ends the last stage (with its time) and names the next
  [ -z "${stage_name:-}" ] || echo "== $stage_name: $((SECONDS - stage_start)) s"
  stage_name=$1
  stage_start=$SECONDS
  [ -z "$1" ] || echo "== $1"
}

# The release build also cross-builds the runtime for aarch64 (build/aarch64/)
# and its tests run the data tests' objects for aarch64 under qemu-aarch64
# (label aarch64, tests/CMakeLists.txt).
stage "release build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs" -LE concurrency

# One model from 4 threads on separate contexts; the test builds its own
# ThreadSanitizer program with the runtime's sources (tests/concurrency).
stage "ThreadSanitizer"
ctest --test-dir build --output-on-failure -j"$jobs" -L concurrency

# The sanitizers watch attnc and the runtime, which do the same work
# whatever the target CPU: the release stage covers the x86-64 and haswell
# variants, this one the host's.  The fused/unfused agreement sweep and
# the peak-RSS test measure generated code, not attnc, and ASan's shadow
# memory would distort the RSS: they run in the release stage only; so does
# the compile budget (fuzz/compile_budget.sh), whose ulimit -v leaves no
# room for ASan's shadow memory.  A sanitizer build registers no aarch64
# tests (the cross-built runtime is not instrumented).
stage "ASan+UBSan build"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DATTNC_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -E '/(x86-64|haswell)$|^fuse/|^ir/memory|compile-budget'

# libFuzzer with ASan+UBSan over the front end, the whole pipeline and the
# two file readers (fuzz/run.sh); the replays of their corpora and
# regression inputs ran in both stages above.
stage "fuzz"
fuzz/run.sh "${FUZZ_SECONDS:-45}"
stage ""
