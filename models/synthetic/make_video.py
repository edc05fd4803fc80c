"""Render a street video with exact ground truth: boxes, track ids and counting-line crossings.

    /usr/bin/python3 models/synthetic/make_video.py --seed 5000001 --seconds 60 \
        --out models/synthetic/demo.mp4 --gt models/synthetic/demo.gt.json

A fixed pole camera over a 4-lane road with a zebra crossing; cars, buses, trucks and cyclists
arrive in their lanes (Poisson arrivals, simple car following), pedestrians walk the sidewalks
and cross at the zebra. One counting line spans the road and both sidewalks. A crossing is
counted exactly as the runtime counts it (runtime/detect/counting.ts): the centre of the
object's image box moves from one side of the directed line from->to to the other between two
frames, passing between the line's ends; "in" = from its left to its right (y down).

The video is H.264 (libx264, yuv420p) at --fps; ground truth frame k is the picture at
t = k / fps. Seeds for videos start at 5,000,000: never used for training stills.
"""
import argparse
import json
import math
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import scene  # noqa: E402


class FixedCamera(scene.Camera):
    def __init__(self, lay, height=8.5, pitch=24.0, yaw=-8.0, hfov=62.0, x=None):
        class R:  # deterministic "rng" that hands back the configured values in Camera's order
            def __init__(self, vals):
                self.vals = list(vals)

            def uniform(self, lo, hi):
                return self.vals.pop(0)

        x = lay.road_x1 + 1.0 if x is None else x
        super().__init__(R([hfov, height, pitch, yaw, 0.0, x]), lay)


def side(a, b, p):
    return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])


