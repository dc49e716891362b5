#!/usr/bin/python3
"""torch_bench.py: the PyTorch rows of the attnc benchmark.

    bench --list [--quick] > cases.tsv
    bench --group G --dump DATA ...          # attnc's inputs, params, outputs
    /usr/bin/python3 bench/torch_bench.py cases.tsv [--data DATA] [--quick]
                                          [--only PAT] [--group G] [--reps N]

Reads the cases (name, group, kind, shape, FLOPs) that the C program
`bench` lists, so both sides time the same shapes under the same names,
and prints one line per case in bench's format:

    ROW <case> torch <median ms> <GFLOP/s> <peak RSS> <max|diff|> <reps> <note>

PyTorch runs on one thread (torch.set_num_threads(1)), in eval mode under
torch.no_grad().  The computations are written the way a PyTorch user
would: torch.matmul and softmax for attention (torch 1.13 has no fused
attention kernel), the nn modules for the rest.

With --data (bench --dump's directory), each case runs on exactly the
inputs and weights that attnc ran on (loaded into the nn modules by their
PyTorch names, which are the .attn param names), and its result is
checked against attnc's output like bench.c checks its baselines: a
MISMATCH makes the exit status 1.  Without it, torch uses its own random
data of the same shapes and nothing is checked.

Timing follows bench.c: untimed warm-up calls, then repetitions whose
number comes from a time budget, and the median.
"""
import ctypes
import fnmatch
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn


def parse_args(argv):
    opt = {"cases": None, "data": None, "quick": False, "only": None, "group": None, "reps": 0, "attnc": None}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--quick":
            opt["quick"] = True
        elif a in ("--only", "--group", "--reps", "--data", "--attnc") and i + 1 < len(argv):
            opt[a[2:]] = int(argv[i + 1]) if a == "--reps" else argv[i + 1]
            i += 1
        elif opt["cases"] is None and not a.startswith("-"):
            opt["cases"] = a
        else:
            sys.exit("usage: torch_bench.py CASES.tsv [--data DIR] [--attnc SO] [--quick] [--only PAT] [--group G] [--reps N]")
        i += 1
    if opt["cases"] is None:
        sys.exit("torch_bench.py: the case list (bench --list) is required")
    return opt


def matches(name, pat):
    """As bench.c: a pattern with a glob character is a glob, else a substring."""
    if not pat:
        return True
    if any(c in pat for c in "*?["):
        return fnmatch.fnmatchcase(name, pat)
    return pat in name


def read_cases(path):
    cases = []
    with open(path) as f:
        for line in f:
            name, group, kind, shape, flops = line.rstrip("\n").split("\t")
            s = {k: int(v) for k, v in (kv.split("=") for kv in shape.split())}
            cases.append({"name": name, "group": group, "kind": kind, "flops": float(flops), **s})
    return cases


def load_case(data_dir, name):
    """bench --dump's files for one case: {"input": {name: tensor}, "param":
    {...}, "output": {...}}, or None if there are none."""
    d = os.path.join(data_dir, name) if data_dir else None
    if not d or not os.path.isdir(d):
        return None
    got = {"input": {}, "param": {}, "output": {}}
    for f in sorted(os.listdir(d)):
        kind, rest = f.split(".", 1)
        if kind in got and rest.endswith(".npy"):
            got[kind][rest[:-4]] = torch.from_numpy(np.load(os.path.join(d, f)))
    return got


def load_weights(module, params, prefix=""):
    """Copy attnc's params into module: the .attn param `prefix + k` is the
    module's state_dict key k (PyTorch's names, as bench/models declare)."""
    sd = {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}
    module.load_state_dict(sd, strict=True)


