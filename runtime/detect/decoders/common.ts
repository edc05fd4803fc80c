import { z } from "zod";
import type { Detection } from "../types.js";

/** One output of a run: values in row-major order (int64 outputs already turned into numbers) and the shape. */
export interface Tensor {
  readonly data: ArrayLike<number>;
  readonly dims: readonly number[];
}

/** A declared output of the model graph: a dimension is a number, or a name / -1 when dynamic. */
export interface DeclaredOutput {
  readonly name: string;
  readonly shape: readonly (number | string)[];
  /** ONNX element type name: "float32", "int64", … */
  readonly type?: string;
}

/** What every decoder is told besides the outputs. */
export interface DecodeOptions {
  inputWidth: number;
  inputHeight: number;
  numClasses: number;
  scoreThreshold: number;
  /** Classes to keep (index = class id); undefined keeps all. */
  allowed?: Uint8Array;
}

/** The input geometry and label count a manifest declares, which outputs are checked against. */
export interface Geometry {
  inputWidth: number;
  inputHeight: number;
  numClasses: number;
}

/** A decoder's outputs by role; a per-stride role holds one tensor per stride, in stride order. */
export type RoleTensors = Readonly<Record<string, readonly Tensor[]>>;
export type RoleOutputs = Readonly<Record<string, readonly DeclaredOutput[]>>;

export interface Role {
  name: string;
  /** One tensor per stride (a GFL head's separate outputs). */
  perStride?: boolean;
  /** The model may leave it out. */
  optional?: boolean;
}

/** What a decoder found in a graph's outputs: the manifest's `output` object and what it implies. */
export interface Recognised {
  output: Record<string, unknown>;
  /** Classes the outputs imply; undefined when the layout carries class ids only. */
  numClasses?: number;
  /** How the recogniser decided, for the user. */
  reason: string;
}

export interface GraphFacts {
  inputWidth: number;
  inputHeight: number;
  outputs: readonly DeclaredOutput[];
  /** Operator types in the graph (Exp tells a decoded YOLOX head from an undecoded one). */
  ops: ReadonlySet<string>;
  /** Largest stride, when the model's metadata says (Ultralytics' `stride`). */
  maxStride?: number;
}

/**
 * One output layout. A decoder owns what its layout means: which outputs it reads (roles), its
 * manifest keys (`schema`), how declared shapes must agree with the manifest (`check`), how to
 * find it in a graph (`recognise`) and how to turn outputs into boxes in model-input pixels.
 */
export interface DetectionDecoder<O extends BaseOutput = BaseOutput> {
  readonly name: string;
  /** One line: the layout and the exporters that make it. */
  readonly layout: string;
  readonly roles: readonly Role[];
  /** The manifest's `output` object for this decoder (`decoder` and the tensor names included). */
  readonly schema: z.ZodType<O>;
  /** The graph already ran NMS: the pipeline does not suppress again within a class. */
  readonly nmsInGraph?: boolean;
  /** The grid is sized with floor: a stride that does not divide the input loses the last cells. */
  readonly stridesDivideInput?: boolean;
  /** Every way the declared outputs disagree with the manifest, in words. Dynamic dimensions pass. */
  check(outputs: RoleOutputs, g: Geometry, o: O): string[];
  recognise(facts: GraphFacts): Recognised | undefined;
  decode(tensors: RoleTensors, batchIndex: number, d: DecodeOptions, o: O): Detection[];
}

/** Keys every decoder's `output` object has. */
export const BASE_OUTPUT = {
  name: z.string().min(1).optional().describe("The output tensor (decoders that read one output)"),
  tensors: z
    .record(z.string(), z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]))
    .optional()
    .describe("Output tensors by role (decoders that read several): a name, or one name per stride"),
};

export interface BaseOutput {
  decoder: string;
  name?: string | undefined;
  tensors?: Record<string, string | string[]> | undefined;
}

export const STRIDES = z.array(z.number().int().min(1).max(256)).min(1).max(8);
export const SCORE_ACTIVATION = z
  .enum(["none", "sigmoid"])
  .default("none")
  .describe('"sigmoid" when the graph leaves class scores as logits; "none" when they are already 0..1');

