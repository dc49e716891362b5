#!/usr/bin/python3
"""gen.py: golden data for the PyTorch-oracle tests (tests/golden/).

    /usr/bin/python3 tests/golden/gen.py           # (re)write every tests/golden/NAME/
    /usr/bin/python3 tests/golden/gen.py NAME...   # only these tests
    /usr/bin/python3 tests/golden/gen.py --list    # the tests and what they cover

Needs PyTorch (Debian's python3-torch, hence /usr/bin/python3) and NumPy; the
data it writes is committed, so building and running the tests needs neither.

For each test NAME (one model per tests/golden/NAME.attn, the model named
NAME) it writes the folder tests/golden/NAME/, in the layout of tests/run/:
    in.<input>.npy        every input of the model (<f4, or <i4 for ids)
    out.<output>.npy      every output (<f4)
    weights.safetensors   the params, if the model has any: the state_dict of
                          the torch modules under the layer names (the
                          `layer` names of the .attn file), plus raw `param`s
    tol                   "atol rtol", only where the default 1e-4 1e-4 does
                          not fit; the reason is the `note` of the test
The brief's encoder, sentiment and tagger run on the examples' weights:
their weights.safetensors is a symbolic link to
examples/weights/NAME.safetensors (run examples/export_weights.py first).

How the expected outputs are made:
  * every layer is the torch module (nn.MultiheadAttention, nn.LSTM, nn.GRU,
    nn.Embedding, nn.Linear, nn.LayerNorm, nn.TransformerEncoderLayer, ...),
    in eval mode, seeded with torch.manual_seed(CRC-32 of the test name);
    biases and LayerNorm weights (which torch initialises to 0 and 1) are
    redrawn so that a wrong bias cannot pass unseen;
  * the test's function runs twice: with the modules and inputs in float32
    (as anyone would run torch) and in float64.  The float64 result, cast to
    f32, is the expected output.  The float32 result must itself pass the
    test's tolerance against it using at most half of it: a tolerance torch
    cannot meet is refused,
    so the tolerances are ones an f32 implementation can be held to;
  * where torch has no such function (AdditiveAttention, the fully masked
    row, positional_encoding, split/merge_heads, and attention(): torch
    1.13 has no F.scaled_dot_product_attention) the reference is written
    out here with torch ops, in float64;
  * independent hand-written references (attention, MultiheadAttention,
    LSTM and GRU cells, ...) are also evaluated in float64 and must agree
    with the torch result to 1e-9: this checks that the tests use torch the
    way the language means it (gate order, which output, mask alignment).

Semantics (decided for issue 3) that the oracle follows:
  * MultiheadAttention(d, heads, bias) is nn.MultiheadAttention(d, heads,
    bias=bias, batch_first=True); a call returns the attention output only;
  * masks: `causal` hides key j from query i when j > i (top-left aligned,
    also when T != S); a tensor mask is added to the scores;
  * a query row whose keys are all masked gives zeros (torch gives NaN):
    the expectation is torch's result with the NaN rows of the attention
    (before out_proj, for MultiheadAttention) replaced by 0;
  * LSTM/GRU(in, hidden, layers=N): nn.LSTM/GRU(in, hidden, num_layers=N,
    batch_first=True), zero initial state, output[0] (every step's hidden
    state of the last layer); unbatched [T, in] input as torch takes it;
  * attention(q, k, v, mask=, scale=) is scaled dot-product attention, scale
    1/sqrt(q's last dim) by default;
  * AdditiveAttention(qdim, kdim, hidden): scores[i, j] = v . tanh(wq q_i +
    wk k_j), softmax over j, times the values (the keys by default);
  * positional_encoding(T, D): pe[t, 2i] = sin(t / 10000^(2i/D)),
    pe[t, 2i+1] = cos(t / 10000^(2i/D)), in float64;
  * split_heads(x, H): [..., T, D] -> [..., H, T, D/H]; merge_heads inverse;
  * concat(a, b, axis=0) is torch.cat; x[i] indexes the first dim;
  * dropout(x, p) is the identity.
"""
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


# ===== the brief's four programs (tests/golden/X.attn == examples/X.attn) =====
@test("sdpa", "the brief's sdpa program (T = 7, S = 13)")
def _():
    q, k, v = randn(7, 64), randn(13, 64), randn(13, 64)
    return Case(dict(q=q, k=k, v=v),
                lambda M, P, I: dict(o=sdpa(I["q"], I["k"], I["v"], scale=1 / 8)),
                hand=lambda M, P, I: dict(o=ref_attention(I["q"], I["k"], I["v"], scale=1 / 8)))


def ref_post_norm_encoder(e, x, T):
    """A post-norm nn.TransformerEncoderLayer with a causal mask, by hand."""
    h = ref_layernorm(x + ref_mha(e.self_attn, x, x, x, causal_mask(T, T, x.dtype)), e.norm1)
    f = ref_linear(torch.relu(ref_linear(h, e.linear1.weight, e.linear1.bias)),
                   e.linear2.weight, e.linear2.bias)
    return ref_layernorm(h + f, e.norm2)


def encoder_layer(**kw):
    return nn.TransformerEncoderLayer(batch_first=True, dropout=0.0, **kw)


@test("encoder", "the brief's encoder program on the state_dict of "
      "nn.TransformerEncoderLayer(d_model=256, nhead=8, dim_feedforward=1024, dropout=0.0, "
      "batch_first=True), saved as it is; T = 20, causal src_mask")
def _():
    # dim_feedforward=1024: the program's linear1 is Linear(D, 4*D); torch's
    # default (2048) would not fit it
    layer = encoder_layer(d_model=256, nhead=8, dim_feedforward=1024)
    link = example_weights("encoder", {"": layer})
    T = 20
    x = randn(T, 256)

    def run(M, P, I):
        enc = M[""]
        return dict(y=enc(I["x"], src_mask=causal_mask(T, T, I["x"].dtype)))

    def hand(M, P, I):
        return dict(y=ref_post_norm_encoder(M[""], I["x"], T))
    return Case(dict(x=x), run, mods={"": layer}, hand=hand, link=link)


@test("encoder_default", "nn.TransformerEncoderLayer(d_model=256, nhead=8, dropout=0.0, "
      "batch_first=True) with every other argument at torch's default (dim_feedforward=2048), "
      "its state_dict saved as it is; B = 2, T = 9, causal src_mask")
def _():
    layer = encoder_layer(d_model=256, nhead=8)
    B, T = 2, 9
    x = randn(B, T, 256)

    def run(M, P, I):
        return dict(y=M[""](I["x"], src_mask=causal_mask(T, T, I["x"].dtype)))

    def hand(M, P, I):
        return dict(y=ref_post_norm_encoder(M[""], I["x"], T))
    return Case(dict(x=x), run, mods={"": layer}, hand=hand)


@test("sentiment", "the brief's sentiment program: nn.LSTM(32, 64), Linear score and head, T = 23")
def _():
    lstm, score, head = nn.LSTM(32, 64, batch_first=True), nn.Linear(64, 1), nn.Linear(64, 1)
    link = example_weights("sentiment", dict(lstm=lstm, score=score, head=head))
    x = randn(23, 32)

    def run(M, P, I):
        h = M["lstm"](I["x"])[0]
        a = torch.softmax(M["score"](h), 0)
        return dict(p=torch.sigmoid(M["head"]((a * h).sum(0))), weights=a)

    def hand(M, P, I):
        h = ref_rnn(M["lstm"], I["x"], "lstm")
        s = ref_linear(h, M["score"].weight, M["score"].bias)
        a = torch.exp(s - s.max()) / torch.exp(s - s.max()).sum()
        return dict(p=torch.sigmoid(ref_linear((a * h).sum(0), M["head"].weight, M["head"].bias)),
                    weights=a)
    return Case(dict(x=x), run, mods=dict(lstm=lstm, score=score, head=head), hand=hand,
                link=link)


class Additive(nn.Module):
    """AdditiveAttention(qdim, kdim, hidden) as the language has it (torch
    has no such layer): params wq [hidden, qdim], wk [hidden, kdim],
    v [hidden]; no biases."""

    def __init__(self, qdim, kdim, hidden):
        super().__init__()
        self.wq = nn.Parameter(uniform(hidden, qdim, lo=-1, hi=1) / math.sqrt(qdim))
        self.wk = nn.Parameter(uniform(hidden, kdim, lo=-1, hi=1) / math.sqrt(kdim))
        self.v = nn.Parameter(uniform(hidden, lo=-1, hi=1))

    def forward(self, q, k, v=None):
        if v is None:
            v = k
        e = torch.tanh((q @ self.wq.t()).unsqueeze(-2) + (k @ self.wk.t()).unsqueeze(-3))
        return torch.softmax(e @ self.v, -1) @ v


@test("tagger", "the brief's tagger program: Embedding(5000, 128), positional_encoding, "
      "GRU(128, 128), AdditiveAttention(128, 128, hidden=64), raw param w [128, 9]; T = 17 "
      "with repeated ids and ids 0 and 4999")
