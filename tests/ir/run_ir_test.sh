#!/usr/bin/env bash
# run_ir_test.sh ATTNC FILE: checks `attnc FILE --emit-ir --remarks`
# against the file's inline expectations:
#   # EXPECT: text   a line of the IR must contain text (in this order; one
#                    line may match several)
#   # NOT: text      no line of the IR contains text
#   # REMARK: text   a line of stderr contains text
#   # FLAGS: flags   more flags for attnc (one line)
set -uo pipefail
ATTNC=$1
FILE=$2
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
flags=()
read -r -a flags <<< "$(sed -n 's/^# FLAGS: //p' "$FILE")" || true
"$ATTNC" "$FILE" --emit-ir --remarks ${flags[@]+"${flags[@]}"} >"$out" 2>"$err" ||
  { cat "$err"; echo "FAIL: attnc exited $?"; exit 1; }
status=0
line=1
while IFS= read -r want; do
  # from the line the previous expectation matched on, inclusive
  found=$(tail -n +"$line" "$out" | grep -n -F -m1 -- "$want" | cut -d: -f1)
  if [[ -z $found ]]; then echo "FAIL: no IR line (from line $line on) contains: $want"; status=1
  else line=$((line + found - 1)); fi
done < <(sed -n 's/^# EXPECT: //p' "$FILE")
while IFS= read -r bad; do
  grep -q -F -- "$bad" "$out" && { echo "FAIL: the IR contains: $bad"; status=1; }
done < <(sed -n 's/^# NOT: //p' "$FILE")
while IFS= read -r want; do
  grep -q -F -- "$want" "$err" || { echo "FAIL: no remark contains: $want"; status=1; }
done < <(sed -n 's/^# REMARK: //p' "$FILE")
if [[ $status != 0 ]]; then echo "--- IR:"; cat "$out"; echo "--- stderr:"; cat "$err"; fi
exit $status
