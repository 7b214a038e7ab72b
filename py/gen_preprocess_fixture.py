#!/usr/bin/python3
"""Writes tests/fixtures/preprocess/: what Hugging Face CLIPImageProcessor (Pillow bicubic resize,
center crop, rescale, normalise) makes of the sample photos and of synthetic images, so that
tests/test_preprocess.c can hold our C pipeline to it byte for byte.

Needs only Debian's python3 with python3-pil and python3-numpy (no transformers): the processor's
steps are re-stated below from transformers' image_processing_clip.py / image_transforms.py,
operation for operation in the same dtypes. Run from the project root:

    /usr/bin/python3 py/gen_preprocess_fixture.py

Output: manifest.json (sizes, SHA-256 of every uint8 crop and of every float32 tensor, a few
tensor values, small resize outputs in hex, the normalisation table) and the 224x224 crops of
three photos as PNG, so a mismatch can be measured, not only detected.
"""
import glob
import hashlib
import json
import math
import os
import sys

import numpy as np
import PIL
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHOTOS = os.path.join(ROOT, "..", "shared", "data", "images")
OUT = os.path.join(ROOT, "tests", "fixtures", "preprocess")

# preprocessor_config.json of openai/clip-vit-base-patch32
SHORTEST_EDGE = 224
CROP = 224
RESCALE = 0.00392156862745098  # 1/255 as the config stores it: the same double as 1 / 255
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]

PNG_PHOTOS = ("chelsea", "motorcycle_left", "text")  # one downscale, one odd size, one upscale
HEX_LIMIT = 2048  # resize outputs up to this many bytes are stored whole


# ---- the processor, step by step -----------------------------------------------------------------

def resize_dims(w, h, size):
    """get_resize_output_image_size(default_to_square=False): (width, height)."""
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    return (new_short, new_long) if w <= h else (new_long, new_short)


def pil_resize(arr, w, h):
    """image_transforms.resize: uint8 array -> PIL (no rescale for uint8) -> resize -> array."""
    return np.array(Image.fromarray(arr, "RGB").resize((w, h), resample=Image.BICUBIC))


def center_crop(arr, crop_h, crop_w):
    """image_transforms.center_crop on an HWC array, zero padding included."""
    h, w = arr.shape[:2]
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    bottom, right = top + crop_h, left + crop_w
    if top >= 0 and bottom <= h and left >= 0 and right <= w:
        return arr[top:bottom, left:right]
    nh, nw = max(crop_h, h), max(crop_w, w)
    padded = np.zeros((nh, nw, arr.shape[2]), dtype=arr.dtype)
    tp, lp = math.ceil((nh - h) / 2), math.ceil((nw - w) / 2)
    padded[tp:tp + h, lp:lp + w] = arr
    top, bottom, left, right = top + tp, bottom + tp, left + lp, right + lp
    return padded[max(0, top):min(nh, bottom), max(0, left):min(nw, right)]