def crossing(a, b, p, q):
    """Same rule as runtime/detect/counting.ts crossing()."""
    sa, sb = side(a, b, p), side(a, b, q)
    if sa == 0 or sb == 0 or (sa > 0) == (sb > 0):
        return None
    ta, tb = side(p, q, a), side(p, q, b)
    if ta != 0 and tb != 0 and (ta > 0) == (tb > 0):
        return None
    return "in" if sa < 0 else "out"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=5_000_001)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--fps", type=float, default=10.0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--gt", required=True)
    ap.add_argument("--crf", type=int, default=27)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)

    lay = scene.Layout(rng)
    lay.lanes, lay.lane_w = 4, 3.5
    lay.road_x0, lay.road_x1 = -7.0, 7.0
    lay.walk_w = 3.0
    lay.cross_z = None
    lay.zebra, lay.zebra_z = True, 38.0
    lay.left_hand = False
    cam = FixedCamera(lay)
    st = scene.Style(rng)
    st.brightness = max(st.brightness, 0.8)
    st.ambient = max(st.ambient, 0.5)
    buildings = scene.make_buildings(rng, lay, st)
    background = scene.render_background(rng, cam, lay, st, buildings)
    fx = {"gamma": 1.0, "blur": 0, "motion": None, "noise": 3.0, "vignette": 0.0}

    line_z = 22.0
    p0 = cam.project(np.array([lay.road_x0 - lay.walk_w, 0.0, line_z]))
    p1 = cam.project(np.array([lay.road_x1 + lay.walk_w, 0.0, line_z]))
    line = {"id": "main-road", "from": [round(float(p0[0]) / cam.w, 4), round(float(p0[1]) / cam.h, 4)],
            "to": [round(float(p1[0]) / cam.w, 4), round(float(p1[1]) / cam.h, 4)]}
    lf = (line["from"][0] * cam.w, line["from"][1] * cam.h)
    lt = (line["to"][0] * cam.w, line["to"][1] * cam.h)

    dt = 1.0 / a.fps
    n_frames = int(round(a.seconds * a.fps))
    objects = []
    next_id = 1
    z_far, z_near = 130.0, -3.0
    lanes = lay.lane_centres()
    # mean arrivals per second per lane, and class mix per lane (the outer lanes carry cyclists)
    rate = [0.16, 0.22, 0.22, 0.16]
    ped_rate = 0.25

    def new(kind, x, z, heading, speed):
        nonlocal next_id
        o = scene.RoadUser(rng, kind, x, z, heading, speed, track_id=next_id)
        next_id += 1
        objects.append(o)
        return o

    ff = subprocess.Popen([
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
        "-s", f"{cam.w}x{cam.h}", "-r", str(a.fps), "-i", "-", "-c:v", "libx264", "-preset", "slow",
        "-crf", str(a.crf), "-pix_fmt", "yuv420p", "-g", str(int(a.fps * 2)), "-movflags", "+faststart", a.out,
    ], stdin=subprocess.PIPE)

    frames, events = [], []
    prev_centre = {}
    counts = {}
    warm = int(20 * a.fps)  # simulate 20 s before the first frame so the road starts busy
    for k in range(-warm, n_frames):
        # arrivals
        for li, x in enumerate(lanes):
            if rng.random() < rate[li] * dt:
                r = rng.random()
                outer = li in (0, len(lanes) - 1)
                kind = ("bicycle" if outer and r < 0.18 else "car" if r < 0.72 else "truck" if r < 0.86 else "bus")
                heading = lay.lane_heading(x)
                z0 = z_far if heading > 1 else z_near
                speed = rng.uniform(4.0, 6.5) if kind == "bicycle" else rng.uniform(8.0, 13.0)
                xx = x + (1.0 if kind == "bicycle" and x > 0 else -1.0 if kind == "bicycle" else 0.0)
                blocked = any(abs(o.x - xx) < 1.5 and abs(o.z - z0) < 14 for o in objects)
                if not blocked:
                    new(kind, xx, z0, heading, speed)
        if rng.random() < ped_rate * dt:
            sgn = rng.choice([-1, 1])
            x = (lay.road_x1 if sgn > 0 else lay.road_x0) + sgn * rng.uniform(0.6, lay.walk_w - 0.5)
            away = rng.random() < 0.5
            o = new("person", x, 1.0 if away else 70.0, 0.0 if away else math.pi, rng.uniform(1.1, 1.7))
            o.cross_at = lay.zebra_z if rng.random() < 0.35 else None
        # motion: vehicles follow the one ahead; pedestrians may turn onto the zebra
        for o in objects:
            if o.cls == "person":
                cz = getattr(o, "cross_at", None)
                if cz is not None and abs(o.z - cz) < o.speed * dt and abs(math.sin(o.heading)) < 0.5:
                    o.z = cz
                    o.heading = -math.pi / 2 if o.x > 0 else math.pi / 2
                    o.cross_at = None
                o.step(dt)
                continue
            ahead = [p for p in objects if p is not o and p.cls != "person" and abs(p.x - o.x) < 1.6
                     and 0 < (p.z - o.z) * math.cos(o.heading) < (o.size[0] + p.size[0]) / 2 + 6]
            v = o.speed if not ahead else min(o.speed, min(p.speed for p in ahead) * 0.9)
            o.x += v * dt * math.sin(o.heading)
            o.z += v * dt * math.cos(o.heading)
        objects = [o for o in objects if z_near - 1 <= o.z <= z_far + 1 and abs(o.x) < 40]
        if k < 0:
            continue
        img = background.copy()
        info = scene.render_objects(img, cam, st, objects)
        img = scene.post_process(rng, img, st, fx)
        ff.stdin.write(img.tobytes())
        boxes = []
        for o, inf in zip(objects, info):
            if inf is None:
                prev_centre.pop(o.track_id, None)
                continue
            (x1, y1, x2, y2), _, vis, trunc = inf
            boxes.append([o.track_id, scene.CLS[o.cls], round(x1, 1), round(y1, 1), round(x2, 1), round(y2, 1), round(vis, 2)])
            c = ((x1 + x2) / 2, (y1 + y2) / 2)
            p = prev_centre.get(o.track_id)
            if p is not None:
                d = crossing(lf, lt, p, c)
                if d is not None:
                    events.append({"frame": k, "t": round(k / a.fps, 3), "track_id": o.track_id, "label": o.cls, "line_id": line["id"], "direction": d})
                    cc = counts.setdefault(o.cls, {"in": 0, "out": 0})
                    cc[d] += 1
            prev_centre[o.track_id] = c
        frames.append(boxes)
    ff.stdin.close()
    if ff.wait() != 0:
        raise SystemExit("ffmpeg failed")
    gt = {
        "video": os.path.basename(a.out), "seed": a.seed, "fps": a.fps, "width": cam.w, "height": cam.h,
        "frames": n_frames, "labels": scene.LABELS,
        "lines": [line], "counts": {line["id"]: counts},
        "events": events,
        "boxes_format": "per frame: [track_id, class, x1, y1, x2, y2, visible_share] in pixels of the video",
        "boxes": frames,
    }
    with open(a.gt, "w") as f:
        json.dump(gt, f, separators=(",", ":"))
        f.write("\n")
    total = sum(v["in"] + v["out"] for v in counts.values())
    print(json.dumps({"line": line, "counts": counts, "total": total}, indent=1))


if __name__ == "__main__":
    main()
