import path from "node:path";
import type { Config } from "../config/schema.js";
import { loadManifest } from "../inference/manifest.js";
import { forecastSpec } from "./forecastManifest.js";
import { seriesSteps } from "./steps.js";

/**
 * Config problems only a model's manifest shows: a configured source step (or forecast step)
 * that the series' model cannot serve. A manifest that cannot be read is left to the model's
 * own checks; the path names the key to change.
 */
export function forecastStepProblems(config: Config, baseDir: string): { path: (string | number)[]; message: string }[] {
  const out: { path: (string | number)[]; message: string }[] = [];
  config.forecasts.forEach((f, i) => {
    const m = f.model !== undefined ? config.models.find((x) => x.id === f.model) : undefined;
    let model: { id: string; stepMs: number } | undefined;
    if (m && f.candidates.includes("model")) {
      try {
        const spec = forecastSpec(loadManifest(path.resolve(baseDir, m.manifest)));
        model = { id: spec.id, stepMs: spec.stepMs };
      } catch {
        // unreadable or not a forecaster: reported where the model is loaded and checked
        model = undefined;
      }
    }
    const bucketMs = f.step_s !== undefined ? f.step_s * 1000 : (model?.stepMs ?? 1_800_000);
    const sourceMs = f.source_step_s !== undefined ? f.source_step_s * 1000 : bucketMs;
    if (f.source_step_s === undefined && f.step_s === undefined) return;
    const s = seriesSteps(bucketMs, sourceMs, model, f.max_interpolate);
    const key = f.source_step_s !== undefined ? "source_step_s" : "step_s";
    if (s.error !== undefined) out.push({ path: ["forecasts", i, key], message: s.error });
    else if (s.modelError !== undefined)
      out.push({ path: ["forecasts", i, key], message: `${s.modelError} (drop "model" from candidates, or use a model for this step)` });
  });
  return out;
}
