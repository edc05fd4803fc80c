import type { ForecastBody } from "../contract/index.js";
import type { Aggregate } from "./window.js";
import { iso } from "./backtest/stepSeries.js";
import type { Selection, SeriesRuntime } from "./seriesRuntime.js";

const NAIVE = ["seasonal_naive_day", "seasonal_naive_week"];
const num = (v: number): number | null => (Number.isFinite(v) ? Number(v.toPrecision(6)) : null);

/** The `choice` block: what made the forecast, and the backtest it was chosen by. */
export function choiceBlock(sel: Selection): ForecastBody["choice"] {
  const bt = sel.backtest;
  const candidate = sel.candidate as ForecastBody["choice"]["candidate"];
  if (!bt) return { candidate, chosen_at: iso(sel.at), backtest: null, reason: sel.reason ?? "no backtest" };
  const chosen = bt.scores.find((s) => s.name === sel.candidate);
  return {
    candidate,
    chosen_at: iso(sel.at),
    backtest: {
      from: iso(bt.from),
      to: iso(bt.to),
      days: Number(bt.days.toFixed(3)),
      origins: bt.origins,
      mae: num(chosen?.mae ?? Number.NaN),
      mape: num(chosen?.mape ?? Number.NaN),
      naive: Object.fromEntries(
        bt.scores.filter((s) => NAIVE.includes(s.name) && !s.unavailable).map((s) => [s.name, { mae: num(s.mae), mape: num(s.mape) }]),
      ),
      candidates: bt.scores.map((s) => ({
        name: s.name,
        mae: num(s.mae),
        mape: num(s.mape),
        ...(s.unavailable ? { unavailable: s.unavailable } : {}),
      })),
    },
  };
}

/** One published forecast (without the envelope), as the schema describes it. */
export function forecastBody(
  rt: SeriesRuntime,
  issue: number,
  values: Float64Array,
  modelInfo: ForecastBody["model"],
  window: { from: number; steps: number; filled: number },
  aggregate: Aggregate,
): ForecastBody {
  const E = rt.stepMs!;
  const sel = rt.selection!;
  const q = sel.backtest?.quantiles;
  return {
    series_id: rt.id,
    source: rt.cfg.source,
    model: modelInfo,
    issued_at: iso(issue),
    step_s: E / 1000,
    source_step_s: rt.sourceStepMs! / 1000,
    aggregate,
    unit: rt.unit,
    horizon: Array.from(values, (value, k) => ({
      ts: iso(issue + k * E),
      value,
      ...(q ? { p10: value + q.p10[k]!, p50: value + q.p50[k]!, p90: value + q.p90[k]! } : {}),
    })),
    window: { from: iso(window.from), steps: window.steps, filled: window.filled },
    choice: choiceBlock(sel),
  };
}
