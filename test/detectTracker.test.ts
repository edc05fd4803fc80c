import { describe, expect, it } from "vitest";
import { Counter, crossing, inPolygon } from "../runtime/detect/counting.js";
import { RoadConditionEstimator } from "../runtime/detect/roadCondition.js";
import { Tracker } from "../runtime/detect/tracker.js";
import type { Detection } from "../runtime/detect/types.js";

const box = (cx: number, cy: number, w = 0.1, h = 0.1, score = 0.9, class_id = 2): Detection => ({
  x1: cx - w / 2,
  y1: cy - h / 2,
  x2: cx + w / 2,
  y2: cy + h / 2,
  score,
  class_id,
});
const FRAME_MS = 100;
const opts = { iouMatch: 0.3, maxMissed: 5, minHits: 2, highScore: 0.5 };
const labels = ["person", "bicycle", "car"];

describe("tracker", () => {
  it("keeps ids for objects moving steadily, and never reuses them", () => {
    const t = new Tracker(opts);
    const ids: number[][] = [];
    for (let f = 0; f < 10; f++) {
      const u = t.update([box(0.1 + f * 0.02, 0.3), box(0.9 - f * 0.02, 0.7)], f * FRAME_MS);
      ids.push(u.matched.map((m) => m.track.id).sort());
    }
    // Confirmed from the second frame on, with the same two ids throughout.
    expect(ids[0]).toEqual([]);
    for (let f = 1; f < 10; f++) expect(ids[f]).toEqual([1, 2]);
  });

  it("keeps the id through a short occlusion, using the predicted position", () => {
    const t = new Tracker(opts);
    let id: number | undefined;
    for (let f = 0; f < 5; f++) {
      const u = t.update([box(0.1 + f * 0.04, 0.5)], f * FRAME_MS);
      if (f > 0) id ??= u.matched[0]!.track.id;
    }
    // Hidden for 3 frames while it keeps moving.
    for (let f = 5; f < 8; f++) expect(t.update([], f * FRAME_MS).ended).toEqual([]);
    const back = t.update([box(0.1 + 8 * 0.04, 0.5)], 8 * FRAME_MS);
    expect(back.matched.map((m) => m.track.id)).toEqual([id]);
    expect(back.born).toEqual([]);
  });

  it("lets a weak detection (partly hidden) keep a track but not start one", () => {
    const t = new Tracker(opts);
    t.update([box(0.5, 0.5)], 0);
    t.update([box(0.5, 0.5)], 100);
    const weak = t.update([box(0.51, 0.5, 0.1, 0.1, 0.35), box(0.1, 0.1, 0.1, 0.1, 0.35)], 200);
    expect(weak.matched.map((m) => m.track.id)).toEqual([1]);
    expect(t.tracks).toHaveLength(1);
  });

  it("does not hand a lost track to a new object arriving where it was last seen", () => {
    const t = new Tracker(opts);
    // A bus drives down the picture and is lost; the next bus comes up where the first was last seen.
    let first: number | undefined;
    for (let f = 0; f < 6; f++) {
      const u = t.update([box(0.5, 0.2 + f * 0.05, 0.2, 0.2, 0.9, 2)], f * FRAME_MS);
      if (f > 0) first ??= u.matched[0]!.track.id;
    }
    for (let f = 6; f < 9; f++) t.update([], f * FRAME_MS);
    let ids: number[] = [];
    for (let f = 9; f < 12; f++) ids = t.update([box(0.5, 0.45 - (f - 9) * 0.05, 0.2, 0.2, 0.9, 2)], f * FRAME_MS).matched.map((m) => m.track.id);
    expect(first).toBeDefined();
    expect(ids).toHaveLength(1);
    expect(ids[0]).not.toBe(first);
  });

  it("lets weak detections extend only confirmed tracks", () => {
    const t = new Tracker(opts);
    t.update([box(0.5, 0.5)], 0);
    // One confident sighting and one weak one do not confirm a track.
    const u = t.update([box(0.5, 0.5, 0.1, 0.1, 0.35)], 100);
    expect(u.born).toEqual([]);
    expect(u.matched).toEqual([]);
    expect(t.tracks).toHaveLength(0);
  });

  it("starts no second track on a box lying inside a tracked object's box", () => {
    const t = new Tracker(opts);
    const ids = new Set<number>();
    for (let f = 0; f < 8; f++) {
      const x = 0.3 + f * 0.02;
      const dets = [box(x, 0.5, 0.4, 0.3, 0.95, 2)];
      // From the fourth frame on the detector also finds the truck's cab, as another class.
      if (f >= 3) dets.push(box(x + 0.12, 0.52, 0.12, 0.2, 0.9, 1));
      for (const m of t.update(dets, f * FRAME_MS).matched) ids.add(m.track.id);
    }
    expect([...ids]).toEqual([1]);
    expect(t.tracks).toHaveLength(1);
  });

  it("weighs class votes by score and size: close views outvote many distant ones", () => {
    const t = new Tracker(opts);
    let cls: number | undefined;
    for (let f = 0; f < 9; f++) {
      // Approaching: small and called a bicycle for five frames, then large and called a car for four.
      const size = 0.04 + f * 0.02;
      const u = t.update([box(0.5, 0.3 + f * 0.01, size, size, 0.9, f < 5 ? 1 : 2)], f * FRAME_MS);
      cls = u.matched[0]?.track.class_id;
    }
    expect(cls).toBe(2);
  });

  it("ends a track unseen for longer than max_missed, and drops unconfirmed noise at once", () => {
    const t = new Tracker(opts);
    t.update([box(0.5, 0.5)], 0);
    t.update([box(0.5, 0.5)], 100);
    t.update([box(0.2, 0.2)], 200); // a one-frame blip
    const u = t.update([], 300);
    expect(u.ended.map((x) => x.id)).toEqual([2]);
    let ended: number[] = [];
    for (let f = 4; f <= 9 && ended.length === 0; f++) ended = t.update([], f * 100).ended.map((x) => x.id);
    expect(ended).toEqual([1]);
  });
});

