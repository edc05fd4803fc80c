import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { anchorGrid, decode, DECODER_NAMES, roleTensors, type RoleTensors } from "../runtime/detect/decoders/index.js";
import { loadDetectionManifest, type DetectionManifest } from "../runtime/detect/detectionManifest.js";
import { fitLetterbox, toSourceNormalized } from "../runtime/detect/letterbox.js";
import { mergeClasses, nms } from "../runtime/detect/nms.js";
import type { Detection } from "../runtime/detect/types.js";
import { createSession, TensorBuffer } from "../runtime/inference/index.js";
import { captureLogger, writeManifest } from "./helpers/detectModels.js";
import { rng, writeFixtureModel, type FixtureSpec } from "./helpers/onnxFixtures.js";
import * as ref from "./helpers/referenceDecoders.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-decoders-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const LABELS = ["a", "b", "c"];
const THR = 0.3;

/** Builds the model, its manifest, runs it once on a grey frame through onnxruntime and returns the manifest and the raw outputs. */
async function run(
  name: string,
  spec: FixtureSpec,
  output: string | Record<string, unknown>,
  labels = LABELS,
  frames: number[] = [114],
): Promise<{ m: DetectionManifest; raw: Record<string, { data: unknown; dims: readonly number[] }>; tensors: RoleTensors }> {
  const file = writeFixtureModel(dir, name, spec);
  const m = loadDetectionManifest(writeManifest(dir, name, file, output, { width: spec.width, height: spec.height }, labels));
  const { log } = captureLogger();
  const s = await createSession(m, { providers: ["cpu"], threads: 1, variant: "fp32", log });
  const buf = new TensorBuffer(m.input, frames.length);
  frames.forEach((v, i) =>
    buf.fill(i, { width: spec.width, height: spec.height, format: "rgb24", data: new Uint8Array(spec.width * spec.height * 3).fill(v) }),
  );
  const raw = await s.run({ images: buf.tensor(frames.length) });
  await s.release();
  return { m, raw, tensors: roleTensors(m.output, raw) };
}

const opts = (m: DetectionManifest, scoreThreshold = THR) => ({
  inputWidth: m.input.width,
  inputHeight: m.input.height,
  numClasses: m.labels.length,
  scoreThreshold,
});

/** Agreement of the runtime's boxes with the reference's: both sorted the same way, matched one to one. */
interface Agreement {
  decoder: string;
  boxes: number;
  maxBoxDiffPx: number;
  maxScoreDiff: number;
}
const agreement: Agreement[] = [];

function agree(decoder: string, ours: Detection[], theirs: ref.RefBox[]): void {
  const key = (cls: number, score: number, x1: number) => cls * 10 + score + x1 * 1e-6;
  const a = [...ours].sort((p, q) => key(p.class_id, p.score, p.x1) - key(q.class_id, q.score, q.x1));
  const b = [...theirs].sort((p, q) => key(p.cls, p.score, p.box[0]) - key(q.cls, q.score, q.box[0]));
  expect(a.length, `${decoder}: boxes`).toBe(b.length);
  expect(a.length, `${decoder}: the fixture must yield boxes`).toBeGreaterThan(3);
  let box = 0;
  let score = 0;
  a.forEach((d, i) => {
    const r = b[i]!;
    expect(d.class_id).toBe(r.cls);
    score = Math.max(score, Math.abs(d.score - r.score));
    [d.x1, d.y1, d.x2, d.y2].forEach((v, k) => (box = Math.max(box, Math.abs(v - r.box[k]!))));
  });
  expect(box, `${decoder}: largest box difference in pixels`).toBeLessThan(1e-6);
  expect(score, `${decoder}: largest score difference`).toBeLessThan(1e-9);
  agreement.push({ decoder, boxes: a.length, maxBoxDiffPx: box, maxScoreDiff: score });
}

const uniform = (r: () => number, lo: number, hi: number) => lo + (hi - lo) * r();

