"""cases_masks.py: golden cases for comparisons, masked_fill and
MultiheadAttention's key_padding_mask (issue 19, design.md 5.6 and 5.7),
with the brief's padded_classifier and seed_masked programs as written."""
import math

import torch
import torch.nn as nn

from golden_lib import *  # noqa: F401,F403  (the registry, helpers and references)
from golden_lib import NEG_INF  # noqa: F401
from cases_layers import MHA  # noqa: E402


def ints(*shape, lo, hi):
    return torch.randint(lo, hi, shape, dtype=torch.int32)


def softmax_filled(s, fill_where, value):
    """softmax over the last dim of s with the entries where fill_where is
    true set to value: masked_fill written out with torch.where, so that it
    checks torch's masked_fill (float64 pass)."""
    s = torch.where(fill_where, torch.full_like(s, value), s)
    return torch.softmax(s, -1)


# ===== the brief's 5.6 programs ===============================================
@test("padded_classifier", "design.md 5.6 as written: Embedding(1000, 64), MultiheadAttention(64, "
      "heads=4) with key_padding_mask=pad (i32, 1 = padding), mean over the real positions "
      "(unsqueeze(pad == 0, -1)), Linear(64, 3); B = 3, T = 7, lengths 7, 4, 1")
def _():
    emb, mha_, head = nn.Embedding(1000, 64), MHA(64, 4), nn.Linear(64, 3)
    randomize(emb, mha_, head)
    lens = torch.tensor([7, 4, 1])
    pad = (torch.arange(7)[None, :] >= lens[:, None]).to(torch.int32)

    def run(M, P, I):
        x = M["emb"](I["ids"].long())
        h = M["mha"](x, x, x, key_padding_mask=I["pad"].bool(), need_weights=False)[0]
        keep = (I["pad"] == 0).to(x.dtype).unsqueeze(-1)
        return dict(y=M["head"]((h * keep).sum(1) / keep.sum(1)))

    def hand(M, P, I):
        x = M["emb"].weight[I["ids"].long()]
        add = torch.where(I["pad"] != 0, torch.tensor(NEG_INF, dtype=x.dtype), torch.tensor(0.0, dtype=x.dtype))
        h = ref_mha(M["mha"], x, x, x, add[:, None, None, :])
        keep = (I["pad"] == 0).to(x.dtype).unsqueeze(-1)
        return dict(y=ref_linear((h * keep).sum(1) / keep.sum(1), M["head"].weight, M["head"].bias))
    return Case(dict(ids=ints(3, 7, lo=0, hi=1000), pad=pad), run, mods=dict(emb=emb, mha=mha_, head=head),
                hand=hand)


@test("seed_masked", "design.md 5.6 as written: a seed article's DotProductAttention, "
      "softmax(masked_fill(q k^T / sqrt(32), attn_mask == 0, -1e9)) @ v, fused into the flash "
      "kernel; batch 2's mask is all 0, so its scores are all -1e9: a uniform average, as "
      "unfused; B = 3, T = 5, S = 37")
def _():
    B, T, S = 3, 5, 37
    m = (torch.rand(B, 1, S) < 0.7).to(torch.int32)
    m[0, 0, :] = 1
    m[2, 0, :] = 0

    def run(M, P, I):
        s = I["q"] @ I["k"].transpose(-1, -2) / math.sqrt(32)
        return dict(o=torch.softmax(s.masked_fill(I["attn_mask"] == 0, -1e9), -1) @ I["v"])

    def hand(M, P, I):
        s = (I["q"].unsqueeze(-2) * I["k"].unsqueeze(-3)).sum(-1) / math.sqrt(32)
        p = softmax_filled(s, (I["attn_mask"] == 0).expand_as(s), -1e9)
        return dict(o=(p.unsqueeze(-1) * I["v"].unsqueeze(-3)).sum(-2))
    return Case(dict(q=randn(B, T, 32), k=randn(B, S, 32), v=randn(B, S, 32), attn_mask=m), run, hand=hand)


