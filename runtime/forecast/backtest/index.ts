/**
 * Choosing a forecaster per series: the candidates (seasonal naive, Holt-Winters, a lag
 * regression, the configured ONNX model) and the rolling-origin backtest that picks one.
 */
import type { Candidate, Unavailable } from "./candidate.js";
import { holtWinters } from "./holtWinters.js";
import { seasonalNaive } from "./naive.js";
import { lagRegression } from "./regression.js";
import { formatStep, seasons } from "./stepSeries.js";

export {
  backtest,
  daySteps,
  residualQuantiles,
  type BacktestOptions,
  type BacktestResult,
  type CandidateScore,
  type ResidualQuantiles,
} from "./backtest.js";
export type { Candidate, Fitted, Unavailable } from "./candidate.js";
export { holtWinters, runHoltWinters, type HoltWintersParams } from "./holtWinters.js";
export { seasonalNaive } from "./naive.js";
export { lagRegression } from "./regression.js";
export { onnxCandidate, type OnnxCandidateOptions } from "./onnxCandidate.js";
export { formatStep, seasons, stepTimes, type StepSeries } from "./stepSeries.js";

/** Names of the built-in candidates, in the order they are listed (and win ties). */
export const BUILTIN_CANDIDATES = ["seasonal_naive_day", "seasonal_naive_week", "holt_winters", "regression"] as const;
export type BuiltinCandidate = (typeof BUILTIN_CANDIDATES)[number];
export const NAIVE_CANDIDATES: readonly string[] = ["seasonal_naive_day", "seasonal_naive_week"];

/** The built-in candidates that can serve a series at `stepMs`, and why the others cannot. */
export function builtinCandidates(
  stepMs: number,
  horizon: number,
  only: readonly string[] = BUILTIN_CANDIDATES,
): { candidates: Candidate[]; unavailable: Unavailable[] } {
  const { day, week } = seasons(stepMs);
  const candidates: Candidate[] = [];
  const unavailable: Unavailable[] = [];
  const noDay = `a day is not a whole number of ${formatStep(stepMs)} steps`;
  const noWeek = `a week is not a whole number of ${formatStep(stepMs)} steps`;
  for (const name of BUILTIN_CANDIDATES) {
    if (!only.includes(name)) continue;
    if (name === "seasonal_naive_day") {
      if (day === undefined) unavailable.push({ name, reason: noDay });
      else candidates.push(seasonalNaive(name, day));
    } else if (week === undefined) {
      unavailable.push({ name, reason: noWeek });
    } else if (name === "seasonal_naive_week") {
      candidates.push(seasonalNaive(name, week));
    } else if (name === "holt_winters") {
      candidates.push(holtWinters({ day, week, horizon }));
    } else {
      candidates.push(lagRegression({ day, week, horizon }));
    }
  }
  return { candidates, unavailable };
}