export const shapeText = (s: readonly (number | string)[]) => `[${s.join(", ")}]`;

/** A dimension as a number, or undefined when it is dynamic. */
export function fixed(d: number | string | undefined): number | undefined {
  return typeof d === "number" && d >= 0 ? d : undefined;
}

/**
 * Anchor cells of a multi-stride head, in the order exporters flatten them: stride by stride,
 * row by row. `round` is how the feature map size follows from the input (YOLO: floor;
 * NanoDet: ceil). Per cell: x, y (cell units) and the stride.
 */
const GRIDS = new Map<string, Float32Array>();
export function anchorGrid(width: number, height: number, strides: readonly number[], round: "floor" | "ceil" = "floor"): Float32Array {
  const key = `${width}x${height}:${strides.join(",")}:${round}`;
  let g = GRIDS.get(key);
  if (g) return g;
  const cells: number[] = [];
  for (const s of strides) {
    const gw = Math[round](width / s);
    const gh = Math[round](height / s);
    for (let y = 0; y < gh; y++) for (let x = 0; x < gw; x++) cells.push(x, y, s);
  }
  g = Float32Array.from(cells);
  GRIDS.set(key, g);
  return g;
}

export function gridCells(width: number, height: number, stride: number, round: "floor" | "ceil" = "floor"): number {
  return Math[round](width / stride) * Math[round](height / stride);
}

export function gridCount(width: number, height: number, strides: readonly number[], round: "floor" | "ceil" = "floor"): number {
  return strides.reduce((n, s) => n + gridCells(width, height, s, round), 0);
}

/** Stride sets exporters use, tried in order when a graph does not say. */
export const COMMON_STRIDES: readonly (readonly number[])[] = [
  [8, 16, 32],
  [8, 16, 32, 64],
  [4, 8, 16, 32],
];

/** The stride set whose grid gives `n` anchors (× per cell), preferring one ending at `maxStride`. */
export function stridesFor(
  n: number,
  width: number,
  height: number,
  opts: { perCell?: number; round?: "floor" | "ceil"; maxStride?: number; sets?: readonly (readonly number[])[] } = {},
): number[] | undefined {
  const sets = [...(opts.sets ?? COMMON_STRIDES)].sort(
    (a, b) => Number(b[b.length - 1] === opts.maxStride) - Number(a[a.length - 1] === opts.maxStride),
  );
  const found = sets.find((s) => gridCount(width, height, s, opts.round) * (opts.perCell ?? 1) === n);
  return found ? [...found] : undefined;
}

export const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/**
 * The best allowed class of one box: scores at data[offset + c * step] for c in 0..C-1, each
 * times `factor` (objectness). Returns -1 when none reaches the threshold.
 */
export function bestClass(
  data: ArrayLike<number>,
  offset: number,
  step: number,
  d: DecodeOptions,
  factor = 1,
  activate = false,
): { cls: number; score: number } {
  let best = -1;
  let bestScore = d.scoreThreshold;
  for (let c = 0; c < d.numClasses; c++) {
    const raw = data[offset + c * step]!;
    const s = (activate ? sigmoid(raw) : raw) * factor;
    if (s >= bestScore && (d.allowed === undefined || d.allowed[c] === 1) && (best < 0 || s > bestScore)) {
      best = c;
      bestScore = s;
    }
  }
  return { cls: best, score: bestScore };
}

export function pushCentre(dets: Detection[], cx: number, cy: number, w: number, h: number, score: number, cls: number): void {
  dets.push({ x1: cx - w / 2, y1: cy - h / 2, x2: cx + w / 2, y2: cy + h / 2, score, class_id: cls });
}

/** The one tensor of a role (decoders reading one output per role). */
export function one(t: RoleTensors, role: string): Tensor {
  const list = t[role];
  if (!list || list.length !== 1) throw new Error(`output role "${role}" needs one tensor, got ${list?.length ?? 0}`);
  return list[0]!;
}