# ===== comparisons ===========================================================
@test("compare", "the six comparisons, 1.0/0.0: f32 with broadcasting and a scalar, NaN "
      "(only != is true), i32 with an integer exactly (16777217 == 16777216 is false, though "
      "equal in f32), i32 with i32, i32 with an f32 tensor (compared in f32, as torch "
      "promotes), an integer past the i32 range compared exactly (torch would wrap it: "
      "the oracle widens to int64), and precedence (x + 1 > y * 2, -x < y @ w == 0)")
def _():
    x, y = randn(3, 4), randn(4)
    x[0, 0], x[1, 1] = float("nan"), 0.5
    y[1] = 0.5
    ids = torch.tensor([[16777217, 16777216, -5, 0], [7, 2 ** 31 - 1, -2 ** 31, 3]], dtype=torch.int32)
    jds = torch.tensor([16777216, 16777216, -5, 1], dtype=torch.int32)
    f = torch.tensor([16777216.0, 16777216.0, -4.5, 0.0])

    def run(M, P, I):
        x, y, ids, jds, f = I["x"], I["y"], I["ids"], I["jds"], I["f"]
        fl = x.dtype

        def b(t):
            return t.to(fl)
        return dict(eq=b(x == y), ne=b(x != y), lt=b(x < y), le=b(x <= 0.5), gt=b(x > y), ge=b(0.5 >= x),
                    ieq=b(ids == 16777216), ine=b(ids != jds), ilt=b(ids < -5), ige=b(ids >= 2147483647),
                    igt=b(ids.long() > 3000000000), imix=b(ids.to(torch.float32).to(fl) == f),
                    prec=b(x + 1 > y * 2))
    return Case(dict(x=x, y=y, ids=ids, jds=jds, f=f), run)


# ===== masked_fill ===========================================================
@test("masked_fill", "masked_fill with an i32 mask [B, T, 1] and an f32 mask [D] broadcasting, "
      "values 0.5 and -1e9, then softmax; B = 2, T = 3, D = 5")
def _():
    def run(M, P, I):
        a = I["x"].masked_fill(I["m"] != 0, 0.5)
        b = I["x"].masked_fill(I["fm"] != 0, -1e9)
        return dict(a=a, b=torch.softmax(b, -1), c=I["x"].masked_fill(I["x"] > 0.3, 2.0) * 3)
    m = torch.tensor([[[1], [0], [-3]], [[0], [0], [1]]], dtype=torch.int32)
    return Case(dict(x=randn(2, 3, 5), m=m, fm=torch.tensor([0.0, 1.0, 0.0, 2.5, 0.0])), run)


@test("masked_fill_inf", "masked_fill with inf and -inf (outputs hold infinities), and a "
      "hand-written softmax over a row filled with -inf all through: NaN, fused or not "
      "(design.md 5.7), in the flash kernel's plain copy (dv = 6) and its fast one (dv = 16); "
      "T = 4, S = 9", nonfinite=True)
def _():
    T, S = 4, 9
    fm = (torch.rand(T, S) < 0.4).to(torch.float32)
    fm[2, :] = 1.0

    def run(M, P, I):
        x = I["x"]
        out = dict(pinf=x.masked_fill(I["m"] != 0, float("inf")), ninf=x.masked_fill(I["m"] != 0, NEG_INF))
        for name, v in (("o6", "v6"), ("o16", "v16")):
            s = I["q"] @ I["k"].transpose(-1, -2) * 0.25
            out[name] = torch.softmax(s.masked_fill(I["fm"] != 0, NEG_INF), -1) @ I[v]
        return out
    m = torch.tensor([[1, 0, 0], [0, 2, 0]], dtype=torch.int32)
    return Case(dict(x=randn(2, 3), m=m, q=randn(T, 16), k=randn(S, 16), v6=randn(S, 6), v16=randn(S, 16),
                     fm=fm), run)


@test("masked_fill_attn", "masked_fill feeding softmax, fused into the flash kernel: with an "
      "additive mask too (softmax(masked_fill(s + add, fm, -1e9))), an f32 fill mask from a "
      "comparison with a fully masked row (uniform weights), batched i32 masks [B, 1, S] with "
      "-inf, plain (dv = 6) and fast (dv = 32) kernels; B = 2, T = 19, S = 45")
