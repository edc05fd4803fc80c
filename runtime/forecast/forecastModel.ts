import * as ort from "onnxruntime-node";
import type { Logger } from "../log/logger.js";
import { createSession, loadManifest, type ModelSession } from "../inference/index.js";
import { calendarFeature, localTimes, type LocalTime } from "./calendar.js";
import { forecastSpec, type ForecastSpec } from "./forecastManifest.js";

/** One series' window, ready for the model. */
export interface WindowInput {
  /** One value per step, gaps already filled; length = the model's history_steps. */
  values: readonly number[];
  /** Start of the first step (ms). */
  from: number;
  /** Time zone of the calendar features. */
  timeZone: string;
  /** model: the manifest's mean/std; window: the window's own. */
  scaling: "model" | "window";
}

export interface ModelLoadOptions {
  manifestFile: string;
  providers: readonly ("tensorrt" | "cuda" | "cpu")[];
  threads: number;
  variant: "fp32" | "fp16" | "int8" | "auto";
  log: Logger;
}

function scaleOf(w: WindowInput, spec: ForecastSpec): { mean: number; std: number } {
  if (w.scaling === "model") return { mean: spec.mean, std: spec.std };
  const n = w.values.length;
  const mean = w.values.reduce((a, b) => a + b, 0) / n;
  const std = Math.sqrt(w.values.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
  return { mean, std: std > 1e-9 ? std : 1 };
}

/**
 * A forecasting model and its session: builds the input tensor exactly as models/README.md
 * describes (normalized value, then the calendar features of each step's start on the local
 * clock), runs every window of a batch in one session run, and de-normalizes the output.
 */
export class ForecastModel {
  readonly spec: ForecastSpec;
  readonly session: ModelSession;

  constructor(spec: ForecastSpec, session: ModelSession) {
    this.spec = spec;
    this.session = session;
  }

  static async load(opts: ModelLoadOptions): Promise<ForecastModel> {
    const manifest = loadManifest(opts.manifestFile);
    const spec = forecastSpec(manifest);
    const session = await createSession(manifest, { providers: opts.providers, threads: opts.threads, variant: opts.variant, log: opts.log });
    return new ForecastModel(spec, session);
  }

  /** The [N, history_steps, features] input, row-major. */
  buildInput(windows: readonly WindowInput[]): Float32Array {
    const { historySteps: steps, features, stepMs } = this.spec;
    const nf = features.length;
    const data = new Float32Array(windows.length * steps * nf);
    // series due together share their window's times: work the calendar out once per start and zone
    const calendars = new Map<string, LocalTime[]>();
    windows.forEach((w, b) => {
      if (w.values.length !== steps) throw new Error(`model ${this.spec.id}: a window needs ${steps} steps, got ${w.values.length}`);
      const { mean, std } = scaleOf(w, this.spec);
      const key = `${w.from}|${w.timeZone}`;
      let times = calendars.get(key);
      if (!times) {
        times = localTimes(w.from, steps, stepMs, w.timeZone);
        calendars.set(key, times);
      }
      for (let r = 0; r < steps; r++) {
        const t = times[r]!;
        const base = (b * steps + r) * nf;
        features.forEach((f, k) => {
          data[base + k] = f === "value" ? (w.values[r]! - mean) / std : calendarFeature(f, t);
        });
      }
    });
    return data;
  }

  /** One batched run for every window; returns each window's horizon in the series' units. */
  async predict(windows: readonly WindowInput[]): Promise<number[][]> {
    if (windows.length === 0) return [];
    const { historySteps, features, horizon } = this.spec;
    const input = new ort.Tensor("float32", this.buildInput(windows), [windows.length, historySteps, features.length]);
    const out = await this.session.run({ [this.spec.inputName]: input });
    const tensor = out[this.spec.outputName];
    if (!tensor) throw new Error(`model ${this.spec.id}: no output "${this.spec.outputName}" (outputs: ${Object.keys(out).join(", ")})`);
    const data = tensor.data as Float32Array;
    if (data.length !== windows.length * horizon)
      throw new Error(`model ${this.spec.id}: output has ${data.length} values, expected ${windows.length} x ${horizon}`);
    return windows.map((w, b) => {
      const { mean, std } = scaleOf(w, this.spec);
      return Array.from(data.subarray(b * horizon, (b + 1) * horizon), (v) => v * std + mean);
    });
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
