/**
 * History and forecasting: {@link buildHistoryParts} wires the history store, its recorder and
 * the forecast scheduler into the daemon.
 */
import path from "node:path";
import { resolvePath } from "../config/load.js";
import type { PartContext } from "../part.js";
import { fileDigest } from "../supervise/digest.js";
import { HistoryRecorder } from "../history/historyRecorder.js";
import { HistoryStore } from "../history/historyStore.js";
import type { Part } from "../part.js";
import { ForecastModel } from "./forecastModel.js";
import { ForecastScheduler } from "./scheduler.js";

export { ForecastModel, type WindowInput } from "./forecastModel.js";
export { forecastSpec, type ForecastSpec } from "./forecastManifest.js";
export { ForecastScheduler, type ForecastSchedulerOptions } from "./scheduler.js";
export { buildWindow, fillGaps, stepValues, type WindowResult } from "./window.js";

const HOUR = 3_600_000;

/** The file the history store lives in, under the data directory. */
export const HISTORY_FILE = "history.sqlite";

/**
 * In start order: the history store, its recorder (readings, back-fills, the counts of the
 * cameras a forecast names, and every camera's counts per line and label, all from the bus),
 * and the forecast scheduler (it registers its steps with the store). They start before the
 * meters and cameras, so the first readings find them ready, and stop after them, so the last
 * counts still reach history. Nothing when no meter, no forecast and no camera that counts is configured.
 */
export function buildHistoryParts(ctx: PartContext): Part[] {
  const cfg = ctx.config;
  const counting = cfg.cameras.some((c) => c.enabled && c.detection.enabled && c.model !== undefined);
  if (cfg.meters.length === 0 && cfg.forecasts.length === 0 && !counting) return [];
  const store = ctx.part(
    new HistoryStore({
      file: path.join(ctx.dataDir, HISTORY_FILE),
      rawRetentionMs: cfg.history.raw_retention_h * HOUR,
      retentionMs: cfg.history.retention_days * 24 * HOUR,
      log: ctx.log.child({ module: "history" }),
      metrics: ctx.metrics,
    }),
    { slice: cfg.history },
  );
  const countsOf = [...new Set(cfg.forecasts.filter((f) => f.source.startsWith("camera:")).map((f) => f.source.split(":")[1]!))];
  const recorder = ctx.part(new HistoryRecorder({ bus: ctx.bus, store, countsOf, lineCounts: counting, log: ctx.log.child({ module: "history" }) }), {
    slice: { countsOf, lineCounts: counting },
    deps: [store],
  });
  const parts: Part[] = [store, recorder];
  if (cfg.forecasts.length > 0) {
    const log = ctx.log.child({ module: "forecast" });
    // The models a forecast loads, with their manifests' contents: a change to one reloads them.
    const models = cfg.models
      .filter((m) => cfg.forecasts.some((f) => f.model === m.id))
      .map((m) => ({ model: m, manifest: fileDigest(resolvePath(ctx.loaded, m.manifest)) }));
    parts.push(
      ctx.part(
        new ForecastScheduler({
          forecasts: cfg.forecasts,
          meters: cfg.meters,
          store,
          bus: ctx.bus,
          log,
          metrics: ctx.metrics,
          loadModel: async (id, modelLog) => {
            const m = cfg.models.find((x) => x.id === id);
            if (!m) throw new Error(`no model "${id}" in models`);
            return ForecastModel.load({
              manifestFile: resolvePath(ctx.loaded, m.manifest),
              providers: m.providers,
              threads: m.threads,
              variant: m.variant,
              log: modelLog,
            });
          },
        }),
        { slice: { forecasts: cfg.forecasts, meters: cfg.meters, models }, deps: [store] },
      ),
    );
  }
  return parts;
}
