/**
 * Static INT8 quantization of an ONNX graph in QDQ form: which tensors to quantize, activation
 * ranges from calibration histograms, and the rewrite that puts QuantizeLinear/DequantizeLinear
 * pairs on them and int8 weights (per output channel, symmetric) before every Conv, MatMul and Gemm.
 *
 * Two activation schemes: "s8", int8 with zero point 0 everywhere (the form TensorRT imports), and
 * "u8", uint8 with a zero point per tensor (onnxruntime's CPU provider fuses that with int8
 * weights into QLinearConv and its other QLinear kernels).
 */
import { attr, makeNode } from "./graph.js";
import { makeTensor, tensorFloat32 } from "./tensor.js";
import { DataType, type OnnxModel, type OnnxNode, type OnnxTensor } from "./types.js";

export type ActivationScheme = "u8" | "s8";

export interface TensorRange {
  min: number;
  max: number;
}

/** The operators whose weights are quantized and whose activation inputs always get a QDQ pair. */
export const MAC_OPS = new Set(["Conv", "MatMul", "Gemm"]);

/** Operators kept in int8 between the MAC operators (onnxruntime has QLinear kernels or drops their QDQ). */
const QDQ_OPS = new Set([
  ...MAC_OPS,
  "Sigmoid",
  "Mul",
  "Add",
  "Concat",
  "Resize",
  "MaxPool",
  "AveragePool",
  "GlobalAveragePool",
  "Relu",
  "LeakyRelu",
  "Clip",
  "Slice",
  "Reshape",
  "Transpose",
  "Flatten",
]);

/** Operators that only move values: their output takes their input's scale and zero point (onnxruntime drops the pair then). */
const SHARE_OPS = new Set(["MaxPool", "Resize", "Slice", "Reshape", "Transpose", "Flatten"]);

/** Of these, only input 0 is data; the others are shapes, scales or indices. */
const FIRST_INPUT_ONLY = new Set(["Resize", "Slice", "Reshape", "Clip", "Conv", "Gemm"]);

/** Operators whose schema changed between opsets 11 and 13 in a way a simple opset raise would break. */
const CHANGED_BY_OPSET_13 = new Set(["Split", "Squeeze", "Unsqueeze", "ReduceSum", "Softmax", "LogSoftmax", "Hardmax"]);

/**
 * The activation tensors to quantize: the data inputs of every Conv/MatMul/Gemm, and the inputs and
 * outputs of the operators in between (those still followed by a MAC operator). The tail after the
 * last MAC operator (the detection head's decoding) stays in float.
 */
export function activationTensors(model: OnnxModel): string[] {
  const nodes = model.graph.node;
  const constant = new Set(model.graph.initializer.map((t) => t.name ?? ""));
  for (const n of nodes) if (n.opType === "Constant") for (const o of n.output) constant.add(o);
  const consumers = new Map<string, number[]>();
  nodes.forEach((n, i) => {
    for (const x of n.input) if (x !== "") consumers.set(x, [...(consumers.get(x) ?? []), i]);
  });
  // Whether a node has a MAC operator after it (nodes are in topological order).
  const body = new Array<boolean>(nodes.length).fill(false);
  for (let i = nodes.length - 1; i >= 0; i--) {
    body[i] = nodes[i]!.output.some((o) => (consumers.get(o) ?? []).some((c) => MAC_OPS.has(nodes[c]!.opType ?? "") || body[c]));
  }
  const out: string[] = [];
  const seen = new Set<string>();
  const add = (t: string): void => {
    if (t === "" || constant.has(t) || seen.has(t)) return;
    seen.add(t);
    out.push(t);
  };
  nodes.forEach((n, i) => {
    const op = n.opType ?? "";
    if (!QDQ_OPS.has(op)) return;
    const mac = MAC_OPS.has(op);
    if (!mac && !body[i]) return;
    const inputs = FIRST_INPUT_ONLY.has(op) ? n.input.slice(0, 1) : op === "MatMul" ? n.input.slice(0, 2) : n.input;
    for (const x of inputs) add(x);
    if (body[i]) for (const o of n.output) add(o);
  });
  return out;
}

/** A histogram of one tensor's values over the calibration frames, on a range fixed by a first pass. */
export class TensorHistogram {
  readonly counts: Float64Array;
  total = 0;

