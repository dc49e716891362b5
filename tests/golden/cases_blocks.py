"""cases_blocks.py: the golden cases of blocks, layer arrays, calls with
several results (issue 14) and views (issue 19)."""
import math

import numpy as np
import torch
import torch.nn as nn

from golden_lib import *  # noqa: F401,F403  (the registry, helpers and references)
from golden_lib import ROOT, NEG_INF  # noqa: F401
from cases_layers import MHA, Additive, encoder_layer, mha, random_inf_mask  # noqa: E402


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


