import type { StepSeries } from "./stepSeries.js";

/**
 * One way of forecasting a series, as the backtest compares them. `fit` learns from the steps
 * before `end` (a naive forecast learns nothing); the fitted forecaster then forecasts from any
 * origin: the `horizon` steps from `origin` on, from the values before `origin` only.
 */
export interface Candidate {
  /** snake_case name, as it appears in payloads, health and the backtest table. */
  readonly name: string;
  /** Steps of history before an origin that a forecast from it needs (besides fitting). */
  readonly needs: number;
  /** Steps of history before the first backtest origin that fitting needs. */
  readonly fitNeeds: number;
  fit(series: StepSeries, end: number): Promise<Fitted> | Fitted;
}

export interface Fitted {
  /** What was fitted, for the payload and the table (e.g. smoothing parameters); small. */
  readonly params?: Record<string, number | string>;
  /** One forecast per origin, `horizon` values each; undefined for an origin it cannot serve. */
  forecast(series: StepSeries, origins: readonly number[], horizon: number): Promise<(Float64Array | undefined)[]> | (Float64Array | undefined)[];
}

/** A candidate that cannot run on a series, with the reason (shown in the table and health). */
export interface Unavailable {
  name: string;
  reason: string;
}
