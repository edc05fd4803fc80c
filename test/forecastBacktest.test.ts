import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { backtest, builtinCandidates, holtWinters, lagRegression, seasonalNaive, type StepSeries } from "../runtime/forecast/backtest/index.js";
import { RidgeAccumulator } from "../runtime/forecast/backtest/ridge.js";
import { REPO_ROOT } from "./helpers/sharedData.js";

/** Computed by test/fixtures/forecast/make_backtest_fixture.py with numpy, apart from this code. */
interface Fixture {
  step_s: number;
  start: string;
  values: number[];
  horizon: number;
  days: number;
  origins: number;
  first_origin: number;
  seasonal_naive_day: { mae: number; mape: number };
  seasonal_naive_week: { mae: number; mape: number };
  holt_winters: {
    params: { alpha: number; delta: number; omega: number; phi: number };
    mae: number;
    mape: number;
    quantiles: { p10: number[]; p50: number[]; p90: number[] };
  };
  ridge: { X: number[][]; y: number[]; lambda: number; beta: number[]; intercept: number };
}

const fx = JSON.parse(readFileSync(path.join(REPO_ROOT, "test/fixtures/forecast/backtest_fixture.json"), "utf8")) as Fixture;
const series: StepSeries = { start: Date.parse(fx.start), stepMs: fx.step_s * 1000, values: Float64Array.from(fx.values), timeZone: "UTC" };
const D = 24;
const W = 168;

describe("rolling-origin backtest, against numpy", () => {
  it("scores seasonal naive (day, week) and Holt-Winters at fixed parameters as numpy does, and chooses the lowest MAE", async () => {
    const r = await backtest(
      series,
      [
        seasonalNaive("seasonal_naive_day", D),
        seasonalNaive("seasonal_naive_week", W),
        holtWinters({ day: D, week: W, horizon: D, params: fx.holt_winters.params }),
      ],
      { horizon: fx.horizon, days: fx.days },
    );
    expect(r.firstOrigin).toBe(fx.first_origin);
    expect(r.origins).toBe(fx.origins);
    expect(r.points).toBe(fx.origins * fx.horizon);
    const by = Object.fromEntries(r.scores.map((s) => [s.name, s]));
    for (const name of ["seasonal_naive_day", "seasonal_naive_week", "holt_winters"] as const) {
      expect(by[name]!.mae).toBeCloseTo(fx[name].mae, 9);
      expect(by[name]!.mape).toBeCloseTo(fx[name].mape, 9);
    }
    expect(r.chosen).toBe("holt_winters");
    expect(fx.holt_winters.mae).toBeLessThan(fx.seasonal_naive_week.mae);
    // intervals: quantiles of the chosen one's errors per horizon step (numpy's linear interpolation)
    for (const q of ["p10", "p50", "p90"] as const) r.quantiles[q].forEach((v, h) => expect(v).toBeCloseTo(fx.holt_winters.quantiles[q][h]!, 9));
  });

  it("never chooses worse than the best naive: a tie keeps the first listed, a worse candidate loses", async () => {
    const copy = { ...seasonalNaive("copy_of_week", W) };
    const r = await backtest(series, [seasonalNaive("seasonal_naive_week", W), copy, seasonalNaive("seasonal_naive_day", D)], {
      horizon: D,
      days: 7,
    });
    expect(r.chosen).toBe("seasonal_naive_week");
  });

  it("fits Holt-Winters on the history before the first origin, and it beats both naives here", async () => {
    const { candidates } = builtinCandidates(3_600_000, D);
    const r = await backtest(series, candidates, { horizon: D, days: 7 });
    const by = Object.fromEntries(r.scores.map((s) => [s.name, s]));
    expect(by.holt_winters!.mae).toBeLessThan(by.seasonal_naive_week!.mae);
    expect(by.regression!.mae).toBeLessThan(by.seasonal_naive_week!.mae);
    expect(["holt_winters", "regression"]).toContain(r.chosen);
    expect(by[r.chosen]!.mae).toBeLessThanOrEqual(Math.min(by.seasonal_naive_day!.mae, by.seasonal_naive_week!.mae));
  });

  it("uses nothing at or after an origin: changing the future leaves earlier forecasts alone", async () => {
    const cands = builtinCandidates(3_600_000, D).candidates;
    const o = fx.first_origin + 30;
    const changed: StepSeries = { ...series, values: Float64Array.from(series.values) };
    for (let i = o; i < changed.values.length; i++) changed.values[i] = 1e6;
    for (const c of cands) {
      const f = await c.fit(series, fx.first_origin);
      const a = (await f.forecast(series, [o], D))[0]!;
      const b = (await f.forecast(changed, [o], D))[0]!;
      expect(Array.from(b), c.name).toEqual(Array.from(a));
    }
  });

  it("says which candidate needs more history than there is, and why a step cannot serve a season", async () => {
    const short: StepSeries = { ...series, values: series.values.subarray(0, 3 * W) };
    const r = await backtest(short, builtinCandidates(3_600_000, D).candidates, { horizon: D, days: 7 });
    expect(r.scores.find((s) => s.name === "holt_winters")!.unavailable).toBe("needs 504 steps of history before the first origin, has 336");
    expect(r.scores.find((s) => s.name === "seasonal_naive_week")!.unavailable).toBeUndefined();
    const odd = builtinCandidates(7 * 60_000, 10);
    expect(odd.unavailable).toContainEqual({ name: "seasonal_naive_day", reason: "a day is not a whole number of 7 min steps" });
  });

  it("solves ridge regression as numpy's closed form does", () => {
    const acc = new RidgeAccumulator(4);
    fx.ridge.X.forEach((x, i) => acc.add(x, fx.ridge.y[i]!));
    const { beta, intercept } = acc.solve(fx.ridge.lambda);
    Array.from(beta).forEach((b, i) => expect(b).toBeCloseTo(fx.ridge.beta[i]!, 8));
    expect(intercept).toBeCloseTo(fx.ridge.intercept, 8);
  });

  it("the lag regression learns a persistent deviation from last week", async () => {
    // last week's shape plus a level that moves slowly: week-ago is off by the level change, the regression is not
    const n = 6 * W;
    const v = new Float64Array(n);
    let level = 0;
    for (let t = 0; t < n; t++) {
      if (t % D === 0) level += t % (2 * D) === 0 ? 5 : -3;
      v[t] = 100 + 20 * Math.sin((2 * Math.PI * t) / D) + level;
    }
    const s: StepSeries = { start: Date.UTC(2026, 0, 5), stepMs: 3_600_000, values: v, timeZone: "UTC" };
    const r = await backtest(s, [seasonalNaive("seasonal_naive_week", W), lagRegression({ day: D, week: W, horizon: D })], { horizon: D, days: 7 });
    const by = Object.fromEntries(r.scores.map((x) => [x.name, x]));
    expect(by.regression!.mae).toBeLessThan(0.5 * by.seasonal_naive_week!.mae);
  });
});
