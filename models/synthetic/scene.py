"""Synthetic street scenes seen from a pole-mounted camera: our own renderer, numpy + OpenCV.

A pinhole camera (height, pitch, yaw, roll, field of view drawn per scene) looks at a ground
plane with a road along Z (2-4 lanes, both directions), sidewalks, an optional cross street with
a zebra crossing, and buildings. Road users are built from shaded cuboids (cars, buses, trucks,
cyclists, pedestrians), drawn far-to-near so nearer ones occlude farther ones. Every object's
exact image box is the bounding rectangle of its projected vertices; its visible share comes
from an id buffer rendered with the same painter's order.

Everything is driven by one numpy Generator, so a seed fully determines a scene or a video.
"""
import math

import cv2
import numpy as np

LABELS = ["person", "bicycle", "car", "bus", "truck"]
CLS = {n: i for i, n in enumerate(LABELS)}
W, H = 640, 360  # native render size (the demo video's size)


# ---------------------------------------------------------------- camera
class Camera:
    def __init__(self, rng, lay, w=W, h=H):
        self.w, self.h = w, h
        hfov = math.radians(rng.uniform(50, 72))
        self.f = (w / 2) / math.tan(hfov / 2)
        self.height = rng.uniform(5.5, 11.0)
        self.pitch = math.radians(rng.uniform(16, 34))
        self.yaw = math.radians(rng.uniform(-22, 22))
        self.roll = math.radians(rng.uniform(-2.5, 2.5))
        # the pole stands on a sidewalk or over the road (gantry)
        self.x = rng.uniform(lay.road_x0 - lay.walk_w, lay.road_x1 + lay.walk_w)
        cp, sp = math.cos(self.pitch), math.sin(self.pitch)
        cy, sy = math.cos(self.yaw), math.sin(self.yaw)
        # camera axes in world coordinates (X right, Y up, Z along the road)
        fwd = np.array([sy * cp, -sp, cy * cp])
        right = np.array([cy, 0.0, -sy])
        up = np.cross(fwd, right)
        cr, sr = math.cos(self.roll), math.sin(self.roll)
        right, up = cr * right + sr * up, -sr * right + cr * up
        self.R = np.stack([right, -up, fwd])  # rows: x right, y down, z forward
        self.C = np.array([self.x, self.height, 0.0])

    def to_cam(self, P):
        return (np.asarray(P, dtype=np.float64) - self.C) @ self.R.T

    def project_cam(self, Pc):
        z = Pc[..., 2]
        u = self.w / 2 + self.f * Pc[..., 0] / z
        v = self.h / 2 + self.f * Pc[..., 1] / z
        return np.stack([u, v], axis=-1)

    def project(self, P):
        return self.project_cam(self.to_cam(P))


NEAR = 0.3


def clip_near(poly_c):
    """Sutherland-Hodgman clip of a camera-space polygon to z > NEAR."""
    out = []
    n = len(poly_c)
    for i in range(n):
        a, b = poly_c[i], poly_c[(i + 1) % n]
        ina, inb = a[2] > NEAR, b[2] > NEAR
        if ina:
            out.append(a)
        if ina != inb:
            t = (NEAR - a[2]) / (b[2] - a[2])
            out.append(a + t * (b - a))
    return np.array(out)


def fill_world_poly(img, cam, P, color, ids=None, idv=0):
    pc = clip_near(cam.to_cam(P))
    if len(pc) < 3:
        return
    uv = cam.project_cam(pc)
    pts = np.round(uv * 16).astype(np.int32)
    cv2.fillPoly(img, [pts], color, lineType=cv2.LINE_AA, shift=4)
    if ids is not None:
        cv2.fillPoly(ids, [pts], int(idv), shift=4)


def ground_quad(x0, x1, z0, z1, y=0.0):
    return np.array([[x0, y, z0], [x1, y, z0], [x1, y, z1], [x0, y, z1]], dtype=np.float64)


