#!/usr/bin/env bash
# bench/run.sh — time attnc-generated code against naive C, OpenBLAS and
# PyTorch baselines, and print one table.  See bench/README.md.
#
#   bench/run.sh [--quick] [--only PATTERN] [--reps N]
#
#   --quick        small shapes and few repetitions: a smoke test (< 1 minute)
#   --only PAT     only the cases whose name contains PAT (or matches the
#                  glob PAT if it has * ? or [), e.g. --only lstm, --only 'attn-8h-*'
#   --reps N       exactly N timed repetitions per implementation (default:
#                  as many as fit a time budget, 3 to 9)
#
# Environment:
#   ATTNC_BUILD    the attnc build to measure (default: <repo>/build; built
#                  there with cmake in Release if it has no attnc)
#   BENCH_OUT      where the models' objects and the bench program go
#                  (default: $ATTNC_BUILD/bench)
#   CC             the C compiler for bench.c and the baselines (default: cc)
#   PYTHON         the Python with torch (default: /usr/bin/python3)
#   BENCH_NO_OPENBLAS=1   leave OpenBLAS out, as on a machine without it
#   BENCH_WARMUP   seconds of load on every CPU before timing (default 0.3)
#
# The exit status is 1 if a baseline's output disagrees with attnc's (the
# table marks the row MISMATCH) or attnc failed to fuse the attention models.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
build=${ATTNC_BUILD:-$repo/build}
CC=${CC:-cc}
PYTHON=${PYTHON:-/usr/bin/python3}