def _():
    emb, gru, att = nn.Embedding(5000, 128), nn.GRU(128, 128, batch_first=True), Additive(128, 128, 64)
    P = dict(w=None)
    link = example_weights("tagger", dict(emb=emb, gru=gru, att=att), P)
    ids = torch.randint(0, 5000, (17,))
    ids[3], ids[7], ids[11], ids[12], ids[0], ids[16] = 4999, ids[1], ids[1], 0, 17, 4999
    ids = ids.to(torch.int32)

    def run(M, P, I):
        e = M["emb"](I["ids"].long()) + posenc(17, 128, P["w"].dtype)
        h = M["gru"](e)[0]
        return dict(tags=(h + M["att"](h, h)) @ P["w"])

    def hand(M, P, I):
        e = M["emb"].weight[I["ids"].long()] + ref_posenc(17, 128)
        h = ref_rnn(M["gru"], e, "gru")
        a = M["att"]
        return dict(tags=(h + ref_additive(a.wq, a.wk, a.v, h, h)) @ P["w"])
    return Case(dict(ids=ids), run, mods=dict(emb=emb, gru=gru, att=att), params=P, hand=hand,
                link=link)


# ===== MultiheadAttention ====================================================
def mha_case(mods, ins, calls):
    """calls: output -> (layer, query, key, value, mask or None, 'causal'/None);
    a mask given by name is an input."""
    def masks(I, c, q, k):
        if c[4] == "causal":
            return causal_mask(q.shape[-2], k.shape[-2], q.dtype)
        if c[4] == "causal_input":      # an input that is named causal
            return I["causal"]
        return None if c[4] is None else I[c[4]]

    def run(M, P, I):
        out = {}
        for o, c in calls.items():
            q, k, v = I[c[1]], I[c[2]], I[c[3]]
            out[o] = mha_zero_rows(M[c[0]], q, k, v, masks(I, c, q, k))[0]
        return out

    def hand(M, P, I):
        out = {}
        for o, c in calls.items():
            q, k, v = I[c[1]], I[c[2]], I[c[3]]
            out[o] = ref_mha(M[c[0]], q, k, v, masks(I, c, q, k))
        return out
    return Case(ins, run, mods=mods, hand=hand)


def MHA(d, h, bias=True):
    return randomize(nn.MultiheadAttention(d, h, bias=bias, batch_first=True))


@test("mha_self", "MultiheadAttention self-attention, unbatched [T, D], D = 24, 4 heads, T = 9")
def _():
    return mha_case(dict(attn=MHA(24, 4)), dict(x=randn(9, 24)),
                    dict(y=("attn", "x", "x", "x", None)))


@test("mha_cross", "cross-attention, T = 5 queries, S = 11 keys, key != value, D = 32, 4 heads")
def _():
    return mha_case(dict(attn=MHA(32, 4)), dict(q=randn(5, 32), k=randn(11, 32), v=randn(11, 32)),
                    dict(y=("attn", "q", "k", "v", None)))


@test("mha_batch", "batch dims: [B, T, D] self- and cross-attention (B = 3, T = 7, S = 5)")
def _():
    return mha_case(dict(sa=MHA(16, 2), ca=MHA(16, 2)), dict(x=randn(3, 7, 16), mem=randn(3, 5, 16)),
                    dict(y=("sa", "x", "x", "x", None), z=("ca", "x", "mem", "mem", None)))


@test("mha_nobias", "MultiheadAttention(21, heads=3, bias=false): no in_proj_bias, "
      "no out_proj.bias; T = 6, S = 8")
def _():
    return mha_case(dict(attn=MHA(21, 3, bias=False)), dict(x=randn(6, 21), kv=randn(8, 21)),
                    dict(y=("attn", "x", "x", "x", None), z=("attn", "x", "kv", "kv", None)))


@test("mha_causal", "mask=causal: batched self-attention (T = 9), and cross-attention with "
      "T = 4 < S = 7 and T = 12 > S = 7 (top-left aligned)")
def _():
    return mha_case(dict(attn=MHA(16, 4)),
                    dict(x=randn(2, 9, 16), a=randn(4, 16), b=randn(12, 16), kv=randn(7, 16)),
                    dict(y=("attn", "x", "x", "x", "causal"), ya=("attn", "a", "kv", "kv", "causal"),
                         yb=("attn", "b", "kv", "kv", "causal")))


def random_inf_mask(t, s, p=0.4, keep=None):
    """-inf with probability p, every row keeping at least one key."""
    m = torch.where(torch.rand(t, s) < p, torch.tensor(NEG_INF), torch.tensor(0.0))
    for i in range(t):
        if torch.isinf(m[i]).all():
            m[i, torch.randint(0, s, ()).item()] = 0.0
    return m


@test("mha_mask", "a float mask input [T, S] of 0 and -inf (about 40% hidden), over "
      "batched cross- and self-attention (the mask broadcasts over the batch)")
def _():
    return mha_case(dict(attn=MHA(12, 3)),
                    dict(x=randn(2, 6, 12), mem=randn(2, 9, 12), m=random_inf_mask(6, 9),
                         ms=random_inf_mask(6, 6)),
                    dict(y=("attn", "x", "mem", "mem", "m"), z=("attn", "x", "x", "x", "ms")))


@test("mha_masked_row", "a fully masked query row (all -inf): its attention is zeros, so "
      "the output row is out_proj.bias (torch gives NaN; replaced); also a row "
      "that sees only its last key")
def _():
    m = random_inf_mask(5, 7)
    m[2] = NEG_INF
    m[4] = NEG_INF
    m[4, 6] = 0.0
    case = mha_case(dict(attn=MHA(8, 2)), dict(x=randn(5, 8), kv=randn(7, 8), m=m),
                    dict(y=("attn", "x", "kv", "kv", "m")))
    run = case.run

    def run2(M, P, I):
        # check that torch really gives NaN on exactly the masked row
        y = mha(M["attn"], I["x"], I["kv"], I["kv"], I["m"])
        assert torch.isnan(y[2]).all() and not torch.isnan(y[[0, 1, 3, 4]]).any()
        return run(M, P, I)
    case.run = run2
    return case


@test("mha_t1", "one query (T = 1, a decoding step) over S = 6 keys, without mask and "
      "with mask=causal (it then sees key 0 only)")
def _():
    return mha_case(dict(attn=MHA(16, 4)), dict(q=randn(1, 16), kv=randn(6, 16)),
                    dict(y=("attn", "q", "kv", "kv", None), yc=("attn", "q", "kv", "kv", "causal")))


@test("mha_s1", "one key (S = 1): every query gets out_proj(v_proj(k)); T = 5, with and "
      "without causal; and self-attention on a single token")
def _():
    return mha_case(dict(attn=MHA(16, 4)), dict(q=randn(5, 16), kv=randn(1, 16), one=randn(1, 16)),
                    dict(y=("attn", "q", "kv", "kv", None), yc=("attn", "q", "kv", "kv", "causal"),
                         z=("attn", "one", "one", "one", None)))


@test("mha_prime", "prime sizes: B = 3, T = 13, S = 17, D = 35 with 5 heads of 7 "
      "(MultiheadAttention(35, 5), positional heads) and with 1 head of 35")
def _():
    return mha_case(dict(attn=MHA(35, 5), one=MHA(35, 1)),
                    dict(q=randn(3, 13, 35), kv=randn(3, 17, 35)),
                    dict(y=("attn", "q", "kv", "kv", None), z=("one", "q", "kv", "kv", None)))


@test("mha_large", "large logits: q and k projections scaled so that scores reach the "
      "hundreds (softmax must subtract the max), over T = 11, S = 29")
def _():
    attn = MHA(16, 2)
    with torch.no_grad():
        attn.in_proj_weight[:32] *= 8.0
    ins = dict(q=randn(11, 16, scale=1.5), kv=randn(29, 16, scale=1.5))
    case = mha_case(dict(attn=attn), ins, dict(y=("attn", "q", "kv", "kv", None)))
    run = case.run

    def run2(M, P, I):
        a = M["attn"]
        w = a.in_proj_weight
        qh = ref_split(I["q"] @ w[:16].t(), 2)
        kh = ref_split(I["kv"] @ w[16:32].t(), 2)
        s = (qh @ kh.transpose(-1, -2)) / math.sqrt(8)
        assert s.abs().max() > 200, float(s.abs().max())
        return run(M, P, I)
    case.run = run2
    return case


# ===== NaN and infinities ======================================================
INF, NAN = float("inf"), float("nan")


@test("nonfinite_ew", "NaN, +inf, -inf, +-0 and values that overflow exp through relu, gelu, "
      "silu, sigmoid, tanh, exp, log, sqrt, -x, x * 2 + 1, 1 / x and x * 0: as torch "
      "(gelu(-inf) and silu(-inf) are NaN, log(-0) is -inf, ...)", nonfinite=True)
