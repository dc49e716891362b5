#!/usr/bin/python3
"""gen.py: golden data for the run tests, from an independent NumPy oracle.

    /usr/bin/python3 tests/run/gen.py            # (re)write every tests/run/NAME/
    /usr/bin/python3 tests/run/gen.py --check    # also check the oracle against torch
    /usr/bin/python3 tests/run/gen.py NAME...    # only these tests

For each test NAME (one model per tests/run/NAME.attn, the model named NAME)
it writes the folder tests/run/NAME/ with
    in.<input>.npy        every input of the model (f32, C order)
    out.<output>.npy      every output, computed in float64 and cast to f32
    weights.safetensors   the params, if the model has any (written by hand)
    tol                   "atol rtol", only where the default 1e-4 1e-4 does
                          not fit; the reason is the `note` of the test below
Everything is deterministic: each test's generator is seeded with the CRC-32
of its name.  The .attn file is parsed (lightly) to check that the inputs,
params and outputs written here are exactly the model's, with its shapes.

The reference ops are written out here in NumPy, in float64, without reusing
anything from attnc: softmax subtracts the max, gelu is the exact erf form
(math.erf, vectorised), layernorm uses the biased variance around the mean.
"""
import json
import math
import os
import re
import shutil
import struct
import sys
import zlib

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from safetensors_io import write_safetensors  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TOL = (1e-4, 1e-4)

# ---- reference ops, float64 -------------------------------------------------
_erf = np.vectorize(math.erf, otypes=[np.float64])


def f64(a):
    return np.asarray(a, dtype=np.float64)


def softmax(x, axis=-1):
    x = f64(x)
    m = np.max(x, axis=axis, keepdims=True)
    with np.errstate(invalid="ignore"):   # -inf - finite max is -inf, fine
        e = np.exp(x - m)
    return e / np.sum(e, axis=axis, keepdims=True)


def sigmoid(x):
    x = f64(x)
    e = np.exp(-np.abs(x))                # never overflows
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def gelu(x):                              # exact erf form (torch's default)
    x = f64(x)
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def silu(x):
    x = f64(x)
    return x * sigmoid(x)


def relu(x):
    return np.maximum(f64(x), 0.0)


def layernorm(x, w, b, eps=1e-5):        # over the last dim, biased variance
    x = f64(x)
    mu = np.mean(x, axis=-1, keepdims=True)
    var = np.mean((x - mu) ** 2, axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * f64(w) + f64(b)


def linear(x, w, b=None):                 # torch.nn.Linear: x @ W^T + b
    y = f64(x) @ f64(w).T
    return y if b is None else y + f64(b)


def T(x):                                 # transpose(): swap the last two dims
    return np.swapaxes(f64(x), -1, -2)


def mm(a, b):                             # `@`: NumPy matmul semantics
    return np.matmul(f64(a), f64(b))


# ---- data helpers -------------------------------------------------------------
def uni(rng, shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def nrm(rng, shape, scale=1.0):
    return (rng.standard_normal(size=shape) * scale).astype(np.float32)


def torch_init(rng, out_f, in_f, bias=True):
    """Parameters of a Linear, drawn like torch's default init."""
    bound = 1.0 / math.sqrt(in_f)
    w = uni(rng, (out_f, in_f), -bound, bound)
    b = uni(rng, (out_f,), -bound, bound) if bias else None
    return w, b


def ln_params(rng, d):
    return (1.0 + 0.3 * rng.standard_normal(d)).astype(np.float32), \
        (0.2 * rng.standard_normal(d)).astype(np.float32)


def values(n, *parts):
    """Concatenate value lists into a float32 vector of exactly n elements
    (the tail is cut or filled by repeating), in a fixed shuffled order."""
    v = np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in parts])
    if v.size < n:
        v = np.concatenate([v, v[: n - v.size]])
    v = v[:n].astype(np.float32)
    perm = np.random.default_rng(12345).permutation(n)
    return v[perm]


def near_zero():
    s = np.array([0.0, 1e-30, 1e-20, 1e-12, 1e-8, 3e-7, 1e-6, 1e-5, 1e-4, 1e-3,
                  3e-3, 1e-2, 0.03, 0.1, 0.25, 0.5])
    return np.concatenate([s, -s[1:]])


# ---- the tests ------------------------------------------------------------------
TESTS = {}

