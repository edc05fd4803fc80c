import type { Candidate, Fitted } from "./candidate.js";
import type { StepSeries } from "./stepSeries.js";

const DAY_MS = 86_400_000;

export interface BacktestOptions {
  /** Steps forecast from each origin. */
  horizon: number;
  /** The backtest covers the origins of the last `days` days of the series (whose horizon lies inside it). */
  days: number;
  /** Steps between origins (1: every step, as the daemon forecasts). */
  every?: number;
  /** Yields to the event loop between candidates (the daemon's backtests must not stall it). */
  yieldFn?: () => Promise<void>;
}

export interface CandidateScore {
  name: string;
  mae: number;
  /** Percent, over the points whose actual value is not 0. */
  mape: number;
  /** Points (origin, horizon step) it forecast; every available candidate is scored on the same ones. */
  points: number;
  params?: Record<string, number | string>;
  /** Set when it could not take part, with the reason. */
  unavailable?: string;
}

/** Quantiles of the chosen candidate's errors (actual minus forecast), one entry per horizon step. */
export interface ResidualQuantiles {
  p10: number[];
  p50: number[];
  p90: number[];
}

export interface BacktestResult {
  /** First and last origin (step index into the series) and how many origins there were. */
  firstOrigin: number;
  lastOrigin: number;
  origins: number;
  horizon: number;
  points: number;
  scores: CandidateScore[];
  /** The candidate with the lowest MAE (the first listed wins a tie). */
  chosen: string;
  quantiles: ResidualQuantiles;
  /** The fitted candidates, by name, as fitted on the steps before the first origin. */
  fitted: Map<string, Fitted>;
}

/** Steps of the series that `days` days span. */
export function daySteps(days: number, stepMs: number): number {
  return Math.max(1, Math.round((days * DAY_MS) / stepMs));
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** Per horizon step where it has at least 20 errors, else the errors of every step pooled. */
export function residualQuantiles(byStep: readonly number[][]): ResidualQuantiles {
  const pooled = byStep.flat().sort((a, b) => a - b);
  const out: ResidualQuantiles = { p10: [], p50: [], p90: [] };
  for (const r of byStep) {
    const s = r.length >= 20 ? [...r].sort((a, b) => a - b) : pooled;
    out.p10.push(quantile(s, 0.1));
    out.p50.push(quantile(s, 0.5));
    out.p90.push(quantile(s, 0.9));
  }
  return out;
}

/**
 * Rolling-origin backtest: each candidate is fitted on the steps before the first origin, then
 * forecasts `horizon` steps from every origin of the last `days` days, each from the values
 * before it. All candidates are scored on the same points (those every one of them forecast
 * and whose actual value is known); the lowest MAE is chosen. A candidate whose fit needs more
 * history than there is, or that forecast less than 80% of the points the best-covering one did,
 * is listed as unavailable.
 */
export async function backtest(series: StepSeries, candidates: readonly Candidate[], opts: BacktestOptions): Promise<BacktestResult> {
  const n = series.values.length;
  const H = opts.horizon;
  const every = opts.every ?? 1;
  const firstOrigin = n - daySteps(opts.days, series.stepMs);
  const origins: number[] = [];
  for (let o = Math.max(firstOrigin, 1); o + H <= n; o += every) origins.push(o);
  if (origins.length === 0) throw new Error(`the backtest needs at least ${H} steps after its first origin; the series has ${n} steps`);
  const first = origins[0]!;
  const runs: { c: Candidate; f?: Fitted; preds?: (Float64Array | undefined)[]; unavailable?: string }[] = [];
  for (const c of candidates) {
    const need = Math.max(c.fitNeeds, c.needs);
    if (first < need) {
      runs.push({ c, unavailable: `needs ${need} steps of history before the first origin, has ${first}` });
      continue;
    }
    try {
      const f = await c.fit(series, first);
      const preds = await f.forecast(series, origins, H);
      runs.push({ c, f, preds });
    } catch (err) {
      runs.push({ c, unavailable: `failed: ${(err as Error).message}` });
    }
    await opts.yieldFn?.();
  }
  const ok = (p: Float64Array | undefined, h: number): boolean => p !== undefined && Number.isFinite(p[h]!);
  const coverage = runs.map((r) => {
    if (!r.preds) return 0;
    let c = 0;
    r.preds.forEach((p, i) => {
      for (let h = 0; h < H; h++) if (ok(p, h) && Number.isFinite(series.values[origins[i]! + h]!)) c++;
    });
    return c;
  });
  const most = Math.max(0, ...coverage);
  runs.forEach((r, i) => {
    if (r.preds && coverage[i]! < 0.8 * most) {
      r.unavailable = `forecast ${coverage[i]} of ${most} points (its windows had gaps)`;
      r.preds = undefined;
    }
  });
  const live = runs.filter((r) => r.preds !== undefined);
  const abs = live.map(() => 0);
  const pct = live.map(() => 0);
  const resid = live.map(() => Array.from({ length: H }, () => [] as number[]));
  let points = 0;
  let pctPoints = 0;
  origins.forEach((o, i) => {
    for (let h = 0; h < H; h++) {
      const a = series.values[o + h]!;
      if (!Number.isFinite(a) || !live.every((r) => ok(r.preds![i], h))) continue;
      points++;
      if (a !== 0) pctPoints++;
      live.forEach((r, j) => {
        const e = a - r.preds![i]![h]!;
        abs[j]! += Math.abs(e);
        if (a !== 0) pct[j]! += Math.abs(e) / Math.abs(a);
        resid[j]![h]!.push(e);
      });
    }
  });
  if (live.length === 0 || points === 0) throw new Error("no candidate could forecast any point of the backtest");
  const scores: CandidateScore[] = runs.map((r) => {
    const j = live.indexOf(r);
    if (j < 0) return { name: r.c.name, mae: Number.NaN, mape: Number.NaN, points: 0, unavailable: r.unavailable ?? "not run" };
    return {
      name: r.c.name,
      mae: abs[j]! / points,
      mape: pctPoints > 0 ? (100 * pct[j]!) / pctPoints : Number.NaN,
      points,
      ...(r.f?.params ? { params: r.f.params } : {}),
    };
  });
  let best = -1;
  live.forEach((r, j) => {
    if (best < 0 || abs[j]! < abs[best]!) best = j;
  });
  const fitted = new Map<string, Fitted>();
  for (const r of live) fitted.set(r.c.name, r.f!);
  return {
    firstOrigin: first,
    lastOrigin: origins.at(-1)!,
    origins: origins.length,
    horizon: H,
    points,
    scores,
    chosen: live[best]!.c.name,
    quantiles: residualQuantiles(resid[best]!),
    fitted,
  };
}
