#!/usr/bin/python3
"""gen_conversions.py: the expected f32 bits of test_convert.c, from oracles
other than the runtime: NumPy's float16 -> float32 and float64 -> float32
casts, and PyTorch's bfloat16 -> float32.

    /usr/bin/python3 tests/runtime/gen_conversions.py > tests/runtime/conversions.h

Needs NumPy and PyTorch (Debian's python3-numpy and python3-torch); the
header it writes is committed, so building and running the tests needs
neither.  Each case is a source bit pattern and the f32 bits the oracle
makes of it; the comment says what the case is for.

Every f16 and bf16 value is an f32 value, so those conversions are exact,
NaN payloads included (a signalling NaN stays signalling: NumPy widens it
so, as the runtime does; PyTorch's half -> float quiets it, so the two
oracles are compared on everything but NaN).  F64 rounds to nearest, ties
to even; the values that would round to inf, which the runtime refuses, are
test_convert.c's own cases.
"""
import math
import struct
import sys

import numpy as np
import torch


def f32_bits(x):
    return int(np.array([x], dtype=np.float32).view(np.uint32)[0])


def f16_case(bits, why):
    h = np.array([bits], dtype=np.uint16).view(np.float16)
    out = int(h.astype(np.float32).view(np.uint32)[0])
    # a second oracle: PyTorch's half -> float
    t = torch.tensor([bits - 65536 if bits >= 32768 else bits], dtype=torch.int16)
    out2 = int(t.view(torch.float16).float().numpy().view(np.uint32)[0])
    assert out == out2 or math.isnan(h[0]), (hex(bits), hex(out), hex(out2))
    return bits, out, why


def bf16_case(bits, why):
    t = torch.tensor([bits - 65536 if bits >= 32768 else bits], dtype=torch.int16)
    out = int(t.view(torch.bfloat16).float().numpy().view(np.uint32)[0])
    return bits, out, why


def f64_case(value_or_bits, why):
    if isinstance(value_or_bits, int):
        bits = value_or_bits
    else:
        bits = struct.unpack("<Q", struct.pack("<d", value_or_bits))[0]
    d = np.array([bits], dtype=np.uint64).view(np.float64)
    with np.errstate(over="raise", invalid="ignore"):
        out = int(d.astype(np.float32).view(np.uint32)[0])
    return bits, out, why


F16 = [
    f16_case(0x0000, "+0"),
    f16_case(0x8000, "-0"),
    f16_case(0x3C00, "1"),
    f16_case(0xC000, "-2"),
    f16_case(0x3555, "0.333251953125, the f16 nearest 1/3"),
    f16_case(0x7BFF, "65504, the largest f16"),
    f16_case(0xFBFF, "-65504"),
    f16_case(0x0400, "2^-14, the smallest normal"),
    f16_case(0x8400, "-2^-14"),
    f16_case(0x03FF, "1023 * 2^-24, the largest subnormal"),
    f16_case(0x0200, "2^-15, a subnormal"),
    f16_case(0x0155, "341 * 2^-24, a subnormal of alternating bits"),
    f16_case(0x0001, "2^-24, the smallest subnormal"),
    f16_case(0x8001, "-2^-24"),
    f16_case(0x7C00, "+inf"),
    f16_case(0xFC00, "-inf"),
    f16_case(0x7E00, "the quiet NaN"),
    f16_case(0xFE00, "a negative quiet NaN"),
    f16_case(0x7E55, "a quiet NaN with a payload: widened"),
    f16_case(0x7C01, "a signalling NaN: widened as it is, still signalling"),
]

