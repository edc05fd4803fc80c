/**
 * Scores a yolov8-layout detector on a held-out set of JPEGs with exact labels: mAP@0.5 (VOC
 * all-point AP per class, mean over classes), the same rule as models/vehicles/build/common.py.
 * Used by models/eval/evalDetector.ts (the results table) and test/models.test.ts.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import * as ort from "onnxruntime-node";
import sharp from "sharp";

/** The manifest fields scoring depends on. */
export interface DetectorManifest {
  input: { name: string; width: number; height: number; color: "rgb" | "bgr"; scale: number; mean: number[]; std: number[]; letterbox_pad: number };
  output: { name: string; decoder: string; strides?: number[] };
  labels: string[];
  thresholds: { score: number; nms_iou: number };
}

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

/** Decoded RGB bytes of held-out image i. */
export async function heldoutPixels(set: HeldoutSet, i: number): Promise<Buffer> {
  const file = path.join(set.dir, `${String(i).padStart(4, "0")}.jpg`);
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  if (info.width !== set.width || info.height !== set.height || info.channels !== 3) {
    throw new Error(`${file}: expected ${set.width}x${set.height} RGB, got ${info.width}x${info.height}x${info.channels}`);
  }
  return data;
}

/**
 * Writes an RGB picture (at most the input size) into a [3, H, W] slot at `offset`: top-left
 * letterbox, padding value letterbox_pad, then (v * scale - mean) / std per channel.
 */
export function writeInput(out: Float32Array, offset: number, rgb: Uint8Array, w: number, h: number, m: DetectorManifest): void {
  const W = m.input.width;
  const H = m.input.height;
  const order = m.input.color === "rgb" ? [0, 1, 2] : [2, 1, 0];
  for (let c = 0; c < 3; c++) {
    const src = order[c]!;
    const mean = m.input.mean[c]!;
    const std = m.input.std[c]!;
    const pad = (m.input.letterbox_pad * m.input.scale - mean) / std;
    const base = offset + c * W * H;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        out[base + y * W + x] = y < h && x < w ? (rgb[(y * w + x) * 3 + src]! * m.input.scale - mean) / std : pad;
      }
    }
  }
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

/** yolov8 output [B, 4 + C, N] of batch item b -> class-wise NMS'd detections, best first. */
export function decodeYolov8(out: Float32Array, dims: readonly number[], b: number, scoreThr: number, nmsIou: number, maxDet = 300): Det[] {
  const ch = dims[1]!;
  const n = dims[2]!;
  const nc = ch - 4;
  const base = b * ch * n;
  const cand: Det[] = [];
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bs = -1;
    for (let c = 0; c < nc; c++) {
      const s = out[base + (4 + c) * n + i]!;
      if (s > bs) {
        bs = s;
        best = c;
      }
    }
    if (bs < scoreThr) continue;
    const cx = out[base + i]!;
    const cy = out[base + n + i]!;
    const w = out[base + 2 * n + i]!;
    const h = out[base + 3 * n + i]!;
    cand.push({ cls: best, score: bs, box: [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2] });
  }
  cand.sort((p, q) => q.score - p.score);
  const kept: Det[] = [];
  for (const d of cand) {
    if (kept.some((k) => k.cls === d.cls && iou(k.box, d.box) > nmsIou)) continue;
    kept.push(d);
    if (kept.length >= maxDet) break;
  }
  return kept;
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

/** Runs a model over the whole held-out set in batches and scores it. */
export async function evaluateDetector(
  file: string,
  m: DetectorManifest,
  set: HeldoutSet,
  opts: { batch?: number; threads?: number } = {},
): Promise<{ map: number; ap: (number | null)[] }> {
  const session = await ort.InferenceSession.create(file, { intraOpNumThreads: opts.threads ?? 1, graphOptimizationLevel: "all" });
  const batch = opts.batch ?? 8;
  const per = 3 * m.input.width * m.input.height;
  const dets: Det[][] = [];
  try {
    for (let s = 0; s < set.images.length; s += batch) {
      const k = Math.min(batch, set.images.length - s);
      const data = new Float32Array(k * per);
      for (let b = 0; b < k; b++) writeInput(data, b * per, await heldoutPixels(set, s + b), set.width, set.height, m);
      const out = await session.run({ [m.input.name]: new ort.Tensor("float32", data, [k, 3, m.input.height, m.input.width]) });
      const t = out[m.output.name]!;
      for (let b = 0; b < k; b++) dets.push(decodeYolov8(t.data as Float32Array, t.dims, b, 0.001, m.thresholds.nms_iou));
    }
  } finally {
    await session.release();
  }
  return meanAP(dets, set.images, m.labels.length);
}
