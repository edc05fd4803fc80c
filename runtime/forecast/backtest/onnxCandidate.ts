import type { ForecastModel, WindowInput } from "../forecastModel.js";
import { downsample, upsample } from "../resample.js";
import { fillGaps, type Aggregate } from "../window.js";
import type { Candidate, Fitted } from "./candidate.js";
import type { StepSeries } from "./stepSeries.js";

export interface OnnxCandidateOptions {
  /** The series' step; a whole multiple of the model's step (1 = the model's own step). */
  seriesStepMs: number;
  aggregate: Aggregate;
  scaling: "model" | "window";
  maxGapSteps: number;
  maxMissingRatio: number;
  /** Windows per session run. */
  chunk?: number;
}

/**
 * The model's window for an origin of the series (the model's history_steps at its own step,
 * gap-filled as the scheduler does, interpolated where the series is coarser), or why there is none.
 */
export function modelWindow(
  model: ForecastModel,
  opts: OnnxCandidateOptions,
  s: StepSeries,
  o: number,
): { ok: true; input: WindowInput; filled: number } | { ok: false; reason: string; kind: "gap" | "missing" | "no_history" } {
  const spec = model.spec;
  const k = opts.seriesStepMs / spec.stepMs;
  const steps = Math.ceil(spec.historySteps / k);
  if (o - steps < 0) return { ok: false, kind: "no_history", reason: `model ${spec.id} needs ${steps} steps of history, the series has ${o}` };
  const filled = fillGaps(Array.from(s.values.subarray(o - steps, o)), {
    from: s.start + (o - steps) * opts.seriesStepMs,
    steps,
    stepMs: opts.seriesStepMs,
    maxGapSteps: opts.maxGapSteps,
    maxMissingRatio: opts.maxMissingRatio,
  });
  if (!filled.ok)
    return {
      ok: false,
      reason: filled.reason,
      kind: filled.missing === steps ? "no_history" : filled.longestGap > opts.maxGapSteps ? "gap" : "missing",
    };
  const fine = upsample(filled.values, k, opts.aggregate);
  const values = Array.from(fine.subarray(fine.length - spec.historySteps));
  const from = s.start + o * opts.seriesStepMs - spec.historySteps * spec.stepMs;
  return { ok: true, input: { values, from, timeZone: s.timeZone, scaling: opts.scaling }, filled: filled.filled };
}

/** The model's output (its own steps) as `horizon` steps of the series (NaN past the model's horizon). */
export function toSeriesSteps(
  model: ForecastModel,
  opts: Pick<OnnxCandidateOptions, "seriesStepMs" | "aggregate">,
  pred: readonly number[],
  horizon: number,
): Float64Array {
  const coarse = downsample(pred, opts.seriesStepMs / model.spec.stepMs, opts.aggregate);
  const r = new Float64Array(horizon).fill(Number.NaN);
  r.set(coarse.subarray(0, Math.min(horizon, coarse.length)));
  return r;
}

/**
 * A shipped ONNX forecaster as a candidate. It learns nothing on the device; its horizon is
 * added up to the series' step where the series is coarser than the model.
 */
export function onnxCandidate(model: ForecastModel, opts: OnnxCandidateOptions): Candidate {
  const spec = model.spec;
  const k = opts.seriesStepMs / spec.stepMs;
  if (!Number.isInteger(k) || k < 1)
    throw new Error(`model ${spec.id}: series step ${opts.seriesStepMs} ms is not a whole multiple of its step ${spec.stepMs} ms`);
  const fitted: Fitted = {
    params: { model: spec.id, version: spec.version, scaling: opts.scaling, interpolated: k },
    async forecast(s: StepSeries, origins: readonly number[], horizon: number) {
      const out: (Float64Array | undefined)[] = origins.map(() => undefined);
      const jobs: { i: number; input: WindowInput }[] = [];
      origins.forEach((o, i) => {
        const w = modelWindow(model, opts, s, o);
        if (w.ok) jobs.push({ i, input: w.input });
      });
      const chunk = opts.chunk ?? 256;
      for (let a = 0; a < jobs.length; a += chunk) {
        const part = jobs.slice(a, a + chunk);
        const preds = await model.predict(part.map((j) => j.input));
        part.forEach((j, b) => (out[j.i] = toSeriesSteps(model, opts, preds[b]!, horizon)));
      }
      return out;
    },
  };
  return { name: "model", needs: Math.ceil(spec.historySteps / k), fitNeeds: 0, fit: () => fitted };
}
