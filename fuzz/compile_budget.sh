#!/usr/bin/env bash
# fuzz/compile_budget.sh ATTNC DIR...: every program in DIR that `attnc
# --check` accepts must also compile to an object within the budget of
# docs/security.md: 4 GiB of address space (ulimit -v) and 60 s.  --check
# runs every check there is (lowering included), so such a compile has no
# reason to fail at all: running out of memory (positional_encoding(T,
# 2^30) did, and without a limit grew to 7 GB and aborted on an uncaught
# std::bad_alloc), crashing or timing out are all failures.  Prints one
# line per failure and a closing count.
set -uo pipefail
attnc=$1; shift
tmp=$(mktemp -d "${TMPDIR:-/tmp}/attnc-budget.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export attnc tmp
one() {
  f=$1
  "$attnc" "$f" --check >/dev/null 2>&1 || { echo "rejected"; return; }
  o=$tmp/$(basename "$f").o
  (ulimit -v 4194304; timeout 60 "$attnc" "$f" -j1 -o "$o" >/dev/null 2>"$o.err")
  s=$?
  rm -f "$o" "${o%.o}.h"
  case $s in
    0) echo "compiled" ;;
    *) echo "FAILED $f: exit status $s: $(head -c 300 "$o.err")" ;;
  esac
}
export -f one
find "$@" -name '*.attn' -type f | sort | xargs -P "$(nproc)" -I{} bash -c 'one "$1"' _ {} > "$tmp/results"
grep FAILED "$tmp/results"
ok=$(grep -c -v FAILED "$tmp/results")
bad=$(grep -c FAILED "$tmp/results")
echo "compile budget: $(grep -c compiled "$tmp/results") compiled within 4 GiB and 60 s, $(grep -c rejected "$tmp/results") rejected by --check"
echo "$ok passed, $bad failed"
[ "$bad" -eq 0 ]
