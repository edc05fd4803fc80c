import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeYolov5, decodeYolov8, decodeYolox, yoloxGrid } from "../runtime/detect/decoders.js";
import { fitLetterbox, toSourceNormalized } from "../runtime/detect/letterbox.js";
import { nms } from "../runtime/detect/nms.js";
import type { Detection } from "../runtime/detect/types.js";
import { createSession, loadManifest, TensorBuffer } from "../runtime/inference/index.js";
import { captureLogger, makeConstModel, writeManifest } from "./helpers/detectModels.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-decoders-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs a generated model on a grey frame and returns its raw output. */
async function runModel(
  file: string,
  decoder: "yolov8" | "yolox" | "yolov5",
  w: number,
  h: number,
  labels: string[],
): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const { log } = captureLogger();
  const m = loadManifest(writeManifest(dir, path.basename(file, ".onnx"), file, decoder, { width: w, height: h }, labels));
  const s = await createSession(m, { providers: ["cpu"], threads: 1, variant: "fp32", log });
  const buf = new TensorBuffer({ width: w, height: h, color: "rgb", scale: 1, mean: [0, 0, 0], std: [1, 1, 1] }, 1);
  const out = (await s.run({ images: buf.tensor(1) })).output!;
  await s.release();
  return { data: out.data as Float32Array, dims: out.dims };
}

const near = (d: Detection, e: Partial<Detection>) => {
  for (const [k, v] of Object.entries(e)) expect(d[k as keyof Detection]).toBeCloseTo(v, 4);
};

