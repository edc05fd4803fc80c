import type { CountsBody, ReadingsBody } from "../contract/index.js";
import type { DaemonBus } from "../events/events.js";
import type { Logger } from "../log/logger.js";
import type { Part, PartHealth } from "../part.js";
import type { HistoryStore } from "./historyStore.js";
import { COUNTS_STEP_MS, countsSeries, intervalsSeries, lineSeries, meterSeries } from "./series.js";

export interface HistoryRecorderOptions {
  bus: DaemonBus;
  store: HistoryStore;
  /** Cameras whose total crossings are kept as one series (those a forecast names). */
  countsOf: readonly string[];
  /** Also keep every camera's crossings per line, label and direction (the console's charts). */
  lineCounts?: boolean;
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
 * so camera counts can be forecast like meter values. With `lineCounts`, every camera's counts
 * per line, label and direction too (the console charts them). A meter whose clock starts again
 * has its history forgotten.
 */
export class HistoryRecorder implements Part {
  readonly name = "history-recorder";
  readonly kind = "history-recorder";
  readonly #o: HistoryRecorderOptions;
  #offs: (() => void)[] = [];
  readonly #tracked = new Set<string>();
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
        if (this.#o.lineCounts) this.#guard(b.camera_id, () => this.#lines(b));
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

  /** One reading per interval for the camera, and one per line, label and direction that saw a crossing. */
  #lines(b: CountsBody): void {
    const ts = Date.parse(b.interval_start);
    this.#record(intervalsSeries(b.camera_id), ts, b.frames);
    for (const line of b.lines) {
      for (const [label, c] of Object.entries(line.counts)) {
        for (const dir of ["in", "out"] as const) if (c[dir] > 0) this.#record(lineSeries(b.camera_id, line.line_id, label, dir), ts, c[dir]);
      }
    }
  }

  /** Records a count, keeping its series at the 15-minute step too once it exists (for charts past the raw retention). */
  #record(series: string, ts: number, value: number): void {
    if (!this.#tracked.has(series)) {
      this.#tracked.add(series);
      this.#o.store.track(series, COUNTS_STEP_MS);
    }
    this.#o.store.record(series, ts, value, "good");
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
