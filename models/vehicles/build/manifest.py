"""Write models/vehicles/manifest.json with the sha256 of every variant present.

    /usr/bin/python3 models/vehicles/build/manifest.py [--ckpt models/.cache/vehicles416p2/last.pt] [--cpu-ms int8=6.9,fp32=16.0]

--cpu-ms records each variant's CPU milliseconds per picture (1 thread, batch 1, as
`cityedge bench models` prints them); the runtime's `auto` takes the fastest on the CPU provider.
Values not given are kept from the manifest already there. Without --ckpt's file (models/.cache is
not in the repository) the anchor strides are kept from that manifest too.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(__file__)
OUT = os.path.join(HERE, "..")
sys.path.insert(0, HERE)
from common import INPUT_H, INPUT_W  # noqa: E402
from model import STRIDES, STRIDES_P2  # noqa: E402
from export import DEFAULT_CKPT  # noqa: E402
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
from onnx_util import sha256  # noqa: E402

LABELS = ["person", "bicycle", "car", "bus", "truck"]


def anchor_strides(ckpt, previous):
    """The grid strides of the checkpoint the files were exported from."""
    import torch
    if not os.path.exists(ckpt) and previous:
        return previous["output"]["strides"]
    strides = tuple(torch.load(ckpt).get("arch", {}).get("strides", STRIDES))
    assert strides in (STRIDES, STRIDES_P2), strides
    return list(strides)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=DEFAULT_CKPT, help="the checkpoint the .onnx files were exported from (for the anchor strides)")
    ap.add_argument("--cpu-ms", default="", help="variant=ms,... measured by cityedge bench models (1 thread)")
    a = ap.parse_args()
    path = os.path.join(OUT, "manifest.json")
    previous = json.load(open(path)) if os.path.exists(path) else None
    cpu_ms = {v: old["cpu_ms"] for v, old in (previous or {}).get("variants", {}).items() if "cpu_ms" in old}
    cpu_ms.update({k: float(v) for k, v in (kv.split("=") for kv in a.cpu_ms.split(",") if kv)})
    variants = {}
    for v in ("fp32", "fp16", "int8", "int8_sym"):
        f = f"vehicles.{v}.onnx"
        if os.path.exists(os.path.join(OUT, f)):
            variants[v] = {"file": f, "sha256": sha256(os.path.join(OUT, f))}
            if v in cpu_ms:
                variants[v]["cpu_ms"] = cpu_ms[v]
    manifest = {
        "id": "cityedge-vehicles",
        "version": "1.2.0",
        "task": "detection",
        "description": "The demo's model for synthetic scenes: road users seen from a pole-mounted street camera, trained only on cityedge's synthetic renders (models/synthetic). Not for real cameras: use a real COCO detector (cityedge models fetch yolox-nano).",
        "domain": "synthetic",
        "variants": variants,
        "input": {"name": "images", "layout": "NCHW", "width": INPUT_W, "height": INPUT_H, "color": "rgb",
                  "scale": 1 / 255, "mean": [0, 0, 0], "std": [1, 1, 1], "letterbox": "top-left", "letterbox_pad": 114},
        "output": {"name": "output0", "decoder": "yolov8", "strides": anchor_strides(a.ckpt, previous)},
        "labels": LABELS,
        "thresholds": {"score": 0.6, "nms_iou": 0.45},  # score: chosen for counting on the validation videos (models/eval/tuneCounting.ts)
        "training": {"data": "synthetic stills at 416x234, seeds 1000000..1005999 (models/synthetic/make_dataset.py); fine-tuned from the 320x320 model (stills at 320x180, seeds 1000000..1004999)",
                     "int8_variant": "QDQ: uint8 activations per tensor, int8 weights per channel; Conv+BN+ReLU fused (for onnxruntime's CPU kernels)",
                     "int8_sym_variant": "QDQ for TensorRT: int8 activations per tensor and int8 weights per channel, all symmetric (zero point 0); from the fp32 file, calibrated and QAT-tuned on training stills (build/symmetric.py)",
                     "fp16_variant": "the fp32 file computed in float16, float32 input and output (build/fp16.py)"},
    }
    with open(path, "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(json.dumps(variants, indent=1))


if __name__ == "__main__":
    main()
