#!/usr/bin/python3
"""export_weights.py: the weights of the examples, exported from PyTorch.

    /usr/bin/python3 examples/export_weights.py      # writes examples/weights/

For each of encoder, sentiment and tagger it builds the PyTorch model that
the .attn program describes, with a fixed seed (a stand-in for a trained
model), and writes

    weights/NAME.safetensors       model.state_dict(), under the layer names
    weights/NAME.ref.safetensors   the inputs the C program NAME.c makes and
                                   PyTorch's outputs for them (float64,
                                   cast to f32), to check the C program with

This is what a user does with a trained model: the attribute names of the
torch modules are the `layer` names of the .attn file, so the state_dict
keys ("lstm.weight_ih_l0", "score.weight", ...) are the names of the
params attnc expects.  encoder's is the state_dict of a plain
nn.TransformerEncoderLayer, saved as it is.

Needs only torch and numpy: the safetensors format is simple enough to write
by hand (save_safetensors below); with the `safetensors` package installed,
safetensors.torch.save_file(model.state_dict(), path) writes the same
tensors.
"""
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "weights")


def save_safetensors(tensors, path, bf16=False):
    """Write {name: tensor} as safetensors: an 8-byte little-endian header
    length, a JSON header (dtype, shape, byte range of each tensor), then the
    raw little-endian data.  Tensors become contiguous float32, or bfloat16
    with bf16=True (torch rounds to nearest even); int32 stays int32."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        if t.dtype in (torch.int32, torch.int64):
            a, dt = t.numpy().astype("<i4"), "I32"
        elif bf16:
            a, dt = t.to(torch.bfloat16).view(torch.int16).numpy().astype("<i2"), "BF16"
        else:
            a, dt = t.to(torch.float32).numpy().astype("<f4"), "F32"
        raw = a.tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def randomize_biases(model):
    """torch initialises biases to 0 and LayerNorm weights to 1; a trained
    model's are not, so draw them too (every parameter then matters)."""
    with torch.no_grad():
        for sub in model.modules():
            if isinstance(sub, nn.LayerNorm):
                sub.weight.copy_(1.0 + 0.1 * torch.randn_like(sub.weight))
        for n, p in model.named_parameters():
            if n.endswith("bias") or "bias_" in n.rsplit(".", 1)[-1]:
                p.copy_(torch.rand_like(p) * 0.2 - 0.1)
    return model


# ---- the models, as the .attn files describe them -----------------------------
def encoder_model():
    # encoder.attn: D = 256, 8 heads, linear1 = Linear(D, 4*D), post-norm, relu
    return nn.TransformerEncoderLayer(d_model=256, nhead=8, dim_feedforward=1024,
                                      dropout=0.0, batch_first=True)


def encoder_forward(m, x):
    t = x.shape[-2]
    causal = torch.triu(torch.full((t, t), float("-inf"), dtype=x.dtype), diagonal=1)
    return {"y": m(x, src_mask=causal)}


class Sentiment(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(32, 64, batch_first=True)
        self.score = nn.Linear(64, 1)
        self.head = nn.Linear(64, 1)

    def forward(self, x):                       # x: [T, 32]
        h = self.lstm(x)[0]                     # every step's hidden state
        a = torch.softmax(self.score(h), 0)
        return {"p": torch.sigmoid(self.head((a * h).sum(0))), "weights": a}


class AdditiveAttention(nn.Module):
    """Bahdanau attention as attnc has it: score = v . tanh(wq q + wk k)."""

    def __init__(self, qdim, kdim, hidden):
        super().__init__()
        self.wq = nn.Parameter((torch.rand(hidden, qdim) * 2 - 1) / math.sqrt(qdim))
        self.wk = nn.Parameter((torch.rand(hidden, kdim) * 2 - 1) / math.sqrt(kdim))
        self.v = nn.Parameter(torch.rand(hidden) * 2 - 1)

    def forward(self, q, k, v=None):
        v = k if v is None else v
        e = torch.tanh((q @ self.wq.t()).unsqueeze(-2) + (k @ self.wk.t()).unsqueeze(-3))
        return torch.softmax(e @ self.v, -1) @ v


def positional_encoding(t, d):
    pos = torch.arange(t, dtype=torch.float64).unsqueeze(1)
    ang = pos / torch.pow(10000.0, torch.arange(0, d, 2, dtype=torch.float64) / d)
    pe = torch.zeros(t, d, dtype=torch.float64)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(ang), torch.cos(ang)
    return pe


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(128, 9) * 0.1)
        self.emb = nn.Embedding(5000, 128)
        self.gru = nn.GRU(128, 128, batch_first=True)
        self.att = AdditiveAttention(128, 128, 64)

    def forward(self, ids):                     # ids: [T] int
        e = self.emb(ids.long()) + positional_encoding(ids.shape[0], 128).to(self.w.dtype)
        h = self.gru(e)[0]
        return {"tags": (h + self.att(h, h)) @ self.w}


# ---- the inputs the C programs make --------------------------------------------
def lcg(n, seed):
    """The examples' next_value(): a 32-bit LCG, 16 bits of it in [-1, 1)."""
    out, s = [], seed
    for _ in range(n):
        s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
        out.append(s)
    return out


def lcg_floats(n, seed):
    return torch.tensor([((s >> 8) & 0xFFFF) / 32768.0 - 1.0 for s in lcg(n, seed)],
                        dtype=torch.float32)


def lcg_ids(n, seed, vocab):
    return torch.tensor([(s >> 8) % vocab for s in lcg(n, seed)], dtype=torch.int32)


# name: (model, seed, inputs as in NAME.c, forward)
EXAMPLES = {
    "encoder": (encoder_model, 2024, lambda: {"x": lcg_floats(20 * 256, 11).reshape(20, 256)},
                encoder_forward),
    "sentiment": (Sentiment, 2025, lambda: {"x": lcg_floats(12 * 32, 5).reshape(12, 32)},
                  lambda m, x: m(x)),
    "tagger": (Tagger, 2026, lambda: {"ids": lcg_ids(10, 3, 5000)}, lambda m, ids: m(ids)),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, (make, seed, inputs, forward) in EXAMPLES.items():
        torch.manual_seed(seed)
        model = randomize_biases(make()).eval()
        path = os.path.join(OUT, name + ".safetensors")
        save_safetensors(model.state_dict(), path)
        ins = inputs()
        with torch.no_grad():           # the reference, in float64
            m64 = make()
            m64.load_state_dict(model.state_dict())
            m64 = m64.double().eval()
            outs = forward(m64, *(v.double() if v.is_floating_point() else v
                                  for v in ins.values()))
        ref = os.path.join(OUT, name + ".ref.safetensors")
        save_safetensors({**ins, **outs}, ref)
        print("%-10s %-40s %8d bytes, %d tensors; %s" % (
            name, os.path.relpath(path), os.path.getsize(path), len(model.state_dict()),
            ", ".join("%s %s" % (k, list(v.shape)) for k, v in outs.items())))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
