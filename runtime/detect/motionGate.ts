import type { MotionConfig } from "../config/sections/detection.js";

/** A frame as the gate reads it: packed 8-bit RGB or BGR at the model's input size. */
export interface GateFrame {
  width: number;
  height: number;
  format: "rgb24" | "bgr24";
  data: Uint8Array;
}

/** The gate in a camera's health: frames run and skipped, and whether motion is on now. */
export interface MotionStats {
  inferred: number;
  skipped: number;
  skipped_share: number;
  moving: boolean;
}

export interface GateDecision {
  infer: boolean;
  /** Fraction of blocks whose mean luma changed by more than the threshold since the last frame. */
  moving: number;
  reason: "motion" | "hold" | "min-interval" | "first" | "still";
}

/**
 * Skips inference on a camera while nothing moves (Frigate's main saving on quiet cameras). A
 * frame is reduced to the mean luma of each block of `block`×`block` pixels (a few thousand
 * numbers, one pass over the bytes) and compared with the previous frame's blocks: the share of
 * blocks whose luma moved by more than `threshold` grey levels is the motion measure.
 *
 * Hysteresis: motion starts when that share reaches `start_area`, and inference goes on until
 * it has stayed below `stop_area` for `hold_s` seconds, so a slowing car is tracked to a stop.
 * Still or not, a frame is run at least every `min_interval_s` seconds, so the tracker and the
 * detections never go stale for long. Skipped frames do not reach the tracker at all: its tracks
 * keep their age in processed frames, and they survive any still stretch.
 *
 * Time is the stream's (pts) where the frame has it, else its arrival: a recording read faster
 * than real time is gated by its own clock.
 */
export class MotionGate {
  readonly #cfg: MotionConfig;
  #prev: Float32Array | undefined;
  /** The buffer the frame before last was in, reused for the next frame. */
  #spare: Float32Array | undefined;
  #lastInferMs = -Infinity;
  #lastMotionMs = -Infinity;
  #active = false;
  inferred = 0;
  skipped = 0;

  constructor(cfg: MotionConfig) {
    this.#cfg = cfg;
  }

  /** Decides for the frame at `timeMs` (pts or arrival). Call once per frame taken, in order. */
  decide(frame: GateFrame, timeMs: number): GateDecision {
    const cur = this.#blocks(frame, this.#spare);
    const prev = this.#prev;
    this.#prev = cur;
    this.#spare = prev;
    let decision: GateDecision;
    if (!prev || prev.length !== cur.length) {
      decision = { infer: true, moving: 1, reason: "first" };
      this.#active = true;
      this.#lastMotionMs = timeMs;
    } else {
      const moving = this.#movingShare(prev, cur);
      const c = this.#cfg;
      if (moving >= c.start_area || (this.#active && moving >= c.stop_area)) {
        this.#active = true;
        this.#lastMotionMs = timeMs;
        decision = { infer: true, moving, reason: "motion" };
      } else if (this.#active && timeMs - this.#lastMotionMs <= c.hold_s * 1000) {
        decision = { infer: true, moving, reason: "hold" };
      } else {
        this.#active = false;
        decision =
          timeMs - this.#lastInferMs >= c.min_interval_s * 1000
            ? { infer: true, moving, reason: "min-interval" }
            : { infer: false, moving, reason: "still" };
      }
    }
    if (decision.infer) {
      this.#lastInferMs = timeMs;
      this.inferred++;
    } else {
      this.skipped++;
    }
    return decision;
  }

  health(): MotionStats {
    const total = this.inferred + this.skipped;
    return {
      inferred: this.inferred,
      skipped: this.skipped,
      skipped_share: total > 0 ? Math.round((this.skipped / total) * 1000) / 1000 : 0,
      moving: this.#active,
    };
  }

  /** Mean luma (BT.601 weights) of each block, in one pass over the frame's bytes. */
  #blocks(f: GateFrame, spare: Float32Array | undefined): Float32Array {
    const b = this.#cfg.block;
    const bw = Math.ceil(f.width / b);
    const bh = Math.ceil(f.height / b);
    const out = spare && spare.length === bw * bh ? spare.fill(0) : new Float32Array(bw * bh);
    const [wr, wb] = f.format === "rgb24" ? [77, 29] : [29, 77];
    const d = f.data;
    for (let y = 0; y < f.height; y++) {
      const row = Math.floor(y / b) * bw;
      let i = y * f.width * 3;
      for (let x = 0; x < f.width; x++, i += 3) out[row + Math.floor(x / b)]! += wr * d[i]! + 150 * d[i + 1]! + wb * d[i + 2]!;
    }
    for (let by = 0; by < bh; by++) {
      const rows = Math.min(b, f.height - by * b);
      for (let bx = 0; bx < bw; bx++) {
        const cols = Math.min(b, f.width - bx * b);
        out[by * bw + bx]! /= 256 * rows * cols;
      }
    }
    return out;
  }

  #movingShare(prev: Float32Array, cur: Float32Array): number {
    const t = this.#cfg.threshold;
    let n = 0;
    for (let i = 0; i < cur.length; i++) if (Math.abs(cur[i]! - prev[i]!) > t) n++;
    return n / cur.length;
  }
}
