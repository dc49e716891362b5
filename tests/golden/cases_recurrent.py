"""cases_recurrent.py: the golden cases of recurrent state (issue 15, brief
5.2 and 5.7): LSTM and GRU with an initial state and their final state
(h_n, c_n), 1 and 3 layers, batched and not; LSTMCell and GRUCell; state
carried from one call to the next; the Bahdanau decoder step of the
brief's translator.  The oracles are nn.LSTM / nn.GRU (batch_first=True),
nn.LSTMCell and nn.GRUCell; the hand references below are their cell
equations step by step, in float64.

Hidden sizes: H = 64 takes the kernel's register-blocked steps at every
vector width (where step 0 then reads h0 through the blocked product),
odd sizes (7, 13) its dot products; 21 sequences make whole groups and
single ones (compiler/codegen/recurrent.c)."""
import torch
import torch.nn as nn

from golden_lib import *  # noqa: F401,F403  (the registry, helpers and references)
from golden_lib import ref_linear
from cases_layers import LSTM, GRU, Additive


# ---- references, float64 ---------------------------------------------------------
def ref_step(kind, wi, wh, bi, bh, x, h, c=None):
    """One step of an LSTM or GRU cell by its equations (PyTorch's gate
    order: i, f, g, o; r, z, n); x [N, in], h, c [N, H]."""
    H = wh.shape[1]
    gi, gh = ref_linear(x, wi, bi), ref_linear(h, wh, bh)
    if kind == "lstm":
        i, f, g, o = ((gi + gh)[:, j * H:(j + 1) * H] for j in range(4))
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c
    r = torch.sigmoid(gi[:, :H] + gh[:, :H])
    z = torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
    return (1 - z) * n + z * h, None


def rnn_params(m, layer, sfx):
    wi = getattr(m, "weight_ih" + sfx)
    zero = torch.zeros(wi.shape[0], dtype=wi.dtype)
    return (wi, getattr(m, "weight_hh" + sfx), getattr(m, "bias_ih" + sfx) if m.bias else zero,
            getattr(m, "bias_hh" + sfx) if m.bias else zero)


def ref_seq(m, x, h0=None, c0=None):
    """nn.LSTM / nn.GRU(batch_first=True) over x [..., T, in] (any leading
    dims) from h0, c0 [L, ..., H] (zeros if None): output, h_n (, c_n)."""
    kind = "lstm" if isinstance(m, nn.LSTM) else "gru"
    lead, T = x.shape[:-2], x.shape[-2]
    N = int(torch.tensor(lead).prod()) if lead else 1
    L, H = m.num_layers, m.hidden_size
    hs = x.reshape(N, T, x.shape[-1])
    z = torch.zeros(L, N, H, dtype=x.dtype)
    h0 = z if h0 is None else h0.reshape(L, N, H)
    c0 = z if c0 is None else c0.reshape(L, N, H)
    hn, cn = [], []
    for layer in range(L):
        p = rnn_params(m, layer, "_l%d" % layer)
        h, c, outs = h0[layer], c0[layer], []
        for t in range(T):
            h, c = ref_step(kind, *p, hs[:, t], h, c)
            outs.append(h)
        hs = torch.stack(outs, 1) if outs else hs.new_zeros(N, 0, H)
        hn.append(h)
        cn.append(c)
    res = [hs.reshape(*lead, T, H), torch.stack(hn).reshape(L, *lead, H)]
    if kind == "lstm":
        res.append(torch.stack(cn).reshape(L, *lead, H))
    return res


def ref_cell(m, x, h=None, c=None):
    """nn.LSTMCell / nn.GRUCell over x [..., in] from h, c [..., H]."""
    kind = "lstm" if isinstance(m, nn.LSTMCell) else "gru"
    lead, H = x.shape[:-1], m.hidden_size
    x2 = x.reshape(-1, x.shape[-1])
    z = torch.zeros(x2.shape[0], H, dtype=x.dtype)
    h = z if h is None else h.reshape(-1, H)
    c = z if c is None else c.reshape(-1, H)
    h1, c1 = ref_step(kind, *rnn_params(m, 0, ""), x2, h, c)
    return (h1.reshape(*lead, H),) if kind == "gru" else (h1.reshape(*lead, H), c1.reshape(*lead, H))


