import type { ReadingsBody } from "../contract/index.js";
import type { MeterConfig } from "../config/sections/meters.js";
import type { DaemonBus } from "../events/events.js";
import type { Logger } from "../log/logger.js";
import type { Metrics } from "../metrics.js";
import type { Part, PartHealth } from "../part.js";
import { createMeterDriver } from "../../drivers/meter/createDriver.js";
import { meterKind } from "../../drivers/meter/kinds.js";
import type { MeterDriver, MeterHealth, Reading } from "../../drivers/meter/meter.js";
import { timestampProblem } from "../../drivers/meter/mqttIn.js";
import { RtuLines } from "../../drivers/meter/rtuLine.js";

export interface MetersPartOptions {
  meters: readonly MeterConfig[];
  /** Readings (and back-filled ones) are emitted here. */
  bus: DaemonBus;
  baseDir: string;
  log: Logger;
  metrics?: Metrics;
}

/**
 * The `meters/<id>/readings` payload of a driver's reading. A reading whose time cannot be
 * written (a driver's bug, a clock gone wild) is published as a bad reading at the present time
 * naming the problem, so it is seen, not dropped.
 */
export function readingPayload(r: Reading, now = Date.now()): ReadingsBody {
  const wild = timestampProblem(r.ts);
  if (wild !== undefined) {
    const values = Object.fromEntries(Object.entries(r.values).map(([k, v]) => [k, { value: null, unit: v.unit, quality: "error" as const }]));
    const error = `measured_at ${wild} (${String(r.ts)})${r.error !== undefined ? `; ${r.error}` : ""}`;
    return { meter_id: r.meterId, measured_at: new Date(now).toISOString(), quality: "bad", values, error };
  }
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

/** The meters in health: each meter's own health by id. */
export type MetersHealth = PartHealth & { meters: Record<string, MeterHealth> };

/**
 * Runs every enabled meter's driver and emits each reading as a `readings` event (the outbox
 * publishes it, the history recorder keeps its values); back-filled readings are `backfill`
 * events, for history only. One meter failing to start or to read never affects another.
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
        // A meter on its own clock (a replay, a simulation) starts it again: what history holds of it is void.
        if (meterKind(cfg.driver).ownClock) this.#opts.bus.emit("meter-clock-reset", { meter_id: cfg.id });
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

  health(): MetersHealth {
    const meters: Record<string, MeterHealth> = {};
    for (const d of this.#drivers)
      meters[d.id] = this.#failed.has(d.id)
        ? { state: "failed", error: this.#failed.get(d.id) }
        : { ...d.health(), readings: this.#counts.get(d.id) ?? 0 };
    for (const [id, error] of this.#failed) meters[id] ??= { state: "failed", error };
    const states = Object.values(meters).map((m) => m.state);
    const state = states.some((s) => s === "failed" || s === "degraded") ? "degraded" : states.includes("starting") ? "starting" : "running";
    return { state, meters };
  }

  #onReading(r: Reading, counter: ReturnType<Metrics["counter"]> | undefined): void {
    try {
      if (r.backfill) this.#opts.bus.emit("backfill", readingPayload(r));
      else {
        this.#opts.bus.emit("readings", readingPayload(r));
        this.#counts.set(r.meterId, (this.#counts.get(r.meterId) ?? 0) + 1);
      }
    } catch (err) {
      this.#log.error({ meter: r.meterId, err }, "reading could not be published");
    }
    for (const v of Object.values(r.values)) counter?.inc({ meter: r.meterId, quality: v.quality });
  }
}
