import { describe, expect, it } from "vitest";
import { DETECTION_SCHEMA, MOTION_SCHEMA } from "../runtime/config/sections/detection.js";
import { MotionGate, type GateFrame } from "../runtime/detect/motionGate.js";

const W = 64;
const H = 48;

/** A grey picture with a white square at (x, y), 8 px wide; `noise` adds a per-pixel ±n dither. */
function picture(x: number | undefined, y = 10, noise = 0, seed = 1): GateFrame {
  const data = new Uint8Array(W * H * 3).fill(100);
  let s = seed;
  if (noise > 0) {
    for (let i = 0; i < data.length; i++) {
      s = (s * 1103515245 + 12345) >>> 0;
      data[i] = 100 + ((s >>> 16) % (2 * noise + 1)) - noise;
    }
  }
  if (x !== undefined) {
    for (let yy = y; yy < y + 8; yy++) for (let xx = x; xx < x + 8 && xx < W; xx++) data.fill(255, (yy * W + xx) * 3, (yy * W + xx) * 3 + 3);
  }
  return { width: W, height: H, format: "rgb24", data };
}

const cfg = (over: Record<string, unknown> = {}) =>
  MOTION_SCHEMA.parse({ enabled: true, block: 8, threshold: 10, start_area: 0.02, stop_area: 0.01, hold_s: 1, min_interval_s: 5, ...over });

describe("motion gate on synthetic frames", () => {
  it("runs the first frame, skips a still picture, and still runs one every min_interval_s", () => {
    const gate = new MotionGate(cfg());
    const decisions = Array.from({ length: 101 }, (_, i) => gate.decide(picture(undefined), i * 100));
    expect(decisions[0]).toMatchObject({ infer: true, reason: "first" });
    // 10 s at 10 fps: the first frame, the end of the hold (1 s), then one every 5 s.
    const inferred = decisions.flatMap((d, i) => (d.infer ? [i] : []));
    expect(inferred).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 60, 110].filter((i) => i <= 100));
    expect(decisions.filter((d) => d.reason === "min-interval").map((d) => decisions.indexOf(d))).toEqual([60]);
    expect(gate.health()).toMatchObject({ inferred: 12, skipped: 89, moving: false });
  });

  it("runs every frame while something moves, and for hold_s after it stops", () => {
    const gate = new MotionGate(cfg({ min_interval_s: 100 }));
    const seq: GateFrame[] = [];
    for (let i = 0; i < 20; i++) seq.push(picture(undefined));
    for (let i = 0; i < 10; i++) seq.push(picture(4 + 4 * i)); // a square crossing, 4 px a frame
    for (let i = 0; i < 30; i++) seq.push(picture(40)); // stopped
    const d = seq.map((f, i) => gate.decide(f, i * 100));
    const infer = d.map((x) => x.infer);
    // The first frame starts a hold too (frames 1..10), then the still picture is skipped.
    expect(infer.slice(11, 20).every((v) => !v)).toBe(true);
    expect(infer.slice(20, 30).every(Boolean)).toBe(true);
    expect(d[21]!.reason).toBe("motion");
    // The last move lands at frame 29: held for 1 s (frames 30..39), then still.
    expect(infer.slice(30, 40).every(Boolean)).toBe(true);
    expect(d[39]!.reason).toBe("hold");
    expect(infer.slice(40).some(Boolean)).toBe(false);
  });

  it("hysteresis: once moving, a smaller motion (above stop_area, below start_area) keeps it on", () => {
    // 48 blocks (8x6); a square on the block grid moving by one block changes 2 blocks (4 %):
    // below start_area (5 %), above stop_area (1 %).
    const small = new MotionGate(cfg({ start_area: 0.05, stop_area: 0.01, hold_s: 0, min_interval_s: 100 }));
    small.decide(picture(0, 8), 0);
    small.decide(picture(0, 8), 100);
    // A small move from still does not start motion...
    expect(small.decide(picture(8, 8), 200)).toMatchObject({ infer: false, moving: 2 / 48 });
    // ...a large change does, and then the small moves keep it going.
    const big = picture(undefined);
    big.data.fill(200, 0, (W * H * 3) / 2);
    expect(small.decide(big, 300).infer).toBe(true);
    expect(small.decide(picture(8, 8), 400).infer).toBe(true);
    expect(small.decide(picture(16, 8), 500)).toMatchObject({ infer: true, reason: "motion", moving: 2 / 48 });
    expect(small.decide(picture(16, 8), 600).infer).toBe(false);
  });

  it("sensor noise under the threshold is not motion", () => {
    const gate = new MotionGate(cfg({ min_interval_s: 100, hold_s: 0 }));
    const d = Array.from({ length: 30 }, (_, i) => gate.decide(picture(undefined, 10, 6, i + 1), i * 100));
    expect(d.slice(1).filter((x) => x.infer)).toHaveLength(0);
    expect(Math.max(...d.slice(1).map((x) => x.moving))).toBe(0);
  });

  it("reads the channel order: the same picture in BGR gives the same blocks", () => {
    const a = new MotionGate(cfg());
    const b = new MotionGate(cfg());
    const rgb = picture(10);
    const bgr: GateFrame = { ...rgb, format: "bgr24" };
    a.decide(picture(undefined), 0);
    b.decide({ ...picture(undefined), format: "bgr24" }, 0);
    expect(a.decide(rgb, 100).moving).toBe(b.decide(bgr, 100).moving);
  });
});

describe("motion gate config", () => {
  it("is off by default under every camera's detection section", () => {
    expect(DETECTION_SCHEMA.parse({}).motion).toEqual({
      enabled: false,
      block: 8,
      threshold: 10,
      start_area: 0.002,
      stop_area: 0.001,
      hold_s: 2,
      min_interval_s: 5,
    });
  });

  it("refuses a stop_area above start_area, at the key", () => {
    const r = MOTION_SCHEMA.safeParse({ start_area: 0.01, stop_area: 0.02 });
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => [i.path.join("."), i.message])).toEqual([["stop_area", "stop_area must not exceed start_area"]]);
  });
});