def seq(m, x, h0=None, c0=None):
    """The torch module as the language calls it: every leading dim of x is
    a batch dim (folded into torch's one), the state [L, ..., H]."""
    lead, L, H = x.shape[:-2], m.num_layers, m.hidden_size
    if len(lead) > 1:
        n = int(torch.tensor(lead).prod())
        x = x.reshape(n, *x.shape[-2:])
        h0 = None if h0 is None else h0.reshape(L, n, H)
        c0 = None if c0 is None else c0.reshape(L, n, H)
    state = None if h0 is None else (h0 if c0 is None else (h0, c0))
    out, st = m(x, state)
    st = list(st) if isinstance(st, tuple) else [st]
    res = [out] + st
    if len(lead) > 1:
        res = [out.reshape(*lead, *out.shape[-2:])] + [s.reshape(L, *lead, H) for s in st]
    return res


def LSTMCell(i, h, **kw):
    return randomize(nn.LSTMCell(i, h, **kw))


def GRUCell(i, h, **kw):
    return randomize(nn.GRUCell(i, h, **kw))


def state(*shape):
    return randn(*shape, scale=0.8)


# ===== LSTM and GRU: state in and out ===========================================
@test("lstm_state", "LSTM(5, 7) from a given state: batched [B, T, 5] (B = 3, T = 6) with h0, c0 "
      "[1, 3, 7] positional, unbatched [T, 5] (T = 4) with h0=, c0= [1, 7] keywords; and "
      "h_n, c_n of the zero state (`lstm(x)` bound to three names)")
def _():
    lstm = LSTM(5, 7)
    ins = dict(x=randn(3, 6, 5), h0=state(1, 3, 7), c0=state(1, 3, 7), u=randn(4, 5), hu=state(1, 7),
               cu=state(1, 7))

    def go(f):
        def run(M, P, I):
            m = M["lstm"]
            o, h, c = f(m, I["x"], I["h0"], I["c0"])
            ou, hu, cu = f(m, I["u"], I["hu"], I["cu"])
            _, hz, cz = f(m, I["x"])
            return dict(o=o, h=h, c=c, ou=ou, hun=hu, cun=cu, hz=hz, cz=cz)
        return run
    return Case(ins, go(seq), mods=dict(lstm=lstm), hand=go(ref_seq))


@test("lstm_state3", "LSTM(5, 13, layers=3) from a given state [3, ..., 13]: batched "
      "[B, T, 5] (B = 2, T = 7) and unbatched (T = 5); each layer starts from its own row")
def _():
    lstm = LSTM(5, 13, num_layers=3)
    ins = dict(x=randn(2, 7, 5), h0=state(3, 2, 13), c0=state(3, 2, 13), u=randn(5, 5), hu=state(3, 13),
               cu=state(3, 13))

    def go(f):
        def run(M, P, I):
            o, h, c = f(M["lstm"], I["x"], I["h0"], I["c0"])
            ou, hu, cu = f(M["lstm"], I["u"], I["hu"], I["cu"])
            return dict(o=o, h=h, c=c, ou=ou, hun=hu, cun=cu)
        return run
    return Case(ins, go(seq), mods=dict(lstm=lstm), hand=go(ref_seq))


@test("lstm_state_tiles", "LSTM(6, 64, layers=3) from a given state over [21, 5, 6]: H = 64 "
      "register-blocks each step at every vector width, step 0 reading h0; 21 sequences are "
      "whole groups and single ones; and one unbatched sequence (T = 3)")
def _():
    lstm = LSTM(6, 64, num_layers=3)
    ins = dict(x=randn(21, 5, 6), h0=state(3, 21, 64), c0=state(3, 21, 64), u=randn(3, 6),
               hu=state(3, 64), cu=state(3, 64))

    def go(f):
        def run(M, P, I):
            o, h, c = f(M["lstm"], I["x"], I["h0"], I["c0"])
            ou, hu, cu = f(M["lstm"], I["u"], I["hu"], I["cu"])
            return dict(o=o, h=h, c=c, ou=ou, hun=hu, cun=cu)
        return run
    return Case(ins, go(seq), mods=dict(lstm=lstm), hand=go(ref_seq))


@test("gru_state", "GRU(5, 7) from h0: batched [B, T, 5] (B = 3, T = 6), unbatched (T = 4) with "
      "h0=; rank-4 [2, 2, T, 5] with h0 [1, 2, 2, 7]; h_n of the zero state; and "
      "GRU(4, 13, layers=3) batched from h0 [3, B, 13]")