export function oneDeclared(o: RoleOutputs, role: string): DeclaredOutput | undefined {
  return o[role]?.[0];
}

/** Checks a declared rank and returns its dimensions (numbers, or undefined when dynamic). */
export function dimsOf(out: DeclaredOutput, rank: number, problems: string[], what: string): (number | undefined)[] | undefined {
  if (out.shape.length !== rank) {
    problems.push(`output "${out.name}" is ${shapeText(out.shape)}; ${what} needs ${rank} dimensions`);
    return undefined;
  }
  return out.shape.map(fixed);
}

/** Rank-3 tensors at run time: the shape the decode loops index by. */
export function runDims(t: Tensor, rank: number, decoder: string, role = "output"): number[] {
  if (t.dims.length !== rank) throw new Error(`${decoder} ${role} must have ${rank} dimensions, got ${shapeText(t.dims)}`);
  return [...t.dims];
}

/** "the model has 84 values per box = 4 + 80 classes; the manifest lists 5 labels" and its kin. */
export function perBoxProblem(actual: number, fixedPart: string, fixedCount: number, numClasses: number): string | undefined {
  if (actual === fixedCount + numClasses) return undefined;
  const classes = actual - fixedCount;
  return `the model has ${actual} values per box = ${fixedPart} + ${classes} ${classes === 1 ? "class" : "classes"}; the manifest lists ${numClasses} ${numClasses === 1 ? "label" : "labels"}`;
}

/** "the model has 3549 anchors; strides [8, 16, 32] on 416x416 give 3549". */
export function anchorProblem(
  actual: number,
  strides: readonly number[],
  g: Geometry,
  perCell = 1,
  round: "floor" | "ceil" = "floor",
): string | undefined {
  const expect = gridCount(g.inputWidth, g.inputHeight, strides, round) * perCell;
  if (actual === expect) return undefined;
  return `the model has ${actual} anchors; strides [${strides.join(", ")}] on ${g.inputWidth}x${g.inputHeight}${perCell > 1 ? ` with ${perCell} anchors per cell` : ""} give ${expect}`;
}

/**
 * `[B, N, 5 + C]` rows of box, objectness and class scores (YOLOv5, YOLOX): score = objectness ×
 * class score; `box` turns row i's first four values into cx, cy, w, h in input pixels.
 */
export function decodeObjectnessRows(
  out: Tensor,
  b: number,
  d: DecodeOptions,
  decoder: string,
  box: (data: ArrayLike<number>, row: number, i: number) => [number, number, number, number],
): Detection[] {
  const [, n, width] = runDims(out, 3, decoder);
  if (width !== 5 + d.numClasses) throw new Error(perBoxProblem(width!, "4 + 1 objectness", 5, d.numClasses));
  const data = out.data;
  const dets: Detection[] = [];
  for (let i = 0; i < n!; i++) {
    const row = (b * n! + i) * width;
    const obj = data[row + 4]!;
    // Class scores are at most 1, so an objectness below the threshold cannot pass.
    if (obj < d.scoreThreshold) continue;
    const { cls, score } = bestClass(data, row + 5, 1, d, obj);
    if (cls < 0) continue;
    const [cx, cy, w, h] = box(data, row, i);
    pushCentre(dets, cx, cy, w, h, score, cls);
  }
  return dets;
}

/** Checks `[B, N, 5 + C]` against the labels and, with strides, the anchor count. */
export function checkObjectnessRows(
  out: DeclaredOutput | undefined,
  g: Geometry,
  what: string,
  strides: readonly number[] | undefined,
  perCell: number,
): string[] {
  if (!out) return [];
  const problems: string[] = [];
  const dims = dimsOf(out, 3, problems, what);
  if (!dims) return problems;
  const [, n, width] = dims;
  if (width !== undefined) {
    const p = perBoxProblem(width, "4 + 1 objectness", 5, g.numClasses);
    if (p) problems.push(p);
  }
  if (n !== undefined && strides) {
    const p = anchorProblem(n, strides, g, perCell);
    if (p) problems.push(p);
  }
  return problems;
}