def _():
    x = uniform(6, 8, lo=-3, hi=3)
    x[1, 2], x[1, 5] = NAN, NAN
    x[2, 0], x[2, 7] = INF, INF
    x[3, 1], x[3, 4] = -INF, -INF
    x[4] = torch.tensor([100.0, -100.0, 88.7, 89.0, -104.0, 1e30, -1e30, 3e38])
    x[5] = torch.tensor([0.0, -0.0, 1e-30, -1e-30, 1e-45, 20.0, -20.0, 0.5])
    fns = dict(relu_=torch.relu, gelu_=torch.nn.functional.gelu, silu_=torch.nn.functional.silu,
               sigmoid_=torch.sigmoid, tanh_=torch.tanh, exp_=torch.exp, log_=torch.log,
               sqrt_=torch.sqrt, neg=lambda x: -x, arith=lambda x: x * 2 + 1,
               recip=lambda x: 1 / x, zero=lambda x: x * 0)
    return Case(dict(x=x), lambda M, P, I: {k: f(I["x"]) for k, f in fns.items()})


@test("nonfinite_reduce", "NaN and infinities through softmax (axis -1 and 0), sum, mean and "
      "max (axis 1 and 0) and layernorm: a row with NaN or +inf, a row of -inf, a row with "
      "+inf and -inf, a row with one -inf, finite rows", nonfinite=True)
def _():
    x = uniform(7, 6, lo=-2, hi=2)
    x[1, 3] = NAN
    x[2, 0] = INF
    x[3] = -INF
    x[4, 1], x[4, 4] = INF, -INF
    x[5, 2] = -INF

    def run(M, P, I):
        x = I["x"]
        return dict(sm=torch.softmax(x, -1), sm0=torch.softmax(x, 0), s=x.sum(1), m=x.mean(1),
                    mx=x.max(1).values, mx0=x.max(0).values,
                    ln=torch.nn.functional.layer_norm(x, (6,), P["w"], P["b"]))
    return Case(dict(x=x), run, params=dict(w=uniform(6, lo=0.5, hi=1.5), b=uniform(6)))


@test("nonfinite_matmul", "NaN and infinities through @ (a NaN row, a row with one +inf, one "
      "with one -inf against a w with no zeros), attention() (a NaN query row, a NaN value "
      "element) and an LSTM (a NaN at step 2 of 5)", nonfinite=True)
def _():
    a = uniform(4, 5)
    a[1, 2] = NAN
    a[2, 0] = INF
    a[3, 4] = -INF
    w = uniform(5, 4, lo=0.2, hi=1.0) * torch.tensor([1.0, -1.0, 1.0, -1.0])
    q, k, v = randn(5, 8), randn(7, 8), randn(7, 8)
    q[3, 1] = NAN
    v[2, 6] = NAN
    xs = randn(5, 3)
    xs[2, 1] = NAN
    lstm = randomize(nn.LSTM(3, 4, batch_first=True))

    def run(M, P, I):
        # not sdpa(): its rule for fully masked rows would zero the NaN row
        att = torch.softmax(I["q"] @ I["k"].transpose(-1, -2) / math.sqrt(8), -1) @ I["v"]
        return dict(mm=I["a"] @ P["w"], att=att,
                    h=M["lstm"](I["xs"])[0])
    return Case(dict(a=a, q=q, k=k, v=v, xs=xs), run, mods=dict(lstm=lstm), params=dict(w=w))


# ===== attention() ===========================================================
def attn_case(ins, calls):
    """calls: output -> (q, k, v, mask: None / 'causal' / an input name, scale or None)"""
    def mk(f):
        def go(M, P, I):
            out = {}
            for o, (q, k, v, m, sc) in calls.items():
                q, k, v = (I[n[:-3]][0] if n.endswith("[0]") else I[n] for n in (q, k, v))
                if m == "causal":
                    m = causal_mask(q.shape[-2], k.shape[-2], q.dtype)
                elif m is not None:
                    m = I[m]
                out[o] = f(q, k, v, m, sc)
            return out
        return go
    return Case(ins, mk(sdpa), hand=mk(ref_attention))


@test("attention_fn", "attention(q, k, v) over [B, H, T, d] (2, 3, 5, 8; S = 9), default "
      "scale 1/sqrt(8), scale=0.5, and on q[0] (rank 3)")
def _():
    return attn_case(dict(q=randn(2, 3, 5, 8), k=randn(2, 3, 9, 8), v=randn(2, 3, 9, 8)),
                     dict(o=("q", "k", "v", None, None), o2=("q", "k", "v", None, 0.5),
                          o3=("q[0]", "k[0]", "v[0]", None, None)))


@test("attention_vdim", "attention with a value dim (5) other than the query/key dim (8), "
      "T = 4, S = 6")
def _():
    return attn_case(dict(q=randn(4, 8), k=randn(6, 8), v=randn(6, 5)),
                     dict(o=("q", "k", "v", None, None)))


@test("attention_causal", "attention(mask=causal): T = 5 < S = 9, T = 12 > S = 9, and batched "
      "[2, 3, 7, 16] with T = S")
def _():
    return attn_case(dict(q=randn(5, 16), q2=randn(12, 16), k=randn(9, 16), v=randn(9, 16),
                          qb=randn(2, 3, 7, 16), kb=randn(2, 3, 7, 16), vb=randn(2, 3, 7, 16)),
                     dict(o=("q", "k", "v", "causal", None), o2=("q2", "k", "v", "causal", None),
                          ob=("qb", "kb", "vb", "causal", None)))


@test("attention_mask", "attention(mask=m): m [T, S] of 0 and -inf over batched q [2, 6, 16], "
      "S = 10; and a finite additive mask (ALiBi-like biases in [-4, 2]): a mask is added "
      "to the scores")
def _():
    T, S = 6, 10
    bias = -0.5 * (torch.arange(S)[None, :] - torch.arange(T)[:, None]).abs().float()
    bias = bias + uniform(T, S, lo=-1, hi=2)
    return attn_case(dict(q=randn(2, T, 16), k=randn(2, S, 16), v=randn(2, S, 16),
                          m=random_inf_mask(T, S), bias=bias.clamp(-4, 2)),
                     dict(o=("q", "k", "v", "m", None), ob=("q", "k", "v", "bias", None)))


@test("attention_masked_row", "fully masked rows give zeros: rows 0 and 4 of a [6, 7] mask, "
      "batched; and over S = 150 keys (several tiles): one row all -inf, one row seeing only "
      "key 149, one row with its first 100 keys hidden")
def _():
    m = random_inf_mask(6, 7)
    m[0] = NEG_INF
    m[4] = NEG_INF
    m2 = torch.zeros(4, 150)
    m2[1] = NEG_INF
    m2[2] = NEG_INF
    m2[2, 149] = 0.0
    m2[3, :100] = NEG_INF
    return attn_case(dict(q=randn(2, 6, 8), k=randn(2, 7, 8), v=randn(2, 7, 8), m=m,
                          q2=randn(4, 8, scale=2), k2=randn(150, 8), v2=randn(150, 8), m2=m2),
                     dict(o=("q", "k", "v", "m", None), o2=("q2", "k2", "v2", "m2", None)))


def dyadic(*shape, step=0.25, lim=8.0):
    """Multiples of step in [-lim, lim]: dot products of these are exact in
    f32, so the scores (and max-subtracted scores) carry no rounding."""
    n = int(lim / step)
    return torch.randint(-n, n + 1, shape).float() * step


@test("attention_large", "large logits: scores in the hundreds, exact in f32 (dyadic inputs), "
      "default scale (0.25) and scale=1; rows include near-ties at a large offset and "
      "rows where one key dominates")
def _():
    T, S, D = 9, 40, 16
    q, k = dyadic(T, D), dyadic(S, D)
    k[5] = q[2] * 1.0          # a key that query 2 matches strongly
    k[6] = q[2] + 0.25 * (torch.arange(D) % 2 == 0).float()   # a near-tie with it
    return attn_case(dict(q=q, k=k, v=randn(S, D)),
                     dict(o=("q", "k", "v", None, None), o1=("q", "k", "v", None, 1.0)))


@test("attention_rising", "scores that rise along the keys at a different rate per query "
      "(0.09 to 1 per key after the scale), so a fused kernel's running max grows within and "
      "across its key blocks: by less and by more than any threshold for rescaling; S = 260, "
      "without and with the causal mask")
def _():
    T, S, D = 37, 260, 16
    # dyadic, so that every score is exact in f32 (they reach 260)
    q, k = dyadic(T, D, step=1 / 64, lim=1 / 16), dyadic(S, D, step=1 / 8, lim=1.0)
    q[:, 0] = torch.round(torch.linspace(0.35, 4.0, T) * 64) / 64
    k[:, 0] = torch.arange(S).float()
    return attn_case(dict(q=q, k=k, v=randn(S, D)),
                     dict(o=("q", "k", "v", None, None), oc=("q", "k", "v", "causal", None)))


@test("attention_t1_s1", "attention with T = 1 (over S = 5), S = 1 (T = 4), and T = S = 1 with "
      "mask=causal")
def _():
    return attn_case(dict(q1=randn(1, 16), k=randn(5, 16), v=randn(5, 16), q=randn(4, 16),
                          k1=randn(1, 16), v1=randn(1, 16)),
                     dict(a=("q1", "k", "v", None, None), b=("q", "k1", "v1", None, None),
                          c=("q1", "k1", "v1", "causal", None)))


