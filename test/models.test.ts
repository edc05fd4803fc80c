import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { countVideo } from "../models/eval/countVideo.js";
import { evaluateDetector, readHeldout, type DetectorManifest } from "../models/eval/detection.js";
import { buildBatch, denormalize, laggedForecast, readSeriesCsv, score, testIssueStarts, type ForecastManifest } from "../models/eval/forecast.js";
import { asDetectionManifest, loadDetectionManifest } from "../runtime/detect/detectionManifest.js";
import { loadManifest, verifySha256, type VariantName } from "../runtime/inference/manifest.js";
import { REPO_ROOT, sharedDataDir } from "./helpers/sharedData.js";

const MODELS = path.join(REPO_ROOT, "models");

/** Every shipped model: a folder under models/ with a manifest.json. */
const SHIPPED = ["vehicles", "demand_lstm"].filter((d) => existsSync(path.join(MODELS, d, "manifest.json")));

function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, "utf8")) as T;
}

describe("shipped models", () => {
  it("ships the detector and the forecaster", () => {
    expect(SHIPPED).toEqual(["vehicles", "demand_lstm"]);
  });

  for (const name of SHIPPED) {
    const file = path.join(MODELS, name, "manifest.json");
    const manifest = loadManifest(file);
    for (const variant of Object.keys(manifest.variants) as VariantName[]) {
      it(`${name} ${variant}: sha256 matches the manifest and onnxruntime-node loads it`, async () => {
        const onnx = await verifySha256(manifest, variant);
        const session = await ort.InferenceSession.create(onnx, { intraOpNumThreads: 1 });
        try {
          const m = manifest as unknown as { input: { name: string }; output: { name: string } };
          expect(session.inputNames).toEqual([m.input.name]);
          expect(session.outputNames).toEqual([m.output.name]);
        } finally {
          await session.release();
        }
      });
    }
  }
});

describe("vehicles detector: results table on the held-out synthetic set", () => {
  const dir = path.join(MODELS, "vehicles");
  const manifestFile = path.join(dir, "manifest.json");
  const have = existsSync(manifestFile);
  const manifest = have ? loadDetectionManifest(manifestFile) : undefined;
  const results = have ? readJson<{ accuracy: Record<string, { map50: number }> }>(path.join(dir, "results.json")) : undefined;

  it.skipIf(!have)("is a detection manifest the runtime accepts", () => {
    const m = asDetectionManifest(loadManifest(manifestFile));
    expect(m.output.decoder).toBe("yolov8");
    expect(m.labels).toEqual(["person", "bicycle", "car", "bus", "truck"]);
  });

  it.skipIf(!have)("uses the yolov8 layout [1, 4 + C, N] with C = the manifest's labels", async () => {
    const session = await ort.InferenceSession.create(path.join(dir, manifest!.variants.fp32!.file), { intraOpNumThreads: 1 });
    try {
      const { width, height, name } = manifest!.input;
      const out = await session.run({
        [name]: new ort.Tensor("float32", new Float32Array(3 * width * height).fill(114 / 255), [1, 3, height, width]),
      });
      const t = out[manifest!.output.name!]!;
      expect(manifest!.output.decoder).toBe("yolov8");
      expect(t.dims[0]).toBe(1);
      expect(t.dims[1]).toBe(4 + manifest!.labels.length);
      const strides = (manifest!.output.strides as number[] | undefined) ?? [8, 16, 32];
      expect(t.dims[2]).toBe(strides.reduce((n, s) => n + (width / s) * (height / s), 0));
    } finally {
      await session.release();
    }
  });

  for (const variant of have ? Object.keys(manifest!.variants) : []) {
    it(`${variant}: mAP@0.5 reproduces results.json`, async () => {
      const set = readHeldout(path.join(dir, "heldout"));
      const r = await evaluateDetector(manifest!.files[variant as keyof DetectorManifest["files"]]!, manifest!, set, { threads: 2 });
      expect(r.map).toBeCloseTo(results!.accuracy[variant]!.map50, 3);
    }, 180_000);
  }

  it.skipIf(!have || !manifest?.variants.int8)("int8 is within 1.5 points of fp32 in the results table", () => {
    const a = results!.accuracy;
    expect(Math.abs(a.fp32!.map50 - a.int8!.map50)).toBeLessThanOrEqual(0.015);
  });
});