def _():
    B, T, S = 2, 19, 45
    r = torch.rand(T, S)
    r[3, :] = 0.9
    pm = (torch.rand(B, 1, S) < 0.3).to(torch.int32)
    pm[:, :, 0] = 0

    def run(M, P, I):
        s = I["q"] @ I["k"].transpose(-1, -2) * (1 / math.sqrt(32))
        a = torch.softmax((s + I["add"]).masked_fill(I["r"] > 0.8, -1e9), -1)
        b = torch.softmax(s.masked_fill(I["pm"] != 0, NEG_INF), -1)
        return dict(a6=a @ I["v6"], a32=a @ I["v32"], b6=b @ I["v6"], b32=b @ I["v32"])
    return Case(dict(q=randn(B, T, 32), k=randn(B, S, 32), v6=randn(B, S, 6), v32=randn(B, S, 32),
                     add=randn(T, S), r=r, pm=pm), run)


# ===== MultiheadAttention's key_padding_mask ==================================
@test("mha_kpm", "MultiheadAttention(16, heads=4) with key_padding_mask: i32 [B, S] with a "
      "fully padded batch row (output out_proj.bias, weights 0), f32 [B, S] combined with "
      "mask=causal, f32 [S] for every batch entry with an additive float mask [T, S], the "
      "attn_weights with padding, and unbatched q, k, v with [S]; B = 3, T = 5, S = 8")
def _():
    B, T, S = 3, 5, 8
    sa, ca = MHA(16, 4), MHA(16, 4)
    lens = torch.tensor([8, 0, 3])
    pad = (torch.arange(S)[None, :] >= lens[:, None]).to(torch.int32)
    fpad = torch.zeros(B, T)
    fpad[0, 4], fpad[2, 1] = 1.0, 2.0

    def run(M, P, I):
        x, mem, fl = I["x"], I["mem"], I["x"].dtype
        kp = I["pad"].bool()
        y1, w1 = M["ca"](x, mem, mem, key_padding_mask=kp)
        y1 = torch.where(torch.isnan(y1), M["ca"].out_proj.bias.expand_as(y1), y1)
        w1 = torch.nan_to_num(w1, nan=0.0)
        cm = causal_mask(T, T, fl)
        y2 = M["sa"](x, x, x, key_padding_mask=I["fpad"] != 0, attn_mask=cm, need_weights=False)[0]
        y3 = M["ca"](x, mem, mem, key_padding_mask=(I["row"] != 0).expand(B, S), attn_mask=I["am"],
                     need_weights=False)[0]
        y4 = M["ca"](x[0], mem[0], mem[0], key_padding_mask=kp[2], need_weights=False)[0]
        return dict(y1=y1, w1=w1, y2=y2, y3=y3, y4=y4)

    def hand(M, P, I):
        x, mem, fl = I["x"], I["mem"], I["x"].dtype
        ninf, zero = torch.tensor(NEG_INF, dtype=fl), torch.tensor(0.0, dtype=fl)
        add = torch.where(I["pad"] != 0, ninf, zero)[:, None, None, :]
        y1 = ref_mha(M["ca"], x, mem, mem, add)
        y1 = torch.where(torch.isnan(y1), M["ca"].out_proj.bias.expand_as(y1), y1)
        y2 = ref_mha(M["sa"], x, x, x, causal_mask(T, T, fl) + torch.where(I["fpad"] != 0, ninf, zero)[:, None, None, :])
        return dict(y1=y1, y2=y2)
    row = torch.tensor([0.0, 0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.5])
    return Case(dict(x=randn(B, T, 16), mem=randn(B, S, 16), pad=pad, fpad=fpad, row=row,
                     am=randn(T, S)), run, mods=dict(sa=sa, ca=ca), hand=hand)


# ===== dims that are sums, slices, empty dims (issue 15 item 3; 5.3, 5.6) ======
@test("with_cls", "design.md 5.6 as written: a learned [1, 64] CLS row joins [B, T, 64] along "
      "-2 (a concat along a symbolic axis: T+1), reshaped with -1 standing for T+1; B = 2, T = 3")