TIGHT = (1e-6, 2e-6)
TIGHT_NOTE = ("tight on purpose: this checks the accuracy of the generated "
              "approximation over its whole range.  A faithful f32 "
              "implementation is within a few ulp (rtol 2e-6 is about 16 ulp "
              "at the bottom of a binade); atol 1e-6 only absorbs results "
              "near zero, where ulps are tiny.")


def test(name, tol=None, note=None):
    assert (tol is None) == (note is None), name + ": a tol needs a note"

    def deco(fn):
        TESTS[name] = dict(fn=fn, tol=tol, note=note)
        return fn
    return deco


def sdpa_data(rng, t, s, d, qscale=1.0):
    q = nrm(rng, (t, d), qscale)
    k = nrm(rng, (s, d))
    v = uni(rng, (s, d), -2, 2)
    return q, k, v


def sdpa_ref(q, k, v, scale, mask=None):
    sc = mm(q, T(k)) * scale
    if mask is not None:
        sc = sc + f64(mask)
    return mm(softmax(sc, -1), v)


for _name, _t, _s, _qs in [("sdpa", 6, 11, 1.0), ("sdpa_q1", 1, 5, 1.0),
                           ("sdpa_s1", 4, 1, 1.0), ("sdpa_long", 37, 150, 3.0)]:
    def _mk(t=_t, s=_s, qs=_qs):
        def fn(rng):
            q, k, v = sdpa_data(rng, t, s, 64, qs)
            return dict(q=q, k=k, v=v), {}, dict(o=sdpa_ref(q, k, v, 1 / math.sqrt(64)))
        return fn
    test(_name)(_mk())


@test("sdpa_batch")
def _(rng):
    B, H, Tq, S, D = 2, 3, 5, 9, 16
    q, k, v = nrm(rng, (B, H, Tq, D)), nrm(rng, (B, H, S, D)), uni(rng, (B, H, S, D), -2, 2)
    return dict(q=q, k=k, v=v), {}, dict(o=sdpa_ref(q, k, v, 0.25))


@test("sdpa_mask")
def _(rng):
    Tq = S = 6
    q, k, v = sdpa_data(rng, Tq, S, 32, 2.0)
    mask = np.where(np.arange(S)[None, :] > np.arange(Tq)[:, None], -1e9, 0.0).astype(np.float32)
    return dict(q=q, k=k, v=v, mask=mask), {}, \
        dict(o=sdpa_ref(q, k, v, 1 / math.sqrt(32), mask))


@test("sdpa_mask_inf")
def _(rng):
    Tq, S = 8, 150
    q, k, v = sdpa_data(rng, Tq, S, 32, 2.0)
    lo = np.round(np.arange(Tq) * (S - 1) / (Tq - 1)).astype(int)   # first visible key
    mask = np.where(np.arange(S)[None, :] < lo[:, None], -np.inf, 0.0).astype(np.float32)
    o = sdpa_ref(q, k, v, 1 / math.sqrt(32), mask)
    assert np.all(np.isfinite(o)) and np.allclose(o[-1], v[-1])
    return dict(q=q, k=k, v=v, mask=mask), {}, dict(o=o)


for _name, _b, _t in [("mlp", 2, 5), ("mlp_t1", 3, 1)]:
    def _mk(b=_b, t=_t):
        def fn(rng):
            D = 16
            x = nrm(rng, (b, t, D))
            w1, b1 = torch_init(rng, 4 * D, D)
            w2, b2 = torch_init(rng, D, 4 * D)
            y = linear(gelu(linear(x, w1, b1)), w2, b2)
            return dict(x=x), {"fc1.weight": w1, "fc1.bias": b1,
                               "fc2.weight": w2, "fc2.bias": b2}, dict(y=y)
        return fn
    test(_name)(_mk())

# -- unary functions over wide ranges.  N = 1031 (prime) so that every vector
#    width leaves a tail.
N_UNARY = 1031


def wide_pm20(rng):
    return values(N_UNARY, np.linspace(-20, 20, 601), near_zero(),
                  rng.uniform(-20, 20, 150), rng.uniform(-1, 1, 100),
                  rng.uniform(-6, 6, 150), [-20.0, 20.0, -9.0, 9.0, 0.55, 0.625, -0.625])