describe("every decoder agrees with a float64 reference on a generated model of its layout", () => {
  afterAll(() => {
    // The figures the report quotes.
    console.log(
      `decoder agreement with the float64 references:\n${agreement.map((a) => `  ${a.decoder}: ${a.boxes} boxes, max |Δbox| ${a.maxBoxDiffPx.toExponential(1)} px, max |Δscore| ${a.maxScoreDiff.toExponential(1)}`).join("\n")}`,
    );
  });

  it("covers every decoder", () => {
    expect(DECODER_NAMES.sort()).toEqual(["end2end", "nanodet", "nanodet-plus", "rtdetr", "ssd", "yolov5", "yolov8", "yolox"]);
  });

  it("yolov8 [1, 4+C, N]", async () => {
    const r = rng(8);
    const n = 84; // 64x64, strides 8/16/32
    const v: number[] = [];
    for (const [lo, hi] of [
      [0, 64],
      [0, 64],
      [2, 30],
      [2, 30],
    ] as const)
      for (let i = 0; i < n; i++) v.push(uniform(r, lo, hi));
    for (let i = 0; i < 3 * n; i++) v.push(r() * 0.6);
    const { m, raw, tensors } = await run(
      "v8",
      { width: 64, height: 64, outputs: [{ name: "output0", shape: [1, 7, n], values: v }] },
      { decoder: "yolov8", name: "output0", strides: [8, 16, 32] },
    );
    agree("yolov8", decode(m.output, tensors, 0, opts(m)), ref.refYolov8(raw.output0!.data as Float32Array, 7, n, THR));
  });

  it("yolov5 [1, 3N, 5+C]", async () => {
    const r = rng(5);
    const n = 3 * 84;
    const v: number[] = [];
    for (let i = 0; i < n; i++) v.push(uniform(r, 0, 64), uniform(r, 0, 64), uniform(r, 2, 30), uniform(r, 2, 30), r(), r(), r(), r());
    const { m, raw, tensors } = await run(
      "v5",
      { width: 64, height: 64, outputs: [{ name: "output0", shape: [1, n, 8], values: v }] },
      { decoder: "yolov5", name: "output0", strides: [8, 16, 32] },
    );
    agree("yolov5", decode(m.output, tensors, 0, opts(m)), ref.refYolov5(raw.output0!.data as Float32Array, n, 8, THR));
  });

  it("yolox [1, N, 5+C] on the stride grid", async () => {
    const r = rng(10);
    const n = 84;
    const v: number[] = [];
    for (let i = 0; i < n; i++) v.push(uniform(r, -0.5, 1.5), uniform(r, -0.5, 1.5), uniform(r, -1, 2), uniform(r, -1, 2), r(), r(), r(), r());
    const { m, raw, tensors } = await run(
      "yx",
      { width: 64, height: 64, outputs: [{ name: "output", shape: [1, n, 8], values: v }] },
      { decoder: "yolox", name: "output" },
    );
    agree("yolox", decode(m.output, tensors, 0, opts(m)), ref.refYolox(raw.output!.data as Float32Array, 64, 64, [8, 16, 32], 8, THR));
  });

  it("end2end [1, K, 6] with NMS in the graph", async () => {
    const r = rng(6);
    const k = 40;
    const v: number[] = [];
    for (let i = 0; i < k; i++) {
      const x = uniform(r, 0, 200);
      const y = uniform(r, 0, 200);
      // Zero rows at the end are the padding exporters leave; a class id past the labels is dropped.
      v.push(...(i < 30 ? [x, y, x + uniform(r, 5, 40), y + uniform(r, 5, 40), 1 - i / 30, Math.floor(r() * 3.2)] : [0, 0, 0, 0, 0, 0]));
    }
    const { m, raw, tensors } = await run(
      "e2e",
      { width: 224, height: 224, outputs: [{ name: "output0", shape: [1, k, 6], values: v }] },
      { decoder: "end2end", name: "output0" },
    );
    agree("end2end", decode(m.output, tensors, 0, opts(m)), ref.refEnd2end(raw.output0!.data as Float32Array, k, 3, THR));
  });

  it("rtdetr [1, K, 4+C] normalized, scores as probabilities and as logits", async () => {
    const r = rng(7);
    const k = 50;
    const v: number[] = [];
    for (let i = 0; i < k; i++) v.push(r(), r(), uniform(r, 0.02, 0.3), uniform(r, 0.02, 0.3), r(), r(), r());
    const spec: FixtureSpec = { width: 96, height: 64, outputs: [{ name: "output0", shape: [1, k, 7], values: v }] };
    const a = await run("rtdetr", spec, { decoder: "rtdetr", name: "output0" });
    agree("rtdetr", decode(a.m.output, a.tensors, 0, opts(a.m)), ref.refRtdetr(a.raw.output0!.data as Float32Array, k, 7, 96, 64, THR));
    const logits = v.map((x, i) => (i % 7 >= 4 ? uniform(r, -3, 2) : x));
    const b = await run(
      "rtdetr-logits",
      { ...spec, outputs: [{ name: "output0", shape: [1, k, 7], values: logits }] },
      { decoder: "rtdetr", name: "output0", score_activation: "sigmoid" },
    );
    agree(
      "rtdetr (logits)",
      decode(b.m.output, b.tensors, 0, opts(b.m)),
      ref.refRtdetr(b.raw.output0!.data as Float32Array, k, 7, 96, 64, THR, true),
    );
  });

  it("nanodet: per-stride class and distance-distribution outputs", async () => {
    const r = rng(12);
    const strides = [8, 16, 32];
    const outputs = strides.flatMap((s) => {
      const hw = (64 / s) * (64 / s);
      return [
        { name: `cls_pred_stride_${s}`, shape: [1, hw, 3] as [number, number, number], values: Array.from({ length: hw * 3 }, () => r() * 0.7) },
        {
          name: `dis_pred_stride_${s}`,
          shape: [1, hw, 32] as [number, number, number],
          values: Array.from({ length: hw * 32 }, () => uniform(r, -3, 3)),
        },
      ];
    });
    const output = {
      decoder: "nanodet",
      tensors: { cls: strides.map((s) => `cls_pred_stride_${s}`), reg: strides.map((s) => `dis_pred_stride_${s}`) },
      strides,
    };
    const { m, raw, tensors } = await run("nanodet", { width: 64, height: 64, outputs }, output);
    const theirs = ref.refNanodet(
      strides.map((s) => raw[`cls_pred_stride_${s}`]!.data as Float32Array),
      strides.map((s) => raw[`dis_pred_stride_${s}`]!.data as Float32Array),
      64,
      64,
      strides,
      3,
      0.5,
      THR,
    );
    agree("nanodet", decode(m.output, tensors, 0, opts(m)), theirs);
  });

  it("nanodet-plus: one merged output, four levels sized with ceil", async () => {
    const r = rng(13);
    // 96x96, strides 8/16/32/64: 144 + 36 + 9 + 2x2 (ceil of 1.5) = 193 rows.
    const n = 193;
    const v: number[] = [];
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < 3; c++) v.push(r() * 0.7);
      for (let k = 0; k < 32; k++) v.push(uniform(r, -3, 3));
    }
    const { m, raw, tensors } = await run(
      "nanodet-plus",
      { width: 96, height: 96, outputs: [{ name: "output", shape: [1, n, 35], values: v }] },
      { decoder: "nanodet-plus", name: "output" },
    );
    agree(
      "nanodet-plus",
      decode(m.output, tensors, 0, opts(m)),
      ref.refNanodetPlus(raw.output!.data as Float32Array, 96, 96, [8, 16, 32, 64], 3, 35, THR),
    );
  });

  it("ssd: boxes, scores, int64 classes and a count", async () => {
    const r = rng(14);
    const k = 20;
    const boxes: number[] = [];
    for (let i = 0; i < k; i++) {
      const y = r() * 0.8;
      const x = r() * 0.8;
      boxes.push(y, x, y + uniform(r, 0.05, 0.2), x + uniform(r, 0.05, 0.2));
    }
    const scores = Array.from({ length: k }, () => r());
    const classes = Array.from({ length: k }, () => Math.floor(r() * 3));
    const outputs: FixtureSpec["outputs"] = [
      { name: "detection_boxes", shape: [1, k, 4], values: boxes },
      { name: "detection_scores", shape: [1, k], values: scores },
      { name: "detection_classes", shape: [1, k], values: classes, type: "int64" },
      { name: "num_detections", shape: [1], values: [15] },
    ];
    const output = {
      decoder: "ssd",
      tensors: { boxes: "detection_boxes", scores: "detection_scores", classes: "detection_classes", count: "num_detections" },
    };
    const { m, raw, tensors } = await run("ssd", { width: 128, height: 96, outputs }, output);
    expect(raw.detection_classes!.data).toBeInstanceOf(BigInt64Array);
    const theirs = ref.refSsd(
      raw.detection_boxes!.data as Float32Array,
      raw.detection_scores!.data as Float32Array,
      raw.detection_classes!.data as BigInt64Array,
      15,
      128,
      96,
      3,
      THR,
    );
    agree("ssd", decode(m.output, tensors, 0, opts(m)), theirs);
  });
});