# ---------------------------------------------------------------- objects
def cuboid(cx, cz, heading, length, width, y0, y1, along=0.0, across=0.0):
    """8 world vertices of a box centred (along, across) in the object's frame at (cx, cz)."""
    ch, sh = math.cos(heading), math.sin(heading)  # heading: direction of travel in XZ, 0 = +Z
    pts = []
    for dl in (-length / 2, length / 2):
        for dw in (-width / 2, width / 2):
            for y in (y0, y1):
                a, c = along + dl, across + dw
                pts.append([cx + a * sh + c * ch, y, cz + a * ch - c * sh])
    return np.array(pts)


FACES = [(0, 1, 3, 2), (4, 5, 7, 6), (0, 1, 5, 4), (2, 3, 7, 6), (0, 2, 6, 4), (1, 3, 7, 5)]
FACE_NORMAL_HINT = [None] * 6


def random_color(rng, kind):
    if kind in ("car", "truck_cab"):
        palette = [(200, 200, 205), (30, 30, 35), (120, 120, 128), (170, 20, 25), (20, 50, 140), (235, 235, 235), (70, 90, 60), (150, 110, 60), (40, 40, 90)]
        c = np.array(palette[rng.integers(len(palette))], dtype=np.float64)
        return np.clip(c + rng.normal(0, 12, 3), 0, 255)
    if kind == "bus":
        palette = [(200, 30, 30), (230, 190, 40), (40, 120, 60), (40, 80, 170), (220, 220, 220), (240, 120, 30)]
        return np.clip(np.array(palette[rng.integers(len(palette))], float) + rng.normal(0, 10, 3), 0, 255)
    if kind == "cargo":
        palette = [(225, 225, 225), (200, 200, 190), (160, 160, 165), (60, 90, 160), (180, 40, 40), (230, 200, 60)]
        return np.clip(np.array(palette[rng.integers(len(palette))], float) + rng.normal(0, 10, 3), 0, 255)
    return rng.uniform(20, 235, 3)


