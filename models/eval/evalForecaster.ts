/**
 * Measures the demand LSTM's results table: every shipped variant and both naive baselines on
 * the two held-out test weeks, through onnxruntime-node (CPU).
 *
 *   npx tsx models/eval/evalForecaster.ts [--write]
 *
 * --write stores the figures in models/demand_lstm/results.json, which test/models.test.ts
 * reproduces.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import { buildBatch, denormalize, laggedForecast, readSeriesCsv, score, testIssueStarts, type ForecastManifest } from "./forecast.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const DIR = path.join(ROOT, "models/demand_lstm");
const data = path.resolve(ROOT, process.env.CITYEDGE_SHARED_DATA ?? "../shared/data", "timeseries/taylor_uk_demand_halfhourly_2000.csv");

const manifest = JSON.parse(readFileSync(path.join(DIR, "manifest.json"), "utf8")) as ForecastManifest & {
  variants: Record<string, { file: string }>;
};
const { times, values } = readSeriesCsv(data);
const H = manifest.output.horizon;
const starts = testIssueStarts(values.length, H);
const batch = buildBatch(times, values, starts, manifest);

const round = (v: number, d: number): number => Number(v.toFixed(d));
const results: Record<string, { mae: number; mape: number }> = {};
for (const [lag, name] of [
  [336, "seasonal_naive_week"],
  [48, "naive_day"],
] as const) {
  const s = score(laggedForecast(values, starts, H, lag), values, starts, H);
  results[name] = { mae: round(s.mae, 1), mape: round(s.mape, 3) };
}
for (const [variant, v] of Object.entries(manifest.variants)) {
  const session = await ort.InferenceSession.create(path.join(DIR, v.file), { intraOpNumThreads: 1 });
  const out = await session.run({ [manifest.input.name]: new ort.Tensor("float32", batch.data, batch.dims) });
  const s = score(denormalize(out[manifest.output.name]!.data as Float32Array, manifest), values, starts, H);
  results[variant] = { mae: round(s.mae, 1), mape: round(s.mape, 3) };
  await session.release();
}
const week = results.seasonal_naive_week!;
const summary = {
  test_rows: `${3360}..${values.length - 1}`,
  forecasts: starts.length,
  horizon: H,
  results,
  improvement_over_seasonal_naive_pct: Object.fromEntries(
    Object.keys(manifest.variants).map((k) => [
      k,
      { mae: round(100 * (1 - results[k]!.mae / week.mae), 1), mape: round(100 * (1 - results[k]!.mape / week.mape), 1) },
    ]),
  ),
};
console.log(JSON.stringify(summary, null, 2));
if (process.argv.includes("--write")) writeFileSync(path.join(DIR, "results.json"), JSON.stringify(summary, null, 2) + "\n");
