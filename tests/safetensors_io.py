"""safetensors by hand, for the test-data generators (tests/run/gen.py,
tests/golden/gen.py), which must not need the `safetensors` package:
u64 little-endian header length, a JSON header, then the raw data."""
import json
import struct

import numpy as np


def write_safetensors(path, tensors, metadata=None):
    """{name: array} as F32, in the order given (a state_dict's order).  A
    value may also be (dtype, shape, raw little-endian bytes), for tensors
    saved as F16, BF16, F64, ... (NumPy has no bfloat16: the caller makes
    the bytes, e.g. with torch)."""
    header, blobs, off = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        if isinstance(t, tuple):
            dtype, shape, raw = t
        else:
            dtype, shape = "F32", t.shape
            raw = np.ascontiguousarray(t, dtype="<f4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """{name: float32 array} of an F32-only file, metadata skipped."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(data[a:b], dtype="<f4").reshape(v["shape"])
    return out
