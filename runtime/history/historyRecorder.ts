import type { CountsBody, ReadingsBody } from "../contract/index.js";
import type { DaemonBus } from "../events/events.js";
import type { Logger } from "../log/logger.js";
import type { Part, PartHealth } from "../part.js";
import type { HistoryStore } from "./historyStore.js";
import { countsSeries, meterSeries } from "./series.js";

export interface HistoryRecorderOptions {
  bus: DaemonBus;
  store: HistoryStore;
  /** Cameras whose counts are kept (those a forecast names); others' counts are not history. */
  countsOf: readonly string[];
  log: Logger;
}

/** Line crossings of one counts message, every label and both directions. */
export function totalCrossings(body: Pick<CountsBody, "lines">): number {
  let n = 0;
  for (const line of body.lines) for (const c of Object.values(line.counts)) n += c.in + c.out;
  return n;
}

/** The history recorder in health: values recorded, and the last write that failed. */
export type HistoryRecorderHealth = PartHealth & { recorded: number };

/**
 * Keeps what forecasts are made from: every meter value of a `readings` or `backfill` event,
 * with its quality, and the crossings of the named cameras' `counts` (at the interval's start),
 * so camera counts can be forecast like meter values. A meter whose clock starts again has its
 * history forgotten.
 */
export class HistoryRecorder implements Part {
  readonly name = "history-recorder";
  readonly kind = "history-recorder";
  readonly #o: HistoryRecorderOptions;
  #offs: (() => void)[] = [];
  #recorded = 0;
  #error: string | undefined;

  constructor(opts: HistoryRecorderOptions) {
    this.#o = opts;
  }

  async start(): Promise<void> {
    const { bus } = this.#o;
    const cameras = new Set(this.#o.countsOf);
    this.#offs = [
      bus.on("readings", (b) => this.#reading(b)),
      bus.on("backfill", (b) => this.#reading(b)),
      bus.on("counts", (b) => {
        if (cameras.has(b.camera_id))
          this.#guard(b.camera_id, () => this.#o.store.record(countsSeries(b.camera_id), Date.parse(b.interval_start), totalCrossings(b), "good"));
      }),
      bus.on("meter-clock-reset", ({ meter_id }) =>
        this.#guard(meter_id, () => {
          const rows = this.#o.store.forget(meterSeries(meter_id, ""));
          if (rows > 0)
            this.#o.log.info({ meter: meter_id, rows }, "history of the replayed/simulated meter cleared: it starts on its own clock again");
        }),
      ),
    ];
  }

  async stop(): Promise<void> {
    for (const off of this.#offs) off();
    this.#offs = [];
  }

  health(): HistoryRecorderHealth {
    const state = this.#offs.length === 0 ? "stopped" : this.#error !== undefined ? "degraded" : "running";
    return { state, recorded: this.#recorded, ...(this.#error !== undefined ? { error: this.#error } : {}) };
  }

  #reading(b: ReadingsBody): void {
    const ts = Date.parse(b.measured_at);
    this.#guard(b.meter_id, () => {
      for (const [name, v] of Object.entries(b.values)) this.#o.store.record(meterSeries(b.meter_id, name), ts, v.value, v.quality);
    });
  }

  /** Runs one write; a failure is said once per outage (not once per reading) and shown in health until a write succeeds. */
  #guard(source: string, write: () => void): void {
    try {
      write();
      this.#recorded++;
      this.#error = undefined;
    } catch (err) {
      if (this.#error === undefined) this.#o.log.error({ source, err }, "values are not reaching history");
      this.#error = (err as Error).message;
    }
  }
}
