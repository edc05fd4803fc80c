"""Train the vehicles detector (fp32) on rendered synthetic scenes. Seeded; one thread.

    /usr/bin/python3 models/synthetic/make_dataset.py --split train --count 6000 --width 416 --height 234 --out models/.cache/train416.npz
    /usr/bin/python3 models/vehicles/build/train.py --data models/.cache/train416.npz --steps 3600 \
        --init models/.cache/vehicles/last.pt --out models/.cache/vehicles416 --lr 1e-3 --warmup 100

Writes OUT/last.pt every 100 steps (model, EMA, optimizer, step) and resumes from it when
restarted with the same arguments, so a stopped run continues where it was. --init starts a new
run (no OUT/last.pt yet) from another checkpoint's model and EMA weights only: fresh optimizer,
step 0, fresh schedule. The canvas is common.py's INPUT_W x INPUT_H (the picture at top-left).
"""
import argparse
import copy
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import CANVAS_H, CANVAS_W, load_npz, loss_fn, to_canvas  # noqa: E402
from model import Detector  # noqa: E402

SEED = 1729
LABELS = ["person", "bicycle", "car", "bus", "truck"]


def flip(images, labels, w):
    images = images.flip(-1)
    out = []
    for t in labels:
        t = np.asarray(t, np.float32).reshape(-1, 6).copy()
        x1 = w - t[:, 3]
        t[:, 3] = w - t[:, 1]
        t[:, 1] = x1
        out.append(t)
    return images, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, default=3600)
    ap.add_argument("--batch", type=int, default=24)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=200, help="linear lr warm-up steps")
    ap.add_argument("--stop-at", type=int, help="stop after the checkpoint of this step (a multiple of 100), as if the run were stopped there")
    ap.add_argument("--strides", default="8,16,32", help="output levels: 8,16,32 or 4,8,16,32 (a stride-4 level for tiny objects)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the figures of record used 1)")
    ap.add_argument("--init", help="checkpoint whose model + EMA weights start a new run (not its optimizer or step)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", ".cache", "vehicles"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(a.threads)
    arch = {"strides": [int(v) for v in a.strides.split(",")]}
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)

    images, labels = load_npz(a.data)
    assert images.shape[1] <= CANVAS_H and images.shape[2] <= CANVAS_W, f"pictures {images.shape[1:3]} do not fit the {CANVAS_H}x{CANVAS_W} canvas"
    model = Detector(num_classes=len(LABELS), strides=arch["strides"])
    ema = copy.deepcopy(model).eval()
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=5e-4)
    step = 0
    ckpt = os.path.join(a.out, "last.pt")
    if os.path.exists(ckpt):
        s = torch.load(ckpt)
        model.load_state_dict(s["model"])
        ema.load_state_dict(s["ema"])
        opt.load_state_dict(s["opt"])
        step = s["step"]
        print(f"resumed at step {step}", flush=True)
    elif a.init:
        s = torch.load(a.init)
        fresh = model.init_from(s["model"])
        ema.init_from(s["ema"])
        if fresh:
            print(f"layers not in {a.init}, started fresh: {sorted({k.rsplit('.', 2)[0] for k in fresh})}", flush=True)
        print(f"initialized model + EMA from {a.init} (its step {s['step']}); fresh optimizer and schedule", flush=True)
    print(f"{len(images)} images, {sum(p.numel() for p in model.parameters())} parameters", flush=True)

    gen = np.random.default_rng(SEED)
    # the sample order is a pure function of the seed and the step, so resuming repeats it exactly
    order = np.concatenate([gen.permutation(len(images)) for _ in range(a.steps * a.batch // len(images) + 2)])
    flips = gen.random(len(order)) < 0.5
    warmup = a.warmup
    t0 = time.time()
    model.train()
    while step < a.steps and not (a.stop_at and step >= a.stop_at):
        idx = order[step * a.batch:(step + 1) * a.batch]
        x = to_canvas(images[idx], CANVAS_H, CANVAS_W)
        t = [np.asarray(labels[i], np.float32).reshape(-1, 6) for i in idx]
        fl = flips[step * a.batch:(step + 1) * a.batch]
        if fl.any():
            xf, tf = flip(x[fl], [t[i] for i in np.nonzero(fl)[0]], CANVAS_W)
            x[fl] = xf
            for k, i in enumerate(np.nonzero(fl)[0]):
                t[i] = tf[k]
        lr = a.lr * min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / a.steps))
        for g in opt.param_groups:
            g["lr"] = lr
        loss, (lc, lb, npos) = loss_fn(model.raw(x), t, len(LABELS), model.strides)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        d = 0.9995 * (1 - math.exp(-(step + 1) / 400))
        with torch.no_grad():
            for pe, pm in zip(ema.state_dict().values(), model.state_dict().values()):
                if pe.dtype.is_floating_point:
                    pe.mul_(d).add_(pm.detach(), alpha=1 - d)
                else:
                    pe.copy_(pm)
        step += 1
        if step % 20 == 0:
            el = time.time() - t0
            print(f"step {step} loss {float(loss):.3f} cls {lc:.3f} box {lb:.3f} pos {npos} lr {lr:.5f} {el:.0f}s", flush=True)
        if step % 100 == 0 or step == a.steps:
            torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(), "step": step, "arch": arch}, ckpt + ".tmp")
            os.replace(ckpt + ".tmp", ckpt)
    if step < a.steps:
        print(f"stopped at step {step} (--stop-at)", flush=True)
        return
    json.dump({"seed": SEED, "steps": a.steps, "batch": a.batch, "lr": a.lr, "warmup": a.warmup, "init": a.init, "strides": arch["strides"], "threads": a.threads, "canvas": [CANVAS_H, CANVAS_W],
               "images": len(images), "labels": LABELS},
              open(os.path.join(a.out, "train_args.json"), "w"))
    print("done", flush=True)


if __name__ == "__main__":
    main()
