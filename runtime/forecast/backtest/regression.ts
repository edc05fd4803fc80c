import type { LocalTime } from "../calendar.js";
import type { Candidate, Fitted } from "./candidate.js";
import { RidgeAccumulator } from "./ridge.js";
import { stepTimes, type StepSeries } from "./stepSeries.js";

/** Penalties tried (per row, on standardised features); the one best on the last fifth of the training origins is kept. */
const LAMBDAS = [1e-4, 1e-3, 1e-2, 1e-1, 1];

interface Lags {
  /** Steps per day, or undefined when a day is not a whole number of steps. */
  day: number | undefined;
  week: number;
}

const NAMES = [
  "latest_day_minus_week",
  "last_step_deviation",
  "last_day_deviation",
  "latest_day_deviation",
  "week_on_week",
  "is_weekend",
  "sin_tod",
  "cos_tod",
  "sin_2tod",
  "cos_2tod",
  "tue",
  "wed",
  "thu",
  "fri",
  "sat",
  "sun",
] as const;
const P = NAMES.length;

/** How far back from step t the latest multiple of `period` lies that is known at origin o. */
function back(o: number, t: number, period: number): number {
  return t < o ? 0 : period * Math.ceil((t - o + 1) / period);
}

const at = (v: Float64Array, i: number): number => (i >= 0 && i < v.length ? v[i]! : Number.NaN);

function mean(v: Float64Array, from: number, to: number): number {
  if (from < 0) return Number.NaN;
  let s = 0;
  for (let i = from; i < to; i++) s += v[i]!;
  return s / (to - from);
}

/**
 * The features of target step t forecast from origin o (t >= o), into x; returns the anchor
 * (the same step a week earlier, the latest known), or NaN when something needed is missing.
 * The target is the change from that anchor.
 */
function features(v: Float64Array, times: readonly LocalTime[], lags: Lags, o: number, t: number, x: Float64Array): number {
  const W = lags.week;
  const D = lags.day ?? W;
  const bW = back(o, t, W);
  const bD = back(o, t, D);
  const anchor = at(v, t - bW);
  const dayAgo = at(v, t - bD);
  x[0] = dayAgo - anchor;
  x[1] = at(v, o - 1) - at(v, o - 1 - W);
  const span = Math.min(D, W);
  x[2] = mean(v, o - span, o) - mean(v, o - span - W, o - W);
  x[3] = dayAgo - at(v, t - bD - W);
  x[4] = anchor - at(v, t - bW - W);
  const lt = times[t]!;
  const tod = lt.minuteOfDay / 1440;
  const wd = lt.weekday;
  x[5] = wd >= 5 ? 1 : 0;
  x[6] = Math.sin(2 * Math.PI * tod);
  x[7] = Math.cos(2 * Math.PI * tod);
  x[8] = Math.sin(4 * Math.PI * tod);
  x[9] = Math.cos(4 * Math.PI * tod);
  for (let k = 1; k < 7; k++) x[9 + k] = wd === k ? 1 : 0;
  for (let i = 0; i < 5; i++) if (Number.isNaN(x[i]!)) return Number.NaN;
  return anchor;
}

/**
 * A regularised (ridge) regression on lags and calendar features, one model per horizon step
 * (the direct strategy): it forecasts the change from the same step a week earlier from how the
 * latest day, step and week differed from theirs, and from the target's time of day and weekday.
 */
export function lagRegression(opts: Lags & { horizon: number }): Candidate {
  const W = opts.week;
  const D = opts.day ?? W;
  const needs = 2 * W + D;
  return {
    name: "regression",
    needs,
    fitNeeds: needs + W,
    fit(s: StepSeries, end: number): Fitted {
      const v = s.values;
      const times = stepTimes(s, s.values.length);
      const H = opts.horizon;
      const x = new Float64Array(P);
      const origins: number[] = [];
      for (let o = needs; o < end; o++) origins.push(o);
      const split = origins[Math.floor(origins.length * 0.8)] ?? end;
      const models: { beta: Float64Array; intercept: number }[] = [];
      const chosen: number[] = [];
      for (let h = 0; h < H; h++) {
        const train = new RidgeAccumulator(P);
        const all = new RidgeAccumulator(P);
        const held: { x: Float64Array; y: number }[] = [];
        for (const o of origins) {
          const t = o + h;
          if (t >= end) break;
          const y = v[t]!;
          const anchor = features(v, times, opts, o, t, x);
          if (Number.isNaN(anchor) || Number.isNaN(y)) continue;
          all.add(x, y - anchor);
          if (o < split) train.add(x, y - anchor);
          else held.push({ x: Float64Array.from(x), y: y - anchor });
        }
        let best = LAMBDAS[2]!;
        if (train.n > 2 * P && held.length > 0) {
          let bestErr = Number.POSITIVE_INFINITY;
          for (const lambda of LAMBDAS) {
            const m = train.solve(lambda);
            let err = 0;
            for (const r of held) {
              let f = m.intercept;
              for (let i = 0; i < P; i++) f += m.beta[i]! * r.x[i]!;
              err += Math.abs(r.y - f);
            }
            if (err < bestErr) {
              bestErr = err;
              best = lambda;
            }
          }
        }
        chosen.push(best);
        models.push(all.solve(best));
      }
      const sorted = [...chosen].sort((a, b) => a - b);
      return {
        params: { lambda_median: sorted[Math.floor(sorted.length / 2)] ?? 0, features: P, models: H },
        forecast(series: StepSeries, wanted: readonly number[], horizon: number) {
          const sv = series.values;
          const st = stepTimes(series, Math.max(...wanted, 0) + horizon);
          const fx = new Float64Array(P);
          return wanted.map((o) => {
            if (o < needs) return undefined;
            const out = new Float64Array(horizon);
            for (let h = 0; h < horizon; h++) {
              const m = models[Math.min(h, models.length - 1)]!;
              const anchor = features(sv, st, opts, o, o + h, fx);
              let f = m.intercept;
              for (let i = 0; i < P; i++) f += m.beta[i]! * fx[i]!;
              out[h] = anchor + f;
            }
            return out;
          });
        },
      };
    },
  };
}
