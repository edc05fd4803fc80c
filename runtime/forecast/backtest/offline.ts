import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseCsvTime, readCsv } from "../../../drivers/meter/csv.js";
import type { Logger } from "../../log/logger.js";
import { checkTimeZone, utcOffsetMs } from "../calendar.js";
import { ForecastModel } from "../forecastModel.js";
import { cadence, measuredStep, stepsFromReadings, upsample, type Reading } from "../resample.js";
import { decideScaling, type ScalingSetting } from "../scaling.js";
import type { Aggregate } from "../window.js";
import { backtest, type BacktestResult } from "./backtest.js";
import type { Candidate, Unavailable } from "./candidate.js";
import { builtinCandidates, NAIVE_CANDIDATES } from "./index.js";
import { onnxCandidate } from "./onnxCandidate.js";
import { formatStep, iso, type StepSeries } from "./stepSeries.js";

const DAY_MS = 86_400_000;

/** The shipped day-ahead LSTM, the default ONNX candidate of the offline backtest. */
export const DEFAULT_MODEL_MANIFEST = fileURLToPath(new URL("../../../models/demand_lstm/manifest.json", import.meta.url));

export interface OfflineOptions {
  csv: string;
  timeColumn: string;
  valueColumn: string;
  /** Zone of timestamps without an offset, and of the calendar (days, weekdays). */
  timeZone: string;
  /** The step to backtest at; default: the file's own (median spacing of its rows). */
  stepMs?: number;
  /** Steps forecast from each origin; default: the model's horizon at this step, else a day. */
  horizon?: number;
  days: number;
  aggregate: Aggregate;
  /** An ONNX forecaster's manifest, or null for none. */
  modelManifest: string | null;
  /** Unit of the values (for the model's scaling: auto). */
  unit: string;
  scaling: ScalingSetting;
  maxInterpolate: number;
  every?: number;
  log: Logger;
}

export interface OfflineCandidate {
  name: string;
  mae: number | null;
  mape: number | null;
  points: number;
  params?: Record<string, number | string>;
  unavailable?: string;
}

/** What `cityedge forecast backtest --json` prints (documented in docs/meters-and-forecasts.md). */
export interface OfflineReport {
  file: string;
  rows: number;
  native_step_s: number;
  step_s: number;
  resampled: string;
  horizon: number;
  days: number;
  backtest: { from: string; to: string; origins: number; points: number };
  candidates: OfflineCandidate[];
  chosen: string;
  best_naive: string;
  chosen_vs_best_naive_pct: number;
  chosen_vs_seasonal_naive_week_pct: number | null;
  quantiles: { p10: number[]; p50: number[]; p90: number[] };
}

