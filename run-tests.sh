#!/usr/bin/env bash
# run-tests.sh: the whole test suite.  Builds and tests attnc and the
# runtime twice, a release build, then an ASan+UBSan build (build-asan/);
# in between, the release build's aarch64 tests under qemu-aarch64 and the
# concurrency test under ThreadSanitizer; at the end the
# fuzzers (build-fuzz/), FUZZ_SECONDS each (default 20).  Each stage prints
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
# when aarch64-linux-gnu-gcc and qemu-aarch64 are installed.
stage "release build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs" -LE 'concurrency|aarch64'

# The run and golden tests' models compiled with --target aarch64-linux-gnu,
# linked with the cross-built runtime and harness and run under qemu-aarch64
# against the same expected outputs; the runtime's unit tests and the ELF
# joiner on aarch64 (label aarch64, tests/CMakeLists.txt).  Without the
# cross tools no test has the label and this stage runs nothing.
stage "aarch64 (qemu-aarch64)"
ctest --test-dir build --output-on-failure -j"$jobs" -L aarch64 --no-tests=ignore

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
# tests (the cross-built runtime is not instrumented).  The golden cases'
# embedded-weights variants (/embed/host) run in the release stage only:
# under the sanitizers attnc's embedding path is exercised by the cli tests
# that embed weights (weights-prefix-embed, prefix-link, cpus-object), and
# leaving 80-odd compiles out keeps the whole run near 18 minutes on 2 CPUs.
# So do the golden cases' bf16 variants (/bf16/, --weights-dtype bf16):
# they test generated code, which the sanitizers do not watch; the
# runtime's bf16 paths (rounding on load and bind, BF16 files in place) run
# under them in cli/weights-dtype-bf16.  The golden and run cases' JIT
# variants (/jit/host) run in the release stage only too: under the
# sanitizers the same front end, passes and code generator run in the
# /obj/host variants, and the JIT's own glue in the cli tests that --run
# and --bench; and the objects compiled in 1 and 4 parts (/host-j1, -j4),
# as every object test compiles in 2 parts on the compiler's threads.
stage "ASan+UBSan build"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DATTNC_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -E '/(x86-64|haswell)$|/(embed|jit)/host$|/host-j[14]$|/bf16/|^fuse/|^ir/memory|compile-budget'

# libFuzzer with ASan+UBSan over the front end, the whole pipeline and the
# two file readers (fuzz/run.sh); the replays of their corpora and
# regression inputs ran in both stages above.
stage "fuzz"
fuzz/run.sh "${FUZZ_SECONDS:-20}"
stage ""