@test("heads", "split_heads / merge_heads: split_heads(x, 4) of [T, 24] (T = 5), the "
      "roundtrip, and attention over [B, H, T, dh] written by hand (softmax(q @ "
      "transpose(k) / sqrt(6)) @ v) and with attention(), merged back")
def _():
    B, T, S, D, H = 2, 5, 7, 24, 4
    ins = dict(x=randn(T, D), q=randn(B, T, D), k=randn(B, S, D), v=randn(B, S, D))

    def split(x):
        return x.view(*x.shape[:-1], H, D // H).transpose(-3, -2)

    def merge(x):
        return x.transpose(-3, -2).reshape(*x.shape[:-3], x.shape[-2], D)

    def run(M, P, I):
        qh, kh, vh = split(I["q"]), split(I["k"]), split(I["v"])
        a = torch.softmax(qh @ kh.transpose(-1, -2) / math.sqrt(6), -1) @ vh
        return dict(sh=split(I["x"]), rt=merge(split(I["x"])), hand=merge(a),
                    fn=merge(sdpa(qh, kh, vh)))

    def hand(M, P, I):
        x = I["x"]
        sh = torch.stack([x[:, h * 6:(h + 1) * 6] for h in range(H)])
        o = ref_merge(ref_attention(ref_split(I["q"], H), ref_split(I["k"], H), ref_split(I["v"], H)))
        return dict(sh=sh, rt=x, hand=o, fn=o)
    return Case(ins, run, hand=hand)


# ===== AdditiveAttention =====================================================
@test("additive", "AdditiveAttention(12, 10, hidden=8): called (q, keys) (values = keys) "
      "and (q, keys, values); T = 5, S = 9, value dim 7")
def _():
    att = Additive(12, 10, 8)
    ins = dict(q=randn(5, 12), k=randn(9, 10), v=randn(9, 7))
    return Case(ins, lambda M, P, I: dict(o=M["att"](I["q"], I["k"]),
                                          ov=M["att"](I["q"], I["k"], I["v"])),
                mods=dict(att=att),
                hand=lambda M, P, I: dict(o=ref_additive(M["att"].wq, M["att"].wk, M["att"].v,
                                                         I["q"], I["k"]),
                                          ov=ref_additive(M["att"].wq, M["att"].wk, M["att"].v,
                                                          I["q"], I["k"], I["v"])))


@test("additive_batch", "AdditiveAttention(6, 5, hidden=16) over batches [B, T, 6] x "
      "[B, S, 5] (B = 2, T = 4, S = 7), with a single key (S = 1: the result is that key) "
      "and a single query")
def _():
    att = Additive(6, 5, 16)
    ins = dict(q=randn(2, 4, 6), k=randn(2, 7, 5), k1=randn(2, 1, 5), q1=randn(2, 1, 6))

    def run(M, P, I):
        a = M["att"]
        return dict(o=a(I["q"], I["k"]), o1=a(I["q"], I["k1"]), oq=a(I["q1"], I["k"]))

    def hand(M, P, I):
        a = M["att"]
        r = lambda q, k: ref_additive(a.wq, a.wk, a.v, q, k)
        return dict(o=r(I["q"], I["k"]), o1=I["k1"].expand(2, 4, 5), oq=r(I["q1"], I["k"]))
    return Case(ins, run, mods=dict(att=att), hand=hand)


# ===== LSTM and GRU ==========================================================
def rnn_case(mods, ins, calls, extra=None):
    """calls: output -> (layer, input); extra(outs, I) adds outputs."""
    def mk(ref):
        def go(M, P, I):
            out = {}
            for o, (l, x) in calls.items():
                m = M[l]
                out[o] = ref_rnn(m, I[x], "lstm" if isinstance(m, nn.LSTM) else "gru") \
                    if ref else m(I[x])[0]
            if extra:
                extra(out, I)
            return out
        return go
    return Case(ins, mk(False), mods=mods, hand=mk(True))


def LSTM(i, h, **kw):
    return randomize(nn.LSTM(i, h, batch_first=True, **kw))


def GRU(i, h, **kw):
    return randomize(nn.GRU(i, h, batch_first=True, **kw))


def first_last(out, I):
    out["first"], out["last"] = out["h"][0], out["h"][-1]


@test("lstm", "LSTM(7, 11) over an unbatched [T, 7] sequence, T = 13; h[0] and h[-1] too")
def _():
    return rnn_case(dict(lstm=LSTM(7, 11)), dict(x=randn(13, 7)), dict(h=("lstm", "x")), first_last)


@test("lstm_batch", "LSTM(6, 8) over [B, T, 6] (B = 3, T = 5); h[-1] is the last sequence "
      "of the batch (x[i] indexes the first dim)")
def _():
    return rnn_case(dict(lstm=LSTM(6, 8)), dict(x=randn(3, 5, 6)), dict(h=("lstm", "x")),
                    lambda o, I: o.update(lastb=o["h"][-1]))


@test("lstm_2layer", "LSTM(5, 9, layers=2) over [B, T, 5] (B = 2, T = 7) and unbatched (T = 4)")
def _():
    return rnn_case(dict(lstm=LSTM(5, 9, num_layers=2)), dict(x=randn(2, 7, 5), u=randn(4, 5)),
                    dict(h=("lstm", "x"), hu=("lstm", "u")))


@test("lstm_300", "a 300-step recurrence: LSTM(8, 16) over [300, 8]; every step and the last")
def _():
    return rnn_case(dict(lstm=LSTM(8, 16)), dict(x=randn(300, 8)), dict(h=("lstm", "x")),
                    lambda o, I: o.update(last=o["h"][-1]))


@test("gru", "GRU(7, 11) over an unbatched [T, 7] sequence, T = 13; h[0] and h[-1] too")
def _():
    return rnn_case(dict(gru=GRU(7, 11)), dict(x=randn(13, 7)), dict(h=("gru", "x")), first_last)


@test("gru_2layer", "GRU(6, 10, layers=2) over [B, T, 6] (B = 2, T = 6) and unbatched (T = 3)")
def _():
    return rnn_case(dict(gru=GRU(6, 10, num_layers=2)), dict(x=randn(2, 6, 6), u=randn(3, 6)),
                    dict(h=("gru", "x"), hu=("gru", "u")))


@test("gru_300", "a 300-step recurrence: GRU(8, 16) over [B, 300, 8], B = 2; every step and "
      "h[-1], the last sequence of the batch")
def _():
    return rnn_case(dict(gru=GRU(8, 16)), dict(x=randn(2, 300, 8)), dict(h=("gru", "x")),
                    lambda o, I: o.update(lastb=o["h"][-1]))


@test("rnn_t1", "T = 1: LSTM(5, 6) and GRU(5, 6) on one step, unbatched [1, 5] and batched "
      "[2, 1, 5]")
def _():
    return rnn_case(dict(lstm=LSTM(5, 6), gru=GRU(5, 6)), dict(x=randn(1, 5), xb=randn(2, 1, 5)),
                    dict(hl=("lstm", "x"), hg=("gru", "x"), hlb=("lstm", "xb"), hgb=("gru", "xb")))


@test("rnn_nobias", "LSTM(5, 7, bias=false) and GRU(5, 7, bias=false): only weight_ih_l0 "
      "and weight_hh_l0; T = 6")
def _():
    return rnn_case(dict(lstm=LSTM(5, 7, bias=False), gru=GRU(5, 7, bias=False)),
                    dict(x=randn(6, 5)), dict(hl=("lstm", "x"), hg=("gru", "x")))


@test("rnn_chain", "prime sizes and 3 layers: GRU(13, 7, layers=3) over LSTM(3, 13) over "
      "[T, 3], T = 11")
def _():
    lstm, gru = LSTM(3, 13), GRU(13, 7, num_layers=3)

    def run(M, P, I):
        return dict(y=M["gru"](M["lstm"](I["x"])[0])[0])

    def hand(M, P, I):
        return dict(y=ref_rnn(M["gru"], ref_rnn(M["lstm"], I["x"], "lstm"), "gru"))
    return Case(dict(x=randn(11, 3)), run, mods=dict(lstm=lstm, gru=gru), hand=hand)


# ===== Embedding, concat, indexing, positional_encoding =========================
@test("embedding", "Embedding(50, 6): ids [T] (T = 12) with repeats and the ids 0 and 49; "
      "ids [B, U] (2, 5) and [2, 3, 4] (rank 3); and an expression of the result")
def _():
    emb = nn.Embedding(50, 6)
    ids = torch.tensor([3, 49, 0, 3, 3, 17, 49, 0, 22, 5, 17, 48], dtype=torch.int32)
    ids2 = torch.tensor([[1, 1, 1, 2, 49], [0, 0, 30, 1, 2]], dtype=torch.int32)
    ids3 = torch.randint(0, 50, (2, 3, 4), dtype=torch.int32)
    ids3[1, 2, 3] = 49

    def run(M, P, I):
        e = M["emb"](I["ids"].long())
        return dict(e=e, e2=M["emb"](I["ids2"].long()), e3=M["emb"](I["ids3"].long()), s=e * 2 + 1)
    return Case(dict(ids=ids, ids2=ids2, ids3=ids3), run, mods=dict(emb=emb),
                hand=lambda M, P, I: dict(e=torch.stack([M["emb"].weight[int(i)] for i in I["ids"]])))


@test("concat_axes", "concat(a, b) along the default axis 0, axis=1, axis=2, axis=-1, axis=-3; "
      "along the fixed axis of [T, 5] and [T, 3] inputs (T symbolic); in an expression")
def _():
    ins = dict(a=randn(2, 3, 4), b=randn(5, 3, 4), c=randn(2, 6, 4), d=randn(2, 3, 7),
               x=randn(4, 5), y=randn(4, 3))

    def run(M, P, I):
        a, b, c, d, x, y = (I[n] for n in "abcdxy")
        return dict(c0=torch.cat([a, b]), c1=torch.cat([a, c], 1), c2=torch.cat([a, d], 2),
                    cm1=torch.cat([a, d], -1), cm3=torch.cat([b, a], -3),
                    cx=torch.cat([x, y], 1), cy=torch.cat([x, x], 1) * 2 + 1)

    def hand(M, P, I):
        A = {n: I[n].numpy() for n in "abcdxy"}
        return dict(c0=torch.tensor(np.concatenate([A["a"], A["b"]])),
                    c1=torch.tensor(np.concatenate([A["a"], A["c"]], axis=1)),
                    cm3=torch.tensor(np.concatenate([A["b"], A["a"]], axis=0)))
    return Case(ins, run, hand=hand)


@test("concat_kv", "concat inside the model: fixed key/value segments (3 + 5) joined for "
      "attention by T = 4 queries; [N, 4] and [N, 3] (N symbolic) joined along axis 1 and -1, "
      "then reduced")
def _():
    ins = dict(q=randn(4, 8), k1=randn(3, 8), v1=randn(3, 8), k2=randn(5, 8), v2=randn(5, 8),
               x=randn(6, 4), y=randn(6, 3))

    def run(M, P, I):
        return dict(o=sdpa(I["q"], torch.cat([I["k1"], I["k2"]]), torch.cat([I["v1"], I["v2"]])),
                    s=torch.cat([I["x"], I["y"]], 1).sum(0),
                    m=torch.cat([I["y"], I["x"]], -1).max(-1).values)
    return Case(ins, run)


@test("index", "x[i] on the first dim: x[0], x[-1], x[2], x[-2] of [T, 6] (T = 7), b[1] and "
      "b[-1] of [3, 4, 5], v[-1] of [7] (rank 0), and in an expression")
def _():
    ins = dict(x=randn(7, 6), b=randn(3, 4, 5), v=randn(7))

    def run(M, P, I):
        x, b, v = I["x"], I["b"], I["v"]
        return dict(first=x[0], last=x[-1], third=x[2], pen=x[-2], b1=b[1], bl=b[-1], vl=v[-1],
                    e=x[-1] * 2 + x[0])
    return Case(ins, run, hand=lambda M, P, I: dict(last=I["x"][6], bl=I["b"][2], vl=I["v"][6]))


@test("posenc", "positional_encoding(T, 16) with T = 200 bound from an input (alone, added "
      "to [T, 16], broadcast over [B, T, 16]) and positional_encoding(5, 8)")
def _():
    ins = dict(x=randn(200, 16), xb=randn(2, 200, 16))

    def run(M, P, I):
        dt = I["x"].dtype
        pe = posenc(200, 16, dt)
        return dict(pe=pe, y=I["x"] + pe, yb=I["xb"] + pe, p8=posenc(5, 8, dt))
    return Case(ins, run, hand=lambda M, P, I: dict(pe=ref_posenc(200, 16), p8=ref_posenc(5, 8)))


# ===== whole layers ============================================================
@test("decoder", "the state_dict of nn.TransformerDecoderLayer(d_model=32, nhead=4, "
      "dim_feedforward=64, dropout=0.0, batch_first=True) saved as it is: causal "
      "self-attention, cross-attention to memory (S = 10 != T = 6), B = 2; dropout(x, 0.1) "
      "is the identity")
def _():
    dec = randomize(nn.TransformerDecoderLayer(d_model=32, nhead=4, dim_feedforward=64,
                                               dropout=0.0, batch_first=True))
    ins = dict(x=randn(2, 6, 32), mem=randn(2, 10, 32))

    def run(M, P, I):
        return dict(y=M[""](I["x"], I["mem"], tgt_mask=causal_mask(6, 6, I["x"].dtype)))

    def hand(M, P, I):
        d, x, mem = M[""], I["x"], I["mem"]
        h = ref_layernorm(x + ref_mha(d.self_attn, x, x, x, causal_mask(6, 6, x.dtype)), d.norm1)
        h2 = ref_layernorm(h + ref_mha(d.multihead_attn, h, mem, mem), d.norm2)
        f = ref_linear(torch.relu(ref_linear(h2, d.linear1.weight, d.linear1.bias)),
                       d.linear2.weight, d.linear2.bias)
        return dict(y=ref_layernorm(h2 + f, d.norm3))
    return Case(ins, run, mods={"": dec}, hand=hand)


@test("encoder_prenorm", "the state_dict of nn.TransformerEncoderLayer(d_model=32, nhead=4, "
      "dim_feedforward=48, dropout=0.0, batch_first=True, norm_first=True, "
      "activation='gelu'), no mask, B = 3, T = 7")
def _():
    enc = randomize(encoder_layer(d_model=32, nhead=4, dim_feedforward=48, norm_first=True,
                                  activation="gelu"))

    def hand(M, P, I):
        e, x = M[""], I["x"]
        n = ref_layernorm(x, e.norm1)
        h = x + ref_mha(e.self_attn, n, n, n)
        g = ref_linear(ref_layernorm(h, e.norm2), e.linear1.weight, e.linear1.bias)
        g = 0.5 * g * (1 + torch.erf(g / math.sqrt(2)))
        return dict(y=h + ref_linear(g, e.linear2.weight, e.linear2.bias))
    return Case(dict(x=randn(3, 7, 32)), lambda M, P, I: dict(y=M[""](I["x"])), mods={"": enc},
                hand=hand)


# ===== longer sequences, broadcasting, and the documented corners =============
@test("attention_long", "longer sequences (several tiles of a blocked kernel): T = 70 over "
      "S = 203 keys, causal with T = 70 < S and with T = S = 131, and a mask hiding every key "
      "but a stride-37 comb")
def _():
    m = torch.full((70, 203), NEG_INF)
    m[:, ::37] = 0.0
    m[5] = NEG_INF                     # and one fully masked row
    return attn_case(dict(q=randn(70, 32), k=randn(203, 32), v=randn(203, 32),
                          qs=randn(131, 32), ks=randn(131, 32), vs=randn(131, 32), m=m),
                     dict(o=("q", "k", "v", None, None), oc=("q", "k", "v", "causal", None),
                          os=("qs", "ks", "vs", "causal", None), om=("q", "k", "v", "m", None)))


@test("attention_padmask", "key-padding masks as the docs give them: [B, 1, S] for scores "
      "[B, T, S], [B, 1, 1, S] for [B, H, T, S] (batch 1 hides every key: zeros), a mask [S] "
      "for every query, and the mask passed positionally")
def _():
    B, H, T, S = 3, 2, 5, 8
    lens = torch.tensor([8, 3, 6])
    pad = torch.where(torch.arange(S)[None, :] < lens[:, None], 0.0, NEG_INF)     # [B, S]
    pad4 = pad.clone()
    pad4[1] = NEG_INF                   # a sequence with no visible key
    keys = torch.where(torch.rand(S) < 0.5, torch.tensor(NEG_INF), torch.tensor(0.0))
    keys[2] = 0.0
    ins = dict(q=randn(B, T, 16), k=randn(B, S, 16), v=randn(B, S, 16), pad=pad.unsqueeze(1),
               q4=randn(B, H, T, 8), k4=randn(B, H, S, 8), v4=randn(B, H, S, 8),
               pad4=pad4.reshape(B, 1, 1, S), keys=keys)
    return attn_case(ins, dict(o=("q", "k", "v", "pad", None), o4=("q4", "k4", "v4", "pad4", None),
                               ok=("q", "k", "v", "keys", None), op=("q", "k", "v", "pad", None)))


@test("attention_bcast", "batch dims broadcast as for @: q [2, 3, T, 8] with k [3, S, 8] and "
      "v [1, 3, S, 8]; q [T, 8] with k, v [2, S, 8]")
def _():
    return attn_case(dict(q=randn(2, 3, 4, 8), k=randn(3, 6, 8), v=randn(1, 3, 6, 8),
                          q2=randn(4, 8), k2=randn(2, 6, 8), v2=randn(2, 6, 8)),
                     dict(o=("q", "k", "v", None, None), o2=("q2", "k2", "v2", None, None)))


@test("attention_symdk", "attention with a symbolic key dim K (= 12) and scale=0.3 (required "
      "then), with mask=causal")
def _():
    return attn_case(dict(q=randn(5, 12), k=randn(7, 12), v=randn(7, 4)),
                     dict(o=("q", "k", "v", None, 0.3), oc=("q", "k", "v", "causal", 0.3)))


@test("mha_long", "MultiheadAttention over longer sequences: [2, 131, 32] causal "
      "self-attention, and cross-attention of 67 queries over 203 keys, 4 heads")
def _():
    return mha_case(dict(attn=MHA(32, 4)), dict(x=randn(2, 131, 32), q=randn(67, 32),
                                                 kv=randn(203, 32)),
                    dict(y=("attn", "x", "x", "x", "causal"), z=("attn", "q", "kv", "kv", None)))


@test("mha_mask_batch", "a per-sequence MultiheadAttention mask [B, T, S] (the same for "
      "every head; torch takes it repeated per head), batch 1's row 0 fully masked")
def _():
    B, T, S, D, H = 2, 4, 6, 12, 3
    m = torch.stack([random_inf_mask(T, S) for _ in range(B)])
    m[1, 0] = NEG_INF
    attn = MHA(D, H)
    ins = dict(x=randn(B, T, D), mem=randn(B, S, D), m=m)

    def run(M, P, I):
        y, n = mha_zero_rows(M["attn"], I["x"], I["mem"], I["mem"],
                             I["m"].repeat_interleave(H, 0))
        assert n == 1
        return dict(y=y)
    return Case(ins, run, mods=dict(attn=attn),
                hand=lambda M, P, I: dict(y=ref_mha(M["attn"], I["x"], I["mem"], I["mem"],
                                                    I["m"].unsqueeze(1))))


@test("mha_bcast", "MultiheadAttention with batch dims broadcast: queries [B, T, D] over one "
      "shared memory [S, D] (B = 3, T = 4, S = 9)")
def _():
    attn = MHA(16, 4)
    ins = dict(q=randn(3, 4, 16), mem=randn(9, 16))

    def run(M, P, I):
        mem = I["mem"].expand(3, 9, 16)
        return dict(y=mha(M["attn"], I["q"], mem, mem))
    return Case(ins, run, mods=dict(attn=attn),
                hand=lambda M, P, I: dict(y=ref_mha(M["attn"], I["q"], I["mem"], I["mem"])))


@test("mask_named_causal", "`causal` is the mask unless the model declares that name: here an "
      "input named causal (a mask that is not causal) is used by attention and "
      "MultiheadAttention")
def _():
    causal = random_inf_mask(5, 5)
    causal[0, 3] = 0.0           # a key after the query: not a causal pattern
    case = mha_case(dict(attn=MHA(8, 2)), dict(x=randn(5, 8), causal=causal),
                    dict(y=("attn", "x", "x", "x", "causal_input")))
    run, hand = case.run, case.hand

    def add_attention(f, fn):
        def go(M, P, I):
            out = f(M, P, I)
            out["a"] = fn(I["x"], I["x"], I["x"], I["causal"])
            return out
        return go
    case.run, case.hand = add_attention(run, sdpa), add_attention(hand, ref_attention)
    return case


@test("keywords", "calls with keyword arguments as the docs name them: LSTM(in=, hidden=, "
      "layers=), GRU(hidden=, in=), MultiheadAttention(d=, heads=), mha(query=, key=, value=, "
      "mask=causal), attention(q=, k=, v=, mask=, scale=), and lstm(x)[-1] (h_n of the last layer)")
def _():
    lstm, gru, attn = LSTM(5, 7, num_layers=2), GRU(7, 6), MHA(6, 2)
    ins = dict(x=randn(8, 5))

    def run(M, P, I):
        h = M["gru"](M["lstm"](I["x"])[0])[0]
        T = h.shape[0]
        y = mha(M["attn"], h, h, h, causal_mask(T, T, h.dtype))
        return dict(y=y, a=sdpa(y, h, h, causal_mask(T, T, h.dtype), 0.5),
                    hn=M["lstm"](I["x"])[1][0][-1])
    return Case(ins, run, mods=dict(lstm=lstm, gru=gru, attn=attn))


@test("rnn_rank4", "LSTM(4, 6) and GRU(4, 5) over rank-4 input [2, 3, T, 4] (T = 5): "
      "leading dims are independent sequences")
def _():
    lstm, gru = LSTM(4, 6), GRU(4, 5)

    def run(M, P, I):
        x = I["x"].reshape(6, 5, 4)
        return dict(hl=M["lstm"](x)[0].reshape(2, 3, 5, 6), hg=M["gru"](x)[0].reshape(2, 3, 5, 5))
    return Case(dict(x=randn(2, 3, 5, 4)), run, mods=dict(lstm=lstm, gru=gru),
                hand=lambda M, P, I: dict(hl=ref_rnn(M["lstm"], I["x"].reshape(6, 5, 4), "lstm")
                                          .reshape(2, 3, 5, 6)))


@test("rnn_wide", "wider recurrences: LSTM(40, 96) and GRU(96, 33, layers=2) over [3, 23, 40] "
      "(vector tails in every gate block)")
def _():
    lstm, gru = LSTM(40, 96), GRU(96, 33, num_layers=2)

    def run(M, P, I):
        h = M["lstm"](I["x"])[0]
        return dict(h=h, g=M["gru"](h)[0])
    return Case(dict(x=randn(3, 23, 40)), run, mods=dict(lstm=lstm, gru=gru))


@test("rnn_batch_tiles", "LSTM(24, 64) and GRU(64, 64) over [21, 6, 24]: H a multiple of 4 "
      "vectors at every width, so each step is register-blocked; 21 sequences are a tile of 16 "
      "(two groups of 8) and 5 left over at AVX-512, tiles of 8 (groups of 4) and 5 below")
def _():
    lstm, gru = LSTM(24, 64), GRU(64, 64)

    def run(M, P, I):
        h = M["lstm"](I["x"])[0]
        return dict(h=h, g=M["gru"](h)[0])
    return Case(dict(x=randn(21, 6, 24)), run, mods=dict(lstm=lstm, gru=gru))


@test("additive_bcast", "AdditiveAttention with batch dims broadcast: queries [B, T, 6] over "
      "shared keys [S, 5] and values [S, 3]")
def _():
    att = Additive(6, 5, 16)
    ins = dict(q=randn(2, 4, 6), k=randn(7, 5), v=randn(7, 3))
    return Case(ins, lambda M, P, I: dict(o=M["att"](I["q"], I["k"], I["v"])), mods=dict(att=att),
                hand=lambda M, P, I: dict(o=ref_additive(M["att"].wq, M["att"].wk, M["att"].v,
                                                         I["q"], I["k"], I["v"])))


# ---- writers ---------------------------------------------------------------------
def write_npy(path, a):
    a = np.asarray(a)
    dt = "<i4" if a.dtype.kind in "iu" else "<f4"
    a = np.array(a, dtype=dt, order="C")   # (keeps rank 0 as rank 0)
    np.save(path, a, allow_pickle=False)
    back = np.load(path)
    assert back.shape == a.shape and back.dtype == np.dtype(dt), path


# ---- a light reading of the .attn file, to check the data against it -----------
LAYER_ARGS = {
    "Linear": ["in", "out", "bias"], "LayerNorm": ["d", "eps"], "Embedding": ["n", "d"],
    "LSTM": ["in", "hidden", "layers", "bias"], "GRU": ["in", "hidden", "layers", "bias"],
    "MultiheadAttention": ["d", "heads", "bias"], "AdditiveAttention": ["qdim", "kdim", "hidden"],
}


def layer_params(path, lname, kind, argtext, consts):
    if kind not in LAYER_ARGS:
        raise SystemExit("%s: gen.py does not know layer %s" % (path, kind))
    names = LAYER_ARGS[kind]
    a = {}
    for i, arg in enumerate(x.strip() for x in argtext.split(",")):
        k, _, v = arg.partition("=") if "=" in arg else (names[i], "", arg)
        a[k.strip()] = v.strip()
    ev = lambda k, d=None: int(eval(a[k], {}, dict(consts))) if k in a else d
    bias = a.get("bias", "true") != "false"
    p = lambda n, *dims: (lname + "." + n, list(dims))
    if kind == "Linear":
        return [p("weight", ev("out"), ev("in"))] + ([p("bias", ev("out"))] if bias else [])
    if kind == "LayerNorm":
        return [p("weight", ev("d")), p("bias", ev("d"))]
    if kind == "Embedding":
        return [p("weight", ev("n"), ev("d"))]
    if kind in ("LSTM", "GRU"):
        g, h, out = 4 if kind == "LSTM" else 3, ev("hidden"), []
        for layer in range(ev("layers", 1)):
            inn = ev("in") if layer == 0 else h
            out += [p("weight_ih_l%d" % layer, g * h, inn), p("weight_hh_l%d" % layer, g * h, h)]
            if bias:
                out += [p("bias_ih_l%d" % layer, g * h), p("bias_hh_l%d" % layer, g * h)]
        return out
    if kind == "MultiheadAttention":
        d = ev("d")
        return [p("in_proj_weight", 3 * d, d)] + ([p("in_proj_bias", 3 * d)] if bias else []) + \
            [p("out_proj.weight", d, d)] + ([p("out_proj.bias", d)] if bias else [])
    if kind == "AdditiveAttention":
        hid = ev("hidden")
        return [p("wq", hid, ev("qdim")), p("wk", hid, ev("kdim")), p("v", hid)]


def parse_attn(path):
    lines = [re.sub(r"#.*", "", l).strip() for l in open(path).read().splitlines()]
    m = dict(name=None, consts={}, inputs=[], params=[], outputs=[], blocks=False)
    in_block = False
    for l in lines:
        if not l:
            continue
        # a block's body declares the block's inputs and layers, not the
        # model's; a model with block instances or layer arrays has params
        # this parser does not derive (attnc's own weights check covers them)
        if re.match(r"block\s+\w+\s*\(", l):
            in_block = m["blocks"] = True
            continue
        if in_block:
            in_block = l != "}"
            continue
        if re.match(r"layer\s+\w+\s*\[", l) or (re.match(r"layer\s+\w+\s*=\s*(\w+)\(", l) and
                                                  re.match(r"layer\s+\w+\s*=\s*(\w+)\(", l).group(1)[0].isupper() and
                                                  re.match(r"layer\s+\w+\s*=\s*(\w+)\(", l).group(1) not in LAYER_TYPES):
            m["blocks"] = True
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
        g = re.match(r"(input|param)\s+(\w+)\s*:\s*(f32|i32)\[(.*)\]$", l)
        if g:
            dims = [d.strip() for d in g.group(4).split(",")] if g.group(4).strip() else []
            m[g.group(1) + "s"].append((g.group(2), g.group(3), dims))
            continue
        g = re.match(r"layer\s+(\w+)\s*=\s*(\w+)\((.*)\)$", l)
        if g:
            m["params"] += [(n, "f32", [str(x) for x in d]) for n, d in
                            layer_params(path, g.group(1), g.group(2), g.group(3), m["consts"])]
            continue
        g = re.match(r"output\s+([\w\s,]+?)\s*=", l)
        if g:
            m["outputs"] += [n.strip() for n in g.group(1).split(",") if n.strip() != "_"]
    return m


LAYER_TYPES = ("Linear", "LayerNorm", "Embedding", "LSTM", "GRU", "MultiheadAttention", "AdditiveAttention")


def check_against_attn(name, attn, ins, params, outs):
    where = "tests/golden/%s.attn" % name
    assert attn["name"] == name, "%s: the model must be named %s" % (where, name)
    binding = {}

    def check(kind, decls, data, ordered):
        dn = [n for n, _, _ in decls]
        assert (dn == list(data)) if ordered else (sorted(dn) == sorted(data)), \
            "%s: %s %s in the file, %s from gen.py" % (where, kind, dn, list(data))
        for n, dt, dims in decls:
            a = data[n]
            assert (a.dtype.kind in "iu") == (dt == "i32"), "%s: %s %s is %s, data %s" % (
                where, kind, n, dt, a.dtype)
            assert len(dims) == a.ndim, "%s: %s %s has rank %d, data %s" % (where, kind, n, len(dims), a.shape)
            for d, s in zip(dims, a.shape):
                try:
                    want = int(eval(d, {}, dict(attn["consts"])))
                except NameError:
                    want = binding.setdefault(d, s)
                assert want == s, "%s: %s %s: dim %s is %d, data %s" % (where, kind, n, d, want, a.shape)

    check("input", attn["inputs"], ins, True)
    if not attn["blocks"]:
        check("param", attn["params"], params, False)
    assert sorted(attn["outputs"]) == sorted(outs), \
        "%s: outputs %s in the file, %s from gen.py" % (where, attn["outputs"], list(outs))
    return binding


# ===== issue 14: blocks, layer arrays, calls with several results ==========
def redraw_weights(*mods):
    """Redraw every matrix (nn.TransformerEncoder deep-copies one layer, so
    its layers start equal: a mixed-up layer order would pass unseen)."""
    with torch.no_grad():
        for m in mods:
            for n, p in m.named_parameters():
                if p.dim() == 2:
                    p.copy_(torch.randn_like(p) / math.sqrt(p.shape[1]))
    return randomize(*mods)


@test("block_stack", "the brief's 5.1 program: nn.TransformerEncoder(nn.TransformerEncoderLayer(64, 4, "
      "dim_feedforward=128, dropout=0.0, batch_first=True), 3, norm=nn.LayerNorm(64)), its "
      "state_dict saved unchanged; unbatched, T = 11")
def _():
    enc = redraw_weights(nn.TransformerEncoder(encoder_layer(d_model=64, nhead=4, dim_feedforward=128), 3,
                                               norm=nn.LayerNorm(64)))

    def hand(M, P, I):
        y = I["x"]
        for layer in M[""].layers:
            h = ref_layernorm(y + ref_mha(layer.self_attn, y, y, y), layer.norm1)
            f = ref_linear(torch.relu(ref_linear(h, layer.linear1.weight, layer.linear1.bias)),
                           layer.linear2.weight, layer.linear2.bias)
            y = ref_layernorm(h + f, layer.norm2)
        return dict(y=ref_layernorm(y, M[""].norm))
    return Case(dict(x=randn(11, 64)), lambda M, P, I: dict(y=M[""](I["x"])), mods={"": enc}, hand=hand)


class MlpBlock(nn.Module):
    """tests/golden/block_once.attn's block Mlp(D, H=2*D)."""

    def __init__(self, D, H=None):
        super().__init__()
        H = H or 2 * D
        self.scale = nn.Parameter(randn(D))
        self.up, self.mid, self.down = nn.Linear(D, H), nn.Linear(H, H // 2), nn.Linear(H // 2, D)

    def forward(self, x):
        return x + self.scale * self.down(torch.nn.functional.gelu(self.mid(torch.relu(self.up(x)))))


@test("block_once", "a block with a raw param, a const and a default over its parameters: one "
      "instance called on [T, 8] and [S, 8] (T = 5, S = 3: its dims bound per call), and "
      "elements 1 and -2 of a layer array of 2")
def _():
    mlp = randomize(MlpBlock(8))
    more = randomize(nn.ModuleList([MlpBlock(8, 4), MlpBlock(8, 4)]))
    return Case(dict(a=randn(5, 8), b=randn(3, 8)),
                lambda M, P, I: dict(ya=M["mlp"](I["a"]), yb=M["mlp"](I["b"]),
                                     yc=M["more"][1](I["a"]) + M["more"][0](I["a"])),
                mods=dict(mlp=mlp, more=more))


class FfnBlock(nn.Module):
    def __init__(self, D, H):
        super().__init__()
        self.linear1, self.linear2 = nn.Linear(D, H), nn.Linear(H, D)

    def forward(self, x):
        return self.linear2(torch.relu(self.linear1(x)))


class DecoderBlock(nn.Module):
    """tests/golden/block_nested.attn's block Decoder(D, heads): results y
    and the cross-attention weights (averaged over the heads)."""

    def __init__(self, D, heads):
        super().__init__()
        self.self_attn, self.cross_attn = MHA(D, heads), MHA(D, heads)
        self.ffn, self.norm = FfnBlock(D, 2 * D), nn.LayerNorm(D)

    def forward(self, x, mem):
        T = x.shape[-2]
        h = x + mha(self.self_attn, x, x, x, causal_mask(T, T, x.dtype))
        c, w = self.cross_attn(h, mem, mem, need_weights=True)
        return self.norm(h + c + self.ffn(h)), w


@test("block_nested", "a block (Ffn) inside a block (Decoder: causal self-attention, "
      "cross-attention whose weights are its second output); the instance called twice; "
      "`let y, _ =` and `let z, w =`; T = 6, S = 9")
def _():
    dec = redraw_weights(DecoderBlock(16, 4))

    def run(M, P, I):
        y, _ = M["dec"](I["x"], I["mem"])
        z, w = M["dec"](y, I["mem"])
        return dict(out=z, attn=w)
    return Case(dict(x=randn(6, 16), mem=randn(9, 16)), run, mods=dict(dec=dec))


class CellBlock(nn.Module):
    def __init__(self, D):
        super().__init__()
        self.lin = nn.Linear(D, D)

    def forward(self, x, state, bias):
        y = torch.tanh(self.lin(x) + state + bias)
        return y, y.sum(0)


@test("block_scan", "a layer array of 3 blocks called as a whole: x chains, init [3, 6] is split "
      "by instance, bias [6] goes to each, the second results are stacked [3, 6]; then a "
      "Linear array of 2 chained; T = 7")
def _():
    cells = redraw_weights(nn.ModuleList([CellBlock(6) for _ in range(3)]))
    lins = redraw_weights(nn.ModuleList([nn.Linear(6, 6) for _ in range(2)]))

    def run(M, P, I):
        y, sums = I["x"], []
        for i in range(3):
            y, s = M["cells"][i](y, I["init"][i], I["bias"])
            sums.append(s)
        return dict(out=M["lins"][1](M["lins"][0](y)), sums=torch.stack(sums))
    return Case(dict(x=randn(7, 6), init=randn(3, 6), bias=randn(6)), run, mods=dict(cells=cells, lins=lins))


@test("mha_weights", "MultiheadAttention's attn_weights (averaged over 4 heads, torch's "
      "need_weights=True): batched causal self-attention and cross-attention with a float mask; "
      "B = 2, T = 6, S = 9")
def _():
    sa, ca = MHA(16, 4), MHA(16, 4)

    def run(M, P, I):
        o1, w1 = M["sa"](I["x"], I["x"], I["x"], attn_mask=causal_mask(6, 6, I["x"].dtype))
        o2, w2 = M["ca"](I["x"], I["mem"], I["mem"], attn_mask=I["m"])
        return dict(y1=o1, a1=w1, y2=o2, a2=w2)
    return Case(dict(x=randn(2, 6, 16), mem=randn(2, 9, 16), m=random_inf_mask(6, 9)), run,
                mods=dict(sa=sa, ca=ca))


@test("additive_weights", "AdditiveAttention(6, 4, hidden=8)'s second result, the weights "
      "over the keys; B = 2, T = 5, S = 7")
def _():
    att = Additive(6, 4, 8)

    def run(M, P, I):
        a = M["att"]
        e = torch.tanh((I["q"] @ a.wq.t()).unsqueeze(-2) + (I["k"] @ a.wk.t()).unsqueeze(-3))
        w = torch.softmax(e @ a.v, -1)
        return dict(ctx=a(I["q"], I["k"]), weights=w)
    return Case(dict(q=randn(2, 5, 6), k=randn(2, 7, 4)), run, mods=dict(att=att))


# ===== issue 19: views ======================================================
@test("views", "unsqueeze (axis -1 and 0, broadcasting after), squeeze, reshape with named "
      "dims and with -1 standing for B and for 6; B = 2, T = 5")
def _():
    def run(M, P, I):
        x, s = I["x"], I["s"]
        h = x * 2
        B, T = x.shape[0], x.shape[1]
        return dict(a=h.unsqueeze(-1) + s.unsqueeze(0).unsqueeze(-1), b=s.squeeze(-1) * 3,
                    c=h.reshape(B, T, 3, 4), d=x.reshape(-1, T, 6, 2) - h.reshape(B, T, -1, 2),
                    e=h.reshape(B, T, 4, 3).sum(-1))
    return Case(dict(x=randn(2, 5, 12), s=randn(5, 1)), run)


@test("concat_bcast", "concat broadcasting all dims but the axis: a param [1, 8] CLS row joins "
      "[B, 3, 8] along -2, [B, 1, 3] joins [B, T, 8] along 2, [5, 1] joins [3, 8] along 0; "
      "B = 2, T = 4")
def _():
    def run(M, P, I):
        x, w, y, z, cls = I["x"], I["w"], I["y"], I["z"], P["cls"]
        B, T = x.shape[0], x.shape[1]
        return dict(a=torch.cat([cls.expand(B, 1, 8), w], -2),
                    b=torch.cat([x, y.expand(B, T, 3)], 2),
                    c=torch.cat([z.expand(5, 8), w[0]], 0))
    return Case(dict(x=randn(2, 4, 8), w=randn(2, 3, 8), y=randn(2, 1, 3), z=randn(5, 1)), run,
                params=dict(cls=randn(1, 8)))


# ---- running a test ----------------------------------------------------------
def convert(case, dtype):
    """The case's modules, params and inputs in dtype (ints unchanged)."""
    M = {k: copy.deepcopy(m).to(dtype).eval() for k, m in case.mods.items()}
    P = {k: v.to(dtype) for k, v in case.params.items()}
    I = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in case.ins.items()}
    return M, P, I


def tol_ratio(a, e, tol):
    """max over elements of |a - e| / (atol + rtol |e|) (<= 1 passes).  As
    npycmp: NaN matches NaN, an infinity the same infinity, and nothing
    else matches either."""
    atol, rtol = tol
    a, e = np.asarray(a, np.float64), np.asarray(e, np.float64)
    odd = ~np.isfinite(a) | ~np.isfinite(e)
    if odd.any():
        same = (np.isnan(a) & np.isnan(e)) | (a == e)
        if not same[odd].all():
            return float("inf")
        a, e = np.where(odd, 0.0, a), np.where(odd, 0.0, e)
    d = np.abs(a - e)
    lim = atol + rtol * np.abs(np.asarray(e, np.float64))
    if d.size == 0:
        return 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(d == 0, 0.0, d / lim)
    return float(np.max(r))


def generate(name, verbose=True):
    t = TESTS[name]
    torch.manual_seed(zlib.crc32(name.encode()))
    case = t["fn"]()
    for m in case.mods.values():
        m.eval()
    tol = t["tol"] or DEFAULT_TOL

    with torch.no_grad():
        out32 = case.run(*convert(case, torch.float32))
        M64, P64, I64 = convert(case, torch.float64)
        out64 = case.run(M64, P64, I64)
        hand = case.hand(M64, P64, I64) if case.hand else {}

    ins = {k: v.numpy() for k, v in case.ins.items()}
    params = {}
    for lname, m in case.mods.items():
        for k, v in m.state_dict().items():
            params[(lname + "." if lname else "") + k] = v.detach().float().contiguous().numpy()
    for k, v in case.params.items():
        params[k] = v.float().numpy()
    outs = {k: v.numpy() for k, v in out64.items()}
    if t["nonfinite"]:   # values beyond f32's range are meant to become infinities
        with np.errstate(over="ignore"):
            outs = {k: v.astype(np.float32) for k, v in outs.items()}
    for k, v in ins.items():
        assert v.dtype in (np.float32, np.int32), "%s: input %s is %s" % (name, k, v.dtype)

    attn = parse_attn(os.path.join(HERE, name + ".attn"))
    binding = check_against_attn(name, attn, ins, params, outs)

    report = []
    for k in outs:
        e = outs[k]
        if not t["nonfinite"]:
            assert np.all(np.isfinite(e)), "%s: out %s is not finite" % (name, k)
            assert np.all(np.abs(e) < 3.4e38), "%s: out %s overflows f32" % (name, k)
        assert out32[k].shape == e.shape, (name, k)
        r = tol_ratio(out32[k].numpy(), e.astype(np.float32), tol)
        if r > 0.5:    # torch itself must pass, with a margin
            raise SystemExit("%s: torch's float32 result for %s uses %.2f of the tolerance "
                             "%g %g: too tight to hold attnc to" % (name, k, r, *tol))
        report.append("%s %.3f" % (k, r))
    for k, h in hand.items():
        assert k in outs, (name, k)
        err = float(np.max(np.abs(h.numpy() - outs[k]))) if h.numel() else 0.0
        scale = max(1.0, float(np.max(np.abs(outs[k]))))
        if not (h.shape == out64[k].shape and err <= 1e-9 * scale):
            raise SystemExit("%s: the hand-written reference for %s differs from torch by %.3g"
                             % (name, k, err))

    d = os.path.join(HERE, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    for k, v in ins.items():
        write_npy(os.path.join(d, "in.%s.npy" % k), v)
    for k, v in outs.items():
        write_npy(os.path.join(d, "out.%s.npy" % k), v)
    if case.link:
        os.symlink(case.link, os.path.join(d, "weights.safetensors"))
        back = read_safetensors(os.path.join(d, "weights.safetensors"))
        assert set(back) == set(params) and all(np.array_equal(back[k], v) for k, v in params.items())
    elif params:
        write_safetensors(os.path.join(d, "weights.safetensors"), params)
        back = read_safetensors(os.path.join(d, "weights.safetensors"))
        assert all(np.array_equal(back[k], v) for k, v in params.items())
    if t["tol"] is not None:
        with open(os.path.join(d, "tol"), "w") as f:
            f.write("%g %g\n" % t["tol"])
    if verbose:
        size = sum(os.lstat(os.path.join(d, f)).st_size for f in os.listdir(d))
        print("%-16s %-26s %2d in %2d params %2d out %8d bytes; torch f32 / tol: %s%s" % (
            name, ",".join("%s=%d" % kv for kv in binding.items()) or "-", len(ins), len(params),
            len(outs), size, ", ".join(report),
            "  (hand ref: %s)" % ",".join(hand) if hand else ""))
    return size if verbose else 0


def check_examples():
    """The brief's programs must be the examples, byte for byte."""
    for n in ("sdpa", "encoder", "sentiment", "tagger"):
        ex = os.path.join(ROOT, "examples", n + ".attn")
        if os.path.exists(ex) and open(ex).read() != open(os.path.join(HERE, n + ".attn")).read():
            raise SystemExit("gen.py: tests/golden/%s.attn differs from examples/%s.attn" % (n, n))


def main(argv):
    if "--list" in argv:
        for n in sorted(TESTS):
            print("%-16s %s" % (n, TESTS[n]["doc"]))
        return
    names = [a for a in argv if not a.startswith("-")]
    attn_files = sorted(f[:-5] for f in os.listdir(HERE) if f.endswith(".attn"))
    missing = [n for n in attn_files if n not in TESTS]
    orphans = [n for n in TESTS if n not in attn_files]
    if missing or orphans:
        raise SystemExit("gen.py: no generator for %s; no .attn for %s" % (missing, orphans))
    check_examples()
    total = 0
    for name in names or sorted(TESTS):
        if name not in TESTS:
            raise SystemExit("gen.py: unknown test " + name)
        total += generate(name)
    print("total %d bytes" % total)


if __name__ == "__main__":
    main(sys.argv[1:])
