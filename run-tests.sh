#!/usr/bin/env bash
# run-tests.sh: the whole test suite.  Builds and tests attnc and the
# runtime twice: a release build, then an ASan+UBSan build (build-asan/).
# Needs what setup.sh installs.
set -euo pipefail
cd "$(dirname "$0")"
jobs=$(nproc)

echo "== release build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

# The sanitizers watch attnc and the runtime, which do the same work
# whatever the target CPU: the release stage covers the x86-64 and haswell
# variants, this one the host's.  The fused/unfused agreement sweep and
# the peak-RSS test measure generated code, not attnc, and ASan's shadow
# memory would distort the RSS: they run in the release stage only.
echo "== ASan+UBSan build"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DATTNC_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -E '/(x86-64|haswell)$|^fuse/|^ir/memory'