class RoadUser:
    """A road user: class, position on the ground (x, z), heading, speed and its cuboid parts."""

    _next_id = 1

    def __init__(self, rng, cls, x, z, heading, speed, track_id=None):
        self.cls, self.x, self.z, self.heading, self.speed = cls, x, z, heading, speed
        self.track_id = track_id
        self.parts = []  # (along, across, length, width, y0, y1, color)
        self.phase = rng.uniform(0, 2 * math.pi)
        build = getattr(self, "_" + cls)
        build(rng)

    def _wheels(self, L, Wd, r, n_axles=2):
        dark = np.array([25, 25, 28], float)
        axles = [-L * 0.33, L * 0.33] if n_axles == 2 else [-L * 0.38, -L * 0.2, L * 0.36]
        for a in axles:
            for side in (-1, 1):
                self.parts.append((a, side * (Wd / 2 - 0.12), 2 * r, 0.28, 0.0, 2 * r, dark))

    def _car(self, rng):
        L, Wd, Hh = rng.uniform(3.8, 4.9), rng.uniform(1.65, 1.9), rng.uniform(1.35, 1.65)
        if rng.random() < 0.25:  # van / SUV
            Hh = rng.uniform(1.7, 2.0)
        body = random_color(rng, "car")
        glass = np.array([45, 55, 65], float) + rng.uniform(-10, 25)
        self._wheels(L, Wd, 0.32)
        self.parts.append((0, 0, L, Wd, 0.25, Hh * 0.58, body))
        cab_len = L * rng.uniform(0.45, 0.6)
        self.parts.append((-L * 0.05, 0, cab_len, Wd * 0.9, Hh * 0.58, Hh * 0.95, glass))
        self.parts.append((-L * 0.05, 0, cab_len * 0.95, Wd * 0.86, Hh * 0.95, Hh, body))
        self.size = (L, Wd, Hh)

    def _bus(self, rng):
        L, Wd, Hh = rng.uniform(9.5, 12.5), 2.5, rng.uniform(3.0, 3.3)
        if rng.random() < 0.2:
            Hh = rng.uniform(4.1, 4.4)  # double-decker
        body = random_color(rng, "bus")
        glass = np.array([40, 50, 60], float)
        self._wheels(L, Wd, 0.5)
        self.parts.append((0, 0, L, Wd, 0.3, Hh, body))
        self.parts.append((0, 0, L * 0.92, Wd + 0.04, Hh * 0.5, Hh * 0.85, glass))
        self.parts.append((L / 2 - 0.05, 0, 0.12, Wd * 0.9, Hh * 0.35, Hh * 0.9, glass))
        self.size = (L, Wd, Hh)

    def _truck(self, rng):
        L, Wd, Hh = rng.uniform(6.0, 10.0), rng.uniform(2.3, 2.55), rng.uniform(2.8, 3.8)
        cab = random_color(rng, "truck_cab")
        cargo = random_color(rng, "cargo")
        glass = np.array([40, 50, 60], float)
        cab_len = rng.uniform(1.8, 2.4)
        self._wheels(L, Wd, 0.5, n_axles=3 if L > 8 else 2)
        self.parts.append((L / 2 - cab_len / 2, 0, cab_len, Wd, 0.4, Hh * 0.8, cab))
        self.parts.append((L / 2 - 0.05, 0, 0.12, Wd * 0.85, Hh * 0.5, Hh * 0.75, glass))
        if rng.random() < 0.25:  # flatbed / tipper
            self.parts.append((-cab_len / 2, 0, L - cab_len - 0.2, Wd, 0.6, Hh * 0.5, cargo))
        else:
            self.parts.append((-cab_len / 2, 0, L - cab_len - 0.2, Wd, 0.6, Hh, cargo))
        self.size = (L, Wd, Hh)

    def _person(self, rng):
        Hh = rng.uniform(1.5, 1.95)
        shirt = rng.uniform(10, 240, 3)
        pants = rng.uniform(10, 120, 3)
        skin = np.array(([224, 190, 160], [180, 130, 95], [110, 75, 50])[rng.integers(3)], float)
        Wd = rng.uniform(0.38, 0.5)
        self.parts.append((0, -Wd * 0.22, 0.22, Wd * 0.38, 0.0, Hh * 0.47, pants))
        self.parts.append((0, Wd * 0.22, 0.22, Wd * 0.38, 0.0, Hh * 0.47, pants))
        self.parts.append((0, 0, 0.28, Wd, Hh * 0.46, Hh * 0.83, shirt))
        self.parts.append((0, 0, 0.2, 0.2, Hh * 0.85, Hh, skin))
        if rng.random() < 0.3:  # bag or backpack
            self.parts.append((-0.2, 0, 0.15, Wd * 0.7, Hh * 0.5, Hh * 0.75, rng.uniform(10, 200, 3)))
        self.size = (0.3, Wd, Hh)

    def _bicycle(self, rng):
        frame = rng.uniform(10, 240, 3)
        dark = np.array([20, 20, 22], float)
        shirt = rng.uniform(10, 240, 3)
        skin = np.array([200, 160, 130], float)
        self.parts.append((-0.55, 0, 0.7, 0.06, 0.0, 0.7, dark))
        self.parts.append((0.55, 0, 0.7, 0.06, 0.0, 0.7, dark))
        self.parts.append((0, 0, 1.1, 0.08, 0.45, 0.75, frame))
        self.parts.append((-0.1, 0, 0.35, 0.35, 0.6, 1.05, np.array([40, 40, 60], float)))  # legs
        self.parts.append((0.05, 0, 0.45, 0.45, 1.05, 1.55, shirt))
        self.parts.append((0.1, 0, 0.2, 0.2, 1.55, 1.78, skin))
        self.size = (1.8, 0.5, 1.78)

    def cuboids(self):
        out = []
        for along, across, l, wd, y0, y1, color in self.parts:
            out.append((cuboid(self.x, self.z, self.heading, l, wd, y0, y1, along, across), color))
        return out

    def step(self, dt):
        self.x += self.speed * dt * math.sin(self.heading)
        self.z += self.speed * dt * math.cos(self.heading)


