"""safetensors written and read by hand (Debian 12 has no `safetensors` package), shared by the
fixture generators and references in py. Writer: tensors in the order given, header padded
with spaces to a multiple of 8, as the reference implementation does. Reader: numpy arrays."""
import json
import struct

import numpy as np
import torch

DT = {torch.float32: ("F32", np.float32), torch.float16: ("F16", np.float16),
      torch.int8: ("I8", np.int8), torch.int64: ("I64", np.int64)}
NP = {"F32": np.float32, "F16": np.float16, "I8": np.int8, "I64": np.int64}


def save_safetensors(path, tensors, metadata=None):
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        code, npt = DT[t.dtype]
        b = t.detach().contiguous().numpy().astype(npt).tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=NP[e["dtype"]]).reshape(e["shape"])
    return out