@test("unary_exp", TIGHT, TIGHT_NOTE)
def _(rng):
    x = values(N_UNARY, np.linspace(-100, 88, 601), near_zero(), np.arange(-100, 89),
               rng.uniform(-100, 88, 100), rng.uniform(-1, 1, 80),
               [math.log(2), -math.log(2), 88.0, 87.9, -87.3, -88.0])
    return dict(x=x), {}, dict(y=np.exp(f64(x)))


@test("unary_log", TIGHT, TIGHT_NOTE)
def _(rng):
    x = values(N_UNARY, 10.0 ** np.linspace(-30, 30, 601), 10.0 ** rng.uniform(-30, 30, 150),
               1.0 + np.array([0, 1.2e-7, -6e-8, 1e-6, -1e-6, 1e-4, -1e-4, 1e-2, -1e-2]),
               rng.uniform(0.5, 2.0, 120), rng.uniform(1e-3, 10, 60),
               2.0 ** np.arange(-99, 100, 3), [1e-30, 1e30, math.e, 0.5, 2.0])
    assert np.all(x > 0) and x.min() >= np.float32(1e-30) and x.max() <= np.float32(1e30)
    return dict(x=x), {}, dict(y=np.log(f64(x)))


@test("unary_sqrt", TIGHT, "sqrt is correctly rounded in IEEE arithmetic, so a "
      "good implementation is exact; the same tight bound as the other "
      "unary tests is used rather than demanding bit equality.")
def _(rng):
    x = values(N_UNARY, 10.0 ** np.linspace(-30, 30, 601), [0.0, 1.0, 4.0, 2.0, 1e-38],
               np.arange(0, 40) ** 2, rng.uniform(0, 4, 200), 10.0 ** rng.uniform(-6, 6, 150))
    return dict(x=x), {}, dict(y=np.sqrt(f64(x)))


@test("unary_tanh", TIGHT, TIGHT_NOTE)
def _(rng):
    x = wide_pm20(rng)
    return dict(x=x), {}, dict(y=np.tanh(f64(x)))


@test("unary_sigmoid", TIGHT, TIGHT_NOTE)
def _(rng):
    x = wide_pm20(rng)
    return dict(x=x), {}, dict(y=sigmoid(x))


GELU_SILU_NOTE = ("tight: checks the generated erf/exp approximation.  rtol is "
                  "twice the exp/sigmoid one because the result composes an "
                  "approximated function with a multiply; atol 1e-6 because for "
                  "x < 0 gelu = x/2 * (1 + erf(x/sqrt 2)) cancels, so only an "
                  "absolute accuracy of about |x| * ulp(1) is achievable there "
                  "(torch has the same error).")


@test("unary_gelu", (1e-6, 4e-6), GELU_SILU_NOTE)
def _(rng):
    x = wide_pm20(rng)
    return dict(x=x), {}, dict(y=gelu(x))


@test("unary_silu", (1e-6, 4e-6), GELU_SILU_NOTE)
def _(rng):
    x = wide_pm20(rng)
    return dict(x=x), {}, dict(y=silu(x))


@test("unary_relu", (0.0, 0.0), "relu is exact: max(x, 0) has no rounding.")
def _(rng):
    x = wide_pm20(rng)
    return dict(x=x), {}, dict(y=relu(x))


@test("softmax_axes")
def _(rng):
    x = uni(rng, (3, 5, 7), -4, 4)
    return dict(x=x), {}, dict(s0=softmax(x, 0), s1=softmax(x, 1), sm2=softmax(x, -2),
                               s2=softmax(x, 2), sd=softmax(x, -1))


@test("softmax_large")
def _(rng):
    C = 33
    rows = [rng.uniform(100, 900, C),                  # spread in the hundreds
            rng.uniform(-900, -100, C),                # all very negative
            np.full(C, 500.0),                         # all equal: uniform
            np.concatenate([[800.0], rng.uniform(100, 300, C - 1)]),   # one dominates
            rng.uniform(-500, 500, C),
            700.0 + rng.uniform(0, 3, C),              # near-ties at a large offset
            -1000.0 + rng.uniform(0, 2, C)]
    x = np.stack(rows).astype(np.float32)
    return dict(x=x), {}, dict(y=softmax(x, -1), y0=softmax(x, 0))