def _():
    def run(M, P, I):
        x, cls = I["x"], P["cls"]
        B = x.shape[0]
        return dict(y=torch.cat([cls.expand(B, 1, 64), x], dim=-2).reshape(B, -1, 4, 16))
    return Case(dict(x=randn(2, 3, 64)), run, params=dict(cls=randn(1, 64)))


@test("sums", "dims that are sums: concat along symbolic axes (T+S, T+2*S, 2*T), an input "
      "typed [S+T, 2] (printed T+S), slices x[1:] (T-1), x[:2], x[-2:], x[1:-1] (T-2), "
      "f[2:5], f[-3:-1], and concat(x[1:], x[:1]) back to U; T = 5, S = 2, U = 5")
def _():
    def run(M, P, I):
        a, b, m, x, f = I["a"], I["b"], I["m"], I["x"], I["f"]
        return dict(c=torch.cat([a, b]) + m.sum(1, keepdim=True), d=torch.cat([b, a, b]), e=torch.cat([a, a]),
                    s1=x[1:], s2=x[:2], s3=x[-2:], s4=x[1:-1] * 2, s5=f[2:5], s6=f[-3:-1],
                    s7=torch.cat([x[1:], x[:1]]))
    return Case(dict(a=randn(5, 4), b=randn(2, 4), m=randn(7, 2), x=randn(5, 3), f=randn(6, 2)), run)


@test("empty", "symbolic dims bound to 0 (design.md 5.3, 5.7): T = 0 through Linear, LayerNorm, "
      "@, softmax, elementwise, concat (T+4 = 4), a product over K = 0 (zeros), sum (0), mean "
      "(NaN), max (-inf); S = 0 keys: attention() and MultiheadAttention over no keys give "
      "zeros (out_proj.bias after MultiheadAttention); MultiheadAttention with no queries",
      nonfinite=True)
def _():
    lin, ln, mha_ = nn.Linear(16, 8), nn.LayerNorm(16), MHA(16, 2)
    randomize(lin, ln, mha_)

    def run(M, P, I):
        x, m, kz = I["x"], I["m"], I["kz"]
        bias = M["mha"].out_proj.bias
        return dict(a=M["lin"](x), b=torch.softmax(M["ln"](x) @ m.t(), -1), c=x.sum(0),
                    d=torch.full((16,), NEG_INF, dtype=x.dtype), e=x.mean(0),
                    f=torch.zeros(4, 16, dtype=x.dtype), g=bias.detach().expand(4, 16),
                    h=torch.cat([x, m]), i=x.t() @ x, j=torch.nn.functional.gelu(x) + 1,
                    l=mha(M["mha"], x, m, m))
    return Case(dict(x=randn(0, 16), m=randn(4, 16), kz=randn(0, 16)), run,
                mods=dict(lin=lin, ln=ln, mha=mha_))


# ===== causal_lower_right (issue 15 item 5; design.md 5.3, 5.7) ===============
def lower_right_mask(t, s, dtype=torch.float32):
    """Float mask: key j hidden from query i when j > i + s - t (PyTorch 2's
    causal_lower_right, which torch 1.13 lacks)."""
    i = torch.arange(t)[:, None]
    j = torch.arange(s)[None, :]
    return torch.where(j > i + s - t, torch.tensor(NEG_INF, dtype=dtype), torch.tensor(0.0, dtype=dtype))


@test("causal_lower_right", "mask=causal_lower_right: query i sees keys 0 .. i + S - T; T = 3 "
      "queries over S = 70 keys (past the key blocks), T = 5 over S = 3 (the first two rows see "
      "no key: zeros), T = S = 4 (as causal); plain (dv = 6) and fast (dv = 32) kernels; "
      "MultiheadAttention over a cache concat(past, x) of P = 6 rows with B = 2")
