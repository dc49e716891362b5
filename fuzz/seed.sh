#!/usr/bin/env bash
# fuzz/seed.sh: (re)makes the seed corpora of fuzz/corpus/ from the test
# suite's own files: every .attn program (good and bad), small .npy inputs
# and small safetensors weights.  The corpora are committed; rerun this when
# the test suite gains files worth seeding, then commit the changes.
# (The fuzzers add what they find to a scratch copy, not to these.)
set -euo pipefail
cd "$(dirname "$0")/.."
seed() {   # seed DIR FILE NAME: copy FILE as DIR/NAME unless an equal file is there
  cmp -s "$2" "$1/$3" 2>/dev/null || cp "$2" "$1/$3"
}
for t in frontend pipeline npy safetensors; do mkdir -p "fuzz/corpus/$t"; done

# .attn: the name says where it came from (errors_shape_matmul_inner.attn)
for f in tests/*/*.attn tests/errors/ok/*.attn examples/*.attn; do
  name=$(echo "${f#tests/}" | tr '/' '_')
  seed fuzz/corpus/frontend "$f" "$name"
  # code generation is slow: the pipeline target skips inputs above 8 KiB
  [ "$(stat -c %s "$f")" -le 8192 ] && seed fuzz/corpus/pipeline "$f" "$name"
done

# .npy below 1 KiB, one per distinct header (dtype and shape); safetensors
# below 4 KiB (the fuzzers' default max_len)
declare -A headers
for f in $(find tests -type f -name '*.npy' -size -1025c | sort); do
  h=$(head -c 128 "$f" | md5sum | cut -c1-32)
  [ -n "${headers[$h]:-}" ] && continue
  headers[$h]=1
  seed fuzz/corpus/npy "$f" "$(echo "${f#tests/}" | tr '/' '_')"
done
for f in $(find tests examples -type f -name '*.safetensors' -size -4097c | sort); do
  seed fuzz/corpus/safetensors "$f" "$(echo "${f#tests/}" | tr '/' '_')"
done
# files shaped like the fuzz targets' models, made by python (fuzz/seed.py)
python3 fuzz/seed.py fuzz/corpus
# random well-typed programs that reach the passes and code generation
# (fuzz/gen_programs.py), the same 150 each time
python3 fuzz/gen_programs.py fuzz/corpus/pipeline 150 2026