def make_fn(c, data):
    """(fn, want): fn runs case c once, with inputs, module and mask built
    outside the timed call; want is attnc's output to check fn()'s against,
    or None without data.  (None, None) if torch has no row for this case."""
    g = torch.Generator().manual_seed(42)

    def inp(name, *shape):
        """attnc's input `name` if bench dumped it, else random data."""
        if data:
            return data["input"][name]
        return torch.rand(*shape, generator=g) * 2 - 1

    want = next(iter(data["output"].values())) if data else None
    kind = c["kind"]
    if kind == "attn":
        if c["group"] == "long":
            return None, None  # the 16384-long head: attnc vs OpenBLAS only
        H, T = c["H"], c["T"]
        q, k, v = inp("q", H, T, 64), inp("k", H, T, 64), inp("v", H, T, 64)
        scale = 1.0 / 8.0
        if c["causal"]:
            mask = torch.triu(torch.full((T, T), float("-inf")), diagonal=1)
            return (lambda: torch.matmul(torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * scale + mask, -1), v)), want
        return (lambda: torch.matmul(torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * scale, -1), v)), want
    if kind == "gemm":
        n = c["M"]
        a, b = inp("a", n, n), inp("b", n, n)
        return (lambda: torch.matmul(a, b)), want
    if kind == "linear":
        m, x = nn.Linear(1024, 1024).eval(), inp("x", c["M"], 1024)
        if data:
            load_weights(m, data["param"], "fc.")
        return (lambda: m(x)), want
    if kind == "mlp":
        m = nn.Sequential(nn.Linear(512, 2048), nn.GELU(), nn.Linear(2048, 512)).eval()
        x = inp("x", c["M"], 512)
        if data:  # bench/models/mlp.attn's fc1, fc2 are the Sequential's 0 and 2
            p = data["param"]
            load_weights(m, {"0." + k[4:]: v for k, v in p.items() if k.startswith("fc1.")} |
                         {"2." + k[4:]: v for k, v in p.items() if k.startswith("fc2.")})
        return (lambda: m(x)), want
    if kind in ("lstm", "gru"):
        cls = nn.LSTM if kind == "lstm" else nn.GRU
        m = cls(c["in"], c["Hd"], batch_first=True).eval()
        x = inp("x", c["B"], c["T"], c["in"])
        if data:
            load_weights(m, data["param"], "rnn.")
        return (lambda: m(x)[0]), want
    if kind == "encoder":
        # examples/encoder.attn: D = 256, 8 heads, FF 4*D = 1024, relu,
        # post-norm, causal self-attention (a float -inf mask, as in
        # examples/export_weights.py).  Its params are named as this
        # module's state_dict.
        T = c["M"]
        m = nn.TransformerEncoderLayer(d_model=256, nhead=8, dim_feedforward=1024,
                                       dropout=0.0, batch_first=True).eval()
        if data:
            load_weights(m, data["param"])
        x = inp("x", T, 256).unsqueeze(0)
        mask = torch.triu(torch.full((T, T), float("-inf")), diagonal=1)
        return (lambda: m(x, src_mask=mask)[0]), want
    raise SystemExit(f"torch_bench.py: unknown case kind {kind}")


def attnc_model(c):
    """The model of bench/models (or examples/encoder.attn) a case runs."""
    kind = c["kind"]
    if kind == "attn":
        return "sdpa_causal" if c["causal"] else "sdpa"
    if kind in ("lstm", "gru"):
        return "%s%d" % (kind, c["Hd"])
    return kind


def attnc_fn(lib, c, data):
    """attnc on the dumped inputs and params, through bench/attnc_shim.c
    (attnc_models.so): a function that runs it once, and its output; None
    without a shim or data, or when the shim fails (said on stderr)."""
    if lib is None or not data:
        return None, None
    h = lib.shim_open(attnc_model(c).encode(), 1)
    if not h:
        print("torch_bench.py: attnc_models.so has no model for " + c["name"], file=sys.stderr)
        return None, None
    keep = []

    def arr(t):
        a = np.ascontiguousarray(t.numpy(), dtype=np.float32)
        keep.append(a)
        dims = (ctypes.c_int64 * max(1, a.ndim))(*a.shape)
        keep.append(dims)
        return a.ctypes.data_as(ctypes.c_void_p), a.ndim, dims

    st = 0
    for i in range(lib.shim_count(h, 0)):
        name = lib.shim_name(h, 0, i)
        st = st or lib.shim_param(h, name, *arr(data["param"][name.decode()]))
    for i in range(lib.shim_count(h, 1)):
        st = st or lib.shim_input(h, i, *arr(data["input"][lib.shim_name(h, 1, i).decode()]))
    outs = []
    for i in range(lib.shim_count(h, 2)):
        o = np.empty(data["output"][lib.shim_name(h, 2, i).decode()].shape, dtype=np.float32)
        outs.append(o)
        st = st or lib.shim_output(h, i, o.ctypes.data_as(ctypes.c_void_p))
    keep.extend(outs)  # the shim writes every output, each run
    if st:
        print("torch_bench.py: attnc shim: " + (lib.shim_error(h) or b"").decode(), file=sys.stderr)
        return None, None

    def run():
        if lib.shim_run(h) != 0:
            raise SystemExit("torch_bench.py: attnc shim: " + (lib.shim_error(h) or b"").decode())
        return keep  # the buffers live as long as the function

    return run, outs[0]


