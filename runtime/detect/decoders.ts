import type { DecoderName } from "../inference/manifest.js";
import type { Detection } from "./types.js";

/** What a decoder needs besides the raw output. */
export interface DecodeOptions {
  /** Model input size, for the YOLOX grid. */
  inputWidth: number;
  inputHeight: number;
  numClasses: number;
  scoreThreshold: number;
  /** Classes to keep (index = class id); undefined keeps all. */
  allowed?: Uint8Array;
  /** YOLOX strides; default [8, 16, 32]. */
  strides?: readonly number[];
}

type Decoder = (out: Float32Array, dims: readonly number[], batchIndex: number, o: DecodeOptions) => Detection[];

function push(dets: Detection[], cx: number, cy: number, w: number, h: number, score: number, cls: number): void {
  dets.push({ x1: cx - w / 2, y1: cy - h / 2, x2: cx + w / 2, y2: cy + h / 2, score, class_id: cls });
}

function checkDims(dims: readonly number[], expectChannels: number, layout: string, channelAxis: 1 | 2): [number, number] {
  if (dims.length !== 3) throw new Error(`${layout} output must have 3 dimensions, got [${dims.join(", ")}]`);
  const channels = dims[channelAxis]!;
  if (channels !== expectChannels) {
    throw new Error(
      `${layout} output has ${channels} values per box, the manifest's ${expectChannels - (layout === "yolov8" ? 4 : 5)} labels need ${expectChannels}`,
    );
  }
  return [dims[0]!, dims[channelAxis === 1 ? 2 : 1]!];
}

/** YOLOv8 / YOLOv11: [B, 4 + C, N], cx cy w h in input pixels, then C class scores (no objectness). */
export const decodeYolov8: Decoder = (out, dims, b, o) => {
  const [, n] = checkDims(dims, 4 + o.numClasses, "yolov8", 1);
  const stride = (4 + o.numClasses) * n;
  const base = b * stride;
  const dets: Detection[] = [];
  for (let i = 0; i < n; i++) {
    let best = -1;
    let bestScore = o.scoreThreshold;
    for (let c = 0; c < o.numClasses; c++) {
      const s = out[base + (4 + c) * n + i]!;
      if (s >= bestScore && (o.allowed === undefined || o.allowed[c] === 1) && (best < 0 || s > bestScore)) {
        best = c;
        bestScore = s;
      }
    }
    if (best < 0) continue;
    push(dets, out[base + i]!, out[base + n + i]!, out[base + 2 * n + i]!, out[base + 3 * n + i]!, bestScore, best);
  }
  return dets;
};

/** Shared by YOLOX and YOLOv5: [B, N, 5 + C] rows of box, objectness, class scores; score = obj × class. */
function decodeRows(
  out: Float32Array,
  dims: readonly number[],
  b: number,
  o: DecodeOptions,
  layout: string,
  box: (row: number, i: number) => [number, number, number, number],
): Detection[] {
  const [, n] = checkDims(dims, 5 + o.numClasses, layout, 2);
  const width = 5 + o.numClasses;
  const dets: Detection[] = [];
  for (let i = 0; i < n; i++) {
    const row = (b * n + i) * width;
    const obj = out[row + 4]!;
    // Class scores are at most 1, so obj below the threshold cannot pass.
    if (obj < o.scoreThreshold) continue;
    let best = -1;
    let bestScore = o.scoreThreshold;
    for (let c = 0; c < o.numClasses; c++) {
      const s = obj * out[row + 5 + c]!;
      if (s >= bestScore && (o.allowed === undefined || o.allowed[c] === 1) && (best < 0 || s > bestScore)) {
        best = c;
        bestScore = s;
      }
    }
    if (best < 0) continue;
    const [cx, cy, w, h] = box(row, i);
    push(dets, cx, cy, w, h, bestScore, best);
  }
  return dets;
}

/** YOLOv5: [B, N, 5 + C], cx cy w h already in input pixels. */
export const decodeYolov5: Decoder = (out, dims, b, o) =>
  decodeRows(out, dims, b, o, "yolov5", (row) => [out[row]!, out[row + 1]!, out[row + 2]!, out[row + 3]!]);

/** The YOLOX anchor grid, built once per input size and strides: per anchor its cell x, y and stride. */
const GRIDS = new Map<string, Float32Array>();

export function yoloxGrid(width: number, height: number, strides: readonly number[]): Float32Array {
  const key = `${width}x${height}:${strides.join(",")}`;
  let g = GRIDS.get(key);
  if (g) return g;
  const cells: number[] = [];
  for (const s of strides) {
    const gw = Math.floor(width / s);
    const gh = Math.floor(height / s);
    for (let y = 0; y < gh; y++) for (let x = 0; x < gw; x++) cells.push(x, y, s);
  }
  g = Float32Array.from(cells);
  GRIDS.set(key, g);
  return g;
}

/** YOLOX: [B, N, 5 + C], cx cy as offsets in grid cells and w h as log sizes, per stride. */
export const decodeYolox: Decoder = (out, dims, b, o) => {
  const grid = yoloxGrid(o.inputWidth, o.inputHeight, o.strides ?? [8, 16, 32]);
  const n = dims[1];
  if (n !== grid.length / 3) {
    throw new Error(
      `yolox output has ${String(n)} anchors, strides [${(o.strides ?? [8, 16, 32]).join(", ")}] on ${o.inputWidth}x${o.inputHeight} give ${grid.length / 3}`,
    );
  }
  return decodeRows(out, dims, b, o, "yolox", (row, i) => {
    const s = grid[i * 3 + 2]!;
    return [(out[row]! + grid[i * 3]!) * s, (out[row + 1]! + grid[i * 3 + 1]!) * s, Math.exp(out[row + 2]!) * s, Math.exp(out[row + 3]!) * s];
  });
};

export const DECODER_FUNCTIONS: Record<DecoderName, Decoder> = { yolov8: decodeYolov8, yolox: decodeYolox, yolov5: decodeYolov5 };
