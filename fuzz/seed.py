"""seed.py CORPUS_DIR: hand-made seeds for the npy and safetensors fuzz
targets, in plain Python (no NumPy): every header form the readers accept,
and tensors named and shaped as the targets' models want (fuzz_npy.c: an
input x f32[T, 3, S]; fuzz_safetensors.c: params w f32[2, 3], b f32[3],
ids i32[4], also under the prefix "p.", and in the dtypes the loader
converts), so that the fuzzer starts past the checks."""
import json
import os
import struct
import sys


def npy(dict_text, data, major=1):
    """The npy layout: magic, version, header length, dict, data."""
    head = dict_text.encode()
    pre = 10 if major == 1 else 12
    head += b" " * (-(pre + len(head) + 1) % 64) + b"\n"
    size = struct.pack("<H", len(head)) if major == 1 else struct.pack("<I", len(head))
    return b"\x93NUMPY" + bytes([major, 0]) + size + head + data


def f32(*vals):
    return struct.pack("<%df" % len(vals), *vals)


def st(entries, data, meta=None, pad=True):
    """entries: [(name, dtype, shape, begin, end)] in file order."""
    header = {}
    if meta is not None:
        header["__metadata__"] = meta
    for name, dtype, shape, b, e in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [b, e]}
    h = json.dumps(header).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def main(out):
    n = lambda name, b: open(os.path.join(out, "npy", name), "wb").write(b)
    x = f32(*range(12))
    n("x_2_3_2.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 2), }", x))
    n("x_1_3_1_v2.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 1), }", f32(1, 2, 3), 2))
    n("x_v3_dq.npy", npy('{"descr": "<f4", "fortran_order": False, "shape": (2L, 3L, 2L)}', x, 3))
    n("scalar.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", f32(7)))
    n("empty_0_3_5.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3, 5), }", b""))
    n("ids_i32.npy", npy("{'descr': '<i4', 'fortran_order': False, 'shape': (4,), }", struct.pack("<4i", 1, -2, 3, 2**31 - 1)))
    n("rank4.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 1, 2), }", f32(1, 2, 3, 4)))
    n("keys_reordered.npy", npy("{'shape': (2, 3, 2), 'fortran_order': False, 'descr': '<f4'}", x))
    n("f8.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", struct.pack("<2d", 1, 2)))
    n("fortran.npy", npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3, 2), }", x))

    s = lambda name, b: open(os.path.join(out, "safetensors", name), "wb").write(b)
    w, b, ids = f32(1, 2, 3, 4, 5, 6), f32(7, 8, 9), struct.pack("<4i", 0, 1, 2, 3)
    s("model_params.safetensors", st([("w", "F32", [2, 3], 0, 24), ("b", "F32", [3], 24, 36),
                                      ("ids", "I32", [4], 36, 52)], w + b + ids))
    s("model_params_meta.safetensors", st([("ids", "I32", [4], 0, 16), ("w", "F32", [2, 3], 16, 40),
                                           ("b", "F32", [3], 40, 52), ("extra", "F16", [2], 52, 56)],
                                          ids + w + b + b"\0\x3c\0\x40", meta={"format": "pt"}))
    s("misaligned.safetensors", st([("w", "F32", [2, 3], 1, 25), ("b", "F32", [3], 25, 37),
                                    ("ids", "I32", [4], 37, 53)], b"\x7f" + w + b + ids, pad=False))
    s("escapes.safetensors", st([("w\u00e9\\\"", "F32", [2, 3], 0, 24), ("b", "F32", [3], 24, 36),
                                 ("ids", "I32", [4], 36, 52)], w + b + ids))
    s("scalar_and_empty.safetensors", st([("s", "F32", [], 0, 4), ("e", "F32", [0, 5], 4, 4)], f32(1)))
    s("empty.safetensors", st([], b""))
    h = struct.pack("<6e", 1, -2, 65504, 2.0**-24, float("inf"), float("nan")) + struct.pack("<3e", 0.5, 0, -0.0)
    bf = struct.pack("<6H", 0x3F80, 0xC000, 0x7F7F, 0x0001, 0x7F80, 0x7FC0)
    d = struct.pack("<6d", 0.1, -1e30, 2.0**-150, 3e38, float("-inf"), 1 + 2.0**-24)
    s("converted.safetensors", st([("w", "F16", [2, 3], 0, 12), ("b", "F16", [3], 12, 18),
                                   ("ids", "I32", [4], 20, 36)], h + b"\0\0" + ids))
    s("converted_bf16_f64.safetensors", st([("w", "F64", [2, 3], 0, 48), ("b", "BF16", [3], 48, 54),
                                            ("ids", "I32", [4], 56, 72)], d + bf[:6] + b"\0\0" + ids))
    s("converted_misaligned.safetensors", st([("b", "BF16", [3], 0, 6), ("w", "F64", [2, 3], 6, 54),
                                              ("ids", "I32", [4], 56, 72)], bf[:6] + d + b"\0\0" + ids))
    s("prefixed.safetensors", st([("q.x", "F32", [1], 0, 4), ("p.w", "BF16", [2, 3], 4, 16),
                                  ("p.b", "F32", [3], 16, 28), ("p.ids", "I32", [4], 28, 44),
                                  ("p.extra", "F16", [1], 44, 46)], f32(1) + bf + b + ids + b"\0\x3c"))
    s("wrong_shape.safetensors", st([("w", "F32", [3, 2], 0, 24), ("b", "F32", [3], 24, 36),
                                     ("ids", "F32", [4], 36, 52)], w + b + ids))


if __name__ == "__main__":
    main(sys.argv[1])