for _r, _fn in [("sum", np.sum), ("mean", np.mean), ("max", np.max)]:
    def _mk(fn=_fn, r=_r):
        def gen(rng):
            # max: all values negative, so an initial value of 0 would show
            x = uni(rng, (3, 4, 5), -100, -1) if r == "max" else uni(rng, (3, 4, 5), -2, 2)
            d = f64(x)
            return dict(x=x), {}, dict(r0=fn(d, axis=0), r1=fn(d, axis=1), r2=fn(d, axis=2),
                                       rm1=fn(d, axis=-1), rm3=fn(d, axis=-3), rall=fn(d))
        return gen
    test("reduce_" + _r)(_mk())


@test("reduce_dim1")
def _(rng):
    x = uni(rng, (1, 9), -3, 3)
    d = f64(x)
    return dict(x=x), {}, dict(s0=d.sum(0), m1=d.mean(1), x0=d.max(0), p0=softmax(d, 0),
                               p1=softmax(d, -1))


@test("bcast_basic")
def _(rng):
    x, row, col = uni(rng, (4, 5)), uni(rng, (5,)), uni(rng, (4, 1))
    X, R, C = f64(x), f64(row), f64(col)
    return dict(x=x, row=row, col=col), {}, dict(
        xr=X + R, xc=X * C, outer=C - R, sc=X * 2 + 1, rs=3 - X, rd=R / 4, cr=R * C + X)


@test("bcast_mid")
def _(rng):
    a, b, c = uni(rng, (3, 1, 5)), uni(rng, (3, 4, 5)), uni(rng, (4, 1))
    d, e = uni(rng, (2, 1, 4, 1)), uni(rng, (3, 1, 5))
    A, B, C, D, E = map(f64, (a, b, c, d, e))
    return dict(a=a, b=b, c=c, d=d, e=e), {}, dict(
        ab=A * B, ac=A + C, bc=B - C, de=D + E, db=D * B, s=A * 0.5 + D)


@test("rank0")
def _(rng):
    s = np.array(0.75, dtype=np.float32)
    x = uni(rng, (6,), -2, 2)
    S, X = f64(s), f64(x)
    return dict(s=s, x=x), {}, dict(y=X * S + S, z=S * S - 1, t=X.sum() * S,
                                    u=np.exp(S) + np.sqrt(S * S), m=X.max() - X.mean())


@test("rank4")
def _(rng):
    x, bias = uni(rng, (2, 3, 4, 6), -2, 2), uni(rng, (6,))
    X = f64(x)
    return dict(x=x, bias=bias), {}, dict(p=softmax(X, 1), q=mm(X, T(X)), r=X.sum(2),
                                          s=(X + f64(bias)).max(-1), t=X.mean())


@test("matmul_odd")
def _(rng):
    shapes = [(1, 3, 7), (17, 33, 65), (7, 129, 17), (65, 1, 33), (129, 65, 3)]
    ins, outs = {}, {}
    for i, (m, k, n) in enumerate(shapes, 1):
        a, b = uni(rng, (m, k)), uni(rng, (k, n))
        ins["a%d" % i], ins["b%d" % i] = a, b
        outs["o%d" % i] = mm(a, b)
    return ins, {}, outs


for _name, (_m, _k, _n) in [("matmul_sym", (1, 33, 129)), ("matmul_big", (70, 129, 67))]:
    def _mk(m=_m, k=_k, n=_n):
        def fn(rng):
            a, b = uni(rng, (m, k)), uni(rng, (k, n))
            return dict(a=a, b=b), {}, dict(c=mm(a, b))
        return fn
    test(_name)(_mk())


@test("matmul_vec")
def _(rng):
    v, m, n = uni(rng, (7,)), uni(rng, (7, 5)), uni(rng, (5, 7))
    bm, bn = uni(rng, (3, 7, 5)), uni(rng, (3, 5, 7))
    out = dict(vm=mm(v, m), nv=mm(n, v), vv=mm(v, v), vbm=mm(v, bm), bnv=mm(bn, v))
    assert out["vv"].shape == () and out["vbm"].shape == (3, 5) and out["bnv"].shape == (3, 5)
    return dict(v=v, m=m, n=n, bm=bm, bn=bn), {}, out


@test("matmul_batch")
def _(rng):
    a, b, c = uni(rng, (2, 1, 3, 7)), uni(rng, (4, 7, 5)), uni(rng, (3, 7))
    d, e, f = uni(rng, (2, 7, 5)), uni(rng, (2, 3, 7)), uni(rng, (7, 5))
    out = dict(ab=mm(a, b), cd=mm(c, d), ef=mm(e, f), dd=mm(d, T(d)))
    assert out["ab"].shape == (2, 4, 3, 5)
    return dict(a=a, b=b, c=c, d=d, e=e, f=f), {}, out


