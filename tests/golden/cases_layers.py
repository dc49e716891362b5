"""cases_layers.py: the golden cases of the brief's programs and of every
layer and function (registered with golden_lib.test; gen.py runs them)."""
import math

import numpy as np
import torch
import torch.nn as nn

from golden_lib import *  # noqa: F401,F403  (the registry, helpers and references)
from golden_lib import ROOT, NEG_INF  # noqa: F401


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