# ---------------------------------------------------------------- layout
class Layout:
    """Road geometry of one scene, in metres on the ground plane."""

    def __init__(self, rng):
        self.lanes = int(rng.choice([2, 2, 3, 4]))
        self.lane_w = rng.uniform(3.2, 3.8)
        self.road_x0 = -self.lanes * self.lane_w / 2
        self.road_x1 = self.lanes * self.lane_w / 2
        self.walk_w = rng.uniform(2.0, 4.0)
        self.cross_z = rng.uniform(22, 45) if rng.random() < 0.6 else None
        self.cross_w = rng.uniform(7.0, 10.0)
        self.zebra = self.cross_z is not None or rng.random() < 0.5
        self.zebra_z = (self.cross_z - self.cross_w / 2 - 3.5) if self.cross_z is not None else rng.uniform(15, 35)
        # lanes with x<0 drive towards the camera (-Z), lanes with x>0 away (+Z): right-hand traffic
        self.left_hand = rng.random() < 0.5
        self.far = 160.0

    def lane_centres(self):
        return [self.road_x0 + (i + 0.5) * self.lane_w for i in range(self.lanes)]

    def lane_heading(self, x):
        away = x > 0
        if self.left_hand:
            away = not away
        return 0.0 if away else math.pi


# ---------------------------------------------------------------- rendering
def _shade(color, normal, light, ambient):
    d = max(0.0, float(np.dot(normal, light)))
    return np.clip(color * (ambient + (1 - ambient) * d), 0, 255)


class Style:
    """Lighting and surface colours of one scene."""

    def __init__(self, rng):
        self.ambient = rng.uniform(0.35, 0.7)
        az, el = rng.uniform(0, 2 * math.pi), rng.uniform(math.radians(15), math.radians(65))
        self.light = np.array([math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)])
        self.brightness = rng.uniform(0.45, 1.15)
        self.tint = rng.uniform(0.85, 1.15, 3)
        g = rng.uniform(60, 110)
        self.asphalt = np.array([g, g, g + rng.uniform(-5, 8)])
        self.walk = np.array([rng.uniform(130, 180)] * 3) + rng.normal(0, 6, 3)
        self.verge = np.array([rng.uniform(40, 90), rng.uniform(90, 140), rng.uniform(40, 80)]) if rng.random() < 0.6 else self.walk * 0.9
        self.sky = np.array([rng.uniform(150, 230), rng.uniform(170, 230), rng.uniform(190, 250)])
        self.building_colors = [rng.uniform(60, 200, 3) for _ in range(8)]
        self.wet = rng.random() < 0.2
        self.shadow = rng.uniform(0.3, 0.6)