@test("qkt")
def _(rng):
    q, k, x = uni(rng, (2, 3, 8)), uni(rng, (2, 4, 8)), uni(rng, (3, 5, 7))
    return dict(q=q, k=k, x=x), {}, dict(s=mm(q, T(k)), t=T(x), g=mm(T(x), x), h=mm(x, T(x)))


@test("layernorm_fn")
def _(rng):
    x = nrm(rng, (5, 24), 2.0) + uni(rng, (5, 1), -3, 3)
    g, b = ln_params(rng, 24)
    X = f64(x)
    # y3: a variance (about 2e-5) near the default eps, so that eps counts
    return dict(x=x), dict(g=g, b=b), dict(y=layernorm(X, g, b), y2=layernorm(X * 0.01, g, b, 1e-3),
                                           y3=layernorm(X * 0.002, g, b))


@test("parallel_rows")
def _(rng):
    x = uni(rng, (3001, 16), -3, 3)
    w = uni(rng, (16, 4))
    X = f64(x)
    return dict(x=x), dict(w=w), dict(r=np.sum(softmax(X, -1) * X, axis=-1),
                                      m=np.max(gelu(mm(X, w)), axis=-1),
                                      s=np.sum(X, axis=0), n=np.mean(X))


@test("layernorm_offset")
def _(rng):
    x = (100.0 + rng.standard_normal((6, 32))).astype(np.float32)
    g, b = ln_params(rng, 32)
    return dict(x=x), dict(g=g, b=b), dict(y=layernorm(x, g, b))


@test("layernorm_layer")
def _(rng):
    D = 20
    x = nrm(rng, (2, 3, D), 1.5)
    w1, b1 = ln_params(rng, D)
    w2, b2 = ln_params(rng, D)
    X = f64(x)
    return dict(x=x), {"ln.weight": w1, "ln.bias": b1, "ln2.weight": w2, "ln2.bias": b2}, \
        dict(y=layernorm(X, w1, b1), y2=layernorm(X * 0.03, w2, b2, 1e-3))


@test("linear_nobias")
def _(rng):
    x, v = nrm(rng, (3, 12)), nrm(rng, (12,))
    w, _ = torch_init(rng, 9, 12, bias=False)
    hw, hb = torch_init(rng, 1, 12)
    return dict(x=x, v=v), {"fc.weight": w, "head.weight": hw, "head.bias": hb}, \
        dict(y=linear(x, w), h=linear(v, hw, hb), hx=linear(x, hw, hb))


@test("linear_odd")
def _(rng):
    x, xb = nrm(rng, (13, 37)), nrm(rng, (2, 3, 37))
    a, b = uni(rng, (2, 13, 37)), uni(rng, (37, 70))
    w, bias = torch_init(rng, 70, 37)
    w2, _ = torch_init(rng, 37, 70, bias=False)
    return dict(x=x, xb=xb, a=a, b=b), {"fc.weight": w, "fc.bias": bias, "fc2.weight": w2}, \
        dict(y=linear(x, w, bias), yb=linear(linear(xb, w, bias), w2), c=mm(a, b))


@test("linear_torchfile")
def _(rng):
    x = nrm(rng, (4, 10))
    w, b = torch_init(rng, 6, 10)
    extra = {"proj.running_mean": uni(rng, (6,))}
    return dict(x=x), {"proj.weight": w, "proj.bias": b}, \
        dict(y=np.tanh(linear(x, w, b))), extra


@test("consts")
def _(rng):
    D, H = 8, 16
    K = H - D + 1
    x = uni(rng, (3, H), -2, 2)
    X = f64(x)
    return dict(x=x), {}, dict(y=X * D + K, z=(X - 1.5) / H + 0.25, w=math.sqrt(D) * X - 100)


@test("two_outputs")
def _(rng):
    x, w = uni(rng, (5, 6)), uni(rng, (6, 4))
    a = mm(x, w)
    b = relu(a) * a + a
    return dict(x=x), dict(w=w), dict(a=a, b=b, c=b.sum(-1) + a.mean())


