"""Data, target assignment, loss and scoring shared by train.py, qat.py and export.py."""
import json

import numpy as np
import torch

from model import STRIDES

# The one size setting for training, QAT, export, scoring and the manifest. The model's input is
# [batch, 3, INPUT_H, INPUT_W]: the camera's 640x360 picture scaled by 0.65 to PICTURE_W x PICTURE_H
# (cv2.INTER_AREA; models/synthetic/make_dataset.py --width 416 --height 234) at the top-left,
# grey 114 below. The training canvas is the input itself (234 rows padded to 256, a multiple of 32).
INPUT_W, INPUT_H = 416, 256
PICTURE_W, PICTURE_H = 416, 234
CANVAS_W, CANVAS_H = INPUT_W, INPUT_H
PAD = 114


def load_npz(path):
    d = np.load(path)
    return d["images"], json.loads(str(d["labels"]))


def to_canvas(images, h=CANVAS_H, w=CANVAS_W):
    """uint8 [N, ih, iw, 3] (e.g. 234x416) -> float [N, 3, h, w] in 0..1, picture at top-left, grey below/right."""
    n, ih, iw, _ = images.shape
    out = np.full((n, h, w, 3), PAD, np.uint8)
    out[:, :ih, :iw] = images
    return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)


def anchor_points(h, w, level_strides=STRIDES):
    pts, strides, level = [], [], []
    for li, s in enumerate(level_strides):
        gh, gw = h // s, w // s
        ys, xs = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
        pts.append(np.stack([(xs.ravel() + 0.5) * s, (ys.ravel() + 0.5) * s], 1))
        strides.append(np.full(gh * gw, s, np.float32))
        level.append(np.full(gh * gw, li))
    return np.concatenate(pts).astype(np.float32), np.concatenate(strides), np.concatenate(level)


# Which boxes a level learns, by the box's longer side in input pixels. With the stride-4 level,
# boxes under 32 px go there and stride 8 keeps 16..64.
LEVEL_RANGES = {8: (0, 64), 16: (32, 160), 32: (96, 1e9)}
LEVEL_RANGES_P2 = {4: (0, 32), 8: (16, 64), 16: (32, 160), 32: (96, 1e9)}


def level_ranges(level_strides):
    table = LEVEL_RANGES_P2 if 4 in level_strides else LEVEL_RANGES
    return [table[s] for s in level_strides]


RADIUS = 2.5


def assign(boxes, pts, strides, level, ranges=None):
    """Per anchor: index of its ground-truth box or -1, and an ignore mask.

    boxes: [G, 6] class, x1, y1, x2, y2, ignore. An anchor is positive for a box when the box
    size suits its level and the anchor lies inside the box within RADIUS strides of its centre;
    the anchor nearest the centre on a suitable level is always positive, so tiny boxes get one.
    An anchor claimed by several boxes takes the smallest. Anchors inside ignored boxes that no
    real box claims are left out of the class loss.
    """
    ranges = ranges or level_ranges(STRIDES)
    n = len(pts)
    owner = np.full(n, -1, np.int64)
    ignore = np.zeros(n, bool)
    if len(boxes) == 0:
        return owner, ignore
    b = np.asarray(boxes, np.float32)
    area = (b[:, 3] - b[:, 1]) * (b[:, 4] - b[:, 2])
    best_area = np.full(n, np.inf, np.float32)
    for g in np.argsort(-area):
        _, x1, y1, x2, y2, ig = b[g]
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        inside = (pts[:, 0] > x1) & (pts[:, 0] < x2) & (pts[:, 1] > y1) & (pts[:, 1] < y2)
        if ig:
            ignore |= inside
            continue
        side = max(x2 - x1, y2 - y1)
        ok_level = np.zeros(n, bool)
        for li, (lo, hi) in enumerate(ranges):
            if lo <= side < hi:
                ok_level |= level == li
        near = (np.abs(pts[:, 0] - cx) < RADIUS * strides) & (np.abs(pts[:, 1] - cy) < RADIUS * strides)
        pos = inside & near & ok_level
        d = np.hypot(pts[:, 0] - cx, pts[:, 1] - cy) / strides
        d[~ok_level] = np.inf
        pos[np.argmin(d)] = True
        take = pos & (area[g] <= best_area)
        owner[take] = g
        best_area[take] = area[g]
    ignore &= owner < 0
    return owner, ignore


def giou(a, b):
    """GIoU of matching rows of two [K, 4] x1y1x2y2 tensors."""
    ix1, iy1 = torch.max(a[:, 0], b[:, 0]), torch.max(a[:, 1], b[:, 1])
    ix2, iy2 = torch.min(a[:, 2], b[:, 2]), torch.min(a[:, 3], b[:, 3])
    inter = (ix2 - ix1).clamp(min=0) * (iy2 - iy1).clamp(min=0)
    aa = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    ab = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = aa + ab - inter + 1e-7
    iou = inter / union
    cx1, cy1 = torch.min(a[:, 0], b[:, 0]), torch.min(a[:, 1], b[:, 1])
    cx2, cy2 = torch.max(a[:, 2], b[:, 2]), torch.max(a[:, 3], b[:, 3])
    c = (cx2 - cx1) * (cy2 - cy1) + 1e-7
    return iou - (c - union) / c, iou