const near = (d: Detection, e: Partial<Detection>) => {
  for (const [k, v] of Object.entries(e)) expect(d[k as keyof Detection]).toBeCloseTo(v, 4);
};

describe("decoders on hand-made outputs with known answers", () => {
  it("yolov8 keeps the best allowed class per anchor", async () => {
    const values = [10, 30, 50, 12, 20, 40, 4, 10, 6, 6, 8, 10, 0.9, 0.1, 0.2, 0.2, 0.7, 0.25];
    const { m, tensors } = await run("v8-known", { width: 64, height: 64, outputs: [{ name: "output", shape: [1, 6, 3], values }] }, "yolov8", [
      "a",
      "b",
    ]);
    const dets = decode(m.output, tensors, 0, opts(m));
    expect(dets).toHaveLength(2);
    near(dets[0]!, { x1: 8, y1: 9, x2: 12, y2: 15, score: 0.9, class_id: 0 });
    near(dets[1]!, { x1: 25, y1: 16, x2: 35, y2: 24, score: 0.7, class_id: 1 });
    const onlyB = decode(m.output, tensors, 0, { ...opts(m), allowed: Uint8Array.from([0, 1]) });
    expect(onlyB.map((d) => d.class_id)).toEqual([1]);
  });

  it("yolox decodes offsets on its grid; the anchor count is checked", async () => {
    const n = 21; // 32x32, strides 8/16/32
    const values = new Array<number>(n * 7).fill(0);
    const set = (i: number, row: number[]) => row.forEach((v, k) => (values[i * 7 + k] = v));
    set(5, [0.5, 0.25, Math.log(2), Math.log(3), 0.8, 0.9, 0.1]);
    set(19, [0, 0.5, 0, 0, 0.95, 0.0, 0.6]);
    set(20, [0.5, 0.5, Math.log(0.5), Math.log(0.5), 0.1, 1, 1]);
    const { m, tensors } = await run("yx-known", { width: 32, height: 32, outputs: [{ name: "output", shape: [1, n, 7], values }] }, "yolox", [
      "a",
      "b",
    ]);
    const dets = decode(m.output, tensors, 0, opts(m));
    expect(dets).toHaveLength(2);
    near(dets[0]!, { x1: 4, y1: -2, x2: 20, y2: 22, class_id: 0, score: 0.72 });
    near(dets[1]!, { x1: 8, y1: 16, x2: 24, y2: 32, class_id: 1, score: 0.57 });
    expect(anchorGrid(32, 32, [8, 16, 32]).length / 3).toBe(21);
    expect(() => decode(m.output, { output: [{ data: new Float32Array(20 * 7), dims: [1, 20, 7] }] }, 0, opts(m))).toThrow(
      "yolox output has 20 anchors, strides [8, 16, 32] on 32x32 give 21",
    );
  });

  it("names a label count that does not match the output", () => {
    const output = { decoder: "yolov5", name: "output", anchors_per_cell: 3 };
    expect(() =>
      decode(output, { output: [{ data: new Float32Array(14), dims: [1, 2, 7] }] }, 0, {
        inputWidth: 8,
        inputHeight: 8,
        numClasses: 3,
        scoreThreshold: 0.3,
      }),
    ).toThrow("the model has 7 values per box = 4 + 1 objectness + 2 classes; the manifest lists 3 labels");
  });

  it("nanodet: a distribution peaked at bin 2 is a distance of two strides", async () => {
    // 16x16, stride 8 only: 4 cells. Cell 3 (x 1, y 1) has class b at 0.9; its prior centre is (12, 12).
    const peak = (bin: number) => Array.from({ length: 8 }, (_, i) => (i === bin ? 20 : -20));
    const reg: number[] = [];
    for (let i = 0; i < 4; i++) reg.push(...peak(1), ...peak(1), ...peak(2), ...peak(0));
    const cls = [0, 0, 0, 0, 0, 0, 0.1, 0.9];
    const output = { decoder: "nanodet", tensors: { cls: ["cls8"], reg: ["reg8"] }, strides: [8] };
    const { m, tensors } = await run(
      "nanodet-known",
      {
        width: 16,
        height: 16,
        outputs: [
          { name: "cls8", shape: [1, 4, 2], values: cls },
          { name: "reg8", shape: [1, 4, 32], values: reg },
        ],
      },
      output,
      ["a", "b"],
    );
    const [d] = decode(m.output, tensors, 0, opts(m));
    // left 1, top 1, right 2, bottom 0 strides from (12, 12); x2 clipped to the input's 16.
    near(d!, { x1: 4, y1: 4, x2: 16, y2: 12, score: 0.9, class_id: 1 });
  });

  it("ssd: 1-based class ids and x-first boxes in pixels", async () => {
    const output = { decoder: "ssd", tensors: { boxes: "b", scores: "s", classes: "c" }, box_order: "xyxy", normalized: false, class_offset: 1 };
    const { m, tensors } = await run(
      "ssd-known",
      {
        width: 32,
        height: 32,
        outputs: [
          { name: "b", shape: [1, 2, 4], values: [1, 2, 11, 12, 3, 4, 5, 6] },
          { name: "s", shape: [1, 2], values: [0.8, 0.9] },
          { name: "c", shape: [1, 2], values: [2, 0] },
        ],
      },
      output,
      ["a", "b"],
    );
    const dets = decode(m.output, tensors, 0, opts(m));
    // Id 2 is label 1 ("b"); id 0 would be label -1, the background: dropped.
    expect(dets).toHaveLength(1);
    near(dets[0]!, { x1: 1, y1: 2, x2: 11, y2: 12, score: 0.8, class_id: 1 });
  });

  it("decodes each frame of a dynamic batch from its own slice", async () => {
    const { m, tensors } = await run(
      "v8batch",
      { width: 16, height: 16, batch: "N", outputs: [{ name: "output", shape: ["N", 5, 1], values: [0, 8, 4, 4, 0.9], mask: [0.1, 0, 0, 0, 0] }] },
      "yolov8",
      ["a"],
      [50, 100],
    );
    expect(tensors.output![0]!.dims).toEqual([2, 5, 1]);
    near(decode(m.output, tensors, 0, opts(m))[0]!, { x1: 3, x2: 7 });
    near(decode(m.output, tensors, 1, opts(m))[0]!, { x1: 8, x2: 12 });
  });
});

