#!/usr/bin/python3
"""bf16.py: the tolerances of the golden tests' bf16 variants (attnc
--weights-dtype bf16, issue 17).

    /usr/bin/python3 tests/golden/bf16.py ATTNC           # every test
    /usr/bin/python3 tests/golden/bf16.py ATTNC NAME...   # only these

ATTNC is a built attnc: it says which params it stores in bf16 (`attnc
NAME.attn --emit-ir --weights-dtype bf16` marks them `param NAME, bf16`:
the params read only as a GEMM's B).  For each test that has one, this
writes tests/golden/NAME/tol.bf16 ("atol rtol"); tests/CMakeLists.txt
registers the bf16 variants of exactly those tests, and
tests/run/run_test.sh compares their outputs with the same out.*.npy as the
f32 runs, at this tolerance.  The data is committed; rerun after changing
a case (gen.py) or which params attnc stores in bf16.

Where the tolerance comes from.  attnc rounds each bf16 weight to nearest
even: w' = w (1 + d), |d| <= u = 2^-9 (bf16 keeps 8 significant bits);
everything else (activations, accumulation, biases, LayerNorm) stays
f32.  One product row y = sum_k w_k x_k then
moves by at most u sum_k |w_k x_k|.  For the tests' data (weights of
magnitude 1/sqrt(K), activations of order 1, terms of both signs) the
rounding errors d_k are independent and of both signs, so they add like a
random walk: about u |y| in all, u sqrt(K) |y| at the very worst.  The
tolerance is therefore c u S, S = max |y| over the test's outputs (its
scale), with c per family for how the error passes on:
  * product    one layer of products (Linear, `@` with a param, GEMV,
               AdditiveAttention's projections): c = 4;
  * attention  q, k, v projections into softmax and out_proj: a score is a
               product of two rounded projections (their errors add),
               softmax passes a score error times at most 1/2, then one more
               product: c = 8;
  * layers     encoder/decoder layers and blocks: two to five products in
               series, each followed by a LayerNorm, which rescales by
               1/std of its input (of order 1 here) and so does not let the
               error grow with depth: c = 8;
  * recurrent  LSTM/GRU: W_ih and W_hh are bf16; sigmoid and tanh are
               1-Lipschitz (sigmoid 1/4), and the state carries an error on
               through W_hh for T steps, damped by the forget and update
               gates: c = 8;
  * mha_large  scores in the hundreds: a relative error 2u of a score of
               200 is 0.8 in softmax's exponent, so attention weights move
               by up to about that fraction: c = 32 (TOL_C below).
On a CPU with AVX-512 BF16 (the host's jit/host and embed/host variants
here, znver5) a one-row product (T = 1: gemv, decoder_step, the decode and
cache tests) also rounds its row of activations to bf16 (gemm.c's
vdpbf16ps GEMV): a term becomes w_k x_k (1 + d_k)(1 + e_k), |e_k| <= u.
The e_k are independent of each other and of the d_k as the d_k are, so
the random-walk estimate grows by sqrt(2), to about 1.4 u |y| for one
layer of products, and the worst case doubles, to 2u sum|w x|.  The
families' c (4 and up, for an estimate of u |y| per product) keep more
than twice that estimate, so they stay as they are.  Measured (max |diff|
against torch's f32 output in units of u S, host vs x86-64-v4, which
rounds the weights only): gemv 1.03 vs 0.91 (c = 4), decoder_step 0.56
vs 0.59 (c = 8).  The exact bf16 model this script checks against
rounds the weights only: the half-of-the-bound check covers the weights'
share, the host variants the total.

The test holds attnc to (base atol + c u S, base rtol), where base is the
f32 tolerance of the test (tests/golden/NAME/tol or 1e-4 1e-4): the f32
arithmetic error is still there.  As gen.py does for torch's f32 result,
this script refuses a tolerance that the exact bf16 model (torch, float64,
with the same weights rounded to bf16 the same way) could not meet using at
most half of it: the bound is one the rounding alone stays well inside
(today it uses at most 0.38 of it, in mha_large), and an
implementation that rounded more weights, rounded wrongly or lost
precision elsewhere would not pass.  BF16_ALL=1 prints, per test, what the
exact bf16 model needs in units of u S instead.
"""
import os
import re
import subprocess
import sys
import zlib

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen  # noqa: E402  (the registry, the cases, convert, tol_ratio)
from golden_lib import DEFAULT_TOL, HERE, TESTS, read_safetensors  # noqa: E402

