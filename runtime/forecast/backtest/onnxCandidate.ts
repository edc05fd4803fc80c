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
 * A shipped ONNX forecaster as a candidate. It learns nothing on the device: each origin's window
 * (the model's history_steps at its own step) is taken from the series, gap-filled as the
 * scheduler does, interpolated to the model's step where the series is coarser, and the model's
 * horizon is added up back to the series' step.
 */
export function onnxCandidate(model: ForecastModel, opts: OnnxCandidateOptions): Candidate {
  const spec = model.spec;
  const k = opts.seriesStepMs / spec.stepMs;
  if (!Number.isInteger(k) || k < 1)
    throw new Error(`model ${spec.id}: series step ${opts.seriesStepMs} ms is not a whole multiple of its step ${spec.stepMs} ms`);
  const steps = Math.ceil(spec.historySteps / k);
  const outSteps = Math.floor(spec.horizon / k);
  const fitted: Fitted = {
    params: { model: spec.id, version: spec.version, scaling: opts.scaling, interpolated: k },
    async forecast(s: StepSeries, origins: readonly number[], horizon: number) {
      const out: (Float64Array | undefined)[] = origins.map(() => undefined);
      const jobs: { i: number; input: WindowInput }[] = [];
      origins.forEach((o, i) => {
        if (o - steps < 0) return;
        const raw = s.values.subarray(o - steps, o);
        const filled = fillGaps(Array.from(raw), {
          from: s.start + (o - steps) * opts.seriesStepMs,
          steps,
          stepMs: opts.seriesStepMs,
          maxGapSteps: opts.maxGapSteps,
          maxMissingRatio: opts.maxMissingRatio,
        });
        if (!filled.ok) return;
        const fine = upsample(filled.values, k, opts.aggregate);
        const values = Array.from(fine.subarray(fine.length - spec.historySteps));
        const from = s.start + o * opts.seriesStepMs - spec.historySteps * spec.stepMs;
        jobs.push({ i, input: { values, from, timeZone: s.timeZone, scaling: opts.scaling } });
      });
      const chunk = opts.chunk ?? 256;
      for (let a = 0; a < jobs.length; a += chunk) {
        const part = jobs.slice(a, a + chunk);
        const preds = await model.predict(part.map((j) => j.input));
        part.forEach((j, b) => {
          const coarse = downsample(preds[b]!, k, opts.aggregate);
          const r = new Float64Array(horizon).fill(Number.NaN);
          r.set(coarse.subarray(0, Math.min(horizon, outSteps)));
          out[j.i] = r;
        });
      }
      return out;
    },
  };
  return { name: "model", needs: steps, fitNeeds: 0, fit: () => fitted };
}
