"""golden_lib.py: what the PyTorch-oracle test cases share (tests/golden/):
the registry (@test, Case), helpers to build inputs and modules, and the
independent float64 references.  The cases are in cases_layers.py (the
brief's programs and every layer and function), cases_blocks.py (blocks,
layer arrays, several results, views) and cases_recurrent.py (recurrent
state, cells); gen.py runs them.  See gen.py for
how the expected outputs are made."""
import copy
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
from safetensors_io import read_safetensors, write_safetensors  # noqa: E402
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEFAULT_TOL = (1e-4, 1e-4)
NEG_INF = float("-inf")

torch.set_num_threads(1)           # deterministic reductions in torch's f32 run



# ---- the tests ---------------------------------------------------------------
TESTS = {}


class Case:
    """What a test function returns.

    ins     inputs, name -> torch tensor (float32, or int32 for ids)
    mods    layers, name -> torch module (float32); its state_dict is saved
            under "name." + key
    params  raw params, name -> float32 tensor
    run     run(M, P, I) -> {output: tensor}; M, P, I are mods, params and
            ins converted to the dtype of the pass (float32 or float64)
    hand    optional hand(M, P, I) -> {output: tensor}, evaluated in float64
            only: an independent reference for (some of) the outputs
    """

    def __init__(self, ins, run, mods=None, params=None, hand=None, link=None):
        self.ins, self.run = ins, run
        self.mods, self.params, self.hand = mods or {}, params or {}, hand
        self.link = link    # weights.safetensors is a link to this file


def example_weights(name, mods, params=None):
    """Load the committed weights of examples/NAME (written by
    examples/export_weights.py) into the modules (by layer-name prefix) and
    the raw params; the test's weights.safetensors is then a symbolic link to
    that file, so that the data is not committed twice."""
    path = os.path.join(ROOT, "examples", "weights", name + ".safetensors")
    if not os.path.exists(path):
        raise SystemExit("gen.py: no %s: run /usr/bin/python3 examples/export_weights.py first"
                         % os.path.relpath(path, ROOT))
    sd = {k: torch.tensor(np.array(v)) for k, v in read_safetensors(path).items()}
    used = set()
    for prefix, m in mods.items():
        sub = {k[len(prefix) + 1:] if prefix else k: v for k, v in sd.items()
               if not prefix or k.startswith(prefix + ".")}
        m.load_state_dict(sub, strict=True)
        used |= {(prefix + "." if prefix else "") + k for k in sub}
    for k in params or {}:
        params[k] = sd[k]
        used.add(k)
    assert used == set(sd), "unused tensors in %s: %s" % (path, set(sd) - used)
    return os.path.join("..", "..", "..", "examples", "weights", name + ".safetensors")


def test(name, doc, tol=None, note=None, nonfinite=False):
    """nonfinite: the expected outputs may hold NaN and infinities, which
    torch's float32 result must then hold at the same places."""
    assert (tol is None) == (note is None), name + ": a tol needs a note"

    def deco(fn):
        assert name not in TESTS, name
        TESTS[name] = dict(fn=fn, doc=doc, tol=tol, note=note, nonfinite=nonfinite)
        return fn
    return deco


# ---- helpers -------------------------------------------------------------------
def randn(*shape, scale=1.0):
    return torch.randn(*shape) * scale


def uniform(*shape, lo=-1.0, hi=1.0):
    return torch.rand(*shape) * (hi - lo) + lo


def randomize(*mods):
    """Redraw what torch initialises to constants: biases (0) and LayerNorm
    weights (1), so that every parameter matters."""
    with torch.no_grad():
        for m in mods:
            for sub in m.modules():
                if isinstance(sub, nn.LayerNorm):
                    if sub.weight is not None:
                        sub.weight.copy_(1.0 + 0.3 * torch.randn_like(sub.weight))
                    if sub.bias is not None:
                        sub.bias.copy_(0.2 * torch.randn_like(sub.bias))
            for n, p in m.named_parameters():
                if n.endswith("bias") or "bias_" in n.rsplit(".", 1)[-1]:
                    p.copy_(uniform(*p.shape, lo=-0.3, hi=0.3))
    return mods[0] if len(mods) == 1 else mods


def causal_mask(t, s, dtype=torch.float32):
    """Float mask: key j hidden from query i when j > i (top-left aligned)."""
    return torch.triu(torch.full((t, s), NEG_INF, dtype=dtype), diagonal=1)


def zero_nan_rows(x):
    """torch gives NaN for a query whose keys are all masked; the language
    says zeros.  Replace rows (last dim) that are all NaN by 0; a partial NaN
    row would be a bug in the test, so refuse it."""
    bad = torch.isnan(x)
    full = bad.all(-1, keepdim=True)
    assert torch.equal(bad, full.expand_as(bad)), "a row partly NaN"
    return torch.where(full, torch.zeros_like(x), x)


def mha(m, q, k, v, mask=None):
    """nn.MultiheadAttention as the language calls it: the output only."""
    return m(q, k, v, attn_mask=mask, need_weights=False)[0]


def mha_zero_rows(m, q, k, v, mask):
    """nn.MultiheadAttention with the fully-masked-row rule: torch's output
    rows that are NaN are those whose attention was all masked; their
    attention (before out_proj) is 0, so the output is out_proj.bias (or 0)."""
    y = mha(m, q, k, v, mask)
    full = torch.isnan(y).all(-1, keepdim=True)
    assert torch.equal(torch.isnan(y), full.expand_as(y))
    b = m.out_proj.bias if m.out_proj.bias is not None else torch.zeros_like(y[..., 0, :])
    return torch.where(full, b.expand_as(y), y), int(full.sum())


