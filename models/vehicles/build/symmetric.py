"""TensorRT-valid INT8 variant: symmetric QDQ from the shipped fp32 file.

    /usr/bin/python3 models/synthetic/make_dataset.py --split train --count 640 --width 416 --height 234 --out models/.cache/calib416.npz
    /usr/bin/python3 models/vehicles/build/symmetric.py --data models/.cache/calib416.npz --steps 100 --threads 2

TensorRT's explicit quantization takes only signed INT8 QuantizeLinear/DequantizeLinear with zero
point 0, so this variant differs from vehicles.int8.onnx (uint8 activations, tuned for
onnxruntime's CPU kernels): activations int8 per tensor, symmetric (zero point 0); weights int8
per output channel, symmetric. Weights stay float -> QuantizeLinear -> DequantizeLinear, the form
TensorRT 8.6 and 10 both import (TensorRT folds the weight quantization itself).

The starting point is vehicles.fp32.onnx itself, not a training checkpoint: its convolutions
already carry the folded BatchNorm, so they load into the fused (Conv+ReLU) torch model one to
one, and the build needs nothing but the repository. Then the same recipe as qat.py:
FakeQuantize observers, calibration on training stills, a short QAT fine-tune with the ranges
frozen for its second half, export at opset 13.
"""
import argparse
import math
import os
import sys

import numpy as np
import torch
from torch.ao import quantization as Q

HERE = os.path.dirname(__file__)
sys.path.insert(0, HERE)
from common import INPUT_H, INPUT_W, load_npz, loss_fn, to_canvas  # noqa: E402
from export import LABELS, score  # noqa: E402
from model import STRIDES_P2, Detector  # noqa: E402

sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402
from onnx_util import check_symmetric_qdq, inline_constant_identities  # noqa: E402

SEED = 4243
OUT = os.path.join(HERE, "..")


def qconfig():
    act = Q.FakeQuantize.with_args(observer=Q.MovingAverageMinMaxObserver, quant_min=-128, quant_max=127,
                                   dtype=torch.qint8, qscheme=torch.per_tensor_symmetric, reduce_range=False)
    wt = Q.FakeQuantize.with_args(observer=Q.MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127,
                                  dtype=torch.qint8, qscheme=torch.per_channel_symmetric, reduce_range=False, ch_axis=0)
    return Q.QConfig(activation=act, weight=wt)


def fused_from_onnx(path):
    """The fused detector (Conv+BN+ReLU as one conv with bias) with the weights of an exported
    fp32 file. torch's exporter names each Conv node after its module ("/s3/s3.1/s3.1.0/Conv"),
    and with constant folding the BatchNorm is already in the conv's weight and bias."""
    m = onnx.load(path)
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    model = Detector(num_classes=len(LABELS), strides=STRIDES_P2).eval()
    model.fuse()
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    loaded = set()
    for n in convs:
        module_path = n.name.split("/")[-2]
        mod = model.get_submodule(module_path)
        conv = mod[0] if isinstance(mod, torch.nn.Sequential) else mod
        w, b = inits[n.input[1]], inits[n.input[2]]
        assert tuple(conv.weight.shape) == w.shape, (module_path, conv.weight.shape, w.shape)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(w.copy()))
            if conv.bias is None:
                conv.bias = torch.nn.Parameter(torch.from_numpy(b.copy()))
            else:
                conv.bias.copy_(torch.from_numpy(b))
        loaded.add(module_path)
    expected = {name for name, mod in model.named_modules() if isinstance(mod, torch.nn.Conv2d)}
    # a fused block's conv is "<block>.0.0" inside "<block>.0"; the file names the block
    missing = {e for e in expected if e not in loaded and e.rsplit(".", 1)[0] not in loaded}
    assert not missing, f"convolutions without weights in {path}: {sorted(missing)}"
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="training stills (make_dataset.py --split train), for calibration and QAT")
    ap.add_argument("--fp32", default=os.path.join(OUT, "vehicles.fp32.onnx"))
    ap.add_argument("--out", default=os.path.join(OUT, "vehicles.int8_sym.onnx"))
    ap.add_argument("--heldout", help="held-out folder for the printed check; default models/vehicles/heldout")
    ap.add_argument("--calib", type=int, default=256)
    ap.add_argument("--steps", type=int, default=100, help="QAT fine-tuning steps after calibration")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--check-fp32", action="store_true", help="score the loaded fp32 weights first (torch)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(SEED)
    images, labels = load_npz(a.data)
    gen = np.random.default_rng(SEED)

    model = fused_from_onnx(a.fp32)
    if a.check_fp32:
        m, aps = score(model, heldout=a.heldout)
        print(f"fp32 weights from {os.path.basename(a.fp32)}, torch mAP@0.5 {m:.4f}", flush=True)
    model.qconfig = qconfig()
    model.train()
    Q.prepare_qat(model, inplace=True)
    model.apply(Q.disable_fake_quant)
    model.apply(Q.enable_observer)
    idx = gen.permutation(len(images))[:a.calib]
    with torch.no_grad():
        for s in range(0, len(idx), 32):
            model(to_canvas(images[idx[s:s + 32]], INPUT_H, INPUT_W))
    model.apply(Q.enable_fake_quant)
    if a.steps:
        opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.0)
        order = gen.permutation(len(images))
        for step in range(a.steps):
            if step == a.steps // 2:
                model.apply(Q.disable_observer)  # freeze ranges for the second half
            b = np.take(order, range(step * a.batch, (step + 1) * a.batch), mode="wrap")
            x = to_canvas(images[b], INPUT_H, INPUT_W)
            t = [np.asarray(labels[i], np.float32).reshape(-1, 6) for i in b]
            for g in opt.param_groups:
                g["lr"] = a.lr * 0.5 * (1 + math.cos(math.pi * step / a.steps))
            loss, _ = loss_fn(model.raw(x), t, len(LABELS), model.strides)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if (step + 1) % 20 == 0:
                print(f"qat step {step + 1} loss {float(loss):.3f}", flush=True)
    model.apply(Q.disable_observer)
    model.eval()
    m, aps = score(model, heldout=a.heldout)
    print(f"fake-quant torch mAP@0.5 {m:.4f}", dict(zip(LABELS, [round(v, 4) for v in aps])), flush=True)
    torch.onnx.export(model, torch.zeros(1, 3, INPUT_H, INPUT_W), a.out, opset_version=13, input_names=["images"], output_names=["output0"],
                      dynamic_axes={"images": {0: "batch"}, "output0": {0: "batch"}}, do_constant_folding=True)
    exported = inline_constant_identities(onnx.load(a.out))
    onnx.save(exported, a.out)
    counts = check_symmetric_qdq(exported)
    print(f"wrote {a.out}: {counts}", flush=True)


if __name__ == "__main__":
    main()
