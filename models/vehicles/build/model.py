"""A small anchor-free detector whose ONNX output uses the yolov8 layout.

Output [B, 4 + C, N]: cx, cy, w, h in input pixels, then C sigmoided class scores, N anchor
points over strides 8, 16 and 32 (at 320x320: 1600 + 400 + 100 = 2100), or 4, 8, 16 and 32
with the stride-4 level for tiny objects (`strides=(4, 8, 16, 32)`; at 416x256: 6656 + 2184 =
8840). Every convolution is Conv+BN+ReLU so it fuses before INT8 quantization; the only float-only ops are the final
decode (grid offsets, exp, sigmoid) after the DeQuantStub.
"""
import torch
from torch import nn

STRIDES = (8, 16, 32)
STRIDES_P2 = (4, 8, 16, 32)


class CBR(nn.Sequential):
    def __init__(self, cin, cout, k=3, s=1):
        super().__init__(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=False))


class Detector(nn.Module):
    def __init__(self, num_classes=5, width=(16, 24, 48, 72, 96), neck=48, strides=STRIDES):
        super().__init__()
        assert tuple(strides) in (STRIDES, STRIDES_P2), f"strides {strides}: {STRIDES} or {STRIDES_P2}"
        c0, c1, c2, c3, c4 = width
        self.nc = num_classes
        self.strides = tuple(strides)
        self.p2 = self.strides == STRIDES_P2
        self.quant = torch.quantization.QuantStub()
        self.dequant = nn.ModuleList([torch.quantization.DeQuantStub() for _ in STRIDES])
        self.stem = nn.Sequential(CBR(3, c0, 3, 2), CBR(c0, c1, 3, 2), CBR(c1, c1))  # /4
        self.s3 = nn.Sequential(CBR(c1, c2, 3, 2), CBR(c2, c2), CBR(c2, c2))  # /8
        self.s4 = nn.Sequential(CBR(c2, c3, 3, 2), CBR(c3, c3), CBR(c3, c3))  # /16
        self.s5 = nn.Sequential(CBR(c3, c4, 3, 2), CBR(c4, c4), CBR(c4, c4))  # /32
        self.l3, self.l4, self.l5 = CBR(c2, neck, 1), CBR(c3, neck, 1), CBR(c4, neck, 1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.add4 = nn.quantized.FloatFunctional()
        self.add3 = nn.quantized.FloatFunctional()
        self.f4, self.f3 = CBR(neck, neck), CBR(neck, neck)
        self.heads = nn.ModuleList([nn.Sequential(CBR(neck, neck), CBR(neck, neck), nn.Conv2d(neck, 4 + num_classes, 1)) for _ in STRIDES])
        heads = list(self.heads)
        if self.p2:  # stride 4: the stem's features plus the top-down path, with a head of its own
            self.l2, self.f2 = CBR(c1, neck, 1), CBR(neck, neck)
            self.add2 = nn.quantized.FloatFunctional()
            self.head2 = nn.Sequential(CBR(neck, neck), CBR(neck, neck), nn.Conv2d(neck, 4 + num_classes, 1))
            self.dequant2 = torch.quantization.DeQuantStub()
            heads.append(self.head2)
        prior = -4.6  # initial class score ~0.01, so early training is not swamped by negatives
        for h in heads:
            nn.init.constant_(h[-1].bias[4:], prior)
            nn.init.zeros_(h[-1].bias[:4])

    def raw(self, x):
        """Per level [B, 4 + C, h, w] raw outputs (box offsets / log-sizes, class logits)."""
        x = self.quant(x)
        p2 = self.stem(x)
        p3 = self.s3(p2)
        p4 = self.s4(p3)
        p5 = self.s5(p4)
        t5 = self.l5(p5)
        t4 = self.f4(self.add4.add(self.l4(p4), self.up(t5)))
        t3 = self.f3(self.add3.add(self.l3(p3), self.up(t4)))
        outs = [dq(h(t)) for dq, h, t in zip(self.dequant, self.heads, (t3, t4, t5))]
        if self.p2:
            t2 = self.f2(self.add2.add(self.l2(p2), self.up(t3)))
            outs.insert(0, self.dequant2(self.head2(t2)))
        return outs  # in the order of self.strides

    def forward(self, x):
        return decode(self.raw(x), self.nc, self.strides)

    def init_from(self, state):
        """Start from a 3-level checkpoint's weights: every shared layer as it was; the stride-4
        level's top-down conv and head start as copies of the stride-8 level's (same shapes), its
        1x1 lateral conv fresh."""
        missing, unexpected = self.load_state_dict(state, strict=False)
        assert not unexpected, unexpected
        if self.p2:
            own = self.state_dict()
            for k in missing:
                if k.startswith("f2.") or k.startswith("head2."):
                    src = k.replace("f2.", "f3.", 1) if k.startswith("f2.") else "heads.0." + k[len("head2."):]
                    own[k].copy_(state[src])
        return [k for k in missing if not (k.startswith("f2.") or k.startswith("head2."))]

    def fuse(self):
        for m in self.modules():
            if isinstance(m, CBR):
                torch.quantization.fuse_modules(m, [["0", "1", "2"]], inplace=True)


def grids(outs, level_strides=STRIDES):
    """Anchor points (cx, cy in pixels) and strides for the levels' output sizes."""
    pts, strides = [], []
    for o, s in zip(outs, level_strides):
        h, w = int(o.shape[-2]), int(o.shape[-1])  # constants in the exported graph
        ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
        pts.append(torch.stack([(xs.reshape(-1) + 0.5) * s, (ys.reshape(-1) + 0.5) * s], 0))
        strides.append(torch.full((h * w,), float(s)))
    return torch.cat(pts, 1), torch.cat(strides)


def decode(outs, nc, level_strides=STRIDES):
    """Raw levels -> [B, 4 + C, N]: YOLOX-style boxes (centre offset and log size in strides)."""
    flat = torch.cat([o.flatten(2) for o in outs], 2)  # [B, 4 + C, N]
    pts, strides = grids(outs, level_strides)
    xy = pts.unsqueeze(0) + flat[:, 0:2] * strides
    wh = torch.exp(flat[:, 2:4].clamp(max=8.0)) * strides
    return torch.cat([xy, wh, torch.sigmoid(flat[:, 4:])], 1)
