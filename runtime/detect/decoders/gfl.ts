import { z } from "zod";
import type { Detection } from "../types.js";
import { bestClass, type DecodeOptions } from "./common.js";

/** Keys the GFL heads (NanoDet, NanoDet-Plus) share. */
export const GFL_KEYS = {
  reg_max: z.number().int().min(0).max(64).default(7).describe("Distribution bins per side minus one (NanoDet: 7, so 8 bins)"),
};

/** The largest reg_max a `4 * (reg_max + 1)` width allows; 4 means distances are given as they are. */
export function bins(regWidth: number, regMax: number): number {
  if (regWidth === 4) return 1;
  if (regWidth !== 4 * (regMax + 1)) throw new Error(`box distribution has ${regWidth} values per box; reg_max ${regMax} needs ${4 * (regMax + 1)}`);
  return regMax + 1;
}

/** The expected value of a softmax over `n` logits at data[offset..offset+n). */
function expectation(data: ArrayLike<number>, offset: number, n: number): number {
  if (n === 1) return data[offset]!;
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, data[offset + i]!);
  let sum = 0;
  let weighted = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp(data[offset + i]! - max);
    sum += e;
    weighted += e * i;
  }
  return weighted / sum;
}

/**
 * One GFL prediction: the best class of `cls` at clsOffset (class c at + c), the four side
 * distances (left, top, right, bottom) as distributions of `n` bins at regOffset, in units of
 * the stride, from the prior centre (cx, cy); boxes clipped to the input as NanoDet does.
 */
export function gflBox(
  dets: Detection[],
  cls: ArrayLike<number>,
  clsOffset: number,
  reg: ArrayLike<number>,
  regOffset: number,
  n: number,
  cx: number,
  cy: number,
  stride: number,
  d: DecodeOptions,
  logits: boolean,
): void {
  const best = bestClass(cls, clsOffset, 1, d, 1, logits);
  if (best.cls < 0) return;
  const l = expectation(reg, regOffset, n) * stride;
  const t = expectation(reg, regOffset + n, n) * stride;
  const r = expectation(reg, regOffset + 2 * n, n) * stride;
  const b = expectation(reg, regOffset + 3 * n, n) * stride;
  dets.push({
    x1: Math.min(Math.max(cx - l, 0), d.inputWidth),
    y1: Math.min(Math.max(cy - t, 0), d.inputHeight),
    x2: Math.min(Math.max(cx + r, 0), d.inputWidth),
    y2: Math.min(Math.max(cy + b, 0), d.inputHeight),
    score: best.score,
    class_id: best.cls,
  });
}
