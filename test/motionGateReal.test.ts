import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freezeClip, QUIET_FREEZES } from "../bench/quietClip.js";
import { DETECTION_SCHEMA } from "../runtime/config/sections/detection.js";
import { detectStream, type StreamResult } from "../runtime/detect/detectRun.js";
import { captureLogger } from "./helpers/detectModels.js";
import { REPO_ROOT, sharedDataDir } from "./helpers/sharedData.js";

/**
 * Motion gating on real sequences, through `cityedge detect`'s engine (the daemon's camera
 * driver, detector, tracker and counter): a static-heavy scene is made by freezing the clip for
 * long stretches between vehicles (ffmpeg's loop filter, as a camera over a quiet junction sees
 * it), then counted with gating off and on. The counts must be the same, with far fewer runs.
 */

const VEHICLES = ["car", "truck", "bus", "motorcycle", "bicycle"];
type Counts = Record<string, { in: number; out: number }>;
const vehicles = (c: Counts) =>
  Object.entries(c)
    .filter(([label]) => VEHICLES.includes(label))
    .reduce((t, [, v]) => ({ in: t.in + v.in, out: t.out + v.out }), { in: 0, out: 0 });

async function count(video: string, manifestFile: string, modelId: string, fps: number, detection: Record<string, unknown>): Promise<StreamResult> {
  const { log } = captureLogger();
  return detectStream(video, {
    model: { id: modelId, manifestFile, providers: ["cpu"], threads: 2, variant: "fp32" },
    detection: DETECTION_SCHEMA.parse(detection),
    log,
    fps,
  });
}

const lineCounts = (r: StreamResult, id: string): Counts => r.lines.find((l) => l.line_id === id)?.counts ?? {};

describe("motion gating on the synthetic demo with still stretches (vehicles model)", () => {
  let dir: string;
  let video: string;
  const gt = JSON.parse(readFileSync(path.join(REPO_ROOT, "models/synthetic/demo.gt.json"), "utf8")) as {
    fps: number;
    lines: { id: string; from: [number, number]; to: [number, number] }[];
  };
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-gate-demo-"));
    video = path.join(dir, "demo-still.mp4");
    freezeClip(path.join(REPO_ROOT, "models/synthetic/demo.mp4"), video, gt.fps, [
      { frame: Math.round(gt.fps * 10), seconds: 12 },
      { frame: Math.round(gt.fps * 25), seconds: 12 },
    ]);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("counts the same with gating on, with fewer inference runs", async () => {
    const detection = { lines: gt.lines, counts_interval_s: 86_400 };
    const manifest = path.join(REPO_ROOT, "models/vehicles/manifest.json");
    const plain = await count(video, manifest, "vehicles", 10, detection);
    const gated = await count(video, manifest, "vehicles", 10, { ...detection, motion: { enabled: true } });
    console.log(`demo with still stretches: ${plain.frames} runs ungated, ${gated.frames} gated; counts ${JSON.stringify(plain.lines)}`);
    for (const l of gt.lines) expect(lineCounts(gated, l.id)).toEqual(lineCounts(plain, l.id));
    expect(plain.lines.flatMap((l) => Object.values(l.counts)).reduce((n, c) => n + c.in + c.out, 0)).toBeGreaterThan(5);
    expect(gated.frames).toBeLessThan(plain.frames * 0.8);
  }, 600_000);
});

const data = sharedDataDir();
const LABELS = JSON.parse(readFileSync(path.join(REPO_ROOT, "test/fixtures/detect/street-traffic-640x352.crossings.json"), "utf8")) as {
  video: string;
  fps: number;
  lines: { id: string; from: [number, number]; to: [number, number] }[];
  crossings: { direction: "in" | "out" }[];
};

describe.skipIf(!data)("motion gating on the real clip made static-heavy (YOLOX-Nano)", () => {
  let dir: string;
  let video: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-gate-real-"));
    video = path.join(dir, "street-still.mp4");
    // Between passes (the labels: crossings at frames 18-238, 421, 475, 712): 20 s still each.
    freezeClip(path.join(data!, LABELS.video), video, LABELS.fps, QUIET_FREEZES);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("halves inference with identical counts, within one of our labels", async () => {
    const line = LABELS.lines[0]!;
    const detection = { classes: [...VEHICLES, "person"], lines: [line], counts_interval_s: 86_400 };
    const manifest = path.join(REPO_ROOT, "models/yolox_nano/manifest.json");
    const plain = await count(video, manifest, "yolox_nano", 10, detection);
    const gated = await count(video, manifest, "yolox_nano", 10, { ...detection, motion: { enabled: true } });
    const c = vehicles(lineCounts(gated, line.id));
    console.log(
      `real clip + 60 s still: ${plain.frames} runs ungated, ${gated.frames} gated (${((gated.frames / plain.frames) * 100).toFixed(1)} %); ` +
        `vehicles in ${c.in} out ${c.out}; ungated ${JSON.stringify(lineCounts(plain, line.id))}, gated ${JSON.stringify(lineCounts(gated, line.id))}`,
    );
    expect(lineCounts(gated, line.id)).toEqual(lineCounts(plain, line.id));
    expect(gated.frames).toBeLessThanOrEqual(plain.frames / 2);
    const truthIn = LABELS.crossings.filter((x) => x.direction === "in").length;
    expect(Math.abs(c.in - truthIn)).toBeLessThanOrEqual(1);
  }, 900_000);
});
