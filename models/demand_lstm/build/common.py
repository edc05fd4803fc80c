"""Shared data handling for the demand LSTM: loading, calendar features, windows, metrics.

The feature layout here is the contract documented in models/README.md and
models/demand_lstm/manifest.json; the TypeScript scheduler rebuilds it without Python.
"""
import csv
import datetime as dt
import math
import os

import numpy as np

STEP_SECONDS = 1800
HISTORY = 384  # eight days of half-hours: a week plus the day that shows how this week differs from the last
HORIZON = 48  # one day ahead
FEATURES = ["value", "sin_time_of_day", "cos_time_of_day", "sin_day_of_week", "cos_day_of_week", "is_weekend"]

TRAIN_END = 3360  # first 10 weeks (rows 0..3359) are for training and validation
VAL_START = 3024  # week 10 (rows 3024..3359) is held back for validation / early stopping


def shared_data_dir():
    return os.environ.get("CITYEDGE_SHARED_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "shared", "data"))


def load_taylor(path=None):
    path = path or os.path.join(shared_data_dir(), "timeseries", "taylor_uk_demand_halfhourly_2000.csv")
    stamps, values = [], []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            stamps.append(row["timestamp"])
            values.append(float(row["demand_mw"]))
    return stamps, np.asarray(values, dtype=np.float64)


def calendar(stamp):
    """Calendar features of one local wall-clock timestamp 'YYYY-MM-DDTHH:MM[:SS]'."""
    t = dt.datetime.fromisoformat(stamp)
    tod = (t.hour * 60 + t.minute + t.second / 60.0) / 1440.0  # fraction of the day, 0..1
    dow = t.weekday()  # Monday = 0 .. Sunday = 6
    return [
        math.sin(2 * math.pi * tod),
        math.cos(2 * math.pi * tod),
        math.sin(2 * math.pi * dow / 7.0),
        math.cos(2 * math.pi * dow / 7.0),
        1.0 if dow >= 5 else 0.0,
    ]


def feature_matrix(stamps, values, mean, std):
    """[T, 6] float32: normalized value then calendar features, one row per step."""
    cal = np.asarray([calendar(s) for s in stamps], dtype=np.float64)
    v = ((values - mean) / std)[:, None]
    return np.concatenate([v, cal], axis=1).astype(np.float32)


def windows(feats, values, mean, std, issue_starts):
    """For each issue index s: history rows s-HISTORY..s-1 and the 48 normalized targets s..s+47."""
    xs = np.stack([feats[s - HISTORY:s] for s in issue_starts])
    ys = np.stack([(values[s:s + HORIZON] - mean) / std for s in issue_starts]).astype(np.float32)
    return xs, ys


def metrics(pred, truth):
    err = np.abs(pred - truth)
    return float(err.mean()), float(100.0 * (err / np.abs(truth)).mean())


def test_issue_starts(n):
    """Every half-hour of the last 2 weeks at which a full day-ahead target lies inside them."""
    return list(range(TRAIN_END, n - HORIZON + 1))


def baselines(values, starts):
    weekly = np.stack([values[s - 336:s - 336 + HORIZON] for s in starts])
    daily = np.stack([values[s - 48:s] for s in starts])  # target s+h uses s+h-48, h=0..47
    truth = np.stack([values[s:s + HORIZON] for s in starts])
    return metrics(weekly, truth), metrics(daily, truth)