describe("decoders on generated models of each layout", () => {
  it("yolov8: [1, 4+C, N] with per-class scores, no objectness", async () => {
    // 3 anchors, 2 classes. Channel-major: row k holds value k of every anchor.
    const cx = [10, 30, 50],
      cy = [12, 20, 40],
      w = [4, 10, 6],
      h = [6, 8, 10];
    const c0 = [0.9, 0.1, 0.2],
      c1 = [0.2, 0.7, 0.25];
    const file = makeConstModel(dir, "v8", { batch: 1, width: 64, height: 64, shape: [1, 6, 3], values: [...cx, ...cy, ...w, ...h, ...c0, ...c1] });
    const { data, dims } = await runModel(file, "yolov8", 64, 64, ["a", "b"]);
    expect(dims).toEqual([1, 6, 3]);
    const dets = decodeYolov8(data, dims, 0, { inputWidth: 64, inputHeight: 64, numClasses: 2, scoreThreshold: 0.3 });
    expect(dets).toHaveLength(2);
    near(dets[0]!, { x1: 8, y1: 9, x2: 12, y2: 15, score: 0.9, class_id: 0 });
    near(dets[1]!, { x1: 25, y1: 16, x2: 35, y2: 24, score: 0.7, class_id: 1 });
    // The class filter drops class 0 entirely; anchor 0's class 1 score (0.2) is under the threshold.
    const onlyB = decodeYolov8(data, dims, 0, {
      inputWidth: 64,
      inputHeight: 64,
      numClasses: 2,
      scoreThreshold: 0.3,
      allowed: Uint8Array.from([0, 1]),
    });
    expect(onlyB.map((d) => d.class_id)).toEqual([1]);
  });

  it("yolov5: [1, N, 5+C], score = objectness × class score", async () => {
    const rows = [
      [20, 20, 10, 10, 0.9, 0.5, 0.9],
      [40, 10, 8, 4, 0.2, 1.0, 0.0],
    ];
    const file = makeConstModel(dir, "v5", { batch: 1, width: 64, height: 64, shape: [1, 2, 7], values: rows.flat() });
    const { data, dims } = await runModel(file, "yolov5", 64, 64, ["a", "b"]);
    const dets = decodeYolov5(data, dims, 0, { inputWidth: 64, inputHeight: 64, numClasses: 2, scoreThreshold: 0.3 });
    expect(dets).toHaveLength(1);
    near(dets[0]!, { x1: 15, y1: 15, x2: 25, y2: 25, score: 0.81, class_id: 1 });
  });

  it("yolox: [1, N, 5+C] decoded on the stride grid", async () => {
    // 32x32 input, strides 8/16/32: 16 + 4 + 1 = 21 anchors.
    const n = 21;
    const values = new Array<number>(n * 7).fill(0);
    const set = (i: number, row: number[]) => row.forEach((v, k) => (values[i * 7 + k] = v));
    set(5, [0.5, 0.25, Math.log(2), Math.log(3), 0.8, 0.9, 0.1]); // stride 8, cell (1, 1)
    set(19, [0, 0.5, 0, 0, 0.95, 0.0, 0.6]); // stride 16, cell (1, 1)
    set(20, [0.5, 0.5, Math.log(0.5), Math.log(0.5), 0.1, 1, 1]); // stride 32: objectness too low
    const file = makeConstModel(dir, "yx", { batch: 1, width: 32, height: 32, shape: [1, n, 7], values });
    const { data, dims } = await runModel(file, "yolox", 32, 32, ["a", "b"]);
    const dets = decodeYolox(data, dims, 0, { inputWidth: 32, inputHeight: 32, numClasses: 2, scoreThreshold: 0.3, strides: [8, 16, 32] });
    expect(dets).toHaveLength(2);
    // cx = (0.5 + 1) * 8 = 12, cy = (0.25 + 1) * 8 = 10, w = 2 * 8, h = 3 * 8
    near(dets[0]!, { x1: 4, y1: -2, x2: 20, y2: 22, class_id: 0, score: 0.72 });
    // cx = (0 + 1) * 16 = 16, cy = (0.5 + 1) * 16 = 24, w = h = 16
    near(dets[1]!, { x1: 8, y1: 16, x2: 24, y2: 32, class_id: 1, score: 0.57 });
  });

  it("yolox grid covers strides in order and anchors are checked against it", () => {
    const g = yoloxGrid(32, 32, [8, 16, 32]);
    expect(g.length / 3).toBe(21);
    expect([...g.slice(0, 3)]).toEqual([0, 0, 8]);
    expect([...g.slice(16 * 3, 16 * 3 + 3)]).toEqual([0, 0, 16]);
    expect(() =>
      decodeYolox(new Float32Array(20 * 7), [1, 20, 7], 0, { inputWidth: 32, inputHeight: 32, numClasses: 2, scoreThreshold: 0.3 }),
    ).toThrow("yolox output has 20 anchors, strides [8, 16, 32] on 32x32 give 21");
  });

  it("names a label count that does not match the output", () => {
    expect(() => decodeYolov5(new Float32Array(14), [1, 2, 7], 0, { inputWidth: 8, inputHeight: 8, numClasses: 3, scoreThreshold: 0.3 })).toThrow(
      "yolov5 output has 7 values per box, the manifest's 3 labels need 8",
    );
  });

  it("decodes each frame of a dynamic batch from its own slice", async () => {
    // cx rises with the frame's mean brightness, so the two frames give different boxes.
    const file = makeConstModel(dir, "v8batch", {
      batch: "N",
      width: 16,
      height: 16,
      shape: [1, 5, 1],
      values: [0, 8, 4, 4, 0.9],
      mask: [0.1, 0, 0, 0, 0],
    });
    const { log } = captureLogger();
    const m = loadManifest(writeManifest(dir, "v8batch", file, "yolov8", { width: 16, height: 16 }, ["a"]));
    const s = await createSession(m, { providers: ["cpu"], threads: 1, variant: "fp32", log });
    expect(s.dynamicBatch("images")).toBe(true);
    const buf = new TensorBuffer({ width: 16, height: 16, color: "rgb", scale: 1, mean: [0, 0, 0], std: [1, 1, 1] }, 2);
    buf.fill(0, { width: 16, height: 16, format: "rgb24", data: new Uint8Array(16 * 16 * 3).fill(50) });
    buf.fill(1, { width: 16, height: 16, format: "rgb24", data: new Uint8Array(16 * 16 * 3).fill(100) });
    const out = (await s.run({ images: buf.tensor(2) })).output!;
    await s.release();
    expect(out.dims).toEqual([2, 5, 1]);
    const o = { inputWidth: 16, inputHeight: 16, numClasses: 1, scoreThreshold: 0.3 };
    near(decodeYolov8(out.data as Float32Array, out.dims, 0, o)[0]!, { x1: 3, x2: 7 });
    near(decodeYolov8(out.data as Float32Array, out.dims, 1, o)[0]!, { x1: 8, x2: 12 });
  });
});

