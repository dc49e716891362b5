#!/usr/bin/python3
"""torch_decode.py: PyTorch eager doing bench/decode.c's step, for
bench/decode.sh.

    /usr/bin/python3 bench/torch_decode.py [--bf16] P...

The model of bench/models/decode.attn (4 pre-norm layers, D = 512, 8
heads, FF 2048, vocabulary 8192) as a PyTorch module, eval mode, no_grad,
one thread: a step takes one token and the caches of P earlier positions,
grows each layer's caches with torch.cat (as Hugging Face's GPT-2 and
PyTorch tutorials do), attends with matmul + softmax + matmul (torch 1.13
has no fused attention) and returns the logits and the new caches.  Prints
one line per P:

    TORCH <P> <median ms> <reps>

With --bf16 the whole model and the caches are bfloat16 (model.to(
torch.bfloat16), as one runs a bf16 model in PyTorch), and the lines say
TORCH_BF16.
"""
import sys
import time

import torch
import torch.nn as nn

D, HEADS, FF, LAYERS, VOCAB = 512, 8, 2048, 4, 8192


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.qkv, self.out = nn.Linear(D, 3 * D), nn.Linear(D, D)
        self.fc, self.proj = nn.Linear(D, FF), nn.Linear(FF, D)

    def forward(self, x, pk, pv):
        h = self.ln1(x)
        q, k, v = self.qkv(h).split(D, dim=-1)
        k, v = torch.cat([pk, k], dim=0), torch.cat([pv, v], dim=0)
        t, s, dh = q.shape[0], k.shape[0], D // HEADS
        qh = q.view(t, HEADS, dh).transpose(0, 1)
        kh, vh = k.view(s, HEADS, dh).transpose(0, 1), v.view(s, HEADS, dh).transpose(0, 1)
        scores = qh @ kh.transpose(-1, -2) / dh ** 0.5      # one new token sees every cached one
        a = (torch.softmax(scores, -1) @ vh).transpose(0, 1).reshape(t, D)
        y = x + self.out(a)
        return y + self.proj(nn.functional.gelu(self.fc(self.ln2(y)))), k, v


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok, self.wpe = nn.Embedding(VOCAB, D), nn.Embedding(VOCAB, D)
        self.layers = nn.ModuleList([Layer() for _ in range(LAYERS)])
        self.ln_f, self.head = nn.LayerNorm(D), nn.Linear(D, VOCAB)

    def forward(self, ids, pos, caches):
        x = self.tok(ids) + self.wpe(pos)
        out = []
        for layer, (pk, pv) in zip(self.layers, caches):
            x, k, v = layer(x, pk, pv)
            out.append((k, v))
        return self.head(self.ln_f(x)), out


def main():
    torch.set_num_threads(1)
    torch.manual_seed(2026)
    bf16 = "--bf16" in sys.argv[1:]
    dtype = torch.bfloat16 if bf16 else torch.float32
    model = Decoder().eval().to(dtype)
    for arg in (a for a in sys.argv[1:] if a != "--bf16"):
        p = int(arg)
        caches = [(torch.randn(p, D, dtype=dtype), torch.randn(p, D, dtype=dtype)) for _ in range(LAYERS)]
        ids, pos = torch.tensor([17]), torch.tensor([p])
        times = []
        with torch.no_grad():
            for rep in range(26):
                t0 = time.perf_counter()
                model(ids, pos, caches)
                times.append(time.perf_counter() - t0)
        times = sorted(times[1:])
        print("%s %d %.4f %d" % ("TORCH_BF16" if bf16 else "TORCH", p, 1e3 * times[len(times) // 2], len(times)))


if __name__ == "__main__":
    main()
