/**
 * Meter history and forecasting: {@link buildMeterParts} wires the history store, the forecast
 * scheduler and the meters into the daemon.
 */
import path from "node:path";
import { MetersPart } from "../../drivers/meter/metersPart.js";
import { resolvePath } from "../config/load.js";
import type { PartContext } from "../part.js";
import { fileDigest } from "../supervise/digest.js";
import { HistoryStore } from "../history/historyStore.js";
import type { MessageSink } from "../mqtt/sink.js";
import type { Part } from "../part.js";
import { countsTap } from "./countsTap.js";
import { ForecastModel } from "./forecastModel.js";
import { ForecastScheduler } from "./scheduler.js";

export { ForecastModel, type WindowInput } from "./forecastModel.js";
export { forecastSpec, type ForecastSpec } from "./forecastManifest.js";
export { ForecastScheduler, type ForecastSchedulerOptions } from "./scheduler.js";
export { buildWindow, fillGaps, stepValues, type WindowResult } from "./window.js";
export { countsSeries, countsTap, totalCrossings } from "./countsTap.js";

export interface MeterWiring {
  /** In start order: history store, forecast scheduler, meters (empty when none is configured). */
  parts: Part[];
  /** The sink for camera pipelines: the outbox, plus counts into history for the cameras a forecast names. */
  cameraSink: MessageSink;
  /** What a camera pipeline's sink holds: the outbox, and history when a forecast takes the camera's counts. */
  cameraSinkIdentity(cameraId: string): { deps: readonly Part[]; slice: unknown };
}

const HOUR = 3_600_000;

/** The file the history store lives in, under the data directory. */
export const HISTORY_FILE = "history.sqlite";

/**
 * In start order: the history store, the forecast scheduler (it registers its steps with the
 * store), then the meters (their first readings, back-fills included, find both ready).
 * Nothing when no meters and no forecasts are configured.
 */
export function buildMeterParts(ctx: PartContext, sink: MessageSink & Part): MeterWiring {
  const cfg = ctx.config;
  const direct = { deps: [sink], slice: { tapped: false } };
  if (cfg.meters.length === 0 && cfg.forecasts.length === 0) return { parts: [], cameraSink: sink, cameraSinkIdentity: () => direct };
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
  const parts: Part[] = [store];
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
          sink,
          topics: ctx.topics,
          log,
          metrics: ctx.metrics,
          loadModel: async (id) => {
            const m = cfg.models.find((x) => x.id === id);
            if (!m) throw new Error(`no model "${id}" in models`);
            return ForecastModel.load({
              manifestFile: resolvePath(ctx.loaded, m.manifest),
              providers: m.providers,
              threads: m.threads,
              variant: m.variant,
              log,
            });
          },
        }),
        { slice: { forecasts: cfg.forecasts, meters: cfg.meters, models }, deps: [store, sink] },
      ),
    );
  }
  if (cfg.meters.length > 0) {
    parts.push(
      ctx.part(
        new MetersPart({
          meters: cfg.meters,
          sink,
          topics: ctx.topics,
          history: store,
          baseDir: ctx.loaded.baseDir,
          log: ctx.log.child({ module: "meters" }),
          metrics: ctx.metrics,
        }),
        { slice: cfg.meters, deps: [store, sink] },
      ),
    );
  }
  const cameraIds = new Set(cfg.forecasts.filter((f) => f.source.startsWith("camera:")).map((f) => f.source.split(":")[1]!));
  const tapped = { deps: [sink, store], slice: { tapped: true } };
  return {
    parts,
    cameraSink: countsTap(sink, ctx.topics, store, [...cameraIds], ctx.log.child({ module: "history" })),
    cameraSinkIdentity: (id) => (cameraIds.has(id) ? tapped : direct),
  };
}