BF16 = [
    bf16_case(0x0000, "+0"),
    bf16_case(0x8000, "-0"),
    bf16_case(0x3F80, "1"),
    bf16_case(0xC040, "-3"),
    bf16_case(0x3DCD, "0.10009765625, the bf16 nearest 0.1"),
    bf16_case(0x7F7F, "the largest bf16, 0x1.fep127"),
    bf16_case(0xFF7F, "the most negative bf16"),
    bf16_case(0x0080, "2^-126, the smallest normal"),
    bf16_case(0x007F, "the largest subnormal"),
    bf16_case(0x0001, "2^-133, the smallest subnormal"),
    bf16_case(0x8001, "-2^-133"),
    bf16_case(0x7F80, "+inf"),
    bf16_case(0xFF80, "-inf"),
    bf16_case(0x7FC0, "the quiet NaN"),
    bf16_case(0x7FC1, "a quiet NaN with a payload"),
    bf16_case(0x7F81, "a signalling NaN: PyTorch shifts it as it is"),
]

F64 = [
    f64_case(0.0, "+0"),
    f64_case(-0.0, "-0"),
    f64_case(1.0, "1"),
    f64_case(0.1, "0.1: rounds up to 0x3dcccccd"),
    f64_case(-1 / 3, "-1/3: rounds down in magnitude"),
    f64_case(math.pi, "pi"),
    f64_case(1 + 2.0**-24, "1 + 2^-24, a tie: to the even 1"),
    f64_case(1 + 3 * 2.0**-24, "1 + 3 * 2^-24, a tie: to the even 1 + 2^-22"),
    f64_case(1 + 2.0**-24 + 2.0**-52, "just above the tie 1 + 2^-24: up"),
    f64_case(1 - 2.0**-25, "1 - 2^-25, a tie below 1: to the even 1"),
    f64_case(-(1 + 2.0**-24), "-(1 + 2^-24): ties to even in magnitude"),
    f64_case(float(np.finfo(np.float32).max), "FLT_MAX, exact"),
    f64_case(0x47EFFFFFEFFFFFFF, "just below FLT_MAX + half an ulp: FLT_MAX"),
    f64_case(0xC7EFFFFFEFFFFFFF, "its negative: -FLT_MAX"),
    f64_case(1e30, "1e30"),
    f64_case(2.0**-126, "2^-126, the smallest f32 normal"),
    f64_case(2.0**-149, "2^-149, the smallest f32 subnormal"),
    f64_case(2.0**-150, "2^-150, a tie: to the even 0"),
    f64_case(-(2.0**-150), "-2^-150: to -0"),
    f64_case(2.0**-150 + 2.0**-200, "just above 2^-150: up to 2^-149"),
    f64_case(3 * 2.0**-150, "3 * 2^-150, a tie: to the even 2^-148"),
    f64_case(1e-50, "1e-50: below every f32, 0"),
    f64_case(math.inf, "+inf"),
    f64_case(-math.inf, "-inf"),
    f64_case(0x7FF8000000000000, "the quiet NaN"),
    f64_case(0xFFF8000000000000, "a negative quiet NaN"),
    f64_case(0x7FF8000020000000, "a quiet NaN with a payload: its top bits kept"),
]


def main(out):
    w = out.write
    w("/* conversions.h: written by gen_conversions.py (NumPy %s, PyTorch %s);\n"
      " * do not edit.  Source bits, the f32 bits the oracle made of them, and what\n"
      " * the case is for. */\n" % (np.__version__, torch.__version__))
    w("#ifndef ATTNRT_TEST_CONVERSIONS_H\n#define ATTNRT_TEST_CONVERSIONS_H\n\n#include <stdint.h>\n\n")
    w("typedef struct conv16 { uint16_t in; uint32_t out; const char *why; } conv16;\n")
    w("typedef struct conv64 { uint64_t in; uint32_t out; const char *why; } conv64;\n\n")
    for name, cases, kind, width in (("F16_CASES", F16, "conv16", 4), ("BF16_CASES", BF16, "conv16", 4),
                                     ("F64_CASES", F64, "conv64", 16)):
        w("static const %s %s[] = {\n" % (kind, name))
        for a, b, why in cases:
            w('  {0x%0*X, 0x%08X, "%s"},\n' % (width, a, b, why))
        w("};\n\n")
    w("#endif\n")


if __name__ == "__main__":
    main(sys.stdout)
