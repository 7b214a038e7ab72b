#!/usr/bin/env python3
"""Writes tests/fixtures/safetensors/torch_written.safetensors: a tiny safetensors file whose values
come from torch (its own float16/bfloat16 rounding, its own byte layout) and whose container is
written here by hand (struct + json), so the C reader is checked against bytes it did not write.

The tensors are laid out on purpose so that most data offsets are unaligned (an I8 tensor of 5
bytes goes first) and the header lists them in name order, which differs from data order. The
expected values are restated in tests/test_safetensors.c; keep the two in step.

Usage: gen_safetensors_fixture.py [OUT]   (Debian python3 with python3-torch and numpy)"""
import json
import os
import struct
import sys

import numpy as np
import torch

OUT = "tests/fixtures/safetensors/torch_written.safetensors"


def tensors():
    """(name, safetensors dtype, tensor) in data order."""
    inf, nan = float("inf"), float("nan")
    return [
        ("i8.q", "I8", torch.tensor([-128, -1, 0, 1, 127], dtype=torch.int8)),
        ("f16.edge", "F16", torch.tensor(
            [0.0, -0.0, 1.0, -2.0, 65504.0, 2.0 ** -14, 2.0 ** -24, inf, -inf, nan,
             1.0 / 3.0], dtype=torch.float16)),
        ("f32.weight", "F32", torch.tensor(
            [[0.5, -1.25, 3.0], [1e-3, -0.0, 123456.789]], dtype=torch.float32)),
        ("bf16.vals", "BF16", torch.tensor(
            [[1.0, 3.14159265], [3.3895313892515355e38, 2.0 ** -133]], dtype=torch.bfloat16)),
        ("i64.ids", "I64", torch.tensor([-(2 ** 40), 0, 50256], dtype=torch.int64)),
        ("scalar", "F32", torch.tensor(42.0, dtype=torch.float32)),
        ("empty", "F32", torch.zeros((0, 3), dtype=torch.float32)),
    ]


def raw_bytes(t):
    """The tensor's little-endian bytes in C order (numpy has no bfloat16: view as int16)."""
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    a = t.numpy()
    return a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()


def build():
    header, data = {}, b""
    for name, dtype, t in tensors():
        b = raw_bytes(t)
        header[name] = {"dtype": dtype, "shape": list(t.shape),
                        "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    header["__metadata__"] = {"format": "pt", "source": "py/gen_safetensors_fixture.py"}
    js = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    js += b" " * (-len(js) % 8)  # the reference pads the header to 8 bytes with spaces
    return struct.pack("<Q", len(js)) + js + data


def check(blob):
    """Reads the file back by hand and compares every tensor with torch's bytes."""
    (n,) = struct.unpack_from("<Q", blob)
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    for name, dtype, t in tensors():
        e = header[name]
        assert e["dtype"] == dtype and e["shape"] == list(t.shape), name
        b, end = e["data_offsets"]
        assert data[b:end] == raw_bytes(t), name
    assert sum(e["data_offsets"][1] - e["data_offsets"][0]
               for k, e in header.items() if k != "__metadata__") == len(data)
    # a few values the C test states: torch's rounding of 1/3 to f16 and of pi to bf16
    assert np.frombuffer(raw_bytes(tensors()[1][2]), "<u2")[10] == 0x3555
    assert np.frombuffer(raw_bytes(tensors()[3][2]), "<u2")[1] == 0x4049


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else OUT
    blob = build()
    check(blob)
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "wb") as f:
        f.write(blob)
    print(f"wrote {out} ({len(blob)} bytes)")


if __name__ == "__main__":
    main()