def _():
    gru, gru3 = GRU(5, 7), GRU(4, 13, num_layers=3)
    ins = dict(x=randn(3, 6, 5), h0=state(1, 3, 7), u=randn(4, 5), hu=state(1, 7), r=randn(2, 2, 3, 5),
               hr=state(1, 2, 2, 7), y=randn(3, 5, 4), hy=state(3, 3, 13))

    def go(f):
        def run(M, P, I):
            g = M["gru"]
            o, h = f(g, I["x"], I["h0"])
            ou, hu = f(g, I["u"], I["hu"])
            orr, hr = f(g, I["r"], I["hr"])
            _, hz = f(g, I["x"])
            oy, hy = f(M["gru3"], I["y"], I["hy"])
            return dict(o=o, h=h, ou=ou, hun=hu, orank4=orr, hrank4=hr, hz=hz, oy=oy, hyn=hy)
        return run
    return Case(ins, go(seq), mods=dict(gru=gru, gru3=gru3), hand=go(ref_seq))


@test("gru_state_tiles", "GRU(6, 64, layers=3) from h0 over [21, 5, 6]: register-blocked steps "
      "(step 0 reads h0, its n part W_hn h0 + b_hn too), whole groups and single sequences")
def _():
    gru = GRU(6, 64, num_layers=3)
    ins = dict(x=randn(21, 5, 6), h0=state(3, 21, 64))

    def go(f):
        def run(M, P, I):
            o, h = f(M["gru"], I["x"], I["h0"])
            return dict(o=o, h=h)
        return run
    return Case(ins, go(seq), mods=dict(gru=gru), hand=go(ref_seq))


@test("rnn_state_chain", "state carried from call to call: LSTM(4, 9, layers=2) and GRU(4, 9, "
      "layers=2) over x1 [B, 3, 4] and then over x2 [B, 5, 4] from the returned state equal "
      "one pass over both (torch on torch.cat); B = 2")
def _():
    lstm, gru = LSTM(4, 9, num_layers=2), GRU(4, 9, num_layers=2)
    ins = dict(x1=randn(2, 3, 4), x2=randn(2, 5, 4))

    def go(f):
        def run(M, P, I):
            x = torch.cat([I["x1"], I["x2"]], 1)
            o, h, c = f(M["lstm"], x)
            g, gh = f(M["gru"], x)
            return dict(o2=o[:, 3:], h2=h, c2=c, g2=g[:, 3:], gh2=gh)
        return run
    return Case(ins, go(seq), mods=dict(lstm=lstm, gru=gru), hand=go(ref_seq))


# ===== cells ===================================================================
@test("cells", "LSTMCell(6, 9) and GRUCell(6, 9): batched [4, 6] from a state (positional and "
      "h=, c=), unbatched [6], and from the zero state (`cell(x)`); LSTMCell(6, 9, bias=false)")
def _():
    lc, gc, lnb = LSTMCell(6, 9), GRUCell(6, 9), LSTMCell(6, 9, bias=False)
    ins = dict(x=randn(4, 6), h=state(4, 9), c=state(4, 9), u=randn(6), hu=state(9), cu=state(9))

    def go(lstm_cell, gru_cell):
        def run(M, P, I):
            lh, lc_ = lstm_cell(M["lcell"], I["x"], I["h"], I["c"])
            uh, uc = lstm_cell(M["lcell"], I["u"], I["hu"], I["cu"])
            zh, zc = lstm_cell(M["lcell"], I["x"])
            g = gru_cell(M["gcell"], I["x"], I["h"])
            gu = gru_cell(M["gcell"], I["u"], I["hu"])
            gz = gru_cell(M["gcell"], I["x"])
            nh, nc = lstm_cell(M["lnb"], I["x"], I["h"], I["c"])
            return dict(lh=lh, lc=lc_, uh=uh, uc=uc, zh=zh, zc=zc, g=g, gu=gu, gz=gz, nh=nh, nc=nc)
        return run

    def t_lstm(m, x, h=None, c=None):
        return m(x, None if h is None else (h, c))

    def t_gru(m, x, h=None):
        return m(x, h)

    def r_gru(m, x, h=None):
        return ref_cell(m, x, h)[0]
    return Case(ins, go(t_lstm, t_gru), mods=dict(lcell=lc, gcell=gc, lnb=lnb), hand=go(ref_cell, r_gru))


@test("cells_tiles", "LSTMCell(10, 64) and GRUCell(10, 64) over [21, 10] from a state: one "
      "register-blocked step reading h (whole groups of sequences and single ones); and "
      "rank 3, [3, 2, 10] with h, c [3, 2, 64]")
