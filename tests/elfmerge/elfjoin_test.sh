#!/usr/bin/env bash
# elfjoin_test.sh CC ELFJOIN: elf_merge (compiler/elfmerge.c), which joins
# the objects of a module compiled in parts, on objects from another
# compiler: CC's objects of a.c and b.c (with .data, .bss, .rodata,
# strings, .eh_frame, calls, and an absolute relocation from one to the
# other) joined, linked with main.c and run; helper made local; bad inputs
# refused with a message and no output file.
# Environment: RUN, a command that runs CC's programs (e.g. `qemu-aarch64
# -L /usr/aarch64-linux-gnu` when CC is a cross compiler).
set -uo pipefail
CC=$1
ELFJOIN=$2
run=()
read -r -a run <<< "${RUN:-}" || true
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/attnc-elfjoin.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

for f in a b; do
  "$CC" -O1 -fPIC -c "$here/$f.c" -o "$tmp/$f.o" || fail "$CC cannot compile $f.c"
done
"$CC" -c "$here/main.c" -o "$tmp/main.o" || fail "$CC cannot compile main.c"

# joined, linked and run; 286 comes from the sums in a.c and b.c (worked
# out by hand and in Python, not by this code)
"$ELFJOIN" "$tmp/ab.o" -l helper "$tmp/a.o" "$tmp/b.o" || fail "elfjoin failed"
"$CC" "$tmp/main.o" "$tmp/ab.o" -o "$tmp/prog" || fail "the joined object does not link"
got=$(${run[@]+"${run[@]}"} "$tmp/prog") || fail "the program failed"
[[ $got == "286 10 part a and part b" ]] || fail "the program printed '$got'"
# the same in the other order (b's pieces first in every section)
"$ELFJOIN" "$tmp/ba.o" "$tmp/b.o" "$tmp/a.o" || fail "elfjoin failed (b, a)"
"$CC" "$tmp/main.o" "$tmp/ba.o" -o "$tmp/prog2" || fail "the joined object (b, a) does not link"
got=$(${run[@]+"${run[@]}"} "$tmp/prog2")
[[ $got == "286 10 part a and part b" ]] || fail "the program (b, a) printed '$got'"
# a shared library too: PIC relocations across the parts
"$CC" -shared "$tmp/ab.o" -o "$tmp/libab.so" || fail "the joined object does not link into a shared library"

# -l helper: local in ab.o, so a program that calls it does not link;
# without -l it does
nm "$tmp/ab.o" | grep -q ' t helper$' || { nm "$tmp/ab.o" >&2; fail "helper is not local in ab.o"; }
nm "$tmp/ab.o" | grep -q ' T api$' || fail "api is not global in ab.o"
"$CC" -c "$here/main_helper.c" -o "$tmp/main_helper.o"
"$CC" "$tmp/main_helper.o" "$tmp/ab.o" -o "$tmp/bad" 2>/dev/null && fail "helper is reachable from outside ab.o"
"$CC" "$tmp/main_helper.o" "$tmp/ba.o" -o "$tmp/good" || fail "helper is not reachable without -l"
${run[@]+"${run[@]}"} "$tmp/good" || fail "helper(1) != 4"

# bad inputs: a message, status 1, no output file
refuse() {   # refuse WHAT ARGS...: elfjoin ARGS fails with a message mentioning WHAT
  local what=$1; shift
  rm -f "$tmp/out.o"
  "$ELFJOIN" "$tmp/out.o" "$@" 2>"$tmp/err"
  local st=$?
  [[ $st == 1 ]] || fail "elfjoin $* exited $st, expected 1"
  grep -q -- "$what" "$tmp/err" || { cat "$tmp/err" >&2; fail "no '$what' in the message"; }
  [[ ! -e $tmp/out.o ]] || fail "elfjoin $* wrote an output"
}
refuse "defined in two parts: api" "$tmp/b.o" "$tmp/a.o" "$tmp/b.o"
refuse "defined in no part: helper" -l helper "$tmp/b.o" "$tmp/main_helper.o"
head -c 40 "$tmp/a.o" > "$tmp/short.o"
refuse "truncated ELF header" "$tmp/a.o" "$tmp/short.o"
size=$(stat -c %s "$tmp/a.o")
head -c $((size - 200)) "$tmp/a.o" > "$tmp/cut.o"
refuse "cannot join" "$tmp/cut.o" "$tmp/b.o"
# e_shstrndx (offset 62) set to 0: section 0 is no string table
cp "$tmp/a.o" "$tmp/noshstr.o"
printf '\000\000' | dd of="$tmp/noshstr.o" bs=1 seek=62 conv=notrunc 2>/dev/null
refuse "bad section name table" "$tmp/noshstr.o" "$tmp/b.o"
printf 'not an object at all, but long enough to have a header\n%.0s' 1 2 > "$tmp/text.o"
refuse "not a little-endian ELF64 relocatable object" "$tmp/text.o"
"$CC" "$tmp/main.o" "$tmp/ab.o" -o "$tmp/prog.x" && refuse "not a little-endian ELF64 relocatable object" "$tmp/prog.x"
echo "ok"
