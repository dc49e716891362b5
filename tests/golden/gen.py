#!/usr/bin/python3
"""gen.py: golden data for the PyTorch-oracle tests (tests/golden/).

    /usr/bin/python3 tests/golden/gen.py           # (re)write every tests/golden/NAME/
    /usr/bin/python3 tests/golden/gen.py NAME...   # only these tests
    /usr/bin/python3 tests/golden/gen.py --list    # the tests and what they cover

The cases are in cases_layers.py (the brief's programs, every layer and
function), cases_blocks.py (blocks, layer arrays, several results,
views) and cases_recurrent.py (recurrent state in and out, cells, a
decoder step), on the registry, helpers and references of golden_lib.py.

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


from golden_lib import TESTS, DEFAULT_TOL, HERE, ROOT  # noqa: E402
import cases_layers  # noqa: E402,F401  (registers the cases)
import cases_blocks  # noqa: E402,F401
import cases_masks  # noqa: E402,F401
import cases_recurrent  # noqa: E402,F401

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
    "LSTMCell": ["in", "hidden", "bias"], "GRUCell": ["in", "hidden", "bias"],
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
    if kind in ("LSTM", "GRU", "LSTMCell", "GRUCell"):
        g, h, out = 4 if kind.startswith("LSTM") else 3, ev("hidden"), []
        cell = kind.endswith("Cell")   # nn.LSTMCell's names have no _l0
        for layer in range(ev("layers", 1)):
            inn, sfx = ev("in") if layer == 0 else h, "" if cell else "_l%d" % layer
            out += [p("weight_ih" + sfx, g * h, inn), p("weight_hh" + sfx, g * h, h)]
            if bias:
                out += [p("bias_ih" + sfx, g * h), p("bias_hh" + sfx, g * h)]
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


LAYER_TYPES = ("Linear", "LayerNorm", "Embedding", "LSTM", "GRU", "LSTMCell", "GRUCell", "MultiheadAttention",
               "AdditiveAttention")


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

