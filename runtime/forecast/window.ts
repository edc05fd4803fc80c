import type { Bucket } from "../history/historyStore.js";

export type Aggregate = "mean" | "delta" | "sum";

export interface WindowOptions {
  /** Start of the first step of the window (ms). */
  from: number;
  steps: number;
  stepMs: number;
  aggregate: Aggregate;
  maxGapSteps: number;
  maxMissingRatio: number;
}

export type WindowResult =
  { ok: true; values: number[]; filled: number; longestGap: number } | { ok: false; reason: string; missing: number; longestGap: number };

const iso = (t: number): string => new Date(t).toISOString();

/**
 * One value per step from the buckets: the mean of the readings (power), the rise of the
 * counter since the previous step's last reading (energy), or the sum (counts). Buckets may
 * start one step before `from`: delta needs it.
 */
export function stepValues(buckets: readonly Bucket[], opts: Pick<WindowOptions, "from" | "steps" | "stepMs" | "aggregate">): number[] {
  const byStart = new Map(buckets.map((b) => [b.start, b]));
  const out: number[] = [];
  for (let i = 0; i < opts.steps; i++) {
    const start = opts.from + i * opts.stepMs;
    const b = byStart.get(start);
    if (!b || b.n === 0) {
      out.push(Number.NaN);
      continue;
    }
    if (opts.aggregate === "mean") out.push(b.sum / b.n);
    else if (opts.aggregate === "sum") out.push(b.sum);
    else {
      const prev = byStart.get(start - opts.stepMs);
      out.push(prev ? b.last - prev.last : Number.NaN);
    }
  }
  return out;
}

/**
 * Fills short gaps (linear between the neighbours; the edges take the nearest value) and
 * refuses, with the reason, a window where a gap is longer than maxGapSteps or too much of it
 * is missing.
 */
export function fillGaps(
  values: readonly number[],
  opts: Pick<WindowOptions, "from" | "steps" | "stepMs" | "maxGapSteps" | "maxMissingRatio">,
): WindowResult {
  let missing = 0;
  let longest = 0;
  let longestAt = 0;
  let run = 0;
  values.forEach((v, i) => {
    if (Number.isNaN(v)) {
      missing++;
      run++;
      if (run > longest) {
        longest = run;
        longestAt = i - run + 1;
      }
    } else run = 0;
  });
  const hours = (n: number): string => `${((n * opts.stepMs) / 3_600_000).toFixed(1)} h`;
  if (missing === values.length) {
    return {
      ok: false,
      reason: `no history in the window ${iso(opts.from)} .. ${iso(opts.from + opts.steps * opts.stepMs)}`,
      missing,
      longestGap: longest,
    };
  }
  if (longest > opts.maxGapSteps) {
    return {
      ok: false,
      reason: `a gap of ${longest} steps (${hours(longest)}) from ${iso(opts.from + longestAt * opts.stepMs)} is longer than max_gap_steps ${opts.maxGapSteps}`,
      missing,
      longestGap: longest,
    };
  }
  if (missing > opts.maxMissingRatio * values.length) {
    return {
      ok: false,
      reason: `${missing} of ${values.length} steps (${hours(missing)}) are missing, more than max_missing_ratio ${opts.maxMissingRatio}`,
      missing,
      longestGap: longest,
    };
  }
  const out = [...values];
  let prev = -1;
  for (let i = 0; i <= out.length; i++) {
    if (i < out.length && Number.isNaN(out[i]!)) continue;
    // out[prev] and out[i] are known (or an edge); fill prev+1 .. i-1
    for (let j = prev + 1; j < i; j++) {
      if (prev < 0) out[j] = out[i]!;
      else if (i >= out.length) out[j] = out[prev]!;
      else out[j] = out[prev]! + ((out[i]! - out[prev]!) * (j - prev)) / (i - prev);
    }
    prev = i;
  }
  return { ok: true, values: out, filled: missing, longestGap: longest };
}

export function buildWindow(buckets: readonly Bucket[], opts: WindowOptions): WindowResult {
  return fillGaps(stepValues(buckets, opts), opts);
}

/**
 * A copy of `values` with every run of at most `maxGap` NaN between two known values filled by
 * a straight line (longer runs, and runs at the edges, stay NaN).
 */
export function fillShortGaps(values: Float64Array, maxGap: number): Float64Array {
  const out = Float64Array.from(values);
  let last = -1;
  for (let i = 0; i < out.length; i++) {
    if (Number.isNaN(out[i]!)) continue;
    const gap = i - last - 1;
    if (last >= 0 && gap > 0 && gap <= maxGap) {
      for (let j = last + 1; j < i; j++) out[j] = out[last]! + ((out[i]! - out[last]!) * (j - last)) / (i - last);
    }
    last = i;
  }
  return out;
}