def rescale_normalize(arr):
    """rescale (float64 multiply, cast to float32) then normalize (float32), returned CHW."""
    x = (arr.astype(np.float64) * RESCALE).astype(np.float32)
    mean = np.array(MEAN, dtype=x.dtype)
    std = np.array(STD, dtype=x.dtype)
    x = (x - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def clip_preprocess(arr, shortest_edge=SHORTEST_EDGE, crop_w=CROP, crop_h=CROP):
    w, h = resize_dims(arr.shape[1], arr.shape[0], shortest_edge)
    crop = center_crop(pil_resize(arr, w, h), crop_h, crop_w)
    return (w, h), np.ascontiguousarray(crop), rescale_normalize(crop)


# ---- records -------------------------------------------------------------------------------------

def sha256(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def tensor_record(chw):
    flat = chw.astype("<f4").ravel()
    return {
        "chw_sha256": sha256(flat),
        "chw_head": [float(v) for v in flat[:8]],
        "chw_tail": [float(v) for v in flat[-8:]],
        "chw_sum": math.fsum(float(v) for v in flat),
    }


def clip_record(arr, shortest_edge=SHORTEST_EDGE, crop_w=CROP, crop_h=CROP):
    (w, h), crop, chw = clip_preprocess(arr, shortest_edge, crop_w, crop_h)
    rec = {"shortest_edge": shortest_edge, "crop": [crop_w, crop_h], "resized": [w, h],
           "crop_sha256": sha256(crop)}
    rec.update(tensor_record(chw))
    return rec, crop


# ---- synthetic images (tests/test_preprocess.c generates the same bytes) -------------------------

def synth(kind, w, h, seed):
    """noise: xorshift32 from seed, one byte (state >> 24) per channel, row-major.
    gradient: R = x*255 // (w-1), G = y*255 // (h-1), B = (3x + 5y) & 255.
    checker: R = 255 on (x//3 + y//2) odd, G = 255 on (x + y) odd, B = (37x + 11y) & 255 --
    edges sharp enough for the cubic's overshoot to hit both clamps."""
    if kind == "noise":
        n = w * h * 3
        out = bytearray(n)
        s = seed & 0xFFFFFFFF
        for i in range(n):
            s ^= (s << 13) & 0xFFFFFFFF
            s ^= s >> 17
            s ^= (s << 5) & 0xFFFFFFFF
            out[i] = s >> 24
        return np.frombuffer(bytes(out), dtype=np.uint8).reshape(h, w, 3).copy()
    y, x = np.mgrid[0:h, 0:w].astype(np.int64)
    if kind == "gradient":
        r = x * 255 // max(w - 1, 1)
        g = y * 255 // max(h - 1, 1)
        b = (3 * x + 5 * y) & 255
    elif kind == "checker":
        r = ((x // 3 + y // 2) & 1) * 255
        g = ((x + y) & 1) * 255
        b = (37 * x + 11 * y) & 255
    else:
        raise ValueError(kind)
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


# name, kind, seed, width, height, direct resizes (w, h), extra CLIP configs (se, crop_w, crop_h)
SYNTHETIC = [
    ("tiny_7x5", "gradient", 0, 7, 5, [(17, 13), (3, 2), (7, 11), (1, 1)], [(224, 300, 240)]),
    ("square_225x224", "noise", 1, 225, 224, [(224, 224), (31, 29), (225, 100)], []),
    ("strip_1000x10", "checker", 0, 1000, 10, [(100, 10), (37, 4), (1000, 7)], []),
    ("tall_10x1000", "gradient", 0, 10, 1000, [(10, 100), (4, 37)], []),
    ("portrait_223x300", "noise", 2, 223, 300, [(111, 150), (20, 29)], [(256, 224, 224)]),
    ("vga_640x480", "checker", 0, 640, 480, [(64, 48), (33, 17)], [(160, 200, 180)]),
    ("dct_320x240", "noise", 3, 320, 240, [(31, 23)], []),
    ("dct_451x300", "gradient", 0, 451, 300, [(45, 30)], []),
    ("checker_97x61", "checker", 0, 97, 61, [(300, 190), (13, 9), (97, 20), (40, 61)],
     [(50, 120, 90)]),
]


def synthetic_record(name, kind, seed, w, h, resizes, extra):
    arr = synth(kind, w, h, seed)
    rec = {"name": name, "kind": kind, "seed": seed, "width": w, "height": h,
           "input_sha256": sha256(arr), "resizes": [], "clip": []}
    for ow, oh in resizes:
        out = pil_resize(arr, ow, oh)
        r = {"size": [ow, oh], "sha256": sha256(out)}
        if out.nbytes <= HEX_LIMIT:
            r["hex"] = out.tobytes().hex()
        rec["resizes"].append(r)
    for se, cw, ch in [(SHORTEST_EDGE, CROP, CROP)] + extra:
        rec["clip"].append(clip_record(arr, se, cw, ch)[0])
    return rec


def dims_table():
    """(w, h, shortest_edge, out_w, out_h) for many sizes, including near-integer quotients."""
    sizes = set()
    for w in (1, 2, 3, 5, 7, 10, 100, 223, 224, 225, 240, 298, 300, 320, 333, 427, 448, 451,
              480, 500, 512, 600, 640, 741, 1000, 1080, 1920, 4032, 16384):
        for h in (1, 3, 172, 223, 224, 225, 240, 300, 427, 480, 1080, 3024):
            sizes.add((w, h))
    rows = []
    for (w, h) in sorted(sizes):
        for se in (224, 336, 1, 7):
            ow, oh = resize_dims(w, h, se)
            rows.append([w, h, se, ow, oh])
    return rows


def compact_json(manifest):
    """One line per top-level scalar and per element of a top-level list: small and diffable."""
    def dump(v):
        return json.dumps(v, separators=(",", ":"))
    lines = []
    for key, value in manifest.items():
        if isinstance(value, list):
            items = ",\n  ".join(dump(v) for v in value)
            lines.append(f"{dump(key)}: [\n  {items}\n ]")
        else:
            lines.append(f"{dump(key)}: {dump(value)}")
    return "{\n " + ",\n ".join(lines) + "\n}\n"


def main():
    os.makedirs(OUT, exist_ok=True)
    manifest = {
        "generator": "py/gen_preprocess_fixture.py",
        "pillow": PIL.__version__,
        "numpy": np.__version__,
        "shortest_edge": SHORTEST_EDGE,
        "crop": CROP,
        "mean": MEAN,
        "std": STD,
        "norm_table": [],
        "photos": [],
        "synthetic": [],
        "dims": dims_table(),
    }
    # the value every byte normalises to, per channel, as float32 (exact in JSON as a double)
    table = rescale_normalize(np.arange(256, dtype=np.uint8).reshape(1, 256, 1).repeat(3, axis=2))
    manifest["norm_table"] = [[float(v) for v in table[c, 0]] for c in range(3)]

    paths = sorted(glob.glob(os.path.join(PHOTOS, "*.jpg")))
    if not paths:
        sys.exit(f"no photos in {PHOTOS}")
    for path in paths:
        name = os.path.splitext(os.path.basename(path))[0]
        with Image.open(path) as im:
            arr = np.array(im.convert("RGB"))  # do_convert_rgb, to_numpy_array
        rec, crop = clip_record(arr)
        rec = {"name": name, "width": arr.shape[1], "height": arr.shape[0],
               "decode_sha256": sha256(arr), **rec}
        if name in PNG_PHOTOS:
            rec["png"] = f"{name}_crop.png"
            Image.fromarray(crop, "RGB").save(os.path.join(OUT, rec["png"]), optimize=True)
        manifest["photos"].append(rec)

    for spec in SYNTHETIC:
        manifest["synthetic"].append(synthetic_record(*spec))

    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        f.write(compact_json(manifest))
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"wrote {OUT}: {len(manifest['photos'])} photos, {len(manifest['synthetic'])} synthetic, "
          f"{total} bytes")


if __name__ == "__main__":
    main()