def _():
    mha_ = MHA(16, 4)

    def run(M, P, I):
        fl = I["q"].dtype
        out = {}
        for name, (q, k, v) in dict(a=("q", "k", "v6"), b=("q", "k", "v32"), c=("q5", "k3", "v3"),
                                    d=("q4", "k4", "v4")).items():
            Q, K, V = I[q], I[k], I[v]
            out[name] = sdpa(Q, K, V, lower_right_mask(Q.shape[-2], K.shape[-2], fl))
        kv = torch.cat([I["past"], I["x"]], dim=-2)
        y = mha(M["mha"], I["x"], kv, kv, lower_right_mask(3, 9, fl))
        out["y"] = y
        return out
    return Case(dict(q=randn(3, 32), k=randn(70, 32), v6=randn(70, 6), v32=randn(70, 32),
                     q5=randn(5, 8), k3=randn(3, 8), v3=randn(3, 16), q4=randn(2, 4, 16), k4=randn(2, 4, 16),
                     v4=randn(2, 4, 16), past=randn(2, 6, 16), x=randn(2, 3, 16)), run, mods=dict(mha=mha_))


# ===== key/value caches (issue 15 item 6; design.md 5.2, 5.4) ==================
@test("cache_steps", "MultiheadAttention's cache form: a prompt of 3 tokens with an empty cache "
      "(P = 0), then 5 steps of one token each, every call's key_cache and value_cache fed to the "
      "next with mask=causal_lower_right; the steps' outputs, joined, equal one causal pass over "
      "the 8 tokens (nn.MultiheadAttention, is_causal mask), and the last caches are the projected "
      "keys and values of all 8; batched (B = 2: the prompt, then 5 tokens in one call) too")
def _():
    m = MHA(16, 4)

    def run(M, P, I):
        a = M["attn"]
        d = 16
        full = mha(a, I["x"], I["x"], I["x"], causal_mask(8, 8, I["x"].dtype))
        xb = torch.cat([I["xb3"], I["xb5"]], dim=1)
        fullb = mha(a, xb, xb, xb, causal_mask(8, 8, I["x"].dtype))
        w, b = a.in_proj_weight, a.in_proj_bias
        kc = I["x"] @ w[d:2 * d].t() + b[d:2 * d]
        vc = I["x"] @ w[2 * d:].t() + b[2 * d:]
        return dict(steps=full, full=full, kc=kc, vc=vc, stepsb=fullb)
    return Case(dict(x=randn(8, 16), xb3=randn(2, 3, 16), xb5=randn(2, 5, 16), pk=randn(0, 16), pv=randn(0, 16),
                     pkb=randn(2, 0, 16), pvb=randn(2, 0, 16)), run, mods=dict(attn=m))


# ===== one-row products (the GEMV of a decoding step) ==========================
@test("gemv", "products of one row (a decoding step's shape, which takes the GEMV kernel): "
      "Linear(37, 45) on [1, 37] (K not a multiple of 4, N not of the panel width), on [3, 1, 37] "
      "(one row per batch entry), and [1, 64] @ a param [64, 96]; with 2 rows for comparison")
def _():
    lin = nn.Linear(37, 45)
    randomize(lin)

    def run(M, P, I):
        return dict(a=M["lin"](I["x"]), b=M["lin"](I["xb"]), c=I["y"] @ P["w"], d=M["lin"](I["x2"]))
    return Case(dict(x=randn(1, 37), xb=randn(3, 1, 37), y=randn(1, 64), x2=randn(2, 37)), run,
                mods=dict(lin=lin), params=dict(w=randn(64, 96)))


# ===== the decode kernel (issue 15: a decoding step's attention) ===============
def mha_cache(m, x, pk, pv, mask=None, pad=None, ref=False):
    """MultiheadAttention's cache form, as torch ops: the keys and values are
    concat(past, projected x); pad (nonzero hides a key) as -inf scores.
    ref: the attention by explicit sums (ref_attention), float64 only."""
    d, h = m.embed_dim, m.num_heads
    w, b = m.in_proj_weight, m.in_proj_bias
    lin = ref_linear if ref else (lambda t, w_, b_: t @ w_.t() + b_)
    q = lin(x, w[:d], b[:d])
    k = torch.cat([pk, lin(x, w[d:2 * d], b[d:2 * d])])
    v = torch.cat([pv, lin(x, w[2 * d:], b[2 * d:])])
    add = torch.zeros(x.shape[0], k.shape[0], dtype=x.dtype) if mask is None else mask
    if pad is not None:
        add = add + torch.where(pad != 0, torch.tensor(NEG_INF, dtype=x.dtype), torch.tensor(0.0, dtype=x.dtype))
    att = ref_attention if ref else sdpa
    o = ref_merge(att(ref_split(q, h), ref_split(k, h), ref_split(v, h), add))
    return lin(o, m.out_proj.weight, m.out_proj.bias)


