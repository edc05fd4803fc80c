/**
 * Scores a detector on a held-out set of JPEGs with exact labels: mAP@0.5 (VOC all-point AP per
 * class, mean over classes), the same rule as models/vehicles/build/common.py. Pictures go
 * through the runtime's own letterbox, tensor conversion (TensorBuffer) and decoder (any layout
 * the manifest names), so the figures measure the code the daemon runs.
 * Used by models/eval/evalDetector.ts (the results table) and test/models.test.ts.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { decode, roleTensors } from "../../runtime/detect/decoders/index.js";
import type { DetectionManifest } from "../../runtime/detect/detectionManifest.js";
import { letterboxPicture } from "../../runtime/detect/detectRun.js";
import { fitLetterbox } from "../../runtime/detect/letterbox.js";
import { nms } from "../../runtime/detect/nms.js";
import { TensorBuffer, type PixelSource } from "../../runtime/inference/tensorBuffer.js";

/** The manifest scoring reads: the runtime's detection manifest (loadDetectionManifest). */
export type DetectorManifest = DetectionManifest;

/** One label: class, x1, y1, x2, y2 (picture pixels), ignore (1: neither required nor penalized). */
export type Label = [number, number, number, number, number, number];

export interface HeldoutSet {
  dir: string;
  width: number;
  height: number;
  labels: string[];
  images: Label[][];
}

export function readHeldout(dir: string): HeldoutSet {
  const j = JSON.parse(readFileSync(path.join(dir, "labels.json"), "utf8")) as { width: number; height: number; labels: string[]; images: Label[][] };
  return { dir, width: j.width, height: j.height, labels: j.labels, images: j.images };
}

export function heldoutFile(set: HeldoutSet, i: number): string {
  return path.join(set.dir, `${String(i).padStart(4, "0")}.jpg`);
}

/** Held-out picture i letterboxed to the model's input as the camera driver does, in its channel order. */
export async function heldoutFrame(set: HeldoutSet, i: number, m: DetectionManifest): Promise<PixelSource> {
  const file = heldoutFile(set, i);
  const { pixels, width, height } = await letterboxPicture(file, m);
  if (width !== set.width || height !== set.height) throw new Error(`${file}: expected ${set.width}x${set.height}, got ${width}x${height}`);
  return { width: m.input.width, height: m.input.height, format: m.input.color === "bgr" ? "bgr24" : "rgb24", data: pixels };
}

export interface Det {
  cls: number;
  score: number;
  box: [number, number, number, number];
}

function iou(a: readonly number[], b: readonly number[]): number {
  const ix = Math.max(0, Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!));
  const iy = Math.max(0, Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!));
  const inter = ix * iy;
  const ua = (a[2]! - a[0]!) * (a[3]! - a[1]!) + (b[2]! - b[0]!) * (b[3]! - b[1]!) - inter;
  return ua > 0 ? inter / ua : 0;
}

/**
 * Batch item b of a run -> detections in picture pixels (not clipped: the labels are not),
 * through the runtime's decoder and class-wise NMS, best first.
 */
export function detectionsOf(
  result: ort.InferenceSession.ReturnType,
  b: number,
  m: DetectionManifest,
  picture: { width: number; height: number },
  scoreThr: number,
  nmsIou: number,
): Det[] {
  const raw = decode(m.output, roleTensors(m.output, result), b, {
    inputWidth: m.input.width,
    inputHeight: m.input.height,
    numClasses: m.labels.length,
    scoreThreshold: scoreThr,
  });
  const lb = fitLetterbox(picture.width, picture.height, m.input.width, m.input.height, m.input.letterbox === "center");
  const px = (v: number, pad: number) => (v - pad) / lb.scale;
  return nms(raw, nmsIou).map((d) => ({
    cls: d.class_id,
    score: d.score,
    box: [px(d.x1, lb.pad_x), px(d.y1, lb.pad_y), px(d.x2, lb.pad_x), px(d.y2, lb.pad_y)],
  }));
}

/** VOC all-point AP@iouThr per class and their mean over classes with ground truth. */
export function meanAP(dets: Det[][], labels: Label[][], nc: number, iouThr = 0.5): { map: number; ap: (number | null)[] } {
  const ap: (number | null)[] = [];
  for (let c = 0; c < nc; c++) {
    const recs: [number, number][] = [];
    let npos = 0;
    dets.forEach((ds, k) => {
      const gts = labels[k]!.filter((l) => l[0] === c);
      const real = gts.filter((l) => !l[5]).map((l) => l.slice(1, 5));
      const ign = gts.filter((l) => l[5]).map((l) => l.slice(1, 5));
      npos += real.length;
      const used = new Array<boolean>(real.length).fill(false);
      for (const d of ds) {
        if (d.cls !== c) continue;
        if (real.length > 0) {
          let j = 0;
          let bi = -1;
          real.forEach((g, gi) => {
            const v = iou(d.box, g);
            if (v > bi) {
              bi = v;
              j = gi;
            }
          });
          if (bi >= iouThr) {
            recs.push([d.score, used[j] ? 0 : 1]);
            used[j] = true;
            continue;
          }
        }
        if (ign.some((g) => iou(d.box, g) >= iouThr)) continue;
        recs.push([d.score, 0]);
      }
    });
    if (npos === 0) {
      ap.push(null);
      continue;
    }
    recs.sort((p, q) => q[0] - p[0]);
    const mrec = [0];
    const mpre = [0];
    let tp = 0;
    let fp = 0;
    for (const [, t] of recs) {
      tp += t;
      fp += 1 - t;
      mrec.push(tp / npos);
      mpre.push(tp / (tp + fp));
    }
    mrec.push(1);
    mpre.push(0);
    for (let i = mpre.length - 2; i >= 0; i--) mpre[i] = Math.max(mpre[i]!, mpre[i + 1]!);
    let sum = 0;
    for (let i = 0; i + 1 < mrec.length; i++) if (mrec[i + 1] !== mrec[i]) sum += (mrec[i + 1]! - mrec[i]!) * mpre[i + 1]!;
    ap.push(sum);
  }
  const present = ap.filter((v): v is number => v !== null);
  return { map: present.reduce((s, v) => s + v, 0) / Math.max(1, present.length), ap };
}

/** Runs a model file (a variant of `m`) over the whole held-out set in batches and scores it. */
export async function evaluateDetector(
  file: string,
  m: DetectionManifest,
  set: HeldoutSet,
  opts: { batch?: number; threads?: number } = {},
): Promise<{ map: number; ap: (number | null)[] }> {
  const session = await ort.InferenceSession.create(file, { intraOpNumThreads: opts.threads ?? 1, graphOptimizationLevel: "all" });
  const meta = session.inputMetadata.find((i) => i.name === m.input.name);
  const first = meta?.isTensor ? meta.shape[0] : undefined;
  const batch = typeof first === "number" && first > 0 ? 1 : (opts.batch ?? 8);
  const buffer = new TensorBuffer(m.input, batch);
  const dets: Det[][] = [];
  try {
    for (let s = 0; s < set.images.length; s += batch) {
      const k = Math.min(batch, set.images.length - s);
      for (let b = 0; b < k; b++) buffer.fill(b, await heldoutFrame(set, s + b, m));
      const out = await session.run({ [m.input.name]: buffer.tensor(k) });
      for (let b = 0; b < k; b++) dets.push(detectionsOf(out, b, m, set, 0.001, m.thresholds.nms_iou));
    }
  } finally {
    await session.release();
  }
  return meanAP(dets, set.images, m.labels.length);
}