describe("class-aware NMS and the cross-class merge", () => {
  const d = (x1: number, y1: number, x2: number, y2: number, score: number, class_id = 0): Detection => ({ x1, y1, x2, y2, score, class_id });

  it("keeps the best of overlapping boxes of one class", () => {
    const kept = nms([d(0, 0, 10, 10, 0.8), d(1, 1, 11, 11, 0.9), d(20, 20, 30, 30, 0.5)], 0.45);
    expect(kept.map((k) => k.score)).toEqual([0.9, 0.5]);
  });

  it("never suppresses across classes", () => {
    expect(nms([d(0, 0, 10, 10, 0.8, 0), d(0, 0, 10, 10, 0.7, 1)], 0.45)).toHaveLength(2);
  });

  it("keeps boxes whose IoU is exactly the threshold, and drops zero-area boxes", () => {
    expect(nms([d(0, 0, 10, 10, 0.9), d(5, 0, 15, 10, 0.8)], 1 / 3)).toHaveLength(2);
    expect(nms([d(0, 0, 10, 10, 0.9), d(5, 0, 15, 10, 0.8)], 0.33)).toHaveLength(1);
    expect(nms([d(5, 5, 5, 9, 0.99), d(0, 0, 0, 0, 0.9)], 0.45)).toHaveLength(0);
  });

  it("is deterministic for equal scores and caps the count", () => {
    const boxes = Array.from({ length: 10 }, (_, i) => d(i * 20, 0, i * 20 + 10, 10, 0.5));
    expect(nms(boxes, 0.45, 3).map((b) => b.x1)).toEqual([0, 20, 40]);
    expect(nms([], 0.45)).toEqual([]);
  });

  it("merges one object seen as car and truck into the better box, within a group only", () => {
    // Classes: 0 person, 1 car, 2 truck. Group 0 = car + truck; person merges with nothing.
    const groupOf = Int32Array.from([-1, 0, 0]);
    const boxes = [d(0, 0, 10, 10, 0.6, 1), d(0, 0, 10, 9, 0.8, 2), d(1, 1, 9, 9, 0.9, 0), d(50, 50, 60, 60, 0.5, 1)];
    const kept = mergeClasses(boxes, groupOf, 0.7);
    expect(kept.map((k) => [k.class_id, k.score])).toEqual([
      [2, 0.8],
      [0, 0.9],
      [1, 0.5],
    ]);
    // Below the merge IoU both stay.
    expect(mergeClasses([d(0, 0, 10, 10, 0.6, 1), d(5, 0, 15, 10, 0.8, 2)], groupOf, 0.7)).toHaveLength(2);
  });
});