function readSeries(o: OfflineOptions): { readings: Reading[]; native: number } {
  checkTimeZone(o.timeZone);
  const { header, rows } = readCsv(o.csv);
  const col = (name: string, what: string): number => {
    const i = header.indexOf(name);
    if (i < 0) throw new Error(`${o.csv}: no ${what} column "${name}" (columns: ${header.join(", ")})`);
    return i;
  };
  const tc = col(o.timeColumn, "time");
  const vc = col(o.valueColumn, "value");
  const readings: Reading[] = [];
  rows.forEach((cells, i) => {
    const text = (cells[tc] ?? "").replace(/\//g, "-");
    const ts = parseCsvTime(text, (t) => utcOffsetMs(t, o.timeZone));
    if (Number.isNaN(ts)) throw new Error(`${o.csv}:${i + 2}: time "${cells[tc] ?? ""}" is not ISO 8601`);
    const cell = cells[vc] ?? "";
    const value = cell === "" ? Number.NaN : Number(cell);
    if (readings.length > 0 && ts <= readings.at(-1)!.ts)
      throw new Error(`${o.csv}:${i + 2}: times must rise (${cells[tc]} follows ${iso(readings.at(-1)!.ts)})`);
    readings.push({ ts, value });
  });
  const native = measuredStep(readings.map((r) => r.ts));
  if (native === undefined) throw new Error(`${o.csv}: fewer than two rows`);
  return { readings, native };
}

/** The file as a series at `stepMs`: aggregated when the file is finer, interpolated when coarser (within max_interpolate). */
export function seriesFromReadings(
  readings: readonly Reading[],
  native: number,
  stepMs: number,
  aggregate: Aggregate,
  timeZone: string,
  maxInterpolate: number,
): { series: StepSeries; resampled: string } {
  const how = cadence(native, stepMs, maxInterpolate);
  if (how.kind === "refused") throw new Error(how.reason);
  const base = how.kind === "interpolate" ? native : stepMs;
  // steps start on the local clock's grid (midnight for days), so days and weekdays line up
  const offset = utcOffsetMs(readings[0]!.ts, timeZone);
  const start = Math.ceil((readings[0]!.ts + offset) / base) * base - offset;
  const steps = Math.floor((readings.at(-1)!.ts + native - start) / base);
  let values = stepsFromReadings(readings, start, base, steps, aggregate);
  let resampled = "none";
  if (how.kind === "interpolate") {
    values = upsample(values, how.factor, aggregate);
    resampled = `interpolated ${formatStep(native)} -> ${formatStep(stepMs)}`;
  } else if (stepMs > native) resampled = `aggregated (${aggregate}) ${formatStep(native)} -> ${formatStep(stepMs)}`;
  return { series: { start, stepMs, values, timeZone }, resampled };
}

const round = (v: number, d: number): number => Number(v.toFixed(d));

/** The offline backtest of a CSV file: the same candidates and choice as the daemon's. */
export async function offlineBacktest(o: OfflineOptions): Promise<{ report: OfflineReport; result: BacktestResult }> {
  const { readings, native } = readSeries(o);
  const stepMs = o.stepMs ?? native;
  const { series, resampled } = seriesFromReadings(readings, native, stepMs, o.aggregate, o.timeZone, o.maxInterpolate);
  const unavailable: Unavailable[] = [];
  let model: ForecastModel | undefined;
  let modelCandidate: Candidate | undefined;
  let horizon = o.horizon;
  if (o.modelManifest !== null) {
    if (!existsSync(o.modelManifest)) throw new Error(`model manifest ${o.modelManifest}: file not found`);
    model = await ForecastModel.load({ manifestFile: o.modelManifest, providers: ["cpu"], threads: 1, variant: "fp32", log: o.log });
    const spec = model.spec;
    const how = cadence(stepMs, spec.stepMs, o.maxInterpolate);
    if (how.kind === "refused" || stepMs < spec.stepMs) {
      unavailable.push({
        name: "model",
        reason: `model ${spec.id} (step ${formatStep(spec.stepMs)}) cannot serve a ${formatStep(stepMs)} series: ${how.kind === "refused" ? how.reason : "the series is finer than the model"}`,
      });
    } else {
      horizon ??= Math.floor((spec.horizon * spec.stepMs) / stepMs);
      const finite = Array.from(series.values).filter(Number.isFinite);
      const decision = decideScaling(o.scaling, spec, o.unit, finite);
      if ("refused" in decision) unavailable.push({ name: "model", reason: decision.refused });
      else {
        if (decision.warning) o.log.warn({ model: spec.id }, decision.warning);
        modelCandidate = onnxCandidate(model, {
          seriesStepMs: stepMs,
          aggregate: o.aggregate,
          scaling: decision.scaling,
          maxGapSteps: 6,
          maxMissingRatio: 0.1,
        });
      }
    }
  }
  horizon ??= Math.max(1, Math.round(DAY_MS / stepMs));
  const built = builtinCandidates(stepMs, horizon);
  unavailable.push(...built.unavailable);
  const candidates = [...built.candidates, ...(modelCandidate ? [modelCandidate] : [])];
  try {
    const result = await backtest(series, candidates, { horizon, days: o.days, every: o.every });
    const rows: OfflineCandidate[] = [
      ...result.scores.map((s) => ({
        name: s.name,
        mae: Number.isFinite(s.mae) ? round(s.mae, 4) : null,
        mape: Number.isFinite(s.mape) ? round(s.mape, 4) : null,
        points: s.points,
        ...(s.params ? { params: s.params } : {}),
        ...(s.unavailable ? { unavailable: s.unavailable } : {}),
      })),
      ...unavailable.map((u) => ({ name: u.name, mae: null, mape: null, points: 0, unavailable: u.reason })),
    ];
    const scored = result.scores.filter((s) => Number.isFinite(s.mae));
    const naive = scored.filter((s) => NAIVE_CANDIDATES.includes(s.name)).sort((a, b) => a.mae - b.mae)[0];
    const chosen = scored.find((s) => s.name === result.chosen)!;
    const week = scored.find((s) => s.name === "seasonal_naive_week");
    const report: OfflineReport = {
      file: o.csv,
      rows: readings.length,
      native_step_s: native / 1000,
      step_s: stepMs / 1000,
      resampled,
      horizon,
      days: o.days,
      backtest: {
        from: iso(series.start + result.firstOrigin * stepMs),
        to: iso(series.start + (result.lastOrigin + horizon) * stepMs),
        origins: result.origins,
        points: result.points,
      },
      candidates: rows,
      chosen: result.chosen,
      best_naive: naive?.name ?? "",
      chosen_vs_best_naive_pct: naive ? round(100 * (1 - chosen.mae / naive.mae), 2) : 0,
      chosen_vs_seasonal_naive_week_pct: week ? round(100 * (1 - chosen.mae / week.mae), 2) : null,
      quantiles: {
        p10: result.quantiles.p10.map((v) => round(v, 4)),
        p50: result.quantiles.p50.map((v) => round(v, 4)),
        p90: result.quantiles.p90.map((v) => round(v, 4)),
      },
    };
    return { report, result };
  } finally {
    await model?.release();
  }
}