describe("class-aware NMS", () => {
  const d = (x1: number, y1: number, x2: number, y2: number, score: number, class_id = 0): Detection => ({ x1, y1, x2, y2, score, class_id });

  it("keeps the best of overlapping boxes of one class", () => {
    const kept = nms([d(0, 0, 10, 10, 0.8), d(1, 1, 11, 11, 0.9), d(20, 20, 30, 30, 0.5)], 0.45);
    expect(kept.map((k) => k.score)).toEqual([0.9, 0.5]);
  });

  it("never suppresses across classes", () => {
    expect(nms([d(0, 0, 10, 10, 0.8, 0), d(0, 0, 10, 10, 0.7, 1)], 0.45)).toHaveLength(2);
  });

  it("keeps boxes whose IoU is exactly the threshold, and drops zero-area boxes", () => {
    // IoU of [0,10]x[0,10] and [5,15]x[0,10] is 50 / 150 = 1/3.
    expect(nms([d(0, 0, 10, 10, 0.9), d(5, 0, 15, 10, 0.8)], 1 / 3)).toHaveLength(2);
    expect(nms([d(0, 0, 10, 10, 0.9), d(5, 0, 15, 10, 0.8)], 0.33)).toHaveLength(1);
    expect(nms([d(5, 5, 5, 9, 0.99), d(0, 0, 0, 0, 0.9)], 0.45)).toHaveLength(0);
  });

  it("is deterministic for equal scores and caps the count", () => {
    const boxes = Array.from({ length: 10 }, (_, i) => d(i * 20, 0, i * 20 + 10, 10, 0.5));
    expect(nms(boxes, 0.45, 3).map((b) => b.x1)).toEqual([0, 20, 40]);
    expect(nms([], 0.45)).toEqual([]);
  });
});

describe("letterbox mapping", () => {
  it("maps a top-left letterbox back to the source, normalized", () => {
    const lb = fitLetterbox(640, 352, 416, 416); // scale 0.65, picture 416x228.8 at the top
    expect(lb.scale).toBeCloseTo(0.65, 6);
    const s = toSourceNormalized({ x1: 0, y1: 0, x2: 208, y2: 114.4, score: 1, class_id: 0 }, lb)!;
    expect([s.x1, s.y1, s.x2, s.y2].map((v) => Math.round(v * 1e6) / 1e6)).toEqual([0, 0, 0.5, 0.5]);
  });

  it("accounts for centred padding", () => {
    const lb = fitLetterbox(100, 50, 100, 100, true); // pad_y 25
    expect(lb.pad_y).toBe(25);
    const s = toSourceNormalized({ x1: 10, y1: 25, x2: 60, y2: 75, score: 1, class_id: 0 }, lb)!;
    expect([s.x1, s.y1, s.x2, s.y2]).toEqual([0.1, 0, 0.6, 1]);
  });

  it("clips boxes reaching into the padding and drops boxes only in it", () => {
    const lb = fitLetterbox(100, 50, 100, 100); // picture rows 0..50, padding below
    const clipped = toSourceNormalized({ x1: -5, y1: 40, x2: 50, y2: 90, score: 1, class_id: 0 }, lb)!;
    expect([clipped.x1, clipped.y1, clipped.x2, clipped.y2]).toEqual([0, 0.8, 0.5, 1]);
    expect(toSourceNormalized({ x1: 10, y1: 60, x2: 50, y2: 90, score: 1, class_id: 0 }, lb)).toBeUndefined();
  });

  it("refuses an empty source", () => {
    expect(() => fitLetterbox(0, 10, 416, 416)).toThrow("source size must be positive, got 0x10");
  });
});
