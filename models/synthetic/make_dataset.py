"""Render still scenes with exact boxes, at the detector's input scale (640x360 -> 416x234 by default).

    /usr/bin/python3 models/synthetic/make_dataset.py --split train --count 6000 --out /tmp/cityedge-train.npz
    /usr/bin/python3 models/synthetic/make_dataset.py --split heldout --count 300 --jpeg-dir models/vehicles/heldout
    (--width/--height choose the picture size: 416x234 for the current model, 320x180 for the first one)

Seeds: image i of split "train" uses seed TRAIN_SEED_BASE + i; "val" VAL_SEED_BASE + i; "heldout"
HELDOUT_SEED_BASE + i. The ranges never meet (train count < 7,000,000, val < 1,000,000), so held-out
scenes are never trained on, and "val" (for watching a run and choosing among runs) is not the held-out set.
Labels: per image a list of [class, x1, y1, x2, y2, ignore] in output pixels (e.g. 416x234); ignore=1 marks a
box too small, too occluded or too cut by the frame to be required (scoring neither rewards nor
penalizes detections on it).
"""
import argparse
import json
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import scene  # noqa: E402

TRAIN_SEED_BASE = 1_000_000
VAL_SEED_BASE = 8_000_000
HELDOUT_SEED_BASE = 9_000_000
OUT_W, OUT_H = 416, 234  # default picture size: 640x360 scaled by 0.65 (the detector's 416-wide letterbox)


def render(seed, jpeg_aug, out_w=OUT_W, out_h=OUT_H):
    rng = np.random.default_rng(seed)
    img, anns = scene.random_still(rng)
    small = cv2.resize(img, (out_w, out_h), interpolation=cv2.INTER_AREA)
    if jpeg_aug and rng.random() < 0.5:
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(55, 95))])
        small = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    s = out_w / scene.W
    labels = []
    for a in anns:
        x1, y1, x2, y2 = (v * s for v in a["box"])
        labels.append([a["cls"], round(x1, 2), round(y1, 2), round(x2, 2), round(y2, 2), 0 if scene.label_filter(a) else 1])
    return small, labels


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=["train", "val", "heldout"], required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--out", help="npz file (train)")
    ap.add_argument("--jpeg-dir", help="folder for JPEGs + labels.json (val, heldout)")
    ap.add_argument("--width", type=int, default=OUT_W, help="picture width (the 640x360 render is scaled to it)")
    ap.add_argument("--height", type=int, default=OUT_H, help="picture height")
    a = ap.parse_args()
    base = {"train": TRAIN_SEED_BASE, "val": VAL_SEED_BASE, "heldout": HELDOUT_SEED_BASE}[a.split]
    images, labels = [], []
    for i in range(a.start, a.start + a.count):
        img, lab = render(base + i, jpeg_aug=a.split == "train", out_w=a.width, out_h=a.height)
        images.append(img)
        labels.append(lab)
        if (i + 1) % 500 == 0:
            print(f"{i + 1} images", flush=True)
    if a.out:
        np.savez(a.out, images=np.stack(images), labels=np.array(json.dumps(labels)))
    if a.jpeg_dir:
        os.makedirs(a.jpeg_dir, exist_ok=True)
        for i, img in enumerate(images):
            cv2.imwrite(os.path.join(a.jpeg_dir, f"{i:04d}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        with open(os.path.join(a.jpeg_dir, "labels.json"), "w") as f:
            json.dump({
                "labels": scene.LABELS, "width": a.width, "height": a.height, "seed_base": base, "count": a.count,
                "format": "per image (NNNN.jpg): [class, x1, y1, x2, y2, ignore] in image pixels",
                "images": labels,
            }, f, separators=(",", ":"))
            f.write("\n")


if __name__ == "__main__":
    main()
