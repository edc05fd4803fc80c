import * as ort from "onnxruntime-node";

/** How pixels become tensor values: (pixel * scale - mean[c]) / std[c], channels in `color` order. */
export interface InputSpec {
  width: number;
  height: number;
  color: "rgb" | "bgr";
  scale: number;
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

/** Packed 8-bit pixels at the model's input size, as the camera driver delivers them. */
export interface PixelSource {
  width: number;
  height: number;
  format: "rgb24" | "bgr24";
  data: Uint8Array;
}

/**
 * The model's input tensor, allocated once for up to `maxBatch` frames: each frame is converted
 * in one pass (HWC uint8 → NCHW float32, channel order, normalization) straight into its slot,
 * so the steady state allocates nothing per frame. Tensors for batch sizes 1..maxBatch are views
 * of the same memory.
 */
export class TensorBuffer {
  readonly spec: InputSpec;
  readonly maxBatch: number;
  readonly data: Float32Array;
  readonly #tensors: ort.Tensor[];
  readonly #plane: number;
  readonly #a: Float32Array;
  readonly #b: Float32Array;
  readonly #identity: boolean;
  /** `data` itself, written through `fill` only (so the row cache below stays true). */
  readonly #out: Float32Array;
  /** Per slot and row: the byte value v when the slot's row holds a row of all-v pixels, else -1. */
  readonly #rowValue: Int16Array;
  /** Per slot: whether its rows were written with the colour channels swapped. */
  readonly #swapOf: Int8Array;
  /** One row of bytes, all equal to its first. */
  readonly #uniformRow: Buffer;

  /**
   * `shared`: back the buffer with a SharedArrayBuffer, so a session in a worker thread reads it
   * without a copy (onnxruntime-node itself refuses such tensors on the thread that runs it).
   */
  constructor(spec: InputSpec, maxBatch = 1, options: { shared?: boolean } = {}) {
    if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new Error(`maxBatch must be an integer >= 1, got ${maxBatch}`);
    this.spec = spec;
    this.maxBatch = maxBatch;
    this.#plane = spec.width * spec.height;
    const length = maxBatch * 3 * this.#plane;
    this.data = options.shared ? new Float32Array(new SharedArrayBuffer(length * 4)) : new Float32Array(length);
    this.#tensors = [];
    for (let n = 1; n <= maxBatch; n++) {
      this.#tensors.push(new ort.Tensor("float32", this.data.subarray(0, n * 3 * this.#plane), [n, 3, spec.height, spec.width]));
    }
    // value = pixel * a[c] + b[c]
    this.#a = Float32Array.from(spec.std, (s) => spec.scale / s);
    this.#b = Float32Array.from(spec.mean, (m, c) => -m / spec.std[c]!);
    this.#out = this.data;
    this.#rowValue = new Int16Array(maxBatch * spec.height).fill(-1);
    this.#swapOf = new Int8Array(maxBatch).fill(-1);
    this.#uniformRow = Buffer.alloc(spec.width * 3, 0);
    this.#identity = spec.scale === 1 && spec.mean.every((m) => m === 0) && spec.std.every((s) => s === 1);
  }

  /** The input tensor holding the first `n` slots. */
  tensor(n: number): ort.Tensor {
    const t = this.#tensors[n - 1];
    if (!t) throw new Error(`batch of ${n} is outside 1..${this.maxBatch}`);
    return t;
  }

  /**
   * Converts one frame into slot `slot` (0-based). A row of one grey value (the letterbox's
   * padding, 45 % of a 16:9 picture in a square model) is compared against the row already in
   * the slot and skipped when it holds the same: only rows that changed are converted.
   */
  fill(slot: number, src: PixelSource): void {
    const { width, height } = this.spec;
    if (slot < 0 || slot >= this.maxBatch) throw new Error(`slot ${slot} is outside 0..${this.maxBatch - 1}`);
    if (src.width !== width || src.height !== height) {
      throw new Error(`frame is ${src.width}x${src.height}, the model needs ${width}x${height}`);
    }
    const px = src.data;
    if (px.length < this.#plane * 3) throw new Error(`frame has ${px.length} bytes, ${width}x${height}x3 needs ${this.#plane * 3}`);
    const plane = this.#plane;
    const base = slot * 3 * plane;
    // Output channel k reads source byte offset: same order → k, swapped → 2 - k.
    const swap = (src.format === "rgb24") !== (this.spec.color === "rgb");
    const o0 = base + (swap ? 2 * plane : 0);
    const o1 = base + plane;
    const o2 = base + (swap ? 0 : 2 * plane);
    // Coefficients are in the model's channel order; source byte 0 goes to output channel (swap ? 2 : 0).
    const a0 = this.#a[swap ? 2 : 0]!,
      b0 = this.#b[swap ? 2 : 0]!;
    const a1 = this.#a[1]!,
      b1 = this.#b[1]!;
    const a2 = this.#a[swap ? 0 : 2]!,
      b2 = this.#b[swap ? 0 : 2]!;
    const out = this.#out;
    const rowBytes = width * 3;
    const uniform = this.#uniformRow;
    const rows = this.#rowValue;
    // The channel order is part of what a row's value means: a swap invalidates the slot's rows.
    if (this.#swapOf[slot] !== (swap ? 1 : 0)) {
      rows.fill(-1, slot * height, (slot + 1) * height);
      this.#swapOf[slot] = swap ? 1 : 0;
    }
    for (let y = 0, r = slot * height; y < height; y++, r++) {
      const start = y * rowBytes;
      const v = px[start]!;
      if (uniform[0] !== v) uniform.fill(v);
      if (uniform.compare(px, start, start + rowBytes) === 0) {
        if (rows[r] === v) continue;
        const i = y * width;
        out.fill(v * a0 + b0, o0 + i, o0 + i + width);
        out.fill(v * a1 + b1, o1 + i, o1 + i + width);
        out.fill(v * a2 + b2, o2 + i, o2 + i + width);
        rows[r] = v;
        continue;
      }
      rows[r] = -1;
      const end = (y + 1) * width;
      if (this.#identity) {
        for (let i = y * width, j = start; i < end; i++, j += 3) {
          out[o0 + i] = px[j]!;
          out[o1 + i] = px[j + 1]!;
          out[o2 + i] = px[j + 2]!;
        }
      } else {
        for (let i = y * width, j = start; i < end; i++, j += 3) {
          out[o0 + i] = px[j]! * a0 + b0;
          out[o1 + i] = px[j + 1]! * a1 + b1;
          out[o2 + i] = px[j + 2]! * a2 + b2;
        }
      }
    }
  }

  /**
   * Forgets what the slots hold, so the next fill converts every row: for whoever writes into
   * `data` other than through `fill`.
   */
  invalidate(): void {
    this.#rowValue.fill(-1);
  }
}