def loss_fn(raw_levels, targets, nc, level_strides=STRIDES):
    """raw_levels: model.raw() output (levels in the order of level_strides); targets: per image
    [G, 6] arrays. Returns (loss, parts)."""
    flat = torch.cat([o.flatten(2) for o in raw_levels], 2).permute(0, 2, 1)  # [B, N, 4 + C]
    B, N, _ = flat.shape
    h = raw_levels[0].shape[-2] * level_strides[0]
    w = raw_levels[0].shape[-1] * level_strides[0]
    pts, strides, level = anchor_points(h, w, level_strides)
    ranges = level_ranges(level_strides)
    pts_t, str_t = torch.from_numpy(pts), torch.from_numpy(strides)
    cls_t = torch.zeros(B, N, nc)
    weight = torch.ones(B, N, 1)
    pos_pred, pos_gt = [], []
    for i, t in enumerate(targets):
        owner, ignore = assign(t, pts, strides, level, ranges)
        weight[i, torch.from_numpy(ignore)] = 0.0
        idx = np.nonzero(owner >= 0)[0]
        if len(idx) == 0:
            continue
        gt = torch.from_numpy(np.asarray(t, np.float32)[owner[idx]])
        cls_t[i, idx, gt[:, 0].long()] = 1.0
        p = flat[i, idx]
        s = str_t[idx, None]
        xy = pts_t[idx] + p[:, 0:2] * s
        wh = torch.exp(p[:, 2:4].clamp(max=8.0)) * s
        pos_pred.append(torch.cat([xy - wh / 2, xy + wh / 2], 1))
        pos_gt.append(gt[:, 1:5])
    num_pos = max(1, sum(len(p) for p in pos_pred))
    bce = torch.nn.functional.binary_cross_entropy_with_logits(flat[:, :, 4:], cls_t, reduction="none")
    l_cls = (bce * weight).sum() / num_pos
    if pos_pred:
        g, _ = giou(torch.cat(pos_pred), torch.cat(pos_gt))
        l_box = (1 - g).sum() / num_pos
    else:
        l_box = flat.sum() * 0
    return l_cls + 5.0 * l_box, (float(l_cls), float(l_box), num_pos)


# ------------------------------------------------------------------ scoring (numpy)
def nms(boxes, scores, iou_thr):
    order = np.argsort(-scores)
    keep = []
    while len(order):
        i = order[0]
        keep.append(i)
        if len(order) == 1:
            break
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        a = (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])
        b = (boxes[rest, 2] - boxes[rest, 0]) * (boxes[rest, 3] - boxes[rest, 1])
        order = rest[inter / (a + b - inter + 1e-9) <= iou_thr]
    return keep


def detections(out, score_thr=0.001, iou_thr=0.45, max_det=300):
    """out: [4 + C, N] numpy (one image) -> list of (cls, score, x1, y1, x2, y2), class-wise NMS."""
    box = out[:4].T
    xyxy = np.stack([box[:, 0] - box[:, 2] / 2, box[:, 1] - box[:, 3] / 2, box[:, 0] + box[:, 2] / 2, box[:, 1] + box[:, 3] / 2], 1)
    scores = out[4:].T
    cls = scores.argmax(1)
    sc = scores.max(1)
    m = sc >= score_thr
    res = []
    for c in np.unique(cls[m]):
        idx = np.nonzero(m & (cls == c))[0]
        for k in nms(xyxy[idx], sc[idx], iou_thr):
            j = idx[k]
            res.append((int(c), float(sc[j]), *map(float, xyxy[j])))
    res.sort(key=lambda r: -r[1])
    return res[:max_det]


def iou_matrix(a, b):
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    aa = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    ab = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (aa[:, None] + ab[None, :] - inter + 1e-9)


def mean_ap(all_dets, all_labels, nc, iou_thr=0.5):
    """VOC all-point AP@iou_thr per class, mean over classes present. Ignored boxes: a detection
    that best matches one (and no real box) is dropped rather than counted false."""
    aps = []
    for c in range(nc):
        recs, npos = [], 0
        for dets, labels in zip(all_dets, all_labels):
            gts = [l for l in labels if l[0] == c]
            real = np.array([l[1:5] for l in gts if not l[5]], np.float64).reshape(-1, 4)
            ign = np.array([l[1:5] for l in gts if l[5]], np.float64).reshape(-1, 4)
            npos += len(real)
            used = np.zeros(len(real), bool)
            for d in (d for d in dets if d[0] == c):
                box = np.array(d[2:6])
                if len(real):
                    ious = iou_matrix(box, real)[0]
                    j = int(np.argmax(ious))
                    if ious[j] >= iou_thr and not used[j]:
                        used[j] = True
                        recs.append((d[1], 1))
                        continue
                    if ious[j] >= iou_thr and used[j]:
                        recs.append((d[1], 0))
                        continue
                if len(ign) and iou_matrix(box, ign)[0].max() >= iou_thr:
                    continue
                recs.append((d[1], 0))
        if npos == 0:
            continue
        recs.sort(key=lambda r: -r[0])
        tp = np.cumsum([r[1] for r in recs])
        fp = np.cumsum([1 - r[1] for r in recs])
        rec = tp / npos
        prec = tp / np.maximum(tp + fp, 1e-9)
        mrec = np.concatenate([[0], rec, [1]])
        mpre = np.concatenate([[0], prec, [0]])
        for i in range(len(mpre) - 2, -1, -1):
            mpre[i] = max(mpre[i], mpre[i + 1])
        i = np.nonzero(mrec[1:] != mrec[:-1])[0]
        aps.append(float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])))
    return float(np.mean(aps)) if aps else 0.0, aps
