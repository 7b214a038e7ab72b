#!/usr/bin/python3
"""Writes tests/fixtures/signs/: camera frames of signs, menus and labels for the OCR tests and
bench. Each is a 640x480 view cut from one of the shared photos (../shared/data/images, see
../shared/SOURCES.md) with one sign pasted on it: text set in one of Debian's fonts (DejaVu,
Liberation) on a coloured plate, tilted up to +-8 degrees, blurred a little (focus, motion),
and saved as JPEG quality 70, the way a pair of glasses would send it. truth.json holds the text
of every sign (lines joined by "\\n") and where its plate is.

Needs only Debian's python3 with python3-pil and the fonts-dejavu-core and fonts-liberation2
packages. Deterministic (a fixed seed); run from the project root:

    /usr/bin/python3 py/gen_signs.py                       # the committed set
    /usr/bin/python3 py/gen_signs.py --seed 7 --out build/signs_dev --count 30   # a held-out set

The committed set is what tests/test_ocr.c and bench/ocr_bench.sh measure; tune on another seed.
"""
import argparse
import glob
import io
import json
import os
import random

from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONTS = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationSerif-Bold.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationMono-Bold.ttf",
]

# What a wearer points the glasses at: street and building signs, shop fronts, menus, labels.
SIGNS = [
    ["EXIT"], ["PLATFORM 4", "TRAINS TO OXFORD"], ["NO PARKING", "8AM - 6PM"],
    ["PHARMACY"], ["OPEN", "MON - SAT 9 - 5"], ["WET FLOOR"], ["KING STREET"],
    ["COFFEE 2.50", "TEA 1.80"], ["TODAY'S SOUP", "TOMATO BASIL"], ["PUSH"],
    ["EMERGENCY EXIT", "KEEP CLEAR"], ["BUS STOP 12"], ["TOILETS", "LIFT"],
    ["STATION ROAD"], ["CLOSED FOR", "REPAIRS"], ["Fresh Bread"], ["Library"],
    ["MAIN ENTRANCE"], ["Gate B22"], ["NO SMOKING"], ["TICKETS"], ["Room 214"],
    ["SALE 50% OFF"], ["Baggage Claim"], ["STOP"], ["Pizza Margherita 9.90"],
    ["CAUTION", "HOT SURFACE"], ["Platform 2"], ["Ticket Office"], ["DANGER", "HIGH VOLTAGE"],
]

# (plate, ink) colour pairs: the usual sign schemes, dark-on-light and light-on-dark.
SCHEMES = [
    ((245, 245, 240), (20, 20, 20)), ((250, 215, 40), (15, 15, 15)),
    ((20, 110, 60), (250, 250, 250)), ((25, 60, 150), (250, 250, 250)),
    ((200, 30, 35), (250, 250, 250)), ((20, 20, 20), (245, 245, 245)),
    ((240, 240, 235), (190, 20, 25)),
]

W, H = 640, 480


def background(rng, photos):
    photo = Image.open(rng.choice(photos)).convert("RGB")
    scale = max(W / photo.width, H / photo.height) * rng.uniform(1.0, 1.3)
    photo = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.BICUBIC)
    x = rng.randrange(0, photo.width - W + 1)
    y = rng.randrange(0, photo.height - H + 1)
    return photo.crop((x, y, x + W, y + H))


def plate(rng, lines):
    font = ImageFont.truetype(rng.choice(FONTS), rng.randrange(22, 42))
    bg, ink = rng.choice(SCHEMES)
    spacing = font.size // 3
    boxes = [font.getbbox(t) for t in lines]
    tw = max(b[2] - b[0] for b in boxes)
    th = sum(b[3] - b[1] for b in boxes) + spacing * (len(lines) - 1)
    pad_x, pad_y = rng.randrange(12, 30), rng.randrange(10, 22)
    img = Image.new("RGB", (tw + 2 * pad_x, th + 2 * pad_y), bg)
    d = ImageDraw.Draw(img)
    if rng.random() < 0.5:  # a border line, as many signs have
        d.rectangle((3, 3, img.width - 4, img.height - 4), outline=ink, width=2)
    y = pad_y
    for t, b in zip(lines, boxes):
        x = pad_x + (tw - (b[2] - b[0])) // 2  # centred, as signs are
        d.text((x - b[0], y - b[1]), t, font=font, fill=ink)
        y += b[3] - b[1] + spacing
    return img


def make(rng, photos, lines):
    frame = background(rng, photos)
    p = plate(rng, lines)
    if p.width > W - 40:  # a long line: shrink the plate to fit the view
        s = (W - 40) / p.width
        p = p.resize((round(p.width * s), round(p.height * s)), Image.LANCZOS)
    angle = rng.uniform(-8.0, 8.0)
    mask = Image.new("L", p.size, 255).rotate(angle, Image.BICUBIC, expand=True)
    p = p.rotate(angle, Image.BICUBIC, expand=True)
    x = rng.randrange(10, max(11, W - p.width - 10))
    y = rng.randrange(10, max(11, H - p.height - 10))
    frame.paste(p, (x, y), mask)
    frame = frame.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.1)))
    buf = io.BytesIO()
    frame.save(buf, "JPEG", quality=70)
    return buf.getvalue(), {"angle": round(angle, 2), "box": [x, y, p.width, p.height]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--count", type=int, default=16)
    ap.add_argument("--out", default="tests/fixtures/signs")
    ap.add_argument("--photos", default="../shared/data/images")
    a = ap.parse_args()
    # text.jpg is a page of print: a sign pasted on it would not be the only text in view
    photos = sorted(p for p in glob.glob(os.path.join(a.photos, "*.jpg"))
                    if not p.endswith("/text.jpg"))
    if not photos:
        raise SystemExit(f"gen_signs.py: no photos in {a.photos}")
    rng = random.Random(a.seed)
    texts = SIGNS[:]
    rng.shuffle(texts)
    os.makedirs(a.out, exist_ok=True)
    truth = []
    for i in range(a.count):
        lines = texts[i % len(texts)]
        jpeg, where = make(rng, photos, lines)
        name = f"sign_{i:02d}.jpg"
        with open(os.path.join(a.out, name), "wb") as f:
            f.write(jpeg)
        truth.append({"file": name, "text": "\n".join(lines), **where})
    with open(os.path.join(a.out, "truth.json"), "w") as f:  # one sign a line, diffable
        f.write('{"generator": "py/gen_signs.py", "seed": %d, "signs": [\n' % a.seed)
        f.write(",\n".join(json.dumps(t) for t in truth))
        f.write("\n]}\n")

if __name__ == "__main__":
    main()
