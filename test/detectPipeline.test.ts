import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import * as ort from "onnxruntime-node";
import sharp from "sharp";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { LatestFrameSlot, type Frame } from "../drivers/camera/frame.js";
import { DETECTION_SCHEMA } from "../runtime/config/sections/detection.js";
import { DetectorPart, planInstances, type DetectorCamera } from "../runtime/detect/detectorPart.js";
import { DaemonBus } from "../runtime/events/events.js";
import { feedOutbox } from "../runtime/mqtt/outboxFeed.js";
import type { MessageSink } from "../runtime/mqtt/sink.js";
import { Topics } from "../runtime/mqtt/topics.js";
import { captureLogger, makeConstModel, writeManifest } from "./helpers/detectModels.js";
import { validateMessage } from "./helpers/schemas.js";

const topics = new Topics("cityedge", "dev-1");

/** Collects what pipelines emit, fed from the bus as the outbox is, with the envelope the outbox would add. */
class MemorySink implements MessageSink {
  readonly messages: { topic: string; body: Record<string, unknown> }[] = [];
  readonly bus = new DaemonBus();
  #seq = new Map<string, number>();
  constructor() {
    feedOutbox(this.bus, this, topics);
  }
  publish(topic: string, body: Record<string, unknown>, opts?: { v?: number }): void {
    const seq = (this.#seq.get(topic) ?? 0) + 1;
    this.#seq.set(topic, seq);
    this.messages.push({
      topic,
      body: { ...body, v: opts?.v ?? 1, id: `m${this.messages.length}`, device_id: "dev-1", ts: new Date().toISOString(), epoch: "test-epoch", seq },
    });
  }
  on(suffix: string) {
    return this.messages.filter((m) => m.topic.endsWith(suffix));
  }
}

let dir: string;
let batchManifest: string;
let fixedManifest: string;
const parts: DetectorPart[] = [];

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-detect-pipeline-"));
  // One box per frame whose x moves with the frame's brightness: cx = 10 + 0.1 × mean.
  const v8 = makeConstModel(dir, "batchy", {
    batch: "N",
    width: 32,
    height: 32,
    shape: [1, 6, 1],
    values: [10, 8, 8, 8, 0.9, 0.1],
    mask: [0.1, 0, 0, 0, 0, 0],
  });
  batchManifest = writeManifest(dir, "batchy", v8, "yolov8", { width: 32, height: 32 }, ["car", "person"]);
  const fixed = makeConstModel(dir, "fixed", { batch: 1, width: 32, height: 32, shape: [1, 6, 1], values: [16, 16, 8, 8, 0.9, 0.1] });
  fixedManifest = writeManifest(dir, "fixed", fixed, "yolov8", { width: 32, height: 32 }, ["car", "person"]);
});