@test("unary_minus")
def _(rng):
    a, b, c = uni(rng, (4, 6), -2, 2), uni(rng, (6, 3)), uni(rng, (6,))
    A, C = f64(a), f64(c)
    return dict(a=a, b=b, c=c), {}, dict(n1=-A, n2=-mm(a, b), n3=A * -C, n4=-2 * A + A,
                                         n5=np.exp(-A), n6=A + C)


@test("div_tensor")
def _(rng):
    a = uni(rng, (4, 7), -3, 3)
    b = (rng.choice([-1.0, 1.0], (4, 7)) * rng.uniform(0.5, 3, (4, 7))).astype(np.float32)
    c = uni(rng, (4, 1), 0.5, 2)
    r = uni(rng, (7,), -2, 2)
    a[np.abs(a) < 0.25] = 0.25          # r / a: keep a away from 0
    A, B, C, R = map(f64, (a, b, c, r))
    return dict(a=a, b=b, c=c, r=r), {}, dict(q1=A / B, q2=A / C, q3=1 / B, q4=R / A,
                                              q5=A / (B * B + 1))


@test("encoder_block")
def _(rng):
    D, B, Tn = 16, 2, 5
    x = nrm(rng, (B, Tn, D))
    p = {}
    p["ln1.weight"], p["ln1.bias"] = ln_params(rng, D)
    for n in ("wq", "wk", "wv"):
        p[n + ".weight"], p[n + ".bias"] = torch_init(rng, D, D)
    p["wo.weight"], _ = torch_init(rng, D, D, bias=False)
    p["ln2.weight"], p["ln2.bias"] = ln_params(rng, D)
    p["fc1.weight"], p["fc1.bias"] = torch_init(rng, 2 * D, D)
    p["fc2.weight"], p["fc2.bias"] = torch_init(rng, D, 2 * D)
    h = layernorm(x, p["ln1.weight"], p["ln1.bias"])
    q = linear(h, p["wq.weight"], p["wq.bias"])
    k = linear(h, p["wk.weight"], p["wk.bias"])
    v = linear(h, p["wv.weight"], p["wv.bias"])
    a = mm(softmax(mm(q, T(k)) / math.sqrt(D), -1), v)
    y = f64(x) + linear(a, p["wo.weight"])
    z = linear(silu(linear(layernorm(y, p["ln2.weight"], p["ln2.bias"]),
                           p["fc1.weight"], p["fc1.bias"])), p["fc2.weight"], p["fc2.bias"])
    return dict(x=x), p, dict(out=y + z, normed=h)


@test("fuse_chain")
def _(rng):
    x, a, b = uni(rng, (5, 67), -3, 3), uni(rng, (67,), -2, 2), uni(rng, (5, 1), -2, 2)
    X, A, B = map(f64, (x, a, b))
    y = np.tanh(X * A + B) * sigmoid(X - B) / (1 + np.exp(-(X * X)))
    z = relu(X) - gelu(X * 0.5) + silu(B)
    return dict(x=x, a=a, b=b), {}, dict(y=y, z=z)


# ---- writers ---------------------------------------------------------------------
def write_npy(path, a):
    # (not np.ascontiguousarray: it turns a rank-0 array into shape (1,))
    a = np.array(np.asarray(a, dtype=np.float64), dtype="<f4", order="C")
    assert a.flags.c_contiguous
    np.save(path, a, allow_pickle=False)
    back = np.load(path)
    assert back.shape == np.shape(a) and back.dtype == np.dtype("<f4"), path