U = 2.0 ** -9
FAMILY_C = {"product": 4, "attention": 8, "layers": 8, "recurrent": 8}
TOL_C = {"mha_large": 32}   # per test, where a family's c does not fit (see above)
# by the test's name; the first matching prefix wins
FAMILIES = [
    (("lstm", "gru", "rnn", "cells", "tagger", "sentiment", "seq2seq", "cache_steps"), "recurrent"),
    (("encoder", "decoder", "block_", "padded_classifier", "with_cls", "heads"), "layers"),
    (("mha", "attention", "masked_fill_attn", "sdpa"), "attention"),
]


def family(name):
    for prefixes, fam in FAMILIES:
        if name.startswith(prefixes):
            return fam
    return "product"


def bf16_params(attnc, name):
    ir = subprocess.run([attnc, os.path.join(HERE, name + ".attn"), "--emit-ir", "--weights-dtype", "bf16"],
                        check=True, capture_output=True, text=True).stdout
    return set(re.findall(r"= param (\S+), bf16 :", ir))


def round_bf16(t):
    return t.to(torch.bfloat16).to(t.dtype)   # torch rounds to nearest even, as the runtime


def one(attnc, name):
    names = bf16_params(attnc, name)
    tolpath = os.path.join(HERE, name, "tol.bf16")
    if not names:
        if os.path.exists(tolpath):
            os.remove(tolpath)
        return None
    t = TESTS[name]
    torch.manual_seed(zlib.crc32(name.encode()))
    case = t["fn"]()
    for m in case.mods.values():
        m.eval()
    # the case must give the committed weights (else gen.py was not rerun)
    saved = read_safetensors(os.path.join(HERE, name, "weights.safetensors"))
    seen = set()
    with torch.no_grad():
        for lname, m in case.mods.items():
            sd = m.state_dict()
            for k, v in sd.items():
                full = (lname + "." if lname else "") + k
                assert np.array_equal(saved[full], v.float().numpy()), "%s: %s differs from the committed data" % (name, full)
                if full in names:
                    v.copy_(round_bf16(v))
                    seen.add(full)
        for k in list(case.params):
            assert np.array_equal(saved[k], case.params[k].float().numpy()), name + ": " + k
            if k in names:
                case.params[k] = round_bf16(case.params[k])
                seen.add(k)
        assert seen == names, "%s: attnc's bf16 params %s, the case's %s" % (name, sorted(names), sorted(seen))
        out = case.run(*gen.convert(case, torch.float64))
    base = tuple(float(x) for x in open(os.path.join(HERE, name, "tol")).read().split()) \
        if os.path.exists(os.path.join(HERE, name, "tol")) else DEFAULT_TOL
    expected = {k: np.load(os.path.join(HERE, name, "out.%s.npy" % k)) for k in out}
    scale = max(float(np.max(np.abs(e[np.isfinite(e)]), initial=0.0)) for e in expected.values())
    fam = family(name)
    c = TOL_C.get(name, FAMILY_C[fam])
    tol = (base[0] + c * U * scale, base[1])
    worst = units = 0.0
    for k, e in expected.items():
        got = out[k].numpy()
        if t["nonfinite"]:
            with np.errstate(over="ignore"):
                got = got.astype(np.float32)
        # the fully masked rows' NaNs are zeros in the language (gen.py)
        got = np.where(np.isnan(got) & ~np.isnan(e), 0.0, got)
        worst = max(worst, gen.tol_ratio(got.astype(np.float32), e, tol))
        fin = np.isfinite(e) & np.isfinite(got)
        if fin.any():
            units = max(units, float(np.max(np.abs(got[fin] - e[fin]))) / (U * scale))
    if os.environ.get("BF16_ALL"):
        print("%-18s %-9s need %.2f u S" % (name, fam, units))
        return None
    if worst > 0.5:
        raise SystemExit("%s: the exact bf16-weights result uses %.2f of the %s tolerance %g %g: the bound "
                         "does not hold with a margin" % (name, worst, fam, *tol))
    with open(tolpath, "w") as f:
        f.write("%.3g %.3g\n" % tol)
    return "%-18s %-9s %2d bf16 params  S %-8.3g tol %.3g %.3g  exact bf16 uses %.3f" % (
        name, fam, len(names), scale, tol[0], tol[1], worst)


def main(argv):
    if not argv:
        raise SystemExit(__doc__)
    attnc, names = argv[0], argv[1:]
    for name in names or sorted(TESTS):
        r = one(attnc, name)
        if r:
            print(r)


if __name__ == "__main__":
    main(sys.argv[1:])
