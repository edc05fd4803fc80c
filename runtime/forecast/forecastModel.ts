import * as ort from "onnxruntime-node";
import type { Logger } from "../log/logger.js";
import path from "node:path";
import { createSession, loadManifest, type ModelManifest, type ModelSession, type VariantName } from "../inference/index.js";
import { externalDataFiles, readOnnxFile } from "../onnx/index.js";
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
  variant: VariantName | "auto";
  log: Logger;
}

/**
 * Refuses a model that keeps tensors in a file its manifest does not list (with a sha256) under
 * the variant's `external_data`: every file of a model is checked, not just the .onnx.
 */
export function checkExternalData(manifest: ModelManifest, variant: VariantName, file: string): void {
  const locations = externalDataFiles(readOnnxFile(file));
  if (locations.length === 0) return;
  const v = manifest.variants[variant] as { external_data?: { file: string }[] } | undefined;
  const dir = path.dirname(file);
  const listed = new Set((v?.external_data ?? []).map((e) => path.resolve(dir, e.file)));
  const missing = locations.filter((loc) => !listed.has(path.resolve(dir, loc)));
  if (missing.length > 0)
    throw new Error(
      `model ${manifest.id}: ${file} keeps tensors in ${missing.join(", ")}, which variants.${variant}.external_data of ${manifest.manifest_file} does not list with a sha256; refused unchecked`,
    );
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0]!.trim();
}

const dimOk = (d: number | string | undefined, want: number): boolean => typeof d === "string" || d === undefined || d < 0 || d === want;

/**
 * Reads the model's declared input and output shapes and checks them against the manifest:
 * [batch, history_steps, features] in, [batch, horizon] out. Returns the fixed batch size, or
 * Infinity for a dynamic one. Throws, naming the model, for a shape the manifest does not fit.
 */
export function checkShapes(spec: ForecastSpec, session: ModelSession): number {
  const shape = session.inputShape(spec.inputName);
  const problems: string[] = [];
  if (shape.length !== 3)
    problems.push(`input "${spec.inputName}" has ${shape.length} dimensions [${shape.join(", ")}], a forecaster takes 3 [batch, steps, features]`);
  else {
    if (!dimOk(shape[1], spec.historySteps))
      problems.push(`input "${spec.inputName}" takes ${String(shape[1])} history steps, the manifest's input.history_steps is ${spec.historySteps}`);
    if (!dimOk(shape[2], spec.features.length))
      problems.push(
        `input "${spec.inputName}" takes ${String(shape[2])} features, the manifest lists ${spec.features.length} (${spec.features.join(", ")})`,
      );
  }
  const outMeta = session.session.outputMetadata.find((m) => m.name === spec.outputName);
  if (!outMeta) problems.push(`has no output "${spec.outputName}" (outputs: ${session.session.outputNames.join(", ")})`);
  else if (outMeta.isTensor) {
    const o = outMeta.shape;
    if (o.length !== 2)
      problems.push(`output "${spec.outputName}" has ${o.length} dimensions [${o.join(", ")}], a forecaster gives 2 [batch, horizon]`);
    else if (!dimOk(o[1], spec.horizon))
      problems.push(`output "${spec.outputName}" gives ${String(o[1])} steps, the manifest's output.horizon is ${spec.horizon}`);
  }
  if (problems.length > 0) throw new Error(`model ${spec.id} (${session.file}) does not fit its manifest: ${problems.join("; ")}`);
  const b = shape[0];
  return typeof b === "number" && b >= 1 ? b : Number.POSITIVE_INFINITY;
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
  /** Windows one run takes: the input's fixed batch size, or Infinity when the batch is dynamic. */
  readonly batch: number;

  constructor(spec: ForecastSpec, session: ModelSession, batch = Number.POSITIVE_INFINITY) {
    this.spec = spec;
    this.session = session;
    this.batch = batch;
  }

  static async load(opts: ModelLoadOptions): Promise<ForecastModel> {
    const manifest = loadManifest(opts.manifestFile);
    const spec = forecastSpec(manifest);
    for (const [variant, file] of Object.entries(manifest.files) as [VariantName, string][]) checkExternalData(manifest, variant, file);
    const session = await createSession(manifest, { providers: opts.providers, threads: opts.threads, variant: opts.variant, log: opts.log });
    let batch: number;
    try {
      batch = checkShapes(spec, session);
    } catch (err) {
      await session.release();
      throw err;
    }
    if (Number.isFinite(batch)) opts.log.info({ model: spec.id, batch }, `model ${spec.id}: fixed batch of ${batch}; windows run ${batch} at a time`);
    return new ForecastModel(spec, session, batch);
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

  /**
   * Every window's horizon in the series' units: one run for all of them when the batch is
   * dynamic, else runs of the model's fixed batch (the last one padded with copies).
   */
  async predict(windows: readonly WindowInput[]): Promise<number[][]> {
    if (windows.length === 0) return [];
    const size = Number.isFinite(this.batch) ? this.batch : windows.length;
    const out: number[][] = [];
    for (let a = 0; a < windows.length; a += size) {
      const part = windows.slice(a, a + size);
      while (Number.isFinite(this.batch) && part.length < size) part.push(part.at(-1)!);
      const got = await this.#run(part);
      out.push(...got.slice(0, Math.min(size, windows.length - a)));
    }
    return out;
  }

  async #run(windows: readonly WindowInput[]): Promise<number[][]> {
    const { historySteps, features, horizon } = this.spec;
    const input = new ort.Tensor("float32", this.buildInput(windows), [windows.length, historySteps, features.length]);
    let out: ort.InferenceSession.ReturnType;
    try {
      out = await this.session.run({ [this.spec.inputName]: input });
    } catch (err) {
      throw new Error(`model ${this.spec.id}: run of ${windows.length} windows failed: ${firstLine(err)}`);
    }
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