# ---- a light reading of the .attn file, to check the data against it -----------------
def parse_attn(path):
    text = open(path).read()
    lines = [re.sub(r"#.*", "", l).strip() for l in text.splitlines()]
    m = dict(name=None, consts={}, inputs=[], params=[], outputs=[])
    for l in lines:
        if not l:
            continue
        g = re.match(r"model\s+(\w+)\s*\{", l)
        if g:
            assert m["name"] is None, path + ": one model per file"
            m["name"] = g.group(1)
            continue
        g = re.match(r"const\s+(\w+)\s*=\s*(.+)$", l)
        if g:
            m["consts"][g.group(1)] = int(eval(g.group(2), {}, dict(m["consts"])))
            continue
        g = re.match(r"(input|param)\s+(\w+)\s*:\s*f32\[(.*)\]$", l)
        if g:
            dims = [d.strip() for d in g.group(3).split(",")] if g.group(3).strip() else []
            m[g.group(1) + "s"].append((g.group(2), dims))
            continue
        g = re.match(r"layer\s+(\w+)\s*=\s*(\w+)\((.*)\)$", l)
        if g:
            lname, kind = g.group(1), g.group(2)
            args = [a.strip() for a in g.group(3).split(",")]
            pos = [a for a in args if "=" not in a]
            kw = dict(a.split("=") for a in args if "=" in a)
            if kind == "Linear":
                m["params"].append((lname + ".weight", [pos[1], pos[0]]))
                if kw.get("bias", "true").strip() != "false":
                    m["params"].append((lname + ".bias", [pos[1]]))
            elif kind == "LayerNorm":
                m["params"] += [(lname + ".weight", [pos[0]]), (lname + ".bias", [pos[0]])]
            else:
                raise SystemExit("%s: gen.py does not know layer %s" % (path, kind))
            continue
        g = re.match(r"output\s+(\w+)\s*=", l)
        if g:
            m["outputs"].append(g.group(1))
    return m


def check_against_attn(name, attn, ins, params, outs):
    where = "tests/run/%s.attn" % name
    assert attn["name"] == name, "%s: the model must be named %s" % (where, name)
    binding = {}

    def check(kind, decls, data):
        assert [n for n, _ in decls] == list(data), \
            "%s: %s %s in the file, %s in gen.py" % (where, kind, [n for n, _ in decls], list(data))
        for n, dims in decls:
            shape = data[n].shape
            assert len(dims) == len(shape), "%s: %s %s has rank %d, data %s" % (where, kind, n, len(dims), shape)
            for d, s in zip(dims, shape):
                try:
                    want = int(eval(d, {}, dict(attn["consts"])))
                except NameError:
                    want = binding.setdefault(d, s)
                assert want == s, "%s: %s %s: dim %s is %d, data %s" % (where, kind, n, d, want, shape)

    check("input", attn["inputs"], ins)
    check("param", attn["params"], params)
    assert sorted(attn["outputs"]) == sorted(outs), \
        "%s: outputs %s in the file, %s in gen.py" % (where, attn["outputs"], list(outs))
    return binding


