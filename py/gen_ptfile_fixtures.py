#!/usr/bin/env python3
"""Writes tests/fixtures/ptfile/*.pt: small state dicts saved with torch.save exactly as training
code saves them, and tests/fixtures/ptfile/expected.json, what tests/test_ptfile.c must read from
each: for every tensor in dict order its dtype, shape, stride, storage offset and its values
converted to float32 by torch (as bit patterns, so NaN, -0.0 and infinities compare exactly),
plus the names of the non-tensor values the reader skips. Also writes the libFuzzer seeds
fuzz/seeds/fuzz_ptfile/*.pt and fuzz/seeds/fuzz_pickle/* (their data.pkl).

  dtypes.pt   one tensor per dtype the reader converts (F32 F16 BF16 F64 I64 I32 I16 I8 U8 BOOL)
  views.pt    views torch saves as they are: a transpose, a row, a slice at an offset, a column,
              a 0-d element, a step slice, an expand (stride 0), a 3-d permute in f16, an empty
              tensor; most share one storage
  module.pt   nn.Sequential(TransformerEncoderLayer, BatchNorm1d, LayerNorm).state_dict(): an
              OrderedDict with _metadata, an int64 num_batches_tracked
  params.pt   nn.Parameters (requires_grad true and false) beside ints, floats, a str, a bool,
              None and a 2**40 (LONG1), which the reader skips
  proto4.pt   a state dict saved with pickle_protocol=4 (FRAME, MEMOIZE, STACK_GLOBAL,
              SHORT_BINUNICODE, and BINUNICODE for a 300-byte name)
  legacy.pt   saved with _use_new_zipfile_serialization=False, which the reader refuses (the
              only file that changes from run to run: that format keys storages by address)

Usage: gen_ptfile_fixtures.py [ROOT]   (Debian python3 with python3-torch; ROOT defaults to the
project root, this file's parent's parent)"""
import io
import json
import os
import sys
import zipfile

import torch
from torch import nn

DTYPE_NAMES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}


def dtypes():
    inf, nan = float("inf"), float("nan")
    return {
        "f32": torch.tensor([[0.5, -1.25, 3.0], [1e-3, -0.0, 123456.789]]),
        "f16": torch.tensor([0.0, -0.0, 1.0, -2.0, 65504.0, 2.0 ** -14, 2.0 ** -24, inf, -inf,
                             nan, 1.0 / 3.0], dtype=torch.float16),
        "bf16": torch.tensor([[1.0, 3.14159265], [3.3895313892515355e38, 2.0 ** -133]],
                             dtype=torch.bfloat16),
        "f64": torch.tensor([1.0 / 3.0, -1e300, 1e-310, 2.0 ** 60], dtype=torch.float64),
        "i64": torch.tensor([-(2 ** 40), 0, 50256, 2 ** 62 + 1], dtype=torch.int64),
        "i32": torch.tensor([-(2 ** 31), 16777217, 7], dtype=torch.int32),
        "i16": torch.tensor([-32768, 32767, -1], dtype=torch.int16),
        "i8": torch.tensor([-128, -1, 0, 1, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 1, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
    }


def views():
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4) * 0.5 - 1.0
    cube = (torch.arange(24, dtype=torch.float32) / 7.0).to(torch.float16).reshape(2, 3, 4)
    line = torch.arange(10, dtype=torch.float32)
    return {
        "t": base.t(),                   # [4, 3], stride (1, 4)
        "row0": base[0],                 # offset 0
        "tail": base[2, 1:],             # offset 9
        "col": base[:, 1],               # stride 4, offset 1
        "elem": base[1, 2],              # 0-d, offset 6
        "step": line[1::3],              # stride 3, offset 1
        "expand": torch.tensor([1.5, -2.5]).expand(3, 2),  # stride (0, 1)
        "cube_p": cube.permute(2, 0, 1),  # [4, 2, 3] f16, stride (1, 12, 4)
        "scalar": torch.tensor(7.25),
        "empty": torch.zeros(0, 3),
    }


def module_state():
    torch.manual_seed(0)
    m = nn.Sequential(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True),
                      nn.BatchNorm1d(8), nn.LayerNorm(8))
    m[1].num_batches_tracked += 3
    m[1].running_mean += 0.125
    return m.state_dict()


