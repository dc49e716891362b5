#!/usr/bin/python3
"""gen.py: checkpoints as PyTorch saves them, for tests/checkpoints/.

    /usr/bin/python3 tests/checkpoints/gen.py

Needs PyTorch (Debian's python3-torch, hence /usr/bin/python3) and NumPy; the
data it writes is committed, so building and running the tests needs
neither.

torch_prefix.attn is an nn.Linear and an nn.LayerNorm.  Here they are the
`encoder` of a bigger module, with layers before and after it, so its
state_dict has the keys

    embed.weight embed.bias encoder.proj.weight encoder.proj.bias
    encoder.norm.weight encoder.norm.bias head.weight head.bias

and attnc binds the model with --weights-prefix encoder.  The whole
state_dict is saved three times, as a user would save it: in float32,
float16 (net.half()) and bfloat16 (net.to(torch.bfloat16)), written as
safetensors by hand (torch 1.13 has no safetensors package; see
tests/safetensors_io.py).  For each, the expected output is the encoder
run by torch in float32 on the weights as saved (each rounded to the
dtype and back), so attnc, which converts the weights to f32 exactly, must
match it to 1e-5.  torch_prefix/:

    in.x.npy                       the input, f32[5, 8]
    weights.DTYPE.safetensors      DTYPE in f32, f16, bf16
    out.DTYPE.y.npy                the expected output

gen.py checks that the rounding matters: each reduced-precision expectation
differs from the float32 one by far more than the tolerance, so a loader
that did not convert, or converted wrongly, cannot pass.  A hand-written
reference (x W^T + b, tanh, LayerNorm with eps 1e-5) in float64 must agree
with torch to 1e-5.
"""
import os
import sys
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from safetensors_io import read_safetensors, write_safetensors  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

TOL = 1e-5


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 6)
        self.norm = nn.LayerNorm(6)

    def forward(self, x):
        return self.norm(torch.tanh(self.proj(x)))


class Net(nn.Module):
    """The bigger module: only its encoder is torch_prefix.attn."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(3, 8)
        self.encoder = Encoder()
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        return self.head(self.encoder(self.embed(x)))


def raw(t, dtype):
    """A tensor's little-endian bytes as safetensors stores dtype."""
    if dtype == "F32":
        return ("F32", tuple(t.shape), t.float().numpy().astype("<f4").tobytes())
    if dtype == "F16":
        return ("F16", tuple(t.shape), t.half().numpy().astype("<f2").tobytes())
    # NumPy has no bfloat16: its bits through an int16 view
    return ("BF16", tuple(t.shape), t.to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tobytes())


def hand_reference(sd, x):
    """The encoder written out in float64: LayerNorm(tanh(x W^T + b))."""
    w, b = sd["encoder.proj.weight"].double().numpy(), sd["encoder.proj.bias"].double().numpy()
    g, beta = sd["encoder.norm.weight"].double().numpy(), sd["encoder.norm.bias"].double().numpy()
    h = np.tanh(x.double().numpy() @ w.T + b)
    mu = h.mean(axis=-1, keepdims=True)
    var = ((h - mu) ** 2).mean(axis=-1, keepdims=True)
    return (h - mu) / np.sqrt(var + 1e-5) * g + beta


def write_npy(path, a):
    a = np.array(a, dtype="<f4", order="C")
    np.save(path, a, allow_pickle=False)


def main():
    torch.manual_seed(zlib.crc32(b"torch_prefix"))
    net = Net().eval()
    with torch.no_grad():
        # torch starts LayerNorm at 1 and 0: redraw, so that a wrong
        # weight or bias cannot pass unseen
        net.encoder.norm.weight.copy_(1.0 + 0.3 * torch.randn(6))
        net.encoder.norm.bias.copy_(0.2 * torch.randn(6))
        net.encoder.proj.bias.copy_(torch.rand(6) * 0.6 - 0.3)
    x = torch.randn(5, 8)
    out = os.path.join(HERE, "torch_prefix")
    os.makedirs(out, exist_ok=True)
    write_npy(os.path.join(out, "in.x.npy"), x.numpy())
    expected = {}
    for name, dtype, tdtype in (("f32", "F32", torch.float32), ("f16", "F16", torch.float16),
                                ("bf16", "BF16", torch.bfloat16)):
        sd = net.state_dict()
        path = os.path.join(out, "weights.%s.safetensors" % name)
        write_safetensors(path, {k: raw(v, dtype) for k, v in sd.items()}, metadata={"format": "pt"})
        # the model as saved: every weight rounded to the dtype, then back
        saved = Encoder().eval()
        saved.load_state_dict({k[len("encoder."):]: v.to(tdtype).float()
                               for k, v in sd.items() if k.startswith("encoder.")})
        with torch.no_grad():
            y = saved(x)
        ref = hand_reference({"encoder." + k: v for k, v in saved.state_dict().items()}, x)
        assert np.allclose(y.numpy(), ref, atol=TOL, rtol=TOL), (name, np.abs(y.numpy() - ref).max())
        expected[name] = y.numpy()
        write_npy(os.path.join(out, "out.%s.y.npy" % name), y.numpy())
        if dtype == "F32":
            back = read_safetensors(path)
            assert all(np.array_equal(back[k], v.numpy()) for k, v in sd.items()), path
    for name in ("f16", "bf16"):
        gap = np.abs(expected[name] - expected["f32"]).max()
        assert gap > 20 * TOL, (name, gap)
        print("%s: differs from f32 by up to %.3g (tolerance %g)" % (name, gap, TOL))


if __name__ == "__main__":
    main()
