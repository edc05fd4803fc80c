/**
 * Builds forecaster inputs from raw (local timestamp, value) history exactly as the training
 * script does (models/demand_lstm/build/common.py), and scores forecasts. Used by the results
 * script (models/eval/evalForecaster.ts) and by test/models.test.ts; the runtime's scheduler
 * follows the same recipe (models/README.md).
 */
import { readFileSync } from "node:fs";

/** The manifest fields a forecaster input depends on. */
export interface ForecastManifest {
  input: { name: string; history_steps: number; features: string[] };
  output: { name: string; horizon: number };
  step_seconds: number;
  normalization: { mean: number; std: number };
}

/** Local wall-clock time of a step in the series' time zone. */
export interface LocalTime {
  year: number;
  month: number; // 1..12
  day: number;
  hour: number;
  minute: number;
  second: number;
}

/** Parses "YYYY-MM-DDTHH:MM[:SS]" (no zone: already local wall-clock time). */
export function parseLocal(stamp: string): LocalTime {
  const m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?/.exec(stamp);
  if (!m) throw new Error(`timestamp must be "YYYY-MM-DDTHH:MM[:SS]", got "${stamp}"`);
  const n = m.slice(1).map((v) => (v === undefined ? 0 : Number(v)));
  return { year: n[0]!, month: n[1]!, day: n[2]!, hour: n[3]!, minute: n[4]!, second: n[5]! };
}

/** The calendar columns of one step, in manifest order after "value". */
export function calendarFeatures(t: LocalTime): Record<string, number> {
  const tod = (t.hour * 60 + t.minute + t.second / 60) / 1440;
  // Monday = 0 .. Sunday = 6, from the local date alone.
  const dow = (new Date(Date.UTC(t.year, t.month - 1, t.day)).getUTCDay() + 6) % 7;
  return {
    sin_time_of_day: Math.sin(2 * Math.PI * tod),
    cos_time_of_day: Math.cos(2 * Math.PI * tod),
    sin_day_of_week: Math.sin((2 * Math.PI * dow) / 7),
    cos_day_of_week: Math.cos((2 * Math.PI * dow) / 7),
    is_weekend: dow >= 5 ? 1 : 0,
  };
}

/**
 * Writes one window [history_steps, features] into `out` at `offset`: rows are the steps
 * `start - history_steps .. start - 1`, oldest first; the forecast is for `start .. start + horizon - 1`.
 */
export function writeWindow(
  out: Float32Array,
  offset: number,
  times: readonly LocalTime[],
  values: ArrayLike<number>,
  start: number,
  m: ForecastManifest,
): void {
  const steps = m.input.history_steps;
  const feats = m.input.features;
  if (start < steps) throw new Error(`forecast at step ${start} needs ${steps} steps of history`);
  const { mean, std } = m.normalization;
  for (let r = 0; r < steps; r++) {
    const i = start - steps + r;
    const cal = calendarFeatures(times[i]!);
    for (let f = 0; f < feats.length; f++) {
      const name = feats[f]!;
      const v = name === "value" ? (values[i]! - mean) / std : cal[name];
      if (v === undefined) throw new Error(`unknown forecaster feature "${name}" (known: value, ${Object.keys(cal).join(", ")})`);
      out[offset + r * feats.length + f] = v;
    }
  }
}

/** A batch of windows, one per issue step, as the model's input [B, history_steps, features]. */
export function buildBatch(
  times: readonly LocalTime[],
  values: ArrayLike<number>,
  starts: readonly number[],
  m: ForecastManifest,
): { data: Float32Array; dims: number[] } {
  const per = m.input.history_steps * m.input.features.length;
  const data = new Float32Array(starts.length * per);
  starts.forEach((s, b) => writeWindow(data, b * per, times, values, s, m));
  return { data, dims: [starts.length, m.input.history_steps, m.input.features.length] };
}

/** Model output (normalized) back to the series' unit. */
export function denormalize(out: ArrayLike<number>, m: ForecastManifest): Float64Array {
  const r = new Float64Array(out.length);
  for (let i = 0; i < out.length; i++) r[i] = out[i]! * m.normalization.std + m.normalization.mean;
  return r;
}

export interface ForecastScores {
  mae: number;
  mape: number; // percent
}

/** MAE and MAPE of row-major forecasts [starts.length, horizon] against the series. */
export function score(pred: ArrayLike<number>, values: ArrayLike<number>, starts: readonly number[], horizon: number): ForecastScores {
  let abs = 0;
  let pct = 0;
  let n = 0;
  starts.forEach((s, b) => {
    for (let h = 0; h < horizon; h++) {
      const truth = values[s + h]!;
      const e = Math.abs(pred[b * horizon + h]! - truth);
      abs += e;
      pct += e / Math.abs(truth);
      n++;
    }
  });
  return { mae: abs / n, mape: (100 * pct) / n };
}

/** The same half-hour `lagSteps` earlier (336: a week, 48: a day), as a forecast. */
export function laggedForecast(values: ArrayLike<number>, starts: readonly number[], horizon: number, lagSteps: number): Float64Array {
  const r = new Float64Array(starts.length * horizon);
  starts.forEach((s, b) => {
    for (let h = 0; h < horizon; h++) r[b * horizon + h] = values[s + h - lagSteps]!;
  });
  return r;
}

/** Reads a "timestamp,value" CSV with a header row. */
export function readSeriesCsv(file: string): { stamps: string[]; times: LocalTime[]; values: Float64Array } {
  const lines = readFileSync(file, "utf8").trim().split(/\r?\n/).slice(1);
  const stamps = lines.map((l) => l.split(",")[0]!);
  const values = Float64Array.from(lines.map((l) => Number(l.split(",")[1])));
  return { stamps, times: stamps.map(parseLocal), values };
}

/** Rows of the Taylor series: 0..3359 train/validation, 3360..4031 the two held-out test weeks. */
export const TAYLOR_TEST_START = 3360;

/** Every half-hour of the test weeks whose whole day ahead lies inside them. */
export function testIssueStarts(n: number, horizon: number): number[] {
  const r: number[] = [];
  for (let s = TAYLOR_TEST_START; s + horizon <= n; s++) r.push(s);
  return r;
}
