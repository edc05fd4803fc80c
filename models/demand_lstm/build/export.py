"""Make the fp16-weight variant of demand.fp32.onnx and write manifest.json with sha256s.

    /usr/bin/python3 models/demand_lstm/build/export.py

The fp16 variant stores every float weight as float16 followed by a Cast to float32, so inputs,
outputs and arithmetic stay float32 (onnxruntime folds the casts at load) and the file is half
the size. Normalization statistics come from train_log.json, written by train.py.
"""
import hashlib
import json
import os
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
import common as C  # noqa: E402

HERE = os.path.join(os.path.dirname(__file__), "..")
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
from onnx_util import fp16_weights, sha256  # noqa: E402


def main():
    fp32 = os.path.join(HERE, "demand.fp32.onnx")
    fp16 = os.path.join(HERE, "demand.fp16.onnx")
    model = onnx.load(fp32)
    onnx.save(fp16_weights(model), fp16)
    log = json.load(open(os.path.join(HERE, "train_log.json")))
    # the range of the training targets (rows 0..3023), which the runtime's scaling: auto compares windows with
    _, values = C.load_taylor()
    manifest = {
        "id": "cityedge-demand-lstm",
        "version": "1.0.0",
        "task": "forecast",
        "description": "Day-ahead (48 half-hours) forecaster for a half-hourly series, trained on England & Wales electricity demand (Taylor 2000, first 10 weeks).",
        "variants": {
            "fp32": {"file": "demand.fp32.onnx", "sha256": sha256(fp32)},
            "fp16": {"file": "demand.fp16.onnx", "sha256": sha256(fp16)},
        },
        "input": {
            "name": "history",
            "shape": ["batch", C.HISTORY, len(C.FEATURES)],
            "history_steps": C.HISTORY,
            "features": C.FEATURES,
        },
        "output": {"name": "forecast", "shape": ["batch", C.HORIZON], "horizon": C.HORIZON},
        "step_seconds": C.STEP_SECONDS,
        "unit": "MW",
        "value_range": {"min": round(float(values[: C.TRAIN_END - 7 * 48].min()), 1), "max": round(float(values[: C.TRAIN_END - 7 * 48].max()), 1)},
        "training": {"data": "taylor_uk_demand_halfhourly_2000.csv: weights fit on targets in rows 0..3023, early stopping on rows 3024..3359, normalization from rows 0..3023; rows 3360..4031 (2000-08-14 .. 08-27) never seen", "time_zone": "Europe/London", "fp16_variant": "float16-stored weights, float32 compute"},
        "normalization": {"mean": round(log["normalization"]["mean"], 6), "std": round(log["normalization"]["std"], 6)},
    }
    with open(os.path.join(HERE, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(json.dumps(manifest["variants"], indent=1))


if __name__ == "__main__":
    main()
