#!/usr/bin/python3
"""gen_bf16.py: the data of the cli case weights-dtype-bf16 (tests/cli/bf16/).

    /usr/bin/python3 tests/cli/gen_bf16.py

bf16.attn's params as an F32 safetensors file (w32.safetensors) and the
same file with every tensor rounded to bf16 by PyTorch
(tensor.to(torch.bfloat16): round to nearest even), stored as BF16
(w16.safetensors); lin.weight and w, the two params attnc --weights-dtype
bf16 stores in bf16, also as raw little-endian bf16 bytes
(lin.weight.bf16, w.bf16), and x.npy.  The f32 values are chosen to round
every way: exact halfway cases (to even, down and up), just above and below
half, negatives, f32 subnormals, values that round up into the next
binade, and one past the largest bf16 that rounds to inf (in w, whose
product's outputs are then inf or NaN where it reaches them).  lin.bias,
which stays f32, holds values bf16 represents exactly, so that both files
mean the same model."""
import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from safetensors_io import write_safetensors  # noqa: E402

OUT = os.path.join(HERE, "bf16")


def f32(bits):
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def main():
    rng = np.random.default_rng(17)
    special = [0x3F808000, 0x3F818000, 0x3F808001, 0x3F807FFF, 0xBF808000, 0xBF818000, 0x3F7FFFFF,
               0x00008000, 0x00018000, 0x80008001, 0x00000001, 0x3EFFFF80, 0x447FFFC0]
    lw = rng.uniform(-0.5, 0.5, (6, 8)).astype(np.float32)
    lw.flat[:len(special)] = [f32(b) for b in special]
    w = rng.uniform(-1, 1, (8, 20)).astype(np.float32)
    w[7, 19] = f32(0x7F7FFFFF)    # FLT_MAX: past the largest bf16, rounds to inf
    # lin.bias stays f32 in the model: its values are bf16 values, so that
    # the file rounded to bf16 holds the same bias
    bias = torch.from_numpy(rng.uniform(-0.3, 0.3, 6).astype(np.float32)).to(torch.bfloat16).float().numpy()
    params = {"lin.weight": lw, "lin.bias": bias, "w": w}
    os.makedirs(OUT, exist_ok=True)
    write_safetensors(os.path.join(OUT, "w32.safetensors"), params)
    as16 = {}
    for k, v in params.items():
        raw = torch.from_numpy(v.copy()).to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tobytes()
        as16[k] = ("BF16", v.shape, raw)
        if k != "lin.bias":
            open(os.path.join(OUT, k + ".bf16"), "wb").write(raw)
    write_safetensors(os.path.join(OUT, "w16.safetensors"), as16)
    np.save(os.path.join(OUT, "x.npy"), rng.uniform(-1, 1, (3, 8)).astype("<f4"))


if __name__ == "__main__":
    main()