describe("letterbox mapping", () => {
  it("maps a top-left letterbox back to the source, normalized", () => {
    const lb = fitLetterbox(640, 352, 416, 416);
    expect(lb.scale).toBeCloseTo(0.65, 6);
    const s = toSourceNormalized({ x1: 0, y1: 0, x2: 208, y2: 114.4, score: 1, class_id: 0 }, lb)!;
    expect([s.x1, s.y1, s.x2, s.y2].map((v) => Math.round(v * 1e6) / 1e6)).toEqual([0, 0, 0.5, 0.5]);
  });

  it("accounts for centred padding", () => {
    const lb = fitLetterbox(100, 50, 100, 100, true);
    expect(lb.pad_y).toBe(25);
    const s = toSourceNormalized({ x1: 10, y1: 25, x2: 60, y2: 75, score: 1, class_id: 0 }, lb)!;
    expect([s.x1, s.y1, s.x2, s.y2]).toEqual([0.1, 0, 0.6, 1]);
  });

  it("clips boxes reaching into the padding and drops boxes only in it", () => {
    const lb = fitLetterbox(100, 50, 100, 100);
    const clipped = toSourceNormalized({ x1: -5, y1: 40, x2: 50, y2: 90, score: 1, class_id: 0 }, lb)!;
    expect([clipped.x1, clipped.y1, clipped.x2, clipped.y2]).toEqual([0, 0.8, 0.5, 1]);
    expect(toSourceNormalized({ x1: 10, y1: 60, x2: 50, y2: 90, score: 1, class_id: 0 }, lb)).toBeUndefined();
  });

  it("refuses an empty source", () => {
    expect(() => fitLetterbox(0, 10, 416, 416)).toThrow("source size must be positive, got 0x10");
  });
});