@test("attention_decode", "the decode kernel (fewer than 8 queries, keys in vector lanes, all heads "
      "of a tile in one row with K and V in place): MultiheadAttention(64, heads=4)'s cache form, "
      "T = 1 over P = 0, T = 2 over P = 1, T = 1 and 7 over P = 300 (mask=causal_lower_right), "
      "T = 3 over P = 37 with an additive mask, T = 5 over P = 300 with causal_lower_right and an "
      "i32 key_padding_mask (every 7th key, and the last), T = 1 over P = 37 with an f32 one, T = 4 "
      "over P = 37 with mask=causal (query i sees keys 0..i), batched (B = 2, T = 3 over P = 37); "
      "attention() of 4 heads not in place "
      "(T = 6, S = 300, dv = 32) and split in place (T = 5 over S = 3: rows 0, 1 see no key)")
def _():
    m = MHA(64, 4)
    randomize(m)
    pad = torch.zeros(305, dtype=torch.int32)
    pad[::7] = 1
    pad[-1] = 1
    fpad = torch.zeros(38)
    fpad[[0, 17, 36]] = 1.0
    ins = dict(x1=randn(1, 64), x2=randn(2, 64), x3=randn(3, 64), x4=randn(4, 64), x5=randn(5, 64),
               x7=randn(7, 64), k0=randn(0, 64), k1=randn(1, 64), v1=randn(1, 64), k37=randn(37, 64),
               v37=randn(37, 64), k300=randn(300, 64), v300=randn(300, 64), am=randn(3, 40), pad=pad,
               fpad=fpad, q=randn(4, 6, 16), k=randn(4, 300, 16), v=randn(4, 300, 32), qs=randn(5, 64),
               ks=randn(3, 64), vs=randn(3, 64), xb=randn(2, 3, 64), kb=randn(2, 37, 64), vb=randn(2, 37, 64))

    def outs(M, I, ref):
        a, fl = M["mha"], I["x1"].dtype
        lr = lower_right_mask
        att = ref_attention if ref else sdpa
        return dict(
            ya=mha_cache(a, I["x1"], I["k0"], I["k0"], lr(1, 1, fl), ref=ref),
            yb=mha_cache(a, I["x2"], I["k1"], I["v1"], lr(2, 3, fl), ref=ref),
            yc=mha_cache(a, I["x1"], I["k300"], I["v300"], lr(1, 301, fl), ref=ref),
            yd=mha_cache(a, I["x7"], I["k300"], I["v300"], lr(7, 307, fl), ref=ref),
            ye=mha_cache(a, I["x3"], I["k37"], I["v37"], I["am"], ref=ref),
            yf=mha_cache(a, I["x5"], I["k300"], I["v300"], lr(5, 305, fl), I["pad"], ref=ref),
            yg=mha_cache(a, I["x1"], I["k37"], I["v37"], None, I["fpad"], ref=ref),
            yh=mha_cache(a, I["x4"], I["k37"], I["v37"], causal_mask(4, 41, fl), ref=ref),
            yk=torch.stack([mha_cache(a, I["xb"][i], I["kb"][i], I["vb"][i], lr(3, 40, fl), ref=ref) for i in range(2)]),
            yi=att(I["q"], I["k"], I["v"], lr(6, 300, fl)),
            yj=ref_merge(att(ref_split(I["qs"], 4), ref_split(I["ks"], 4), ref_split(I["vs"], 4), lr(5, 3, fl))))

    return Case(ins, lambda M, P, I: outs(M, I, False), mods=dict(mha=m), hand=lambda M, P, I: outs(M, I, True))
