import type { Candidate, Fitted } from "./candidate.js";
import { nelderMead } from "./nelderMead.js";
import type { StepSeries } from "./stepSeries.js";

/** Smoothing parameters: level, the short (day) season, the long (week) season, and the AR(1) of the errors. */
export interface HoltWintersParams {
  alpha: number;
  delta: number;
  omega: number;
  phi: number;
}

interface Periods {
  /** Short season (steps per day); 1 when there is only one season. */
  p1: number;
  /** Long season (steps per week), a multiple of p1. */
  p2: number;
}

const nanMean = (v: Float64Array, from: number, to: number): number => {
  let s = 0;
  let n = 0;
  for (let i = from; i < to; i++) {
    const x = v[i]!;
    if (!Number.isNaN(x)) {
      s += x;
      n++;
    }
  }
  return n > 0 ? s / n : Number.NaN;
};

/**
 * Double-seasonal exponential smoothing after Taylor (2003), without trend, with his AR(1)
 * adjustment of the one-step errors: level l, a season of p1 steps (d) and one of p2 steps (w),
 * initialised from the first p2 steps. `visit(t, state)` is called before step t is seen, for
 * every t from p2 on, so a caller can forecast from any origin in one pass.
 */
export function runHoltWinters(
  values: Float64Array,
  per: Periods,
  p: HoltWintersParams,
  end: number,
  visit: (t: number, forecast: (h: number) => number) => void,
): void {
  const { p1, p2 } = per;
  let l = nanMean(values, 0, p2);
  if (Number.isNaN(l)) l = 0;
  const d = new Float64Array(p1);
  const w = new Float64Array(p2);
  if (p1 > 1) {
    const days = p2 / p1;
    for (let j = 0; j < p1; j++) {
      let s = 0;
      let n = 0;
      for (let k = 0; k < days; k++) {
        const m = nanMean(values, k * p1, (k + 1) * p1);
        const x = values[k * p1 + j]!;
        if (!Number.isNaN(x) && !Number.isNaN(m)) {
          s += x - m;
          n++;
        }
      }
      d[j] = n > 0 ? s / n : 0;
    }
  }
  for (let j = 0; j < p2; j++) {
    const x = values[j]!;
    w[j] = Number.isNaN(x) ? 0 : x - l - d[j % p1]!;
  }
  let e = 0;
  const { alpha, delta, omega, phi } = p;
  const forecast =
    (t: number) =>
    (h: number): number =>
      l + d[(t + h) % p1]! + w[(t + h) % p2]! + phi ** (h + 1) * e;
  for (let t = p2; t < end; t++) {
    visit(t, forecast(t));
    const y = values[t]!;
    const i1 = t % p1;
    const i2 = t % p2;
    const dOld = d[i1]!;
    const wOld = w[i2]!;
    if (Number.isNaN(y)) {
      e *= phi;
      continue;
    }
    e = y - (l + dOld + wOld);
    const lNew = alpha * (y - dOld - wOld) + (1 - alpha) * l;
    if (p1 > 1) d[i1] = delta * (y - lNew - wOld) + (1 - delta) * dOld;
    w[i2] = omega * (y - lNew - dOld) + (1 - omega) * wOld;
    l = lNew;
  }
  visit(end, forecast(end));
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
const logit = (p: number): number => Math.log(p / (1 - p));

function toParams(x: readonly number[]): HoltWintersParams {
  return { alpha: sigmoid(x[0]!), delta: sigmoid(x[1]!), omega: sigmoid(x[2]!), phi: sigmoid(x[3]!) };
}

/**
 * Squared error of the forecasts over the whole horizon from origins every `stride` steps in
 * [from, end - horizon]: the parameters are fitted for the forecasts the series publishes.
 */
function horizonSse(values: Float64Array, per: Periods, p: HoltWintersParams, from: number, end: number, horizon: number, stride: number): number {
  let sse = 0;
  let n = 0;
  runHoltWinters(values, per, p, end - horizon, (t, f) => {
    if (t < from || (t - from) % stride !== 0) return;
    for (let h = 0; h < horizon; h++) {
      const y = values[t + h]!;
      if (Number.isNaN(y)) continue;
      const err = y - f(h);
      sse += err * err;
      n++;
    }
  });
  return n > 0 ? sse / n : Number.POSITIVE_INFINITY;
}

/**
 * The double-seasonal Holt-Winters candidate. With a step of a day or longer there is one season
 * (the week). Needs three weeks before the first backtest origin: one to start from, two to fit.
 */
export function holtWinters(opts: { day: number | undefined; week: number; horizon: number; params?: HoltWintersParams }): Candidate {
  const per: Periods =
    opts.day !== undefined && opts.day > 1 && opts.week % opts.day === 0 ? { p1: opts.day, p2: opts.week } : { p1: 1, p2: opts.week };
  return {
    name: "holt_winters",
    needs: per.p2,
    fitNeeds: 3 * per.p2,
    fit(s: StepSeries, end: number): Fitted {
      const stride = Math.max(1, Math.floor(per.p1 / 4));
      const from = per.p2 + Math.min(per.p2, Math.floor(end / 4));
      const start = [logit(0.1), logit(0.2), logit(0.2), logit(0.8)];
      const params =
        opts.params ??
        toParams(nelderMead((x) => horizonSse(s.values, per, toParams(x), from, end, opts.horizon, stride), start, { maxEvals: 400 }).x);
      return {
        params: { ...params, season_steps: per.p1, long_season_steps: per.p2 },
        forecast(series: StepSeries, origins: readonly number[], horizon: number) {
          const want = new Map(origins.map((o, i) => [o, i]));
          const out: (Float64Array | undefined)[] = origins.map(() => undefined);
          const last = Math.max(...origins);
          runHoltWinters(series.values, per, params, Math.min(last, series.values.length), (t, f) => {
            const i = want.get(t);
            if (i === undefined) return;
            const r = new Float64Array(horizon);
            for (let h = 0; h < horizon; h++) r[h] = f(h);
            out[i] = r;
          });
          return out;
        },
      };
    },
  };
}
