"""Train the day-ahead demand LSTM on the first 10 weeks of the Taylor series; export ONNX.

Run from the repo root with Debian's interpreter (not the pyenv python3 first on PATH):
    /usr/bin/python3 models/demand_lstm/build/train.py
Deterministic: fixed seed, one thread. Writes models/demand_lstm/{demand.fp32.onnx, train_log.json}
and the normalization block of the manifest (see export.py for the fp16 variant and manifest).
"""
import json
import os
import random
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(__file__))
import common as C  # noqa: E402

SEED = 20000605
HIDDEN = int(os.environ.get("LSTM_HIDDEN", 32))
EPOCHS = int(os.environ.get("LSTM_EPOCHS", 60))
BATCH = 64
LR = float(os.environ.get("LSTM_LR", 3e-3))
WEIGHT_DECAY = float(os.environ.get("LSTM_WD", 1e-3))
DROPOUT = float(os.environ.get("LSTM_DROPOUT", 0.3))
INPUT_NOISE = float(os.environ.get("LSTM_NOISE", 0.02))
OUT_DIR = os.path.join(os.path.dirname(__file__), "..")


class DemandLSTM(nn.Module):
    """LSTM over the last 8 days, one day (48 half-hours x features) per step.

    It predicts a correction to the same half-hour one week earlier; that seasonal skip is part
    of the graph, so the exported model's output is the full normalized forecast.
    """

    def __init__(self, n_features=len(C.FEATURES), hidden=HIDDEN, horizon=C.HORIZON):
        super().__init__()
        self.horizon = horizon
        self.days = C.HISTORY // horizon
        self.lstm = nn.LSTM(horizon * n_features, hidden, num_layers=1, batch_first=True)
        self.head = nn.Sequential(nn.Dropout(DROPOUT), nn.Linear(hidden + 2 * horizon, 128), nn.ReLU(), nn.Dropout(DROPOUT), nn.Linear(128, horizon))

    def forward(self, history):
        n = history.shape[0]
        days = history.reshape(n, self.days, -1)  # [N, 8, 48*F], row-major: step then feature
        _, (h, _) = self.lstm(days)
        week = 7 * self.horizon
        base = C.HISTORY - week  # index of the half-hour one week before the first target
        week_ago = history[:, base:base + self.horizon, 0]
        last_day = history[:, C.HISTORY - self.horizon:, 0]
        last_day_week_before = history[:, base - self.horizon:base, 0]
        anomaly = last_day - last_day_week_before
        return week_ago + self.head(torch.cat([h[-1], week_ago, anomaly], dim=1))


def seed_all(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


def main():
    seed_all(SEED)
    stamps, values = C.load_taylor()
    train_vals = values[:C.VAL_START]
    mean, std = float(train_vals.mean()), float(train_vals.std())
    feats = C.feature_matrix(stamps, values, mean, std)

    train_starts = list(range(C.HISTORY, C.VAL_START - C.HORIZON + 1))
    val_starts = list(range(C.VAL_START, C.TRAIN_END - C.HORIZON + 1))
    xtr, ytr = C.windows(feats, values, mean, std, train_starts)
    xva, yva = C.windows(feats, values, mean, std, val_starts)
    xtr_t, ytr_t = torch.from_numpy(xtr), torch.from_numpy(ytr)
    xva_t = torch.from_numpy(xva)
    print(f"train windows {len(xtr)}, val windows {len(xva)}, mean {mean:.1f}, std {std:.1f}", flush=True)

    model = DemandLSTM()
    opt = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, EPOCHS)
    best = (float("inf"), None, -1)
    log = []
    gen = torch.Generator().manual_seed(SEED)
    for epoch in range(EPOCHS):
        t0 = time.time()
        model.train()
        perm = torch.randperm(len(xtr_t), generator=gen)
        total = 0.0
        for i in range(0, len(perm), BATCH):
            idx = perm[i:i + BATCH]
            opt.zero_grad()
            xb = xtr_t[idx].clone()
            # noise on the value column only: calendar columns are exact by construction
            xb[:, :, 0] += INPUT_NOISE * torch.randn(xb.shape[0], xb.shape[1], generator=gen)
            loss = nn.functional.smooth_l1_loss(model(xb), ytr_t[idx], beta=0.05)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            total += float(loss) * len(idx)
        sched.step()
        model.eval()
        with torch.no_grad():
            pva = model(xva_t).numpy() * std + mean
        val_mae, val_mape = C.metrics(pva, yva * std + mean)
        log.append({"epoch": epoch, "train_loss": total / len(perm), "val_mae": val_mae, "val_mape": val_mape})
        print(f"epoch {epoch:3d} loss {total / len(perm):.5f} val MAE {val_mae:7.1f} MAPE {val_mape:.3f}% ({time.time() - t0:.1f}s)", flush=True)
        if val_mae < best[0]:
            best = (val_mae, {k: v.clone() for k, v in model.state_dict().items()}, epoch)
    model.load_state_dict(best[1])
    model.eval()
    print(f"best epoch {best[2]} val MAE {best[0]:.1f}", flush=True)

    os.makedirs(os.path.join(OUT_DIR, "..", ".cache"), exist_ok=True)
    torch.save(model.state_dict(), os.path.join(OUT_DIR, "..", ".cache", "demand_lstm.pt"))
    onnx_path = os.path.join(OUT_DIR, "demand.fp32.onnx")
    dummy = torch.from_numpy(xva[:2])
    torch.onnx.export(
        model, dummy, onnx_path, opset_version=13, input_names=["history"], output_names=["forecast"],
        dynamic_axes={"history": {0: "batch"}, "forecast": {0: "batch"}}, do_constant_folding=True,
    )
    with open(os.path.join(OUT_DIR, "train_log.json"), "w") as f:
        json.dump({
            "seed": SEED, "hidden": HIDDEN, "epochs": EPOCHS, "batch": BATCH, "lr": LR, "weight_decay": WEIGHT_DECAY,
            "dropout": DROPOUT, "input_noise": INPUT_NOISE,
            "best_epoch": best[2], "best_val_mae": best[0],
            "parameters": sum(p.numel() for p in model.parameters()),
            "normalization": {"mean": mean, "std": std}, "history": log,
        }, f, indent=1)
    print("wrote", onnx_path)


if __name__ == "__main__":
    main()
