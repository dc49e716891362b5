#!/usr/bin/python3
"""torch_seq2seq_step.py: PyTorch eager doing bench/seq2seq_step.c's step,
for bench/decode.sh.

    /usr/bin/python3 bench/torch_seq2seq_step.py [--check DIR] S...

The model of bench/models/seq2seq_step.attn (Bahdanau additive attention of
the state over S encoder outputs, an LSTMCell(768, 512) fed [embedding,
context], a Linear(512, 8192) to the next token's scores) as a PyTorch
module, eval mode, no_grad, one thread; each step feeds the state it
returned to the next.  Prints one line per S:

    TORCH_S2S <S> <median ms> <reps>

With --check DIR it also writes DIR/weights.safetensors (its state_dict,
the model's param names), the inputs of one step at the first S
(DIR/in.NAME.npy) and its outputs (DIR/out.NAME.npy), for decode.sh to run
attnc on the same weights and compare.
"""
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from safetensors_io import write_safetensors  # noqa: E402

H, E, A, VOCAB = 512, 256, 512, 8192


class Additive(nn.Module):
    """AdditiveAttention(qdim, kdim, hidden) as the language has it: wq
    [hidden, qdim], wk [hidden, kdim], v [hidden], no biases."""

    def __init__(self, qdim, kdim, hidden):
        super().__init__()
        self.wq = nn.Parameter((torch.rand(hidden, qdim) * 2 - 1) / math.sqrt(qdim))
        self.wk = nn.Parameter((torch.rand(hidden, kdim) * 2 - 1) / math.sqrt(kdim))
        self.v = nn.Parameter(torch.rand(hidden) * 2 - 1)

    def forward(self, q, k):
        e = torch.tanh((q @ self.wq.t()).unsqueeze(-2) + (k @ self.wk.t()).unsqueeze(-3))
        w = torch.softmax(e @ self.v, -1)                 # [1, S]
        return w @ k, w


class Step(nn.Module):
    def __init__(self):
        super().__init__()
        self.tgt_emb = nn.Embedding(VOCAB, E)
        self.attn = Additive(H, H, A)
        self.cell = nn.LSTMCell(E + H, H)
        self.out = nn.Linear(H, VOCAB)

    def forward(self, tok, h, c, memory):
        context, w = self.attn(h, memory)
        h2, c2 = self.cell(torch.cat([self.tgt_emb(tok.long()), context], -1), (h, c))
        return self.out(h2), h2, c2, w


def main():
    args = sys.argv[1:]
    check = None
    if args[:1] == ["--check"]:
        check, args = args[1], args[2:]
    torch.set_num_threads(1)
    torch.manual_seed(2027)
    model = Step().eval()
    with torch.no_grad():
        for b in (model.cell.bias_ih, model.cell.bias_hh, model.out.bias):
            b.uniform_(-0.3, 0.3)
    for n, arg in enumerate(args):
        s = int(arg)
        tok = torch.tensor([17], dtype=torch.int32)
        h, c = torch.rand(1, H) - 0.5, torch.rand(1, H) - 0.5
        memory = torch.randn(s, H)
        with torch.no_grad():
            if check and n == 0:
                os.makedirs(check, exist_ok=True)
                write_safetensors(os.path.join(check, "weights.safetensors"),
                                  {k: v.numpy() for k, v in model.state_dict().items()})
                outs = model(tok, h, c, memory)
                for name, x in dict(tok=tok, h=h, c=c, memory=memory).items():
                    np.save(os.path.join(check, "in.%s.npy" % name), x.numpy())
                for name, x in zip(("logits", "h_next", "c_next", "attention"), outs):
                    np.save(os.path.join(check, "out.%s.npy" % name), x.numpy())
            times = []
            for rep in range(52):
                t0 = time.perf_counter()
                logits, h, c, _ = model(tok, h, c, memory)
                times.append(time.perf_counter() - t0)
                tok = torch.tensor([(int(tok[0]) * 31 + 7) % VOCAB], dtype=torch.int32)
        times = sorted(times[1:])
        print("TORCH_S2S %d %.4f %d" % (s, 1e3 * times[len(times) // 2], len(times)))


if __name__ == "__main__":
    main()
