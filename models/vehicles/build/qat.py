"""INT8 variant: fold BN into Conv(+ReLU), insert fake quantization, calibrate, optionally
fine-tune (QAT), export QDQ ONNX (QuantizeLinear/DequantizeLinear, opset 13).

    /usr/bin/python3 models/vehicles/build/qat.py --data models/.cache/train416.npz --steps 150

Quantization scheme: activations uint8 per tensor (MovingAverageMinMaxObserver; after a ReLU
the zero point is 0), weights int8 symmetric per output channel (S8 weights, U8 activations:
onnxruntime's fastest CPU kernels). onnxruntime folds each ReLU into the following
QuantizeLinear only when its zero point is the type's minimum, which is what makes
DQ->Conv->ReLU->Q one QLinearConv; with symmetric int8 activations (zero point 0, what TensorRT
requires) the ReLU stays and the model runs slower than fp32 on the CPU provider. torch 1.13's default QAT qconfig
(fused_moving_avg_obs_fake_quant) does not export to ONNX, hence the explicit FakeQuantize.
Conv+BN+ReLU are fused first: onnxruntime then runs each DQ->Conv->ReLU->Q as one QLinearConv.
The grid decode (exp, sigmoid, offsets) stays float after the last DequantizeLinear.
"""
import argparse
import copy
import math
import os
import sys

import numpy as np
import torch
from torch.ao import quantization as Q

HERE = os.path.dirname(__file__)
sys.path.insert(0, HERE)
from common import INPUT_H, INPUT_W, load_npz, loss_fn, to_canvas  # noqa: E402
from export import DEFAULT_CKPT, LABELS, load_ema, score  # noqa: E402

sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import onnx  # noqa: E402
from onnx_util import fold_weight_quantization  # noqa: E402

SEED = 4242


def qconfig():
    act = Q.FakeQuantize.with_args(observer=Q.MovingAverageMinMaxObserver, quant_min=0, quant_max=255,
                                   dtype=torch.quint8, qscheme=torch.per_tensor_affine, reduce_range=False)
    wt = Q.FakeQuantize.with_args(observer=Q.MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127,
                                  dtype=torch.qint8, qscheme=torch.per_channel_symmetric, reduce_range=False, ch_axis=0)
    return Q.QConfig(activation=act, weight=wt)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--ckpt", default=DEFAULT_CKPT)
    ap.add_argument("--heldout", help="held-out folder for the printed check; default models/vehicles/heldout")
    ap.add_argument("--calib", type=int, default=256)
    ap.add_argument("--steps", type=int, default=150, help="QAT fine-tuning steps after calibration")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(SEED)
    images, labels = load_npz(a.data)
    gen = np.random.default_rng(SEED)

    model = load_ema(a.ckpt)
    model.fuse()  # eval-mode fusion: BN folded into the conv weights, Conv+ReLU as one module
    model.qconfig = qconfig()
    model.train()
    Q.prepare_qat(model, inplace=True)
    # calibration: observers only
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
            b = order[(step * a.batch) % len(order):][:a.batch]
            x = to_canvas(images[b], INPUT_H, INPUT_W)
            t = [np.asarray(labels[i], np.float32).reshape(-1, 6) for i in b]
            for g in opt.param_groups:
                g["lr"] = a.lr * 0.5 * (1 + math.cos(math.pi * step / a.steps))
            loss, parts = loss_fn(model.raw(x), t, len(LABELS), model.strides)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if (step + 1) % 20 == 0:
                print(f"qat step {step + 1} loss {float(loss):.3f}", flush=True)
    model.apply(Q.disable_observer)
    model.eval()
    m, aps = score(model, heldout=a.heldout)
    print(f"fake-quant torch mAP@0.5 {m:.4f}", dict(zip(LABELS, [round(v, 4) for v in aps])), flush=True)
    path = os.path.join(HERE, "..", "vehicles.int8.onnx")
    torch.onnx.export(model, torch.zeros(1, 3, INPUT_H, INPUT_W), path, opset_version=13, input_names=["images"], output_names=["output0"],
                      dynamic_axes={"images": {0: "batch"}, "output0": {0: "batch"}}, do_constant_folding=True)
    onnx.save(fold_weight_quantization(onnx.load(path)), path)
    print("wrote", path)


if __name__ == "__main__":
    main()