def _():
    lc, gc = LSTMCell(10, 64), GRUCell(10, 64)
    ins = dict(x=randn(21, 10), h=state(21, 64), c=state(21, 64), r=randn(3, 2, 10), hr=state(3, 2, 64),
               cr=state(3, 2, 64))

    def go(f):
        def run(M, P, I):
            lh, lc_ = f(M["lcell"], I["x"], (I["h"], I["c"]))
            g = f(M["gcell"], I["x"], I["h"])
            rh, rc = f(M["lcell"], I["r"], (I["hr"], I["cr"]))
            return dict(lh=lh, lc=lc_, g=g, rh=rh, rc=rc)
        return run

    def torch_cell(m, x, hc):
        lead = x.shape[:-1]
        flat = lambda t: t.reshape(-1, t.shape[-1])
        hc2 = tuple(map(flat, hc)) if isinstance(hc, tuple) else flat(hc)
        y = m(flat(x), hc2)
        return tuple(t.reshape(*lead, -1) for t in y) if isinstance(y, tuple) else y.reshape(*lead, -1)

    def ref(m, x, hc):
        r = ref_cell(m, x, *hc) if isinstance(hc, tuple) else ref_cell(m, x, hc)
        return r if len(r) > 1 else r[0]
    return Case(ins, go(torch_cell), mods=dict(lcell=lc, gcell=gc), hand=go(ref))


# ===== the translator's decoder step ==============================================
class DecoderStep(nn.Module):
    """tests/golden/decoder_step.attn: the Bahdanau decoder step of the
    brief's translator: attention of h_{t-1} over the encoder's outputs,
    the context joined to the token's embedding into an LSTMCell, then the
    scores over the vocabulary from h_t and the context."""

    def __init__(self, V, E, H, A):
        super().__init__()
        self.emb, self.att = nn.Embedding(V, E), Additive(H, H, A)
        self.cell, self.out = nn.LSTMCell(E + H, H), nn.Linear(2 * H, V)

    def forward(self, y, h, c, enc):
        a = self.att
        q = h.unsqueeze(-2)
        e = torch.tanh((q @ a.wq.t()).unsqueeze(-2) + (enc @ a.wk.t()).unsqueeze(-3))
        w = torch.softmax(e @ a.v, -1)                    # [B, 1, S]
        ctx = (w @ enc).squeeze(-2)                        # [B, H]
        h1, c1 = self.cell(torch.cat([self.emb(y.long()), ctx], -1), (h, c))
        return self.out(torch.cat([h1, ctx], -1)), h1, c1, w.squeeze(-2)


@test("decoder_step", "the brief's translator decoder step (5.4): AdditiveAttention of the "
      "state over encoder outputs [B, S, 32], LSTMCell(16 + 32, 32) on [embedding, context], "
      "Linear(64, 40) scores; h, c in and out; two steps, the second from the first's "
      "state with new ids; B = 3, S = 7")
def _():
    dec = randomize(DecoderStep(40, 16, 32, 24))
    ins = dict(y=torch.tensor([3, 0, 39], dtype=torch.int32), y2=torch.tensor([7, 7, 1], dtype=torch.int32),
               h=state(3, 32), c=state(3, 32), enc=randn(3, 7, 32))

    def run(M, P, I):
        d = M[""]
        logits, h1, c1, w = d(I["y"], I["h"], I["c"], I["enc"])
        logits2, h2, c2, w2 = d(I["y2"], h1, c1, I["enc"])
        return dict(logits=logits, weights=w, h1=h1, c1=c1, logits2=logits2, h2=h2, c2=c2, weights2=w2)

    def hand(M, P, I):
        d = M[""]
        ctx = ref_additive(d.att.wq, d.att.wk, d.att.v, I["h"].unsqueeze(-2), I["enc"]).squeeze(-2)
        x = torch.cat([d.emb.weight[I["y"].long()], ctx], -1)
        h1, c1 = ref_cell(d.cell, x, I["h"], I["c"])
        return dict(h1=h1, c1=c1, logits=ref_linear(torch.cat([h1, ctx], -1), d.out.weight, d.out.bias))
    return Case(ins, run, mods={"": dec}, hand=hand)


@test("seq2seq_first", "an encoder LSTM(16, 32) over source embeddings [B, S] hands its final "
      "state (h_n[0], c_n[0]) to the decoder step; the encoder outputs are the attention's "
      "keys; B = 2, S = 6")
def _():
    dec = randomize(DecoderStep(40, 16, 32, 24))
    src_emb, encoder = nn.Embedding(50, 16), LSTM(16, 32)
    ins = dict(src=torch.randint(0, 50, (2, 6), dtype=torch.int32), y=torch.tensor([1, 2], dtype=torch.int32))

    def run(M, P, I):
        enc, (h, c) = M["encoder"](M["src_emb"](I["src"].long()))
        logits, h1, c1, w = M[""](I["y"], h[0], c[0], enc)
        return dict(logits=logits, weights=w, h1=h1, c1=c1)
    return Case(ins, run, mods={"": dec, "src_emb": src_emb, "encoder": encoder})