def params():
    torch.manual_seed(1)
    return {
        "weight": nn.Parameter(torch.randn(3, 2)),
        "epoch": 7,
        "frozen": nn.Parameter(torch.ones(2) * 0.75, requires_grad=False),
        "lr": 0.25,
        "big": 2 ** 40,
        "neg": -5,
        "tag": "run-1",
        "flag": True,
        "none": None,
    }


def proto4_state():
    torch.manual_seed(2)
    sd = nn.Sequential(nn.Linear(3, 2), nn.LayerNorm(2)).state_dict()
    sd["n" * 300] = torch.tensor([9.0, -9.0])
    return sd


def describe(obj):
    """The expected.json record of one saved dict."""
    tensors, skipped = [], []
    for name, v in obj.items():
        if not isinstance(v, torch.Tensor):
            skipped.append(name)
            continue
        v = v.detach()
        bits = v.to(torch.float32).contiguous().view(torch.int32).flatten().tolist()
        tensors.append({
            "name": name, "dtype": DTYPE_NAMES[v.dtype], "shape": list(v.shape),
            "stride": list(v.stride()), "offset": v.storage_offset(),
            "bits": [b & 0xFFFFFFFF for b in bits],
        })
    return {"tensors": tensors, "skipped": skipped}


def expected_json(expected):
    """expected.json with one tensor per line, so that a diff shows which tensor changed."""
    files = []
    for name, rec in expected.items():
        lines = ",\n".join("   " + json.dumps(t, separators=(",", ":")) for t in rec["tensors"])
        files.append(f' {json.dumps(name)}: {{\n  "skipped": {json.dumps(rec["skipped"])},\n'
                     f'  "tensors": [\n{lines}\n  ]\n }}')
    return "{\n" + ",\n".join(files) + "\n}\n"


def write(path, blob):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(blob)


def save_file(obj, path, **kw):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(obj, path, **kw)
    with open(path, "rb") as f:
        return f.read()


def check(path, obj):
    """torch reads the file back to the same values, and it is a stored zip."""
    back = torch.load(path)
    assert list(back.keys()) == list(obj.keys()), path
    for k, v in obj.items():
        if isinstance(v, torch.Tensor):
            assert back[k].dtype == v.dtype and back[k].shape == v.shape, (path, k)
            assert back[k].stride() == v.stride() and \
                back[k].storage_offset() == v.storage_offset(), (path, k)
            assert torch.equal(back[k].float().nan_to_num(7.0), v.float().nan_to_num(7.0)), \
                (path, k)
        else:
            assert back[k] == v, (path, k)
    with zipfile.ZipFile(path) as z:
        assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist()), path


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else \
        os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    fx = os.path.join(root, "tests", "fixtures", "ptfile")
    expected, total = {}, 0
    for name, obj, kw in [
        ("dtypes.pt", dtypes(), {}),
        ("views.pt", views(), {}),
        ("module.pt", module_state(), {}),
        ("params.pt", params(), {}),
        ("proto4.pt", proto4_state(), {"pickle_protocol": 4}),
    ]:
        path = os.path.join(fx, name)
        total += len(save_file(obj, path, **kw))
        check(path, obj)
        expected[name] = describe(obj)
    total += len(save_file({"w": torch.ones(2)}, os.path.join(fx, "legacy.pt"),
                           _use_new_zipfile_serialization=False))
    with open(os.path.join(fx, "expected.json"), "w") as f:
        f.write(expected_json(expected))
    assert total < 100_000, total
    print(f"wrote {fx}: {total} bytes of .pt files")

    # fuzz seeds: tiny files, and their pickles alone
    seeds = {
        "tiny.pt": {"w": torch.tensor([1.0, 2.0])},
        "shared.pt": {"t": torch.arange(6.0).reshape(2, 3).t(),
                      "e": torch.arange(6.0).reshape(2, 3)[1, 2],
                      "h": torch.ones(2, dtype=torch.float16), "n": 3},
        "module4.pt": nn.Sequential(nn.Linear(2, 2)).state_dict(),
    }
    for name, obj in seeds.items():
        path = os.path.join(root, "fuzz", "seeds", "fuzz_ptfile", name)
        blob = save_file(obj, path, **({"pickle_protocol": 4} if "4" in name else {}))
        with zipfile.ZipFile(io.BytesIO(blob)) as z:
            pkl = [n for n in z.namelist() if n.endswith("/data.pkl")][0]
            write(os.path.join(root, "fuzz", "seeds", "fuzz_pickle",
                               name.replace(".pt", ".pkl")), z.read(pkl))
    print("wrote fuzz seeds")


if __name__ == "__main__":
    main()
