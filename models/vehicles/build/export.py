"""Export the trained detector (EMA weights) to ONNX fp32, and score a checkpoint in torch.

    /usr/bin/python3 models/vehicles/build/export.py --ckpt models/.cache/vehicles416/last.pt    # -> models/vehicles/vehicles.fp32.onnx
    /usr/bin/python3 models/vehicles/build/export.py --ckpt ... --score-only                    # torch mAP@0.5 on the held-out set

Input "images" [batch, 3, 256, 416] RGB 0..1 (top-left letterbox, grey 114; common.py INPUT_H x
INPUT_W); output "output0" [batch, 9, 2184] in the yolov8 layout (52x32 + 26x16 + 13x8 anchors). The held-out figures of record come from
models/eval/evalDetector.ts (onnxruntime-node); --score-only is a quick check while training.
"""
import argparse
import json
import os
import sys

import cv2
import numpy as np
import torch

HERE = os.path.dirname(__file__)
sys.path.insert(0, HERE)
from common import INPUT_H, INPUT_W, detections, mean_ap  # noqa: E402
from model import STRIDES, Detector  # noqa: E402

OUT = os.path.join(HERE, "..")
LABELS = ["person", "bicycle", "car", "bus", "truck"]
DEFAULT_CKPT = os.path.join(HERE, "..", "..", ".cache", "vehicles416p2", "last.pt")


def load_heldout(limit=None, d=None):
    d = d or os.path.join(OUT, "heldout")
    meta = json.load(open(os.path.join(d, "labels.json")))
    n = len(meta["images"]) if limit is None else min(limit, len(meta["images"]))
    imgs = [cv2.cvtColor(cv2.imread(os.path.join(d, f"{i:04d}.jpg")), cv2.COLOR_BGR2RGB) for i in range(n)]
    return imgs, meta["images"][:n]


def letterbox_batch(imgs):
    x = np.full((len(imgs), INPUT_H, INPUT_W, 3), 114, np.uint8)
    for i, im in enumerate(imgs):
        x[i, :im.shape[0], :im.shape[1]] = im
    return torch.from_numpy(x).permute(0, 3, 1, 2).float().div_(255.0)


def score(model, limit=None, heldout=None):
    imgs, labels = load_heldout(limit, heldout)
    dets = []
    with torch.no_grad():
        for s in range(0, len(imgs), 16):
            out = model(letterbox_batch(imgs[s:s + 16])).numpy()
            dets += [detections(o, 0.001, 0.45) for o in out]
    return mean_ap(dets, labels, len(LABELS))


def load_ema(path):
    s = torch.load(path)
    m = Detector(num_classes=len(LABELS), strides=s.get("arch", {}).get("strides", STRIDES))
    m.load_state_dict(s["ema"])
    return m.eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=DEFAULT_CKPT)
    ap.add_argument("--score-only", action="store_true")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--heldout", help="held-out folder (JPEGs + labels.json); default models/vehicles/heldout")
    a = ap.parse_args()
    torch.set_num_threads(1)
    model = load_ema(a.ckpt)
    m, aps = score(model, a.limit, a.heldout)
    print(json.dumps({"map50_torch": round(m, 4), "ap50": dict(zip(LABELS, [round(v, 4) for v in aps]))}), flush=True)
    if a.score_only:
        return
    path = os.path.join(OUT, "vehicles.fp32.onnx")
    torch.onnx.export(model, torch.zeros(1, 3, INPUT_H, INPUT_W), path, opset_version=13, input_names=["images"], output_names=["output0"],
                      dynamic_axes={"images": {0: "batch"}, "output0": {0: "batch"}}, do_constant_folding=True)
    print("wrote", path)


if __name__ == "__main__":
    main()
