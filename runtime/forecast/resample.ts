import type { Aggregate } from "./window.js";

/**
 * Changing a series' step. A source coarser than the step it is forecast at is interpolated
 * (`upsample`), one finer is aggregated (`downsample`, and the history buckets do the same for
 * readings); `aggregate` says what a value is, so the total (sum, delta) or the mean is kept.
 */

/**
 * Each of `values` becomes `k` steps. Means are interpolated between the centres of the coarse
 * steps and then shifted so each group keeps its mean; sums and counter rises are spread by the
 * same shape and scaled so each group keeps its total (evenly where the shape cannot carry it).
 * A NaN stays NaN for its k steps.
 */
export function upsample(values: ArrayLike<number>, k: number, aggregate: Aggregate): Float64Array {
  const n = values.length;
  const out = new Float64Array(n * k);
  if (k === 1) {
    for (let i = 0; i < n; i++) out[i] = values[i]!;
    return out;
  }
  const level = (i: number): number => (aggregate === "mean" ? values[i]! : values[i]! / k);
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    if (Number.isNaN(v)) {
      out.fill(Number.NaN, i * k, (i + 1) * k);
      continue;
    }
    const here = level(i);
    const prev = i > 0 && !Number.isNaN(values[i - 1]!) ? level(i - 1) : here;
    const next = i + 1 < n && !Number.isNaN(values[i + 1]!) ? level(i + 1) : here;
    let sum = 0;
    for (let j = 0; j < k; j++) {
      // position of the sub-step's centre relative to the coarse step's centre, in coarse steps
      const x = (j + 0.5) / k - 0.5;
      const y = x < 0 ? here + (here - prev) * x : here + (next - here) * x;
      out[i * k + j] = y;
      sum += y;
    }
    if (aggregate === "mean") {
      const shift = v - sum / k;
      for (let j = 0; j < k; j++) out[i * k + j]! += shift;
    } else if (
      sum !== 0 &&
      Math.sign(sum) === Math.sign(v) &&
      [...out.subarray(i * k, (i + 1) * k)].every((y) => Math.sign(y) === Math.sign(v) || y === 0)
    ) {
      for (let j = 0; j < k; j++) out[i * k + j]! *= v / sum;
    } else {
      out.fill(v / k, i * k, (i + 1) * k);
    }
  }
  return out;
}

/** Every `k` values become one: their mean, or their total for sums and counter rises. NaN when any is NaN. */
export function downsample(values: ArrayLike<number>, k: number, aggregate: Aggregate): Float64Array {
  const n = Math.floor(values.length / k);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < k; j++) s += values[i * k + j]!;
    out[i] = aggregate === "mean" ? s / k : s;
  }
  return out;
}

export interface Reading {
  ts: number;
  value: number;
}

/**
 * Readings (any spacing, oldest first) as one value per step from `start`: the mean or the sum
 * of the readings inside the step, or the counter's rise over the step (its last reading minus
 * the previous step's last). NaN for a step without readings.
 */
export function stepsFromReadings(readings: readonly Reading[], start: number, stepMs: number, steps: number, aggregate: Aggregate): Float64Array {
  const sum = new Float64Array(steps);
  const n = new Float64Array(steps);
  const last = new Float64Array(steps).fill(Number.NaN);
  for (const r of readings) {
    const i = Math.floor((r.ts - start) / stepMs);
    if (i < 0 || i >= steps || !Number.isFinite(r.value)) continue;
    sum[i]! += r.value;
    n[i]!++;
    last[i] = r.value;
  }
  const out = new Float64Array(steps);
  for (let i = 0; i < steps; i++) {
    if (n[i] === 0) out[i] = Number.NaN;
    else if (aggregate === "mean") out[i] = sum[i]! / n[i]!;
    else if (aggregate === "sum") out[i] = sum[i]!;
    else out[i] = i > 0 ? last[i]! - last[i - 1]! : Number.NaN;
  }
  return out;
}

/**
 * The native step of a source from its reading times: the median spacing of consecutive
 * readings (robust to a few gaps and bursts). Undefined with fewer than two readings.
 */
export function measuredStep(times: readonly number[]): number | undefined {
  const d: number[] = [];
  for (let i = 1; i < times.length; i++) {
    const g = times[i]! - times[i - 1]!;
    if (g > 0) d.push(g);
  }
  if (d.length === 0) return undefined;
  d.sort((a, b) => a - b);
  return d[Math.floor((d.length - 1) / 2)]!;
}

/** How a source of `sourceMs` serves a forecast step of `stepMs`, or why it cannot. */
export type Cadence = { kind: "aggregate" } | { kind: "interpolate"; factor: number } | { kind: "refused"; reason: string };

export function cadence(sourceMs: number, stepMs: number, maxInterpolate: number): Cadence {
  const fmt = (ms: number): string =>
    ms % 86_400_000 === 0
      ? `${ms / 86_400_000} d`
      : ms % 3_600_000 === 0
        ? `${ms / 3_600_000} h`
        : ms % 60_000 === 0
          ? `${ms / 60_000} min`
          : `${ms / 1000} s`;
  if (sourceMs <= stepMs) return { kind: "aggregate" };
  const factor = sourceMs / stepMs;
  if (!Number.isInteger(factor))
    return {
      kind: "refused",
      reason: `the source's step (${fmt(sourceMs)}) is not a whole number of forecast steps (${fmt(stepMs)}), so it cannot be interpolated`,
    };
  if (factor > maxInterpolate)
    return {
      kind: "refused",
      reason: `the source's step (${fmt(sourceMs)}) is ${factor}x the forecast step (${fmt(stepMs)}); at most ${maxInterpolate}x is interpolated (max_interpolate)`,
    };
  return { kind: "interpolate", factor };
}