describe("counting lines and zones", () => {
  it("decides crossings and their direction geometrically", () => {
    const from = [0, 0.5] as const;
    const to = [1, 0.5] as const;
    // Picture y grows downwards: moving down crosses from the left of from→to to its right.
    expect(crossing(from, to, [0.5, 0.4], [0.5, 0.6])).toBe("in");
    expect(crossing(from, to, [0.5, 0.6], [0.5, 0.4])).toBe("out");
    expect(crossing(from, to, [0.5, 0.4], [0.5, 0.45])).toBeUndefined();
    // Stepping onto the line and off it again counts once, on the step that leaves it.
    expect(crossing(from, to, [0.5, 0.45], [0.5, 0.5])).toBeUndefined();
    expect(crossing(from, to, [0.5, 0.5], [0.5, 0.55])).toBe("in");
    // Passing beside a short line does not count.
    expect(crossing([0, 0.5], [0.3, 0.5], [0.5, 0.4], [0.5, 0.6])).toBeUndefined();
    expect(
      inPolygon(
        [
          [0, 0],
          [1, 0],
          [1, 1],
          [0, 1],
        ],
        [0.5, 0.5],
      ),
    ).toBe(true);
    expect(
      inPolygon(
        [
          [0, 0],
          [1, 0],
          [0, 1],
        ],
        [0.8, 0.8],
      ),
    ).toBe(false);
  });

  it("counts a scripted crossing sequence exactly, in both directions, per class", () => {
    const tracker = new Tracker(opts);
    const counter = new Counter([{ id: "stop-line", from: [0, 0.5], to: [1, 0.5] }], [], (c) => labels[c]!);
    // Three cars drive down (in), one car and one person walk up (out); the person is hidden for
    // two frames right where it crosses the line.
    const paths = [
      { x: 0.1, y0: 0.1, dy: 0.05, cls: 2 },
      { x: 0.3, y0: 0.0, dy: 0.06, cls: 2 },
      { x: 0.5, y0: 0.2, dy: 0.04, cls: 2 },
      { x: 0.7, y0: 0.9, dy: -0.05, cls: 2 },
      { x: 0.9, y0: 0.8, dy: -0.04, cls: 0 },
    ];
    for (let f = 0; f < 20; f++) {
      const dets = paths.flatMap((p) => {
        const y = p.y0 + p.dy * f;
        if (y < 0 || y > 1) return [];
        if (p.cls === 0 && (f === 7 || f === 8)) return [];
        return [box(p.x, y, 0.08, 0.08, 0.9, p.cls)];
      });
      const u = tracker.update(dets, f * FRAME_MS);
      counter.observe(
        u.matched.map((m) => m.track),
        u.ended.map((t) => t.id),
      );
    }
    const { lines } = counter.take();
    expect(lines).toEqual([{ line_id: "stop-line", counts: { car: { in: 3, out: 1 }, person: { in: 0, out: 1 } } }]);
    // The next interval starts from zero.
    expect(counter.take().lines).toEqual([{ line_id: "stop-line", counts: {} }]);
  });

  it("counts a track that jitters on the line once", () => {
    const tracker = new Tracker({ ...opts, iouMatch: 0.1 });
    const counter = new Counter([{ id: "l", from: [0, 0.5], to: [1, 0.5] }], [], (c) => labels[c]!);
    const ys = [0.4, 0.45, 0.52, 0.49, 0.53, 0.6];
    ys.forEach((y, f) => {
      const u = tracker.update([box(0.5, y)], f * FRAME_MS);
      counter.observe(
        u.matched.map((m) => m.track),
        [],
      );
    });
    // It went in, came back out, went in again: one car went in.
    expect(counter.take().lines[0]!.counts).toEqual({ car: { in: 1, out: 0 } });
  });

  it("counts a box hovering on the line nothing until it is clear of it, across intervals", () => {
    const counter = new Counter([{ id: "l", from: [0, 0.5], to: [1, 0.5] }], [], (c) => labels[c]!);
    const tracker = new Tracker({ ...opts, iouMatch: 0.1 });
    const total = { in: 0, out: 0 };
    const add = () => {
      const c = counter.take().lines[0]!.counts.car;
      total.in += c?.in ?? 0;
      total.out += c?.out ?? 0;
    };
    // A queued car whose box centre wobbles 0.01 about the line (its box is 0.3 tall), for 20
    // frames over four intervals, then drives on.
    for (let f = 0; f < 20; f++) {
      const u = tracker.update([box(0.5, f % 2 === 0 ? 0.49 : 0.51, 0.3, 0.3)], f * FRAME_MS);
      counter.observe(
        u.matched.map((m) => m.track),
        u.ended.map((t) => t.id),
      );
      if (f % 5 === 4) add();
    }
    expect(total).toEqual({ in: 0, out: 0 });
    for (let f = 20; f < 24; f++) {
      const u = tracker.update([box(0.5, 0.51 + (f - 19) * 0.03, 0.3, 0.3)], f * FRAME_MS);
      counter.observe(
        u.matched.map((m) => m.track),
        u.ended.map((t) => t.id),
      );
    }
    add();
    expect(total).toEqual({ in: 1, out: 0 });
  });

  it("counts each way a track that crosses back seconds later (a U-turn, or a track handed to an oncoming object)", () => {
    const tracker = new Tracker(opts);
    const counter = new Counter([{ id: "l", from: [0, 0.5], to: [1, 0.5] }], [], (c) => labels[c]!);
    for (let f = 0; f <= 40; f++) {
      // Down from 0.3 to 0.7 in 2 s, then back up: it crosses in at 1 s and out at 3 s.
      const y = f <= 20 ? 0.3 + f * 0.02 : 0.7 - (f - 20) * 0.02;
      const u = tracker.update([box(0.5, y)], f * FRAME_MS);
      counter.observe(
        u.matched.map((m) => m.track),
        u.ended.map((t) => t.id),
      );
    }
    expect(counter.take().lines[0]!.counts).toEqual({ car: { in: 1, out: 1 } });
  });

  it("counts a crossing a track made before it was confirmed", () => {
    const tracker = new Tracker({ ...opts, minHits: 3 });
    const counter = new Counter([{ id: "l", from: [0, 0.5], to: [1, 0.5] }], [], (c) => labels[c]!);
    // First seen above the line, confirmed on its third sighting, below it.
    [0.42, 0.54, 0.6, 0.66, 0.72].forEach((y, f) => {
      const u = tracker.update([box(0.5, y, 0.3, 0.3)], f * FRAME_MS);
      counter.observe(
        u.matched.map((m) => m.track),
        u.ended.map((t) => t.id),
      );
    });
    expect(counter.take().lines[0]!.counts).toEqual({ car: { in: 1, out: 0 } });
  });

  it("counts a track that leaves the picture past the line before it is clear of it, when it ends", () => {
    const tracker = new Tracker(opts);
    const counter = new Counter([{ id: "l", from: [0, 0.8], to: [1, 0.8] }], [], (c) => labels[c]!);
    const feed = (dets: Detection[], f: number) => {
      const u = tracker.update(dets, f * FRAME_MS);
      counter.observe(
        u.matched.map((m) => m.track),
        u.ended.map((t) => t.id),
      );
    };
    // A bus driving out at the bottom: its box is cut by the picture's border, so its centre
    // passes the line by 0.025 only, less than the margin (0.12 of its 0.35 height).
    [0.5, 0.55, 0.6, 0.65].forEach((y1, f) => feed([{ x1: 0.3, y1, x2: 0.7, y2: 1, score: 0.9, class_id: 2 }], f));
    expect(counter.take().lines[0]!.counts).toEqual({});
    for (let f = 4; f <= 4 + opts.maxMissed; f++) feed([], f);
    expect(counter.take().lines[0]!.counts).toEqual({ car: { in: 1, out: 0 } });
  });

  it("counts entries into a zone and who is inside at the end", () => {
    const tracker = new Tracker(opts);
    const zone = {
      id: "box",
      polygon: [
        [0.4, 0.4],
        [0.6, 0.4],
        [0.6, 0.6],
        [0.4, 0.6],
      ] as [number, number][],
    };
    const counter = new Counter([], [zone], (c) => labels[c]!);
    for (let f = 0; f < 12; f++) {
      // One car drives through the zone; one parks in it.
      const u = tracker.update([box(0.2 + f * 0.04, 0.5, 0.05, 0.05), box(0.5, 0.45, 0.05, 0.05)], f * FRAME_MS);
      counter.observe(
        u.matched.map((m) => m.track),
        u.ended.map((t) => t.id),
      );
    }
    expect(counter.take().zones).toEqual([{ zone_id: "box", entered: { car: 2 }, present: { car: 1 } }]);
  });
});

describe("road condition", () => {
  it("reports vehicles present, flow and speed, and calls a crawling queue congestion", () => {
    const tracker = new Tracker(opts);
    const road = new RoadConditionEstimator((c) => c === 2);
    for (let f = 0; f < 30; f++) {
      // Five cars crawling at 0.01 picture widths per second, plus a person.
      const dets = [0.1, 0.3, 0.5, 0.7, 0.9].map((x) => box(x + f * 0.001, 0.5, 0.08, 0.08));
      dets.push(box(0.5, 0.1, 0.05, 0.05, 0.9, 0));
      const u = tracker.update(dets, f * FRAME_MS);
      road.observe(
        u.matched.map((m) => m.track),
        u.born,
      );
    }
    const r = road.take(60_000, undefined);
    expect(r.vehicles_now).toBe(5);
    expect(r.vehicles_present).toBeGreaterThan(4.5);
    expect(r.flow_per_min).toBe(5);
    expect(r.mean_speed).toBeCloseTo(0.01, 3);
    expect(r.congestion).toBe("heavy");
    // With line crossings given, flow is crossings per minute.
    expect(road.take(30_000, 4).flow_per_min).toBe(8);
  });
});