def sdpa(q, k, v, mask=None, scale=None):
    """attention(q, k, v, mask=, scale=): torch 1.13 has no
    F.scaled_dot_product_attention, so it is torch ops: softmax(q k^T s + m) v,
    then the fully-masked-row rule (NaN rows -> 0)."""
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    s = torch.matmul(q, k.transpose(-1, -2)) * scale
    if mask is not None:
        s = s + mask
    return zero_nan_rows(torch.matmul(torch.softmax(s, -1), v))


# ---- independent references, float64 ----------------------------------------
def ref_softmax0(s):
    """softmax over the last dim; a row with no finite score gives zeros."""
    m = s.max(-1, keepdim=True).values
    m = torch.where(torch.isinf(m), torch.zeros_like(m), m)
    e = torch.exp(s - m)
    z = e.sum(-1, keepdim=True)
    return e / torch.where(z == 0, torch.ones_like(z), z)


def ref_attention(q, k, v, mask=None, scale=None):
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    # scores by explicit sums, not matmul
    s = (q.unsqueeze(-2) * k.unsqueeze(-3)).sum(-1) * scale
    if mask is not None:
        s = s + mask
    return (ref_softmax0(s).unsqueeze(-1) * v.unsqueeze(-3)).sum(-2)


def ref_split(x, h):
    *lead, t, d = x.shape
    return x.reshape(*lead, t, h, d // h).transpose(-3, -2)


def ref_merge(x):
    *lead, h, t, dh = x.shape
    return x.transpose(-3, -2).reshape(*lead, t, h * dh)


def ref_linear(x, w, b=None):
    y = (x.unsqueeze(-2) * w).sum(-1)
    return y if b is None else y + b


def ref_mha(m, q, k, v, mask=None):
    d, h = m.embed_dim, m.num_heads
    w, b = m.in_proj_weight, m.in_proj_bias
    bq, bk, bv = (None, None, None) if b is None else (b[:d], b[d:2 * d], b[2 * d:])
    qh = ref_split(ref_linear(q, w[:d], bq), h)
    kh = ref_split(ref_linear(k, w[d:2 * d], bk), h)
    vh = ref_split(ref_linear(v, w[2 * d:], bv), h)
    o = ref_merge(ref_attention(qh, kh, vh, mask))
    return ref_linear(o, m.out_proj.weight, m.out_proj.bias)


def ref_layernorm(x, ln):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + ln.eps) * ln.weight + ln.bias


def ref_rnn(m, x, kind):
    """nn.LSTM / nn.GRU by its cell equations, step by step."""
    unbatched = x.dim() == 2
    if unbatched:
        x = x.unsqueeze(0)
    hs = x
    H = m.hidden_size
    for layer in range(m.num_layers):
        wi = getattr(m, "weight_ih_l%d" % layer)
        wh = getattr(m, "weight_hh_l%d" % layer)
        bi = getattr(m, "bias_ih_l%d" % layer) if m.bias else torch.zeros(wi.shape[0], dtype=x.dtype)
        bh = getattr(m, "bias_hh_l%d" % layer) if m.bias else torch.zeros(wi.shape[0], dtype=x.dtype)
        h = torch.zeros(x.shape[0], H, dtype=x.dtype)
        c = torch.zeros(x.shape[0], H, dtype=x.dtype)
        outs = []
        for t in range(hs.shape[1]):
            gi = ref_linear(hs[:, t], wi, bi)
            gh = ref_linear(h, wh, bh)
            if kind == "lstm":
                g = gi + gh
                i, f, gg, o = (g[:, j * H:(j + 1) * H] for j in range(4))
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(gg)
                h = torch.sigmoid(o) * torch.tanh(c)
            else:
                r = torch.sigmoid(gi[:, :H] + gh[:, :H])
                z = torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
                n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
                h = (1 - z) * n + z * h
            outs.append(h)
        hs = torch.stack(outs, 1)
    return hs[0] if unbatched else hs


def ref_additive(wq, wk, vv, q, k, v=None):
    """Bahdanau attention by explicit sums."""
    if v is None:
        v = k
    a = ref_linear(q, wq).unsqueeze(-2) + ref_linear(k, wk).unsqueeze(-3)   # [.., T, S, hid]
    s = (torch.tanh(a) * vv).sum(-1)
    return (ref_softmax0(s).unsqueeze(-1) * v.unsqueeze(-3)).sum(-2)


def posenc(t, d, dtype=torch.float64):
    """The sinusoidal positional encoding of "Attention Is All You Need",
    computed in float64 whatever the pass."""
    pos = torch.arange(t, dtype=torch.float64).unsqueeze(1)
    i2 = torch.arange(0, d, 2, dtype=torch.float64)
    ang = pos / torch.pow(10000.0, i2 / d)
    pe = torch.zeros(t, d, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(ang)
    pe[:, 1::2] = torch.cos(ang[:, : d // 2])
    return pe.to(dtype)


def ref_posenc(t, d):
    pe = np.zeros((t, d))
    for p in range(t):
        for j in range(d):
            a = p / 10000.0 ** ((j - j % 2) / d)
            pe[p, j] = math.sin(a) if j % 2 == 0 else math.cos(a)
    return torch.tensor(pe)


