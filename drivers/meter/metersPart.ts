import type { MeterConfig } from "../../runtime/config/sections/meters.js";
import type { HistoryStore } from "../../runtime/history/historyStore.js";
import type { Logger } from "../../runtime/log/logger.js";
import type { Metrics } from "../../runtime/metrics.js";
import { READINGS, type ReadingsBody } from "../../runtime/contract/index.js";
import type { MessageSink } from "../../runtime/mqtt/sink.js";
import type { Topics } from "../../runtime/mqtt/topics.js";
import type { Part, PartHealth } from "../../runtime/part.js";
import { createMeterDriver } from "./createDriver.js";
import type { MeterDriver, Reading } from "./meter.js";
import { RtuLines } from "./rtuLine.js";

export interface MetersPartOptions {
  meters: readonly MeterConfig[];
  sink: MessageSink;
  topics: Topics;
  /** Where readings are kept for forecasting; optional so a meter-only setup needs no store. */
  history?: HistoryStore;
  baseDir: string;
  log: Logger;
  metrics?: Metrics;
}

/** The history series a meter value is kept under; forecasts name it as their source. */
export const meterSeries = (meterId: string, value: string): string => `meter:${meterId}:${value}`;

/** The `meters/<id>/readings` payload (without the envelope the outbox adds). */
export function readingPayload(r: Reading): ReadingsBody {
  const qualities = Object.values(r.values).map((v) => v.quality);
  const good = qualities.filter((q) => q === "good").length;
  return {
    meter_id: r.meterId,
    measured_at: new Date(r.ts).toISOString(),
    quality: good === qualities.length ? "good" : good > 0 ? "partial" : "bad",
    values: r.values,
    ...(r.error !== undefined ? { error: r.error } : {}),
  };
}

/**
 * Runs every enabled meter's driver. Each reading goes to `meters/<id>/readings` through the
 * outbox and, value by value with its quality, into history. One meter failing to start or to
 * read never affects another.
 */
export class MetersPart implements Part {
  readonly name = "meters";
  readonly kind = "meters";
  readonly #opts: MetersPartOptions;
  readonly #log: Logger;
  #drivers: MeterDriver[] = [];
  readonly #failed = new Map<string, string>();
  #rtuLines: RtuLines | undefined;
  readonly #counts = new Map<string, number>();
  #historyError: string | undefined;

  constructor(opts: MetersPartOptions) {
    this.#opts = opts;
    this.#log = opts.log;
  }

  async start(): Promise<void> {
    const readings = this.#opts.metrics?.counter("cityedge_meter_readings_total");
    this.#rtuLines = new RtuLines(this.#log);
    for (const cfg of this.#opts.meters) {
      if (!cfg.enabled) continue;
      let driver: MeterDriver;
      try {
        if (cfg.driver === "replay" || cfg.driver === "simulated") {
          const forgotten = this.#opts.history?.forget(meterSeries(cfg.id, ""));
          if (forgotten)
            this.#log.info({ meter: cfg.id, rows: forgotten }, "history of the replayed/simulated meter cleared: it starts on its own clock again");
        }
        driver = createMeterDriver(cfg, { log: this.#log, baseDir: this.#opts.baseDir, rtuLines: this.#rtuLines });
        this.#drivers.push(driver);
        await driver.start((r) => this.#onReading(r, readings));
      } catch (err) {
        this.#failed.set(cfg.id, (err as Error).message);
        this.#log.error({ meter: cfg.id, err }, "meter failed to start; the other meters keep running");
      }
    }
  }

  async stop(): Promise<void> {
    for (const d of this.#drivers) {
      try {
        await d.stop();
      } catch (err) {
        this.#log.error({ meter: d.id, err }, "meter did not stop cleanly");
      }
    }
    this.#drivers = [];
    await this.#rtuLines?.closeAll();
  }

  health(): PartHealth {
    const meters: Record<string, PartHealth> = {};
    for (const d of this.#drivers)
      meters[d.id] = this.#failed.has(d.id)
        ? { state: "failed", error: this.#failed.get(d.id) }
        : { ...d.health(), readings: this.#counts.get(d.id) ?? 0 };
    for (const [id, error] of this.#failed) meters[id] ??= { state: "failed", error };
    const states = Object.values(meters).map((m) => m.state);
    const state =
      states.some((s) => s === "failed" || s === "degraded") || this.#historyError !== undefined
        ? "degraded"
        : states.includes("starting")
          ? "starting"
          : "running";
    return { state, meters, ...(this.#historyError !== undefined ? { error: `history: ${this.#historyError}` } : {}) };
  }

  #onReading(r: Reading, counter: ReturnType<Metrics["counter"]> | undefined): void {
    try {
      if (!r.backfill) {
        READINGS.publish(this.#opts.sink, this.#opts.topics, readingPayload(r));
        this.#counts.set(r.meterId, (this.#counts.get(r.meterId) ?? 0) + 1);
      }
    } catch (err) {
      this.#log.error({ meter: r.meterId, err }, "reading could not be published");
    }
    for (const v of Object.values(r.values)) counter?.inc({ meter: r.meterId, quality: v.quality });
    const history = this.#opts.history;
    if (!history) return;
    try {
      for (const [name, v] of Object.entries(r.values)) history.record(meterSeries(r.meterId, name), r.ts, v.value, v.quality);
      this.#historyError = undefined;
    } catch (err) {
      // Said once per outage, not once per reading: the history part reports itself in health.
      if (this.#historyError === undefined) this.#log.error({ meter: r.meterId, err }, "readings are not reaching history");
      this.#historyError = (err as Error).message;
    }
  }
}
