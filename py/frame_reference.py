#!/usr/bin/python3
"""Reference frame pipeline in Python, for comparison with bench_frame in the same run.

It does what the Python edge runtime does per uploaded frame: base64 decode, PIL decode to RGB,
an 8x8 luma thumbnail and the accumulated-difference keyframe test (diff_tau=8.0, min_gap=3) with
numpy. Two variants: full decode (what the runtime did) and PIL's draft mode (DCT scaling, the
same trick sg-edge uses). Usage: frame_reference.py DIR [RUNS], DIR holding *_frame.json files
written by `bench_frame --write DIR`.
"""
import base64
import glob
import io
import json
import sys
import time

import numpy as np
from PIL import Image


def thumb8(img):
    luma = np.asarray(img.convert("L").resize((8, 8), Image.BOX), dtype=np.float32)
    return luma


def run(bodies, runs, draft):
    prev, acc, since, times = None, 0.0, 0, []
    for _ in range(runs):
        for body in bodies:
            t0 = time.perf_counter()
            data = base64.b64decode(json.loads(body)["image_base64"], validate=True)
            img = Image.open(io.BytesIO(data))
            if draft:
                img.draft("RGB", (128, 128))
            img = img.convert("RGB")
            t = thumb8(img)
            if prev is not None:
                acc += float(np.abs(t - prev).mean())
            since += 1
            if prev is None or (acc >= 8.0 and since >= 3):
                acc, since = 0.0, 0
            prev = t
            times.append((time.perf_counter() - t0) * 1000.0)
    times.sort()
    return times[len(times) // 2], times[int(len(times) * 0.9)]


def main():
    d = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    bodies = [open(p).read() for p in sorted(glob.glob(d + "/*_frame.json"))]
    if not bodies:
        sys.exit("no *_frame.json in " + d)
    full = run(bodies, runs, False)
    draft = run(bodies, runs, True)
    print("python reference (PIL %s, numpy %s), %d frames x %d runs" %
          (Image.__version__, np.__version__, len(bodies), runs))
    print("  ingest, full decode        p50 %.3f ms  p90 %.3f ms" % full)
    print("  ingest, PIL draft (scaled) p50 %.3f ms  p90 %.3f ms" % draft)
    print(json.dumps({"python_ingest_full_p50_ms": round(full[0], 4),
                      "python_ingest_draft_p50_ms": round(draft[0], 4)}))


if __name__ == "__main__":
    main()
