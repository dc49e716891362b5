#!/usr/bin/env bash
# run_error_test.sh ATTNC FILE [--ok]
#
# Runs `ATTNC FILE --check`.  An error test (the default) must exit with
# status 1, print nothing on stdout, and print on stderr exactly the lines
# that FILE gives in trailing comments:
#     # EXPECT: <a line of stderr, verbatim>
#     # EXPECT:                      (alone: an empty line)
# where `{file}` stands for FILE as passed to attnc.  With --ok, the program
# must check cleanly: exit status 0 and no output at all.
set -u
if [ $# -lt 2 ]; then
  echo "usage: $0 ATTNC FILE [--ok]" >&2
  exit 2
fi
attnc=$1
file=$2
mode=${3:-error}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$attnc" "$file" --check >"$tmp/stdout" 2>"$tmp/stderr"
status=$?

fail() {
  echo "FAIL: $file: $*"
  if [ -s "$tmp/stdout" ]; then echo "--- stdout:"; cat "$tmp/stdout"; fi
  if [ -s "$tmp/stderr" ]; then echo "--- stderr:"; cat "$tmp/stderr"; fi
  exit 1
}

if [ "$mode" = --ok ]; then
  [ "$status" -eq 0 ] || fail "exit status $status, expected 0"
  [ -s "$tmp/stdout" ] && fail "unexpected output on stdout"
  [ -s "$tmp/stderr" ] && fail "unexpected output on stderr"
  exit 0
fi

# The expectation: the `# EXPECT:` lines, with {file} replaced.  The file
# may hold any bytes (a test puts a NUL in it), so read it with sed.
LC_ALL=C sed -n -e 's/^# EXPECT: //p' -e 's/^# EXPECT:$//p' "$file" >"$tmp/expect.raw"
[ -s "$tmp/expect.raw" ] || fail "no '# EXPECT:' lines in the test"
while IFS= read -r line; do
  printf '%s\n' "${line//\{file\}/"$file"}"
done <"$tmp/expect.raw" >"$tmp/expected"

if ! diff -u --label expected --label actual "$tmp/expected" "$tmp/stderr" >"$tmp/diff"; then
  echo "FAIL: $file: stderr differs from the expectation"
  cat "$tmp/diff"
  exit 1
fi
[ "$status" -eq 1 ] || fail "exit status $status, expected 1"
[ -s "$tmp/stdout" ] && fail "unexpected output on stdout"
exit 0
