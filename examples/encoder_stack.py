#!/usr/bin/python3
"""encoder_stack.py: the weights and the reference of examples/encoder_stack.

    /usr/bin/python3 examples/encoder_stack.py      # writes examples/weights/encoder_stack*

Builds nn.TransformerEncoder(nn.TransformerEncoderLayer(d_model=64, nhead=4,
dim_feedforward=256, dropout=0.0, batch_first=True), num_layers=6,
norm=nn.LayerNorm(64)) with a fixed seed (a stand-in for a trained model) and
writes

    weights/encoder_stack.safetensors       its state_dict(), unchanged (F32)
    weights/encoder_stack.bf16.safetensors  the same state_dict in bfloat16
                                            (BF16 tensors), as a checkpoint
                                            saved with model.bfloat16()
    weights/encoder_stack.ref.safetensors   the input x the C program makes and
                                            PyTorch's outputs: y for the F32
                                            weights, y_bf16 for the weights
                                            rounded to bfloat16 (both computed
                                            in float64, cast to f32)

The keys are nn.TransformerEncoder's own (layers.0.self_attn.in_proj_weight,
..., norm.weight): encoder_stack.attn declares `layer layers[6] =
EncoderLayer(...)` and `layer norm = LayerNorm(64)`, so the file loads with
no renaming.  examples/encoder_stack.c runs the model on both files and
compares with the reference (examples/run.sh does).
"""
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_weights import lcg_floats, randomize_biases, save_safetensors  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "weights")
T, D = 16, 64


def model():
    layer = nn.TransformerEncoderLayer(d_model=D, nhead=4, dim_feedforward=256, dropout=0.0, batch_first=True)
    enc = nn.TransformerEncoder(layer, num_layers=6, norm=nn.LayerNorm(D))
    # TransformerEncoder copies one layer six times: redraw every matrix so
    # that the layers differ, as a trained model's do
    with torch.no_grad():
        for p in enc.parameters():
            if p.dim() == 2:
                p.copy_(torch.randn_like(p) / p.shape[1] ** 0.5)
    return randomize_biases(enc).eval()


def forward64(state):
    m = model()
    m.load_state_dict(state)
    with torch.no_grad():
        return m.double()(x.double()).float()


if __name__ == "__main__":
    torch.set_num_threads(1)
    torch.manual_seed(2027)
    enc = model()
    state = enc.state_dict()
    x = lcg_floats(T * D, 13).reshape(T, D)            # what encoder_stack.c makes
    os.makedirs(OUT, exist_ok=True)
    save_safetensors(state, os.path.join(OUT, "encoder_stack.safetensors"))
    save_safetensors(state, os.path.join(OUT, "encoder_stack.bf16.safetensors"), bf16=True)
    rounded = {k: v.to(torch.bfloat16).float() for k, v in state.items()}
    save_safetensors({"x": x, "y": forward64(state), "y_bf16": forward64(rounded)},
                     os.path.join(OUT, "encoder_stack.ref.safetensors"))
    for f in ("encoder_stack.safetensors", "encoder_stack.bf16.safetensors", "encoder_stack.ref.safetensors"):
        print("%-34s %8d bytes" % (f, os.path.getsize(os.path.join(OUT, f))))
