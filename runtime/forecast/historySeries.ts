import type { HistoryStore } from "../history/historyStore.js";
import type { StepSeries } from "./backtest/stepSeries.js";
import { stepValues, type Aggregate } from "./window.js";

/**
 * A source's history as a series at `stepMs`, from its buckets at `bucketMs` (stepMs is a whole
 * multiple of it: a coarse source's values are the groups of fine buckets they fall in).
 * `to` (exclusive) and `from` are multiples of stepMs; steps without readings are NaN.
 */
export function historySeries(
  store: HistoryStore,
  source: string,
  opts: { bucketMs: number; stepMs: number; from: number; to: number; aggregate: Aggregate; timeZone: string },
): StepSeries {
  const g = Math.round(opts.stepMs / opts.bucketMs);
  const steps = Math.max(0, Math.round((opts.to - opts.from) / opts.stepMs));
  const buckets = store.buckets(source, opts.bucketMs, opts.from - opts.bucketMs, opts.to);
  const values = new Float64Array(steps);
  if (g === 1) {
    values.set(stepValues(buckets, { from: opts.from, steps, stepMs: opts.bucketMs, aggregate: opts.aggregate }));
  } else {
    const byStart = new Map(buckets.map((b) => [b.start, b]));
    let prevLast = Number.NaN;
    for (let i = 0; i < steps; i++) {
      let n = 0;
      let sum = 0;
      let last = Number.NaN;
      for (let j = 0; j < g; j++) {
        const b = byStart.get(opts.from + (i * g + j) * opts.bucketMs);
        if (!b || b.n === 0) continue;
        n += b.n;
        sum += b.sum;
        last = b.last;
      }
      if (i === 0) {
        const before = byStart.get(opts.from - opts.bucketMs);
        prevLast = before ? before.last : Number.NaN;
      }
      values[i] = n === 0 ? Number.NaN : opts.aggregate === "mean" ? sum / n : opts.aggregate === "sum" ? sum : last - prevLast;
      prevLast = n === 0 ? Number.NaN : last;
    }
  }
  return { start: opts.from, stepMs: opts.stepMs, values, timeZone: opts.timeZone };
}