  constructor(
    readonly min: number,
    readonly max: number,
    readonly bins = 2048,
  ) {
    this.counts = new Float64Array(bins);
  }

  add(values: Float32Array): void {
    const span = this.max - this.min;
    const k = span > 0 ? this.bins / span : 0;
    const last = this.bins - 1;
    for (let i = 0; i < values.length; i++) {
      let b = Math.floor((values[i]! - this.min) * k);
      if (b < 0) b = 0;
      else if (b > last) b = last;
      this.counts[b]!++;
    }
    this.total += values.length;
  }

  /** The median of the values' magnitudes (bin centres). */
  medianAbs(): number {
    const width = (this.max - this.min) / this.bins;
    const bins = [...this.counts.keys()].map((b) => [Math.abs(this.min + (b + 0.5) * width), this.counts[b]!] as const);
    bins.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let acc = 0;
    for (const [x, n] of bins) {
      acc += n;
      if (acc >= this.total / 2) return x;
    }
    return 0;
  }

  /**
   * The range that keeps `percentile` % of the values, cutting the rest equally off both tails
   * (the bin edges, so the range always holds the kept values).
   */
  percentileRange(percentile: number): TensorRange {
    if (this.total === 0 || this.max <= this.min) return { min: this.min, max: this.max };
    const cut = (this.total * (100 - percentile)) / 200;
    const width = (this.max - this.min) / this.bins;
    let lo = 0;
    for (let acc = 0; lo < this.bins - 1; lo++) {
      acc += this.counts[lo]!;
      if (acc > cut) break;
    }
    let hi = this.bins - 1;
    for (let acc = 0; hi > 0; hi--) {
      acc += this.counts[hi]!;
      if (acc > cut) break;
    }
    if (hi < lo) hi = lo;
    return { min: this.min + lo * width, max: this.min + (hi + 1) * width };
  }
}

/** Percentiles the MSE search tries (100: the extremes). */
const MSE_PERCENTILES = [90, 95, 98, 99, 99.5, 99.8, 99.9, 99.95, 99.99, 99.999, 100];

/**
 * The range whose quantization (with `scheme`'s scale and zero point) has the least mean squared
 * error over the histogram: rounding error inside the range, clipping error outside it. Deterministic:
 * the first of equal candidates wins.
 */
export function mseRange(h: TensorHistogram, scheme: ActivationScheme): TensorRange {
  let best = h.percentileRange(100);
  let bestErr = Infinity;
  const width = (h.max - h.min) / h.bins;
  for (const p of MSE_PERCENTILES) {
    const r = h.percentileRange(p);
    const { scale, zeroPoint } = activationParams(r, scheme);
    const qmin = scheme === "s8" ? -127 : 0;
    const qmax = scheme === "s8" ? 127 : 255;
    const lo = (qmin - zeroPoint) * scale;
    const hi = (qmax - zeroPoint) * scale;
    let err = 0;
    for (let b = 0; b < h.bins; b++) {
      const c = h.counts[b]!;
      if (c === 0) continue;
      const x = h.min + (b + 0.5) * width;
      const d = x < lo ? lo - x : x > hi ? x - hi : 0;
      err += c * (d * d + (scale * scale) / 12);
    }
    if (err < bestErr) {
      bestErr = err;
      best = r;
    }
  }
  return best;
}

export interface QuantParams {
  scale: number;
  zeroPoint: number;
}

/** Scale and zero point for an activation range. */
export function activationParams(r: TensorRange, scheme: ActivationScheme): QuantParams {
  if (scheme === "s8") {
    const a = Math.max(Math.abs(r.min), Math.abs(r.max));
    return { scale: a > 0 ? a / 127 : 1, zeroPoint: 0 };
  }
  const lo = Math.min(r.min, 0);
  const hi = Math.max(r.max, 0);
  const scale = hi > lo ? (hi - lo) / 255 : 1;
  return { scale, zeroPoint: Math.min(255, Math.max(0, Math.round(-lo / scale))) };
}

export interface QdqOptions {
  scheme: ActivationScheme;
  /** Activation ranges by tensor name; a tensor without one (not a float tensor) stays unquantized. */
  ranges: ReadonlyMap<string, TensorRange>;
  /** Activations left in float (too coarsely resolved by one scale); a MAC operator reading one stays float too. */
  keepFloat?: ReadonlySet<string>;
}