# ---- main ---------------------------------------------------------------------------
def generate(name):
    t = TESTS[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    r = t["fn"](rng)
    ins, params, outs = r[:3]
    extra = r[3] if len(r) > 3 else None
    for d in (ins, params):
        for k, v in d.items():
            assert v.dtype == np.float32, "%s: %s is %s" % (name, k, v.dtype)
    attn = parse_attn(os.path.join(HERE, name + ".attn"))
    binding = check_against_attn(name, attn, ins, params, outs)
    for k, v in outs.items():
        assert np.all(np.isfinite(v)), "%s: out %s is not finite" % (name, k)
        assert np.all(np.abs(v) < 3.4e38), "%s: out %s overflows f32" % (name, k)

    d = os.path.join(HERE, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    for k, v in ins.items():
        write_npy(os.path.join(d, "in.%s.npy" % k), v)
    for k, v in outs.items():
        write_npy(os.path.join(d, "out.%s.npy" % k), v)
    if params:
        if extra is not None:       # as torch writes it: metadata, extras first
            write_safetensors(os.path.join(d, "weights.safetensors"),
                              dict(list(extra.items()) + list(params.items())),
                              metadata={"format": "pt"})
        else:
            write_safetensors(os.path.join(d, "weights.safetensors"), params)
    if t["tol"] is not None:
        with open(os.path.join(d, "tol"), "w") as f:
            f.write("%g %g\n" % t["tol"])
    return binding, ins, params, outs


def check_with_torch():
    """Compare the NumPy reference ops with torch (float64) on random data."""
    import torch
    import torch.nn.functional as F
    rng = np.random.default_rng(7)
    x = rng.uniform(-20, 20, (4, 5, 33))
    tx = torch.tensor(x, dtype=torch.float64)
    w, b = rng.standard_normal(33), rng.standard_normal(33)
    W, Bv = rng.standard_normal((9, 33)), rng.standard_normal(9)
    q, k, v = rng.standard_normal((2, 6, 16)), rng.standard_normal((2, 9, 16)), rng.standard_normal((2, 9, 16))
    tt = lambda a: torch.tensor(a, dtype=torch.float64)
    mask = np.where(rng.uniform(size=(6, 9)) < 0.3, -np.inf, 0.0)
    mask[:, 0] = 0.0

    def torch_sdpa(q, k, v, scale, mask=None):   # torch 1.13 has no F.sdpa
        s = torch.matmul(q, k.transpose(-1, -2)) * scale
        return torch.matmul(torch.softmax(s if mask is None else s + mask, -1), v)
    checks = [
        ("softmax-1", softmax(x, -1), torch.softmax(tx, -1)),
        ("softmax0", softmax(x, 0), torch.softmax(tx, 0)),
        ("softmax1", softmax(x, 1), torch.softmax(tx, 1)),
        ("softmax*30", softmax(30 * x, -1), torch.softmax(30 * tx, -1)),
        ("gelu", gelu(x), F.gelu(tx)),
        ("silu", silu(x), F.silu(tx)),
        ("sigmoid", sigmoid(x), torch.sigmoid(tx)),
        ("relu", relu(x), torch.relu(tx)),
        ("layernorm", layernorm(x, w, b), F.layer_norm(tx, (33,), tt(w), tt(b), 1e-5)),
        ("layernorm1e-3", layernorm(x * .01, w, b, 1e-3), F.layer_norm(tx * .01, (33,), tt(w), tt(b), 1e-3)),
        ("linear", linear(x, W, Bv), F.linear(tx, tt(W), tt(Bv))),
        ("linear-nobias", linear(x, W), F.linear(tx, tt(W))),
        ("sdpa", sdpa_ref(q, k, v, 0.25),
         torch_sdpa(tt(q), tt(k), tt(v), 0.25)),
        ("sdpa-mask", sdpa_ref(q, k, v, 0.25, mask),
         torch_sdpa(tt(q), tt(k), tt(v), 0.25, tt(mask))),
    ]
    bad = 0
    for name, a, ref in checks:
        ref = ref.numpy() if hasattr(ref, "numpy") else np.asarray(ref)
        err = float(np.max(np.abs(a - ref))) if np.size(a) else 0.0
        ok = a.shape == ref.shape and err < 1e-12 * max(1.0, float(np.max(np.abs(ref))))
        print("torch check %-14s max abs diff %.3g %s" % (name, err, "ok" if ok else "FAIL"))
        bad += not ok
    # matmul broadcasting and 1-D operands against torch.matmul
    for sa, sb in [((7,), (7, 5)), ((5, 7), (7,)), ((7,), (7,)), ((7,), (3, 7, 5)),
                   ((3, 5, 7), (7,)), ((2, 1, 3, 7), (4, 7, 5)), ((3, 7), (2, 7, 5))]:
        a_, b_ = rng.standard_normal(sa), rng.standard_normal(sb)
        r1, r2 = mm(a_, b_), torch.matmul(tt(a_), tt(b_)).numpy()
        ok = r1.shape == r2.shape and np.allclose(r1, r2, rtol=1e-13, atol=1e-13)
        print("torch check matmul %s@%s -> %s %s" % (sa, sb, r1.shape, "ok" if ok else "FAIL"))
        bad += not ok
    return bad


def main(argv):
    do_check = "--check" in argv
    names = [a for a in argv if not a.startswith("-")]
    attn_files = sorted(f[:-5] for f in os.listdir(HERE) if f.endswith(".attn"))
    missing = [n for n in attn_files if n not in TESTS]
    orphans = [n for n in TESTS if n not in attn_files]
    if missing or orphans:
        raise SystemExit("gen.py: no generator for %s; no .attn for %s" % (missing, orphans))
    total = 0
    for name in names or sorted(TESTS):
        if name not in TESTS:
            raise SystemExit("gen.py: unknown test " + name)
        binding, ins, params, outs = generate(name)
        size = sum(os.path.getsize(os.path.join(HERE, name, f))
                   for f in os.listdir(os.path.join(HERE, name)))
        total += size
        print("%-18s dims %-24s %d in, %d params, %d out, %6d bytes%s" % (
            name, ",".join("%s=%d" % kv for kv in binding.items()) or "-", len(ins),
            len(params), len(outs), size, "" if TESTS[name]["tol"] is None
            else "  tol %g %g" % TESTS[name]["tol"]))
    print("total %d bytes" % total)
    if do_check:
        bad = check_with_torch()
        if bad:
            raise SystemExit("gen.py: %d reference checks against torch failed" % bad)


if __name__ == "__main__":
    main(sys.argv[1:])
