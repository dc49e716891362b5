#!/usr/bin/python3
"""make_weights.py: the weights and PyTorch's tokens for examples/generate.

    /usr/bin/python3 examples/generate/make_weights.py

Builds the GPT-style decoder that gpt.attn declares as a PyTorch module (4
pre-norm blocks of nn.MultiheadAttention and a GELU MLP, D = 64, 4 heads,
a vocabulary of 256, 128 positions) with fixed random weights (it trains
nothing: a stand-in for a trained model) and writes

    gpt.safetensors   its state_dict(), unchanged: the keys are the .attn
                      file's parameter names (layers.0.attn.in_proj_weight,
                      ..., head.weight)
    expected.txt      the prompt and the tokens PyTorch generates from it
                      greedily (each step a whole causal pass over every
                      token so far, in float64, no cache), one line each

generate.c runs the same prompt through attnc's code, the prompt in one call
(an empty cache, P = 0) and then one token per call with the cache, and
checks that it picks the same tokens.  The script refuses weights where
some step's best two logits are closer than 1e-3 (relative), so that an
f32 implementation cannot tie-break differently.
"""
import os
import sys

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from export_weights import randomize_biases, save_safetensors  # noqa: E402

D, HEADS, FF, LAYERS, VOCAB, MAXLEN = 64, 4, 256, 4, 256, 128
PROMPT = [17, 200, 3, 99, 42, 7, 128, 64, 5, 250, 31, 77]
NEW = 24


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.attn = nn.MultiheadAttention(D, HEADS, batch_first=True)
        self.fc, self.proj = nn.Linear(D, FF), nn.Linear(FF, D)

    def forward(self, x):
        t = x.shape[-2]
        mask = torch.triu(torch.full((t, t), float("-inf"), dtype=x.dtype), diagonal=1)
        h = self.ln1(x)
        y = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return y + self.proj(nn.functional.gelu(self.fc(self.ln2(y))))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok, self.wpe = nn.Embedding(VOCAB, D), nn.Embedding(MAXLEN, D)
        self.layers = nn.ModuleList([Layer() for _ in range(LAYERS)])
        self.ln_f, self.head = nn.LayerNorm(D), nn.Linear(D, VOCAB)

    def forward(self, ids):
        x = self.tok(ids) + self.wpe(torch.arange(len(ids)))
        for layer in self.layers:
            x = layer(x)
        return self.head(self.ln_f(x))


def generate(model):
    ids, gaps = list(PROMPT), []
    with torch.no_grad():
        for _ in range(NEW):
            logits = model(torch.tensor(ids))[-1]
            top = torch.topk(logits, 2).values
            gaps.append(float((top[0] - top[1]) / top[0].abs().clamp(min=1.0)))
            ids.append(int(torch.argmax(logits)))
    return ids[len(PROMPT):], min(gaps)


def main():
    for seed in range(2026, 2100):
        torch.manual_seed(seed)
        model = randomize_biases(GPT()).eval()
        tokens, gap = generate(model.double())
        if gap > 1e-3:
            break
        print("seed %d: the closest top-2 logits are %.2g apart; trying the next seed" % (seed, gap))
    else:
        raise SystemExit("make_weights.py: no seed gave well-separated logits")
    model = model.float()
    tokens32, _ = generate(model)
    assert tokens32 == tokens, "float32 PyTorch picks other tokens than float64"
    save_safetensors(model.state_dict(), os.path.join(HERE, "gpt.safetensors"))
    with open(os.path.join(HERE, "expected.txt"), "w") as f:
        f.write(" ".join(map(str, PROMPT)) + "\n" + " ".join(map(str, tokens)) + "\n")
    print("seed %d, closest top-2 gap %.3g: %s" % (seed, gap, " ".join(map(str, tokens))))


if __name__ == "__main__":
    main()