export interface QdqSummary {
  activations: number;
  weights: number;
  macNodes: number;
  /** MAC nodes whose weights or input could not be quantized, with why. */
  skipped: string[];
  /** MAC nodes left in float because their input is in `keepFloat`. */
  float: string[];
}

/**
 * Rewrites `model` (a copy is returned) into QDQ form. The model must be float32 with BN already
 * folded (onnxruntime's "basic" optimized model is). Raises the default-domain opset to 13 (per-axis
 * DequantizeLinear), refusing a graph with an operator whose schema that would change.
 */
export function quantizeQdq(model: OnnxModel, o: QdqOptions): { model: OnnxModel; summary: QdqSummary } {
  const g = model.graph;
  const opset = model.opsetImport.find((x) => (x.domain ?? "") === "" || x.domain === "ai.onnx");
  if (!opset) throw new Error("the model imports no default-domain opset");
  if ((opset.version ?? 0) < 13) {
    const changed = [...new Set(g.node.map((n) => n.opType ?? "").filter((t) => CHANGED_BY_OPSET_13.has(t)))];
    if (changed.length > 0)
      throw new Error(
        `the model is opset ${opset.version ?? "?"} and uses ${changed.join(", ")}, whose schema changes at opset 13 (needed for per-channel weights): export it at opset 13 or later`,
      );
  }
  const inits = new Map(g.initializer.map((t) => [t.name ?? "", t]));
  const newInits: OnnxTensor[] = [];
  const summary: QdqSummary = { activations: 0, weights: 0, macNodes: 0, skipped: [], float: [] };

  // Activation parameters, with the value-moving operators passing theirs on.
  const params = new Map<string, QuantParams>();
  for (const [t, r] of o.ranges) if (!o.keepFloat?.has(t)) params.set(t, activationParams(r, o.scheme));
  for (const n of g.node) {
    if (!SHARE_OPS.has(n.opType ?? "")) continue;
    const p = params.get(n.input[0] ?? "");
    const out = n.output[0];
    if (p && out !== undefined && params.has(out)) params.set(out, p);
  }
  const zpType = o.scheme === "s8" ? DataType.INT8 : DataType.UINT8;
  const zpArray = (v: number) => (o.scheme === "s8" ? new Int8Array([v]) : new Uint8Array([v]));

  const qdqNodes = (t: string): OnnxNode[] => {
    const p = params.get(t)!;
    newInits.push(makeTensor(`${t}_scale`, DataType.FLOAT, [], new Float32Array([p.scale])));
    newInits.push(makeTensor(`${t}_zero_point`, zpType, [], zpArray(p.zeroPoint)));
    summary.activations++;
    return [
      makeNode("QuantizeLinear", [t, `${t}_scale`, `${t}_zero_point`], [`${t}_quantized`], `${t}_QuantizeLinear`),
      makeNode("DequantizeLinear", [`${t}_quantized`, `${t}_scale`, `${t}_zero_point`], [`${t}_dequantized`], `${t}_DequantizeLinear`),
    ];
  };

  // Weights: int8, symmetric, per output channel for Conv (axis 0), per tensor for MatMul and Gemm.
  const weightNodes: OnnxNode[] = [];
  const renamed = new Map<OnnxNode, string[]>();
  const usedWeights = new Set<string>();
  for (const n of g.node) {
    const op = n.opType ?? "";
    if (!MAC_OPS.has(op)) continue;
    summary.macNodes++;
    const inputs = [...n.input];
    const x = inputs[0]!;
    if (o.keepFloat?.has(x)) {
      summary.float.push(n.name ?? op);
      continue;
    }
    if (!params.has(x)) {
      summary.skipped.push(`${n.name ?? op}: input ${x} has no calibrated range`);
      continue;
    }
    const wName = inputs[1]!;
    const w = inits.get(wName);
    if (w) {
      const perChannel = op === "Conv";
      const values = tensorFloat32(w);
      const channels = perChannel ? w.dims[0]! : 1;
      const per = values.length / channels;
      const scales = new Float32Array(channels);
      const q = new Int8Array(values.length);
      for (let c = 0; c < channels; c++) {
        let a = 0;
        for (let i = c * per; i < (c + 1) * per; i++) a = Math.max(a, Math.abs(values[i]!));
        const s = a > 0 ? a / 127 : 1;
        scales[c] = s;
        for (let i = c * per; i < (c + 1) * per; i++) q[i] = Math.max(-127, Math.min(127, Math.round(values[i]! / s)));
      }
      const dims = perChannel ? [channels] : [];
      const base = `${wName}_${n.name ?? op}`;
      newInits.push(makeTensor(`${base}_quantized`, DataType.INT8, w.dims, q));
      newInits.push(makeTensor(`${base}_scale`, DataType.FLOAT, dims, scales));
      newInits.push(makeTensor(`${base}_zero_point`, DataType.INT8, dims, new Int8Array(channels)));
      weightNodes.push(
        makeNode(
          "DequantizeLinear",
          [`${base}_quantized`, `${base}_scale`, `${base}_zero_point`],
          [`${base}_dequantized`],
          `${base}_DequantizeLinear`,
          perChannel ? [attr.int("axis", 0)] : [],
        ),
      );
      inputs[1] = `${base}_dequantized`;
      usedWeights.add(wName);
      summary.weights++;
      // Conv bias: int32 at the input scale times each channel's weight scale, as onnxruntime's fused kernels want it.
      const bName = inputs[2];
      const b = bName !== undefined && bName !== "" ? inits.get(bName) : undefined;
      if (op === "Conv" && b) {
        const bv = tensorFloat32(b);
        const sx = params.get(x)!.scale;
        const bs = new Float32Array(bv.length);
        const bq = new Int32Array(bv.length);
        for (let c = 0; c < bv.length; c++) {
          bs[c] = sx * scales[c]!;
          bq[c] = Math.round(bv[c]! / bs[c]!);
        }
        newInits.push(makeTensor(`${bName}_${n.name ?? op}_quantized`, DataType.INT32, b.dims, bq));
        newInits.push(makeTensor(`${bName}_${n.name ?? op}_scale`, DataType.FLOAT, [bv.length], bs));
        newInits.push(makeTensor(`${bName}_${n.name ?? op}_zero_point`, DataType.INT32, [bv.length], new Int32Array(bv.length)));
        weightNodes.push(
          makeNode(
            "DequantizeLinear",
            [`${bName}_${n.name ?? op}_quantized`, `${bName}_${n.name ?? op}_scale`, `${bName}_${n.name ?? op}_zero_point`],
            [`${bName}_${n.name ?? op}_dequantized`],
            `${bName}_${n.name ?? op}_DequantizeLinear`,
            [attr.int("axis", 0)],
          ),
        );
        inputs[2] = `${bName}_${n.name ?? op}_dequantized`;
        usedWeights.add(bName!);
      }
    } else if (!params.has(wName)) {
      summary.skipped.push(`${n.name ?? op}: weight ${wName} is neither an initializer nor calibrated`);
    }
    renamed.set(n, inputs);
  }

  // Every quantized activation: Q and DQ right after it is made; its consumers read the DQ output.
  const quantized = new Set([...o.ranges.keys()].filter((t) => params.has(t)));
  const rewire = (n: OnnxNode): OnnxNode => {
    const inputs = (renamed.get(n) ?? n.input).map((x) => (quantized.has(x) ? `${x}_dequantized` : x));
    return { ...n, input: inputs };
  };
  const nodes: OnnxNode[] = [...weightNodes];
  for (const v of g.input) if (quantized.has(v.name ?? "")) nodes.push(...qdqNodes(v.name!));
  for (const n of g.node) {
    nodes.push(rewire(n));
    for (const out of n.output) if (quantized.has(out)) nodes.push(...qdqNodes(out));
  }
  const initializer = [...g.initializer.filter((t) => !usedWeights.has(t.name ?? "") || isStillUsed(t.name ?? "", nodes)), ...newInits];
  const opsetImport = model.opsetImport.map((x) => (x === opset && (x.version ?? 0) < 13 ? { ...x, version: 13 } : x));
  return {
    model: { ...model, opsetImport, graph: { ...g, node: nodes, initializer, valueInfo: [] } },
    summary,
  };
}

function isStillUsed(name: string, nodes: readonly OnnxNode[]): boolean {
  return nodes.some((n) => n.input.includes(name));
}