def load_shim(path):
    if not path:
        return None
    lib = ctypes.CDLL(path)
    lib.shim_open.restype = ctypes.c_void_p
    lib.shim_open.argtypes = [ctypes.c_char_p, ctypes.c_int]
    lib.shim_name.restype = ctypes.c_char_p
    lib.shim_name.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    lib.shim_error.restype = ctypes.c_char_p
    lib.shim_error.argtypes = [ctypes.c_void_p]
    for f in ("shim_count", "shim_param", "shim_input", "shim_output", "shim_run"):
        getattr(lib, f).restype = ctypes.c_int
    lib.shim_count.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.shim_param.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    lib.shim_input.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    lib.shim_output.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    lib.shim_run.argtypes = [ctypes.c_void_p]
    return lib


def median(times):
    times = sorted(times)
    n = len(times)
    return times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])


def check(got, want):
    """bench.c's rule: |got - want| <= 1e-3 |want| + 1e-4 max|want|."""
    got, want = got.double(), want.double()
    d = (got - want).abs()
    ok = bool(torch.all(d <= 1e-3 * want.abs() + 1e-4 * want.abs().max()))
    dmax = float(d.max()) if not torch.isnan(d).any() else float("inf")
    return dmax, ok and not torch.isnan(d).any()


def reps_for(first, opt):
    """bench.c's rule: a time budget per implementation and case."""
    if opt["reps"] > 0:
        return opt["reps"]
    budget = 0.25 if opt["quick"] else 2.5
    hi, lo = (3 if opt["quick"] else 9), (1 if first > budget else 3)
    return max(lo, min(hi, int(budget / max(first, 1e-6))))


def main():
    opt = parse_args(sys.argv[1:])
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cases = [c for c in read_cases(opt["cases"])
             if (not opt["group"] or c["group"] == opt["group"]) and matches(c["name"], opt["only"])]
    # Bring the CPU to its clock before anything is timed (as bench.c).
    end = time.perf_counter() + 0.3
    x = 1.0
    while time.perf_counter() < end:
        for _ in range(1000):
            x = x * 1.0000001 + 1e-9
    failed = False
    lib = load_shim(opt["attnc"])
    with torch.no_grad():
        for c in cases:
            data = load_case(opt["data"], c["name"])
            fn, want = make_fn(c, data)
            if fn is None:
                continue
            afn, aout = attnc_fn(lib, c, data)
            if afn is not None:
                afn()
                dmax, ok = check(torch.from_numpy(aout), want)
                if not ok:  # the same code the C process ran: a broken shim
                    print(f"torch_bench.py: attnc through the shim differs from bench's attnc by {dmax:.3g} "
                          f"in {c['name']}: no side-by-side timing", file=sys.stderr)
                    afn = None
            # Warm-up as bench.c: untimed calls for a short while (at least
            # one); the last one's time sets the repetitions.
            warm, start = (0.05 if opt["quick"] else 0.2), time.perf_counter()
            while True:
                t0 = time.perf_counter()
                out = fn()
                last = time.perf_counter() - t0
                if time.perf_counter() - start >= warm:
                    break
            diff, note = "", ""
            if want is not None:
                dmax, ok = check(out.reshape(want.shape), want)
                diff = f"{dmax:.2g}"
                if not ok:
                    note = "MISMATCH "
                    failed = True
                    print(f"torch_bench.py: MISMATCH in {c['name']}: torch differs from attnc "
                          f"by up to {dmax:.3g}", file=sys.stderr)
            reps = reps_for(last, opt)
            # Round robin with attnc when the shim is there, as bench.c does
            # with its own implementations.
            times, atimes = [], []
            for _ in range(reps):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
                if afn is not None:
                    t0 = time.perf_counter()
                    afn()
                    atimes.append(time.perf_counter() - t0)
            med = median(times)
            ms = med * 1e3
            gf = c["flops"] / med / 1e9 if c["flops"] > 0 else 0.0
            side = ""
            if atimes:
                # per-round ratios, as bench.c: robust to the clock's phases
                side = f"{median([t / a for t, a in zip(times, atimes)]):.4f}"
                note += f"side by side: attnc {median(atimes) * 1e3:.2f} ms"
            print(f"ROW\t{c['name']}\ttorch\t{ms:.3f}\t{gf:.2f}\t\t{diff}\t{reps}\t{note}\t{side}", flush=True)
    if failed:
        sys.exit(1)

if __name__ == "__main__":
    main()