afterEach(async () => {
  for (const p of parts.splice(0)) await p.stop();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function frame(cameraId: string, index: number, grey: number, src = { w: 64, h: 32 }): Frame {
  const scale = Math.min(32 / src.w, 32 / src.h);
  return {
    camera_id: cameraId,
    index,
    width: 32,
    height: 32,
    format: "rgb24",
    data: Buffer.alloc(32 * 32 * 3, grey),
    arrival_ms: Date.now(),
    letterbox: { src_width: src.w, src_height: src.h, scale, pad_x: 0, pad_y: 0 },
  };
}

function camera(id: string, detection: Record<string, unknown> = {}, extra: Partial<DetectorCamera> = {}): DetectorCamera {
  return { id, fps: 60, slot: new LatestFrameSlot(), detection: DETECTION_SCHEMA.parse(detection), ...extra };
}

function detector(manifestFile: string, cameras: DetectorCamera[], onFrame?: (f: Frame) => void, modelId = "m1", thread: "main" | "worker" = "main") {
  const { log, lines } = captureLogger();
  const p = new DetectorPart({
    instances: "auto",
    modelId,
    manifestFile,
    providers: ["cpu"],
    threads: 1,
    variant: "auto",
    warmupRuns: 1,
    maxBatch: 4,
    gpu: undefined,
    thread,
    cameras,
    bus: sink.bus,
    log,
    ...(onFrame ? { onFrame } : {}),
  });
  parts.push(p);
  return { p, lines };
}

let sink: MemorySink;

/** Resolves once `n` frames went through the detector. */
function frames(n: number): { onFrame: (f: Frame) => void; done: Promise<Frame[]> } {
  const seen: Frame[] = [];
  let resolve!: (f: Frame[]) => void;
  const done = new Promise<Frame[]>((r) => (resolve = r));
  return {
    onFrame: (f) => {
      seen.push(f);
      if (seen.length === n) resolve(seen);
    },
    done,
  };
}

describe("DetectorPart", () => {
  beforeAll(() => {
    sink = new MemorySink();
  });

  it("batches the latest frames of several cameras into one run (in a worker thread) and maps each back", async () => {
    sink = new MemorySink();
    const a = camera("cam-a");
    const b = camera("cam-b");
    const seen = frames(2);
    const { p } = detector(batchManifest, [a, b], seen.onFrame, "m1", "worker");
    // Frames wait in the slots before the detector starts, so both are ready for its first run.
    a.slot.put(frame("cam-a", 0, 20)); // cx = 12
    b.slot.put(frame("cam-b", 0, 100)); // cx = 20
    await p.start();
    await seen.done;
    const h = p.health();
    expect(h).toMatchObject({ state: "running", provider: "cpu", batch: 2, runs: 1 });
    const dets = sink.on("/detections");
    expect(dets.map((m) => m.topic).sort()).toEqual(["cityedge/dev-1/cameras/cam-a/detections", "cityedge/dev-1/cameras/cam-b/detections"]);
    for (const m of dets) validateMessage(m.topic, m.body);
    const boxOf = (cam: string) => (dets.find((m) => m.body.camera_id === cam)!.body.objects as { box: number[]; label: string }[])[0]!;
    // Picture 64x32 letterboxed at scale 0.5 into rows 0..16: model x 8..16 → 0.25..0.5, y 4..12 → 0.25..0.75.
    expect(boxOf("cam-a").box).toEqual([0.25, 0.25, 0.5, 0.75]);
    expect(boxOf("cam-a").label).toBe("car");
    expect(boxOf("cam-b").box).toEqual([0.5, 0.25, 0.75, 0.75]);
  });

  it("serves cameras round-robin on a fixed-batch model and publishes counts that validate", async () => {
    sink = new MemorySink();
    const cams = ["c1", "c2", "c3"].map((id) =>
      camera(id, {
        lines: [{ id: "l1", from: [0, 0.5], to: [1, 0.5] }],
        zones: [
          {
            id: "z",
            polygon: [
              [0, 0],
              [1, 0],
              [1, 1],
            ],
          },
        ],
      }),
    );
    const seen = frames(3);
    const { p } = detector(fixedManifest, cams, seen.onFrame);
    cams.forEach((c, i) => c.slot.put(frame(c.id, i, 50)));
    await p.start();
    expect((await seen.done).map((f) => f.camera_id)).toEqual(["c1", "c2", "c3"]);
    expect(p.health()).toMatchObject({ batch: 1, runs: 3 });
    await p.stop();
    // The partial interval is flushed at stop, once per camera.
    const counts = sink.on("/counts");
    expect(counts.map((m) => m.body.camera_id)).toEqual(["c1", "c2", "c3"]);
    for (const m of counts) validateMessage(m.topic, m.body);
    expect(counts[0]!.body).toMatchObject({ frames: 1, lines: [{ line_id: "l1", counts: {} }], road: { vehicles_now: 0 } });
  });

  it("applies the class filter, the score threshold and the rate limit", async () => {
    sink = new MemorySink();
    const only = camera("people", { classes: ["person"] });
    const strict = camera("strict", { score_threshold: 0.95 });
    const limited = camera("limited", { detections_max_rate: 0.1 });
    const seen = frames(6);
    const { p } = detector(fixedManifest, [only, strict, limited], seen.onFrame);
    await p.start();
    for (let i = 0; i < 2; i++) {
      for (const c of [only, strict, limited]) c.slot.put(frame(c.id, i, 50));
      // Let the detector take this round before the next one replaces it.
      await new Promise<void>((r) => {
        const tick = () => ([only, strict, limited].every((c) => c.slot.peek() === undefined) ? r() : setTimeout(tick, 5));
        tick();
      });
    }
    await seen.done;
    expect(sink.on("people/detections")).toHaveLength(0); // the only box is a car
    expect(sink.on("strict/detections")).toHaveLength(0); // 0.9 < 0.95
    expect(sink.on("limited/detections")).toHaveLength(1); // at most one per 10 s
    expect((p.health().cameras as Record<string, { rate_limited: number }>).limited!.rate_limited).toBe(1);
  });

  it("refuses a label the model does not have, naming the camera and the key", async () => {
    sink = new MemorySink();
    const { p } = detector(fixedManifest, [camera("gate-3", { classes: ["carr"] })]);
    await expect(p.start()).rejects.toThrow('camera "gate-3": detection.classes: unknown label "carr" (model fixed has: car, person)');
    expect(p.health()).toMatchObject({ state: "failed" });
  });

  it("fails only the detector whose model is corrupt; the other keeps running", async () => {
    sink = new MemorySink();
    const bad = writeManifest(dir, "corrupt", path.join(dir, "fixed.onnx"), "yolov8", { width: 32, height: 32 }, ["car", "person"], {
      variants: { fp32: { file: "fixed.onnx", sha256: "0".repeat(64) } },
    });
    const broken = detector(bad, [camera("x")], undefined, "broken");
    await expect(broken.p.start()).rejects.toThrow(/sha256 mismatch .*corrupt or replaced model/);
    expect(broken.p.health()).toMatchObject({ state: "failed", model: "broken" });
    const ok = camera("y");
    const seen = frames(1);
    const good = detector(fixedManifest, [ok], seen.onFrame, "good");
    await good.p.start();
    ok.slot.put(frame("y", 0, 50));
    await seen.done;
    expect(good.p.health()).toMatchObject({ state: "running" });
  });

  it("restarts a session whose run hangs (watchdog), and goes on detecting", async () => {
    sink = new MemorySink();
    // A stand-in for a GPU session that hangs on its third run: the one thing a test cannot make hang for real.
    let sessions = 0;
    const create = async () => {
      const n = ++sessions;
      let runs = 0;
      let hung: ((e: Error) => void) | undefined;
      return {
        inputNames: ["images"],
        outputNames: ["output"],
        inputMetadata: [{ name: "images", isTensor: true, type: "float32", shape: [1, 3, 32, 32] }],
        outputMetadata: [],
        run: () =>
          ++runs === 3 && n === 1
            ? new Promise<never>((_, reject) => (hung = reject))
            : Promise.resolve({ output: new ort.Tensor("float32", Float32Array.from([16, 16, 8, 8, 0.9, 0.1]), [1, 6, 1]) }),
        release: () => Promise.resolve(),
        terminate: () => {
          hung?.(new Error("terminated"));
          return Promise.resolve();
        },
      } as unknown as ort.InferenceSession;
    };
    const cam = camera("hangs");
    const seen = frames(3);
    const { log, lines } = captureLogger();
    const p = new DetectorPart({
      instances: "auto",
      thread: "main",
      modelId: "gpu",
      manifestFile: fixedManifest,
      providers: ["cuda"],
      threads: 1,
      variant: "auto",
      warmupRuns: 1,
      maxBatch: 1,
      gpu: undefined,
      cameras: [cam],
      bus: sink.bus,
      log,
      create,
      stallMs: 300,
      onFrame: seen.onFrame,
    });
    parts.push(p);
    await p.start();
    // Run 1 was the warm-up, run 2 handles frame 0, run 3 (frame 1) hangs; frames 2 and 3 go through the new session.
    for (let i = 0; i < 4; i++) {
      cam.slot.put(frame("hangs", i, 50));
      await new Promise<void>((r) => {
        const tick = () => (cam.slot.peek() === undefined ? r() : setTimeout(tick, 5));
        tick();
      });
    }
    await seen.done;
    expect(p.health()).toMatchObject({ session_restarts: 1, state: "running" });
    expect(lines().some((l) => /^detector gpu: inference made no progress for \d+ ms; restarting the model session$/.test(String(l.msg)))).toBe(true);
    expect(sessions).toBe(2);
  });

  it("runs two CPU instances side by side (threads split between them), each camera's frames in order and one at a time", async () => {
    sink = new MemorySink();
    let inFlight = 0;
    let maxInFlight = 0;
    const threadsSeen: number[] = [];
    // Real onnxruntime sessions, each run held for 15 ms so that two lanes overlap when they can.
    const create = async (file: string, options: ort.InferenceSession.SessionOptions) => {
      threadsSeen.push(options.intraOpNumThreads ?? -1);
      const real = await ort.InferenceSession.create(file, options);
      return new Proxy(real, {
        get(target, key) {
          if (key !== "run") return Reflect.get(target, key, target) as unknown;
          return async (feeds: Record<string, ort.Tensor>) => {
            maxInFlight = Math.max(maxInFlight, ++inFlight);
            try {
              await new Promise((r) => setTimeout(r, 15));
              return await target.run(feeds);
            } finally {
              inFlight--;
            }
          };
        },
      });
    };
    const cams = ["i1", "i2", "i3"].map((id) => camera(id));
    const perCamera = new Map<string, number[]>();
    const seen = frames(60);
    const { log } = captureLogger();
    const p = new DetectorPart({
      thread: "main",
      modelId: "twin",
      manifestFile: fixedManifest,
      providers: ["cpu"],
      threads: 2,
      instances: "auto",
      variant: "auto",
      warmupRuns: 1,
      maxBatch: 4,
      gpu: undefined,
      cameras: cams,
      bus: sink.bus,
      log,
      create,
      onFrame: (f) => {
        perCamera.set(f.camera_id, [...(perCamera.get(f.camera_id) ?? []), f.index]);
        seen.onFrame(f);
      },
    });
    parts.push(p);
    await p.start();
    let i = 0;
    const feeder = setInterval(() => {
      i++;
      for (const c of cams) c.slot.put(frame(c.id, i, 50));
    }, 5);
    try {
      await seen.done;
    } finally {
      clearInterval(feeder);
    }
    expect(p.instances).toBe(2);
    expect(threadsSeen).toEqual([1, 1]);
    expect(maxInFlight).toBe(2);
    for (const [cam, idx] of perCamera) {
      expect(idx.length, cam).toBeGreaterThan(3);
      // Strictly increasing: a camera's frames never overtake each other across lanes.
      expect(
        idx.every((v, k) => k === 0 || v > idx[k - 1]!),
        `${cam}: ${idx.join(",")}`,
      ).toBe(true);
    }
    const h = p.health() as unknown as { instances: number; threads_per_instance: number; lanes: { runs: number }[] };
    expect(h.instances).toBe(2);
    expect(h.threads_per_instance).toBe(1);
    expect(h.lanes.every((l) => l.runs > 5)).toBe(true);
  });

  it("opens one session on a GPU provider when instances is auto, however many threads and cameras", async () => {
    sink = new MemorySink();
    let sessions = 0;
    const create = async () => {
      sessions++;
      return {
        inputNames: ["images"],
        outputNames: ["output"],
        inputMetadata: [{ name: "images", isTensor: true, type: "float32", shape: [1, 3, 32, 32] }],
        outputMetadata: [],
        run: () => Promise.resolve({ output: new ort.Tensor("float32", Float32Array.from([16, 16, 8, 8, 0.9, 0.1]), [1, 6, 1]) }),
        release: () => Promise.resolve(),
      } as unknown as ort.InferenceSession;
    };
    const { log } = captureLogger();
    const cams = ["g1", "g2", "g3"].map((id) => camera(id));
    const p = new DetectorPart({
      thread: "main",
      modelId: "gpu",
      manifestFile: fixedManifest,
      providers: ["cuda"],
      threads: 2,
      instances: "auto",
      variant: "auto",
      warmupRuns: 1,
      maxBatch: 1,
      gpu: undefined,
      cameras: cams,
      bus: sink.bus,
      log,
      create,
    });
    parts.push(p);
    await p.start();
    expect([p.instances, sessions]).toEqual([1, 1]);
    expect(p.health()).toMatchObject({ provider: "cuda", instances: 1, threads_per_instance: null });
  });

  it("plans instances: auto is one per thread, at most one per camera", () => {
    expect(planInstances("auto", 2, 4)).toEqual({ instances: 2, threadsPerInstance: 1 });
    expect(planInstances("auto", 2, 1)).toEqual({ instances: 1, threadsPerInstance: 2 });
    expect(planInstances("auto", 4, 2)).toEqual({ instances: 2, threadsPerInstance: 2 });
    expect(planInstances(3, 2, 8)).toEqual({ instances: 3, threadsPerInstance: 1 });
  });

  it("keeps JPEG snapshots with boxes under the folder's size quota", async () => {
    sink = new MemorySink();
    const snapDir = path.join(dir, "snaps");
    mkdirSync(snapDir, { recursive: true });
    // Two old snapshots that already fill the quota.
    for (const n of ["old-1.jpg", "old-2.jpg"]) {
      writeFileSync(path.join(snapDir, n), Buffer.alloc(40_000));
      utimesSync(path.join(snapDir, n), new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));
    }
    const cam = camera("snappy", {}, { snapshots: { dir: snapDir, intervalMs: 60_000, maxBytes: 65_536, quality: 80 } });
    const seen = frames(1);
    const { p } = detector(fixedManifest, [cam], seen.onFrame);
    await p.start();
    cam.slot.put(frame("snappy", 0, 90));
    await seen.done;
    await p.stop(); // waits for the snapshot being written
    const files = readdirSync(snapDir).sort();
    expect(files).not.toContain("old-1.jpg");
    const snap = files.find((f) => f.endsWith("_0.jpg"))!;
    expect(snap).toBeDefined();
    const meta = await sharp(path.join(snapDir, snap)).metadata();
    // The letterbox is cropped away: the picture is the 32x16 source area.
    expect([meta.format, meta.width, meta.height]).toEqual(["jpeg", 32, 16]);
  });
});