describe("vehicles detector: end-to-end counting on the demo video", () => {
  const dir = path.join(MODELS, "vehicles");
  const gt = path.join(MODELS, "synthetic", "demo.gt.json");
  const have = existsSync(path.join(dir, "manifest.json")) && existsSync(gt);
  const manifest = have ? loadDetectionManifest(path.join(dir, "manifest.json")) : undefined;

  for (const variant of have ? Object.keys(manifest!.variants) : []) {
    const recorded = path.join(dir, `counting.${variant}.json`);
    it.skipIf(!existsSync(recorded))(
      `${variant}: the runtime's decoder, tracker and line counter reproduce counting.${variant}.json`,
      async () => {
        const want = readJson<{ total_counted: number; total_true: number; total_error_pct: number }>(recorded);
        const r = await countVideo(manifest!.files[variant as keyof DetectorManifest["files"]]!, manifest!, gt);
        expect(r.total_true).toBe(want.total_true);
        expect(Math.abs(r.total_counted - want.total_counted)).toBeLessThanOrEqual(1);
      },
      240_000,
    );
  }
});

describe("demand LSTM: results table on the two held-out weeks", () => {
  const dir = path.join(MODELS, "demand_lstm");
  const shared = sharedDataDir();
  const manifest = readJson<ForecastManifest & { variants: Record<string, { file: string }> }>(path.join(dir, "manifest.json"));
  const results = readJson<{ forecasts: number; results: Record<string, { mae: number; mape: number }> }>(path.join(dir, "results.json"));

  it("keeps normalization in the manifest and forecasts a day of half-hours from 8 days", () => {
    expect(manifest.step_seconds).toBe(1800);
    expect(manifest.output.horizon).toBe(48);
    expect(manifest.input.history_steps).toBeGreaterThanOrEqual(336);
    expect(manifest.input.features[0]).toBe("value");
    expect(manifest.normalization.std).toBeGreaterThan(0);
  });

  it.skipIf(shared === undefined)("reproduces MAE and MAPE of every variant and both naive baselines", async () => {
    const { times, values } = readSeriesCsv(path.join(shared!, "timeseries/taylor_uk_demand_halfhourly_2000.csv"));
    const H = manifest.output.horizon;
    const starts = testIssueStarts(values.length, H);
    expect(starts.length).toBe(results.forecasts);
    const week = score(laggedForecast(values, starts, H, 336), values, starts, H);
    const day = score(laggedForecast(values, starts, H, 48), values, starts, H);
    expect(week.mae).toBeCloseTo(results.results.seasonal_naive_week!.mae, 1);
    expect(day.mae).toBeCloseTo(results.results.naive_day!.mae, 1);
    const batch = buildBatch(times, values, starts, manifest);
    for (const [variant, v] of Object.entries(manifest.variants)) {
      const session = await ort.InferenceSession.create(path.join(dir, v.file), { intraOpNumThreads: 1 });
      try {
        const out = await session.run({ [manifest.input.name]: new ort.Tensor("float32", batch.data, batch.dims) });
        const s = score(denormalize(out[manifest.output.name]!.data as Float32Array, manifest), values, starts, H);
        expect(s.mae, `${variant} MAE`).toBeCloseTo(results.results[variant]!.mae, 0);
        expect(s.mape, `${variant} MAPE`).toBeCloseTo(results.results[variant]!.mape, 2);
        // the models' published goals, on the figures just measured
        expect(s.mae).toBeLessThanOrEqual(0.8 * week.mae);
        expect(s.mape).toBeLessThanOrEqual(0.8 * week.mape);
        expect(s.mae).toBeLessThan(day.mae);
      } finally {
        await session.release();
      }
    }
    const fp32 = results.results.fp32!.mae;
    for (const v of Object.keys(manifest.variants)) expect(Math.abs(results.results[v]!.mae - fp32) / fp32).toBeLessThanOrEqual(0.02);
  });
});
