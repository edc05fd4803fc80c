import { formatStep } from "./backtest/stepSeries.js";
import { cadence } from "./resample.js";

/** How a series' steps work out from its source's step, and whether a model can serve them. */
export interface SeriesSteps {
  /** The forecast's step: the bucket step, or the source's own when that is coarser. */
  stepMs?: number;
  /** The series cannot be forecast at all. */
  error?: string;
  /** The model cannot serve the series' step (the other candidates still can). */
  modelError?: string;
}

/**
 * A source finer than the forecast's (bucket) step is aggregated into it; a coarser one makes
 * the forecast step its own (a whole number of bucket steps, within 5% of it: measured spacing
 * jitters). The model serves a step that is its own, or a whole multiple of it up to
 * max_interpolate (its input is interpolated, its output added up).
 */
export function seriesSteps(
  bucketMs: number,
  sourceMs: number,
  model: { id: string; stepMs: number } | undefined,
  maxInterpolate: number,
): SeriesSteps {
  const k = sourceMs / bucketMs;
  const whole = Math.round(k);
  let stepMs: number;
  if (k <= 1.05) stepMs = bucketMs;
  else if (Math.abs(k - whole) <= 0.05 * whole) stepMs = whole * bucketMs;
  else return { error: `the source's step (${formatStep(sourceMs)}) is not a whole number of forecast steps (${formatStep(bucketMs)})` };
  if (!model) return { stepMs };
  const how = cadence(stepMs, model.stepMs, maxInterpolate);
  if (stepMs >= model.stepMs && how.kind !== "refused") return { stepMs };
  return {
    stepMs,
    modelError: `model ${model.id} (step ${formatStep(model.stepMs)}) cannot serve a ${formatStep(stepMs)} series: ${how.kind === "refused" ? how.reason : "the series is finer than the model"}`,
  };
}