def render_background(rng, cam, lay, st, buildings):
    img = np.zeros((cam.h, cam.w, 3), np.uint8)
    img[:] = st.sky.astype(np.uint8)
    far = lay.far
    fill_world_poly(img, cam, ground_quad(-300, 300, 0.5, 400), st.verge.tolist())
    fill_world_poly(img, cam, ground_quad(lay.road_x0 - lay.walk_w, lay.road_x1 + lay.walk_w, 0.5, far), st.walk.tolist())
    fill_world_poly(img, cam, ground_quad(lay.road_x0, lay.road_x1, 0.5, far), st.asphalt.tolist())
    if lay.cross_z is not None:
        z0, z1 = lay.cross_z - lay.cross_w / 2, lay.cross_z + lay.cross_w / 2
        fill_world_poly(img, cam, ground_quad(-200, 200, z0 - lay.walk_w, z1 + lay.walk_w), st.walk.tolist())
        fill_world_poly(img, cam, ground_quad(-200, 200, z0, z1), st.asphalt.tolist())
    white = [225, 225, 225]
    # lane markings: dashed between same-direction lanes, solid double at the centre
    for i in range(1, lay.lanes):
        x = lay.road_x0 + i * lay.lane_w
        if abs(x) < 1e-6:
            for dx in (-0.12, 0.12):
                fill_world_poly(img, cam, ground_quad(x + dx - 0.06, x + dx + 0.06, 0.5, far), [220, 200, 60] if rng.random() < 0.3 else white)
        else:
            for z in np.arange(1.0, far, 9.0):
                fill_world_poly(img, cam, ground_quad(x - 0.07, x + 0.07, z, z + 3.0), white)
    for x in (lay.road_x0 + 0.3, lay.road_x1 - 0.3):
        fill_world_poly(img, cam, ground_quad(x - 0.06, x + 0.06, 0.5, far), white)
    if lay.zebra:
        for x in np.arange(lay.road_x0 + 0.3, lay.road_x1 - 0.3, 1.0):
            fill_world_poly(img, cam, ground_quad(x, x + 0.5, lay.zebra_z - 1.5, lay.zebra_z + 1.5), white)
    for (bx, bz, bl, bw, bh, color) in buildings:
        draw_cuboid(img, cam, cuboid(bx, bz, 0.0, bl, bw, 0.0, bh), np.array(color), st, None, 0)
    # asphalt texture
    noise = rng.normal(0, 4, (cam.h // 4 + 1, cam.w // 4 + 1, 1))
    noise = cv2.resize(noise, (cam.w, cam.h), interpolation=cv2.INTER_LINEAR)[..., None]
    img = np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    return img


def make_buildings(rng, lay, st):
    out = []
    for side in (-1, 1):
        z = rng.uniform(8, 25)
        while z < 220:
            length = rng.uniform(8, 30)
            depth = rng.uniform(8, 15)
            edge = (lay.road_x1 if side > 0 else lay.road_x0) + side * (lay.walk_w + rng.uniform(1, 8))
            x = edge + side * (depth / 2 + rng.uniform(1, 5))
            if lay.cross_z is None or abs(z + length / 2 - lay.cross_z) > lay.cross_w / 2 + length / 2 + lay.walk_w:
                out.append((x, z + length / 2, length, depth, rng.uniform(6, 30), st.building_colors[rng.integers(len(st.building_colors))]))
            z += length + rng.uniform(0, 6)
    return out


def draw_cuboid(img, cam, V, color, st, ids, idv):
    """Draws the faces of one cuboid far-to-near, shaded by the sun."""
    Vc = cam.to_cam(V)
    faces = []
    centre = V.mean(axis=0)
    for f in FACES:
        P = V[list(f)]
        n = P.mean(axis=0) - centre
        n = n / (np.linalg.norm(n) + 1e-9)
        to_cam = cam.C - P.mean(axis=0)
        if np.dot(n, to_cam) <= 0:  # back face
            continue
        faces.append((float(np.linalg.norm(to_cam)), f, n))
    faces.sort(key=lambda t: -t[0])
    for _, f, n in faces:
        pc = clip_near(Vc[list(f)])
        if len(pc) < 3:
            continue
        pts = np.round(cam.project_cam(pc) * 16).astype(np.int32)
        c = _shade(color, n, st.light, st.ambient)
        cv2.fillPoly(img, [pts], c.tolist(), lineType=cv2.LINE_AA, shift=4)
        if ids is not None:
            cv2.fillPoly(ids, [pts], int(idv), shift=4)


def object_box(cam, obj):
    """Exact image box (x1, y1, x2, y2) of an object, clipped to the image; None when not in view."""
    pts = []
    for V, _ in obj.cuboids():
        Vc = cam.to_cam(V)
        if (Vc[:, 2] <= NEAR).any():
            return None
        pts.append(cam.project_cam(Vc))
    P = np.concatenate(pts)
    x1, y1 = P.min(axis=0)
    x2, y2 = P.max(axis=0)
    full = (x1, y1, x2, y2)
    cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, cam.w), min(y2, cam.h)
    if cx2 - cx1 < 1 or cy2 - cy1 < 1:
        return None
    return (cx1, cy1, cx2, cy2), full


def render_objects(img, cam, st, objects):
    """Draws shadows then objects far-to-near; returns per-object (box, full box, visible share)."""
    ids = np.zeros(img.shape[:2], np.int32)
    dist = [np.hypot(o.x - cam.C[0], o.z - cam.C[2]) for o in objects]
    order = np.argsort(dist)[::-1]
    # shadows: footprint pushed away from the sun, darkened ground
    if st.light[1] > 0.2:
        shadow_layer = img.copy()
        for i in order:
            o = objects[i]
            L, Wd, Hh = o.size
            off = -st.light[[0, 2]] / st.light[1] * Hh * 0.5
            V = cuboid(o.x + off[0] * 0.5, o.z + off[1] * 0.5, o.heading, L + abs(off[1]) * 0.3, Wd + abs(off[0]) * 0.3, 0.01, 0.01)
            fill_world_poly(shadow_layer, cam, V[[0, 2, 6, 4]], [0, 0, 0])
        img[:] = cv2.addWeighted(img, 1 - st.shadow, shadow_layer, st.shadow, 0)
    boxes = {}
    for i in order:
        o = objects[i]
        b = object_box(cam, o)
        if b is None:
            continue
        boxes[i] = b
        parts = o.cuboids()
        # draw the parts of one object far-to-near as well
        pd = [np.linalg.norm(V.mean(axis=0) - cam.C) for V, _ in parts]
        for j in np.argsort(pd)[::-1]:
            V, color = parts[j]
            draw_cuboid(img, cam, V, color, st, ids, i + 1)
    out = []
    for i, o in enumerate(objects):
        if i not in boxes:
            out.append(None)
            continue
        (x1, y1, x2, y2), full = boxes[i]
        area_full = max(1.0, (full[2] - full[0]) * (full[3] - full[1]))
        # visible share: its pixels in the id buffer over its silhouette rendered alone
        mask = np.zeros(img.shape[:2], np.uint8)
        for V, _ in o.cuboids():
            draw_cuboid(mask, cam, V, np.array([1.0, 1.0, 1.0]), _FLAT, None, 0)
        own = int((mask > 0).sum())
        seen = int((ids == i + 1).sum())
        vis = seen / own if own > 0 else 0.0
        trunc = (x2 - x1) * (y2 - y1) / area_full
        out.append(((float(x1), float(y1), float(x2), float(y2)), full, float(min(vis, 1.0)), float(trunc)))
    return out


class _Flat:
    ambient = 1.0
    light = np.array([0.0, 1.0, 0.0])


_FLAT = _Flat()


def make_fx(rng):
    """Camera effects of one scene or video: gamma, defocus, motion blur, noise, vignetting."""
    return {
        "gamma": rng.uniform(0.8, 1.25),
        "blur": int(rng.choice([3, 5])) if rng.random() < 0.35 else 0,
        "motion": (rng.uniform(2, 7), rng.uniform(0, math.pi)) if rng.random() < 0.3 else None,
        "noise": rng.uniform(1.0, 9.0),
        "vignette": rng.uniform(0.2, 0.6) if rng.random() < 0.3 else 0.0,
    }


def motion_kernel(length, angle):
    k = int(math.ceil(length)) | 1
    kern = np.zeros((k, k), np.float32)
    c = k // 2
    dx, dy = math.cos(angle), math.sin(angle)
    for t in np.linspace(-c, c, 2 * k):
        kern[int(round(c + t * dy)), int(round(c + t * dx))] = 1
    return kern / kern.sum()


def post_process(rng, img, st, fx=None):
    """Applies exposure, tint and the camera effects; fresh sensor noise on every call."""
    fx = fx or make_fx(rng)
    f = img.astype(np.float32) * st.brightness * st.tint[None, None, :]
    f = 255.0 * np.power(np.clip(f, 0, 255) / 255.0, fx["gamma"])
    if fx["blur"]:
        f = cv2.GaussianBlur(f, (fx["blur"], fx["blur"]), 0)
    if fx["motion"] is not None:
        f = cv2.filter2D(f, -1, motion_kernel(*fx["motion"]))
    f = f + rng.normal(0, fx["noise"], f.shape).astype(np.float32)
    if fx["vignette"]:
        yy, xx = np.mgrid[0:f.shape[0], 0:f.shape[1]]
        r = np.hypot((xx - f.shape[1] / 2) / f.shape[1], (yy - f.shape[0] / 2) / f.shape[0])
        f = f * (1 - fx["vignette"] * r * r)[..., None]
    return np.clip(f, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- still scenes
def spawn_random(rng, lay, cam, kind=None):
    """One road user at a random plausible place in view."""
    r = rng.random()
    if kind is None:
        kind = "car" if r < 0.45 else "bus" if r < 0.55 else "truck" if r < 0.67 else "bicycle" if r < 0.8 else "person"
    z = rng.uniform(3, 90) if kind in ("car", "bus", "truck") else rng.uniform(3, 55)
    if kind in ("car", "bus", "truck"):
        if lay.cross_z is not None and rng.random() < 0.2:
            z = lay.cross_z + rng.uniform(-lay.cross_w / 4, lay.cross_w / 4)
            x = rng.uniform(-50, 50)
            heading = math.pi / 2 if (z > lay.cross_z) == lay.left_hand else -math.pi / 2
        else:
            x = float(rng.choice(lay.lane_centres())) + rng.normal(0, 0.25)
            heading = lay.lane_heading(x) + rng.normal(0, 0.03)
        speed = rng.uniform(4, 14)
    elif kind == "bicycle":
        edge = rng.choice([lay.road_x0 + 0.9, lay.road_x1 - 0.9])
        x = float(edge) + rng.normal(0, 0.2)
        heading = lay.lane_heading(x) + rng.normal(0, 0.05)
        speed = rng.uniform(3, 7)
    else:
        if lay.zebra and rng.random() < 0.35:
            z = lay.zebra_z + rng.uniform(-1.2, 1.2)
            x = rng.uniform(lay.road_x0 - 1, lay.road_x1 + 1)
            heading = math.pi / 2 * rng.choice([-1, 1])
        else:
            side = rng.choice([-1, 1])
            edge = lay.road_x1 if side > 0 else lay.road_x0
            x = edge + side * rng.uniform(0.4, lay.walk_w - 0.3)
            heading = float(rng.choice([0.0, math.pi])) + rng.normal(0, 0.1)
        speed = rng.uniform(0.8, 1.8)
    return RoadUser(rng, kind, x, z, heading, speed)


def non_overlapping(objects, o):
    L, Wd, _ = o.size
    for p in objects:
        pl, pw, _ = p.size
        if abs(p.x - o.x) < (Wd + pw) / 2 + 0.3 and abs(p.z - o.z) < (max(L, Wd) + max(pl, pw)) / 2 + 0.5:
            return False
    return True


def random_still(rng):
    """One still scene: (image uint8 RGB HxWx3, list of objects with box, class, visibility)."""
    lay = Layout(rng)
    cam = Camera(rng, lay)
    st = Style(rng)
    buildings = make_buildings(rng, lay, st)
    img = render_background(rng, cam, lay, st, buildings)
    objects = []
    n = int(rng.integers(4, 28))
    tries = 0
    while len(objects) < n and tries < n * 6:
        tries += 1
        o = spawn_random(rng, lay, cam)
        if non_overlapping(objects, o):
            objects.append(o)
    info = render_objects(img, cam, st, objects)
    img = post_process(rng, img, st)
    anns = []
    for o, inf in zip(objects, info):
        if inf is None:
            continue
        box, full, vis, trunc = inf
        anns.append({"cls": CLS[o.cls], "box": box, "visible": vis, "in_frame": trunc})
    return img, anns


def label_filter(ann, scale=1.0, min_h=10.0, min_vis=0.3):
    """Whether an annotation is a box the detector must find (else it is ignored in scoring)."""
    x1, y1, x2, y2 = ann["box"]
    return (y2 - y1) * scale >= min_h * scale and (x2 - x1) * scale >= 3 and ann["visible"] >= min_vis and ann["in_frame"] >= 0.4