args=()
quick=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; args+=(--quick) ;;
    --only|--reps)
      [ $# -ge 2 ] || { echo "run.sh: $1 needs a value" >&2; exit 2; }
      args+=("$1" "$2"); shift ;;
    -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

say() { echo "run.sh: $*" >&2; }

# Percent of all CPUs' time spent busy over one second (from /proc/stat:
# user nice system idle iowait irq softirq steal).
cpu_busy_percent() {
  local a b
  read -r -a a < <(grep '^cpu ' /proc/stat)
  sleep 1
  read -r -a b < <(grep '^cpu ' /proc/stat)
  local busy=0 total=0 i d
  for i in 1 2 3 4 5 6 7 8; do
    d=$(( b[i] - a[i] ))
    total=$(( total + d ))
    [ "$i" -eq 4 ] || [ "$i" -eq 5 ] || busy=$(( busy + d ))
  done
  [ "$total" -gt 0 ] || total=1
  echo $(( 100 * busy / total ))
}

# ---- the attnc under test ------------------------------------------------
if [ ! -x "$build/attnc" ] || [ ! -f "$build/libattnrt.a" ]; then
  say "no attnc in $build: building it (Release)"
  cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release >&2
  cmake --build "$build" -j2 --target attnc attnrt >&2
fi
attnc=$build/attnc
# The runtime header of the tree that build was made from (ATTNC_BUILD may
# be another checkout's build); this one's if the cache does not say.
src=$(sed -n 's/^attnc_SOURCE_DIR:STATIC=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
[ -n "$src" ] && [ -f "$src/runtime/include/attnrt.h" ] || src=$repo
out=${BENCH_OUT:-$build/bench}
mkdir -p "$out"

# ---- the models: compiled afresh every run, so the table always shows the
# attnc that the build has now -------------------------------------------
for m in attention gemm mlp rnn; do
  "$attnc" "$here/models/$m.attn" -o "$out/$m.o"
done
"$attnc" "$repo/examples/encoder.attn" -o "$out/encoder.o"

# A benchmark of fused attention must time a fused kernel.
for f in "$here/models/attention.attn" "$repo/examples/encoder.attn"; do
  want=$(grep -c '^model ' "$f")
  got=$("$attnc" "$f" --emit-ir | grep -c '= attention ' || true)
  if [ "$got" -ne "$want" ]; then
    say "FAIL: attnc --emit-ir $f shows $got fused attention ops, expected $want"
    "$attnc" "$f" --emit-ir >&2
    exit 1
  fi
done

# ---- OpenBLAS (optional) -------------------------------------------------
blas_flags=()
blas_note=""
probe=$out/cblas_probe.c
printf '#include <cblas.h>\nint main(void){float a=1,b=1,c=0;cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,1,1,1,1,&a,1,&b,1,0,&c,1);return c!=1;}\n' > "$probe"
if [ -n "${BENCH_NO_OPENBLAS:-}" ]; then
  blas_note="BENCH_NO_OPENBLAS is set: openblas rows skipped"
elif pkg-config --exists openblas 2>/dev/null; then
  read -r -a blas_flags <<< "-DHAVE_OPENBLAS $(pkg-config --cflags --libs openblas)"
elif [ -f /usr/include/x86_64-linux-gnu/cblas.h ]; then
  blas_flags=(-DHAVE_OPENBLAS -lopenblas)
fi
if [ ${#blas_flags[@]} -gt 0 ] && ! "$CC" "$probe" "${blas_flags[@]:1}" -o "$out/cblas_probe" 2>/dev/null; then
  blas_flags=()
fi
[ ${#blas_flags[@]} -gt 0 ] || [ -n "$blas_note" ] || blas_note="OpenBLAS not found (no cblas.h / pkg-config openblas): openblas rows skipped"

# ---- the bench program ---------------------------------------------------
# -O3 -march=native for the C baselines, as attnc targets the host CPU too;
# no -ffast-math, since attnc keeps IEEE semantics.
"$CC" -std=c11 -O3 -march=native -Wall -Wextra -I"$out" -I"$src/runtime/include" \
  "$here/bench.c" "$here/baselines.c" "$here/bench_util.c" \
  "$out/attention.o" "$out/gemm.o" "$out/mlp.o" "$out/rnn.o" "$out/encoder.o" \
  "$build/libattnrt.a" ${blas_flags[@]+"${blas_flags[@]}"} -lm -lpthread -o "$out/bench"

# The same models as a shared library, for torch_bench.py to time attnc
# side by side with torch in one process (bench/attnc_shim.c).  Without
# it (a libattnrt.a that cannot go into a shared object, say) the torch
# rows compare with the C process's attnc row, as the other rows do.
shim=""
if "$CC" -std=c11 -O2 -fPIC -shared -I"$out" -I"$src/runtime/include" "$here/attnc_shim.c" \
     "$out/attention.o" "$out/gemm.o" "$out/mlp.o" "$out/rnn.o" "$out/encoder.o" \
     "$build/libattnrt.a" -lm -lpthread -o "$out/attnc_models.so" 2>"$out/shim.log"; then
  shim="$out/attnc_models.so"
fi

# ---- fairness --------------------------------------------------------------
# OPENBLAS_CORETYPE=Haswell (set by this machine's login environment)
# forces AVX2 kernels on an AVX-512 CPU and halves OpenBLAS (and PyTorch,
# which uses it) — let OpenBLAS pick its kernels as a user's program would.
unset OPENBLAS_CORETYPE
# OpenBLAS 0.3.21 (bookworm) does not know CPUs newer than itself (Sapphire
# and Emerald Rapids, say) and falls back to its SSE3 "Prescott" kernels,
# which would make every OpenBLAS and PyTorch row several times too slow.
# On such a CPU, name the newest kernel family the CPU can run, as a user
# who noticed would.
blas_core_note=""
if [ ${#blas_flags[@]} -gt 0 ]; then
  core=$("$out/bench" --info | sed -n 's/^OpenBLAS: \([^ ]*\) kernels.*/\1/p')
  flags=$(grep -m1 '^flags' /proc/cpuinfo)
  case "$core" in
    Prescott|Core2|Penryn|Dunnington|Nehalem|Atom|Katmai|Coppermine|Northwood|Banias|unknown)
      if [[ " $flags " == *" avx512f "* ]]; then export OPENBLAS_CORETYPE=SkylakeX
      elif [[ " $flags " == *" avx2 "* ]]; then export OPENBLAS_CORETYPE=Haswell; fi
      [ -z "${OPENBLAS_CORETYPE:-}" ] ||
        blas_core_note="OpenBLAS picked $core kernels for this CPU, which it does not know; OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE" ;;
  esac
fi
# Every row but attnc-2T is one thread.
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

have_torch=0
if "$PYTHON" -c 'import torch' 2>/dev/null; then
  have_torch=1
  torch_version=$("$PYTHON" -c 'import torch; print(torch.__version__)')
fi

# ---- header: the machine ---------------------------------------------------
cpu=$(grep -m1 '^model name' /proc/cpuinfo | sed 's/.*: //')
isa=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx512f|avx2|fma|sse4_2)$' | tr '\n' ' ')
"$attnc" "$here/models/gemm.attn" --emit-llvm -o "$out/gemm.ll"
target_cpu=$(grep -o '"target-cpu"="[^"]*"' "$out/gemm.ll" | head -1 | cut -d'"' -f4)
target_avx512=""
if grep -q '"target-features"="[^"]*+avx512f' "$out/gemm.ll"; then target_avx512=", AVX-512"; fi
echo "attnc benchmark$([ $quick = 1 ] && echo ' (--quick: small shapes, not the issue'"'"'s)')"
echo "machine: $cpu, $(getconf _NPROCESSORS_ONLN) CPUs; ISA: $isa"
echo "attnc:   $("$attnc" --version) from $build; code for --cpu $target_cpu$target_avx512 (the host), -O2"
echo "C:       $("$CC" --version | head -1), -O3 -march=native"
echo "$("$out/bench" --info)"
[ -z "$blas_core_note" ] || echo "         ($blas_core_note)"
echo "peak:    $("$out/bench" --peak) GFLOP/s FP32 FMA, 1 thread (independent vector FMAs at -march=native)"
if [ $have_torch = 1 ]; then
  echo "PyTorch: $torch_version, 1 thread, glibc malloc keeping freed memory (bench/README.md)"
else
  echo "PyTorch: not importable by $PYTHON: torch rows skipped"
fi
[ -z "$blas_note" ] || echo "note: $blas_note"
# Other work on the machine makes every row noisy and the 2-thread row
# meaningless; say so rather than print numbers that look clean.
busy=$(cpu_busy_percent)
echo "load:    the CPUs were ${busy}% busy with other processes in the second before the run"
if [ "$busy" -gt 10 ]; then
  echo "WARNING: the machine is not idle: timings are noisy and attnc-2T cannot show a real speed-up"
fi
echo

# ---- run, group by group (the C rows, then the torch rows of the same
# group, so that both see the machine in the same state) ---------------------
rows=$out/rows.tsv
: > "$rows"
rm -rf "$out/data"   # bench --dump: attnc's inputs, weights and outputs, for torch_bench.py
list_args=()
[ $quick = 0 ] || list_args=(--quick)
"$out/bench" --list ${list_args[@]+"${list_args[@]}"} > "$out/cases.tsv"
status=0
for group in attention long gemm rnn encoder; do
  say "running $group"
  dump=()
  [ $have_torch = 0 ] || dump=(--dump "$out/data")
  "$out/bench" --group "$group" ${dump[@]+"${dump[@]}"} ${args[@]+"${args[@]}"} >> "$rows" || status=1
  if [ $have_torch = 1 ]; then
    shim_args=()
    [ -z "$shim" ] || shim_args=(--attnc "$shim")
    # PyTorch allocates every intermediate tensor afresh; glibc returns big
    # blocks to the kernel on free, so each call page-faults them back in,
    # which in this kind of VM costs more than the arithmetic (torch's
    # 8-head attention: 2.1 s instead of 0.15 s).  Keep freed memory in
    # the heap, as the caching allocators recommended for CPU inference do.
    MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=17179869184 \
    "$PYTHON" "$here/torch_bench.py" "$out/cases.tsv" --data "$out/data" --group "$group" \
      ${shim_args[@]+"${shim_args[@]}"} ${args[@]+"${args[@]}"} >> "$rows" || status=1
  fi
done

# ---- the table ------------------------------------------------------------
awk -F'\t' '
  $1 != "ROW" { next }
  {
    c = $2
    if (!(c in nrows)) { order[++ncases] = c; nrows[c] = 0 }
    i = ++nrows[c]
    impl[c, i] = $3; ms[c, i] = $4; gf[c, i] = $5; rss[c, i] = $6
    diff[c, i] = $7; reps[c, i] = $8; note[c, i] = $9; side[c, i] = $10
    if ($3 == "attnc") base[c] = $4
  }
  END {
    fmt = "%-24s %-10s %10s %9s %9s %9s %9s %5s  %s\n"
    printf fmt, "case", "impl", "ms", "GFLOP/s", "vs attnc", "RSS MiB", "max|diff|", "reps", ""
    for (k = 1; k <= ncases; k++) {
      c = order[k]
      for (i = 1; i <= nrows[c]; i++) {
        ratio = (c in base && base[c] > 0) ? sprintf("%.2f", ms[c, i] / base[c]) : "-"
        if (side[c, i] != "") ratio = sprintf(impl[c, i] == "torch" ? "%.2f*" : "%.2f", side[c, i])
        g = gf[c, i] > 0 ? sprintf("%.1f", gf[c, i]) : "-"
        d = diff[c, i] == "" ? "" : diff[c, i]
        n = note[c, i]
        printf fmt, (i == 1 ? c : ""), impl[c, i], sprintf("%.2f", ms[c, i]), g, ratio,
               rss[c, i], d, reps[c, i], n
      }
    }
  }' "$rows"
echo
echo "vs attnc = this row's time / attnc's time in the same round (implementations run round"
echo "robin), median over the rounds: above 1, attnc is faster. For attnc-2T it is the 2-thread /"
echo "1-thread time. attnc-full (causal cases) is attnc's unmasked model on the same inputs, in the"
echo "same rounds; its note compares the two rates per unmasked pair. ms is each row's own median, so ms ratios can differ when the machine's clock"
echo "changed between rounds. max|diff| = largest difference from attnc's output on the same"
echo "inputs and weights (every row is checked: |diff| <= 1e-3 |attnc| + 1e-4 max|attnc|)."
if [ -n "$shim" ] && [ $have_torch = 1 ]; then
  echo "* torch rows: torch_bench.py timed attnc too, in its own process, round robin with torch"
  echo "  (the same per-round ratio there; the note gives attnc's ms in that process)."
fi
# ---- compile time -----------------------------------------------------------
# attnc itself: examples/encoder.attn (one encoder layer) and
# examples/encoder_stack.attn (six, as a block array: issue 14's "blocks do
# not slow compilation down per op") to an object, in 2 parts (the default)
# and in 1 (-j1), round robin; wall time, as a user waits for it.
only=""
for ((i = 0; i < ${#args[@]}; i++)); do [ "${args[i]}" != --only ] || only=${args[i+1]}; done
if [ -z "$only" ] || [[ compile == *$only* ]]; then
  rounds=9
  [ $quick = 0 ] || rounds=3
  for model in encoder encoder_stack; do
    ctimes=$out/compile_$model.tsv
    : > "$ctimes"
    for ((r = 0; r < rounds; r++)); do
      for j in 2 1; do
        t0=$(date +%s%N)
        "$attnc" "$repo/examples/$model.attn" -o "$out/compile_j$j.o" -j$j
        t1=$(date +%s%N)
        printf '%d\t%d\t%d\n' "$r" "$j" $(( (t1 - t0) / 1000 )) >> "$ctimes"
      done
    done
    echo
    echo "compile time: attnc examples/$model.attn -o e.o, wall, $rounds rounds round robin"
    awk -F'\t' '
      function median(a, n,   i, j, t) {
        for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j] < a[j - 1]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
      }
      { us[$2, $1] = $3; n = $1 + 1 }
      END {
        for (r = 0; r < n; r++) { a2[r + 1] = us[2, r]; a1[r + 1] = us[1, r]; q[r + 1] = us[1, r] / us[2, r] }
        printf "  -j2 (default, 2 parts on 2 threads)  %8.1f ms median\n", median(a2, n) / 1000
        printf "  -j1 (1 part)                         %8.1f ms median   %.2fx the -j2 time (median of per-round ratios)\n",
               median(a1, n) / 1000, median(q, n)
      }' "$ctimes"
  done
fi

if [ $status -ne 0 ]; then
  echo "FAILED: see MISMATCH rows and the messages above" >&2
fi
exit $status
