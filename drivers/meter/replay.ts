import type { ReplayMeterConfig } from "../../runtime/config/sections/meters.js";
import type { Logger } from "../../runtime/log/logger.js";
import type { PartHealth } from "../../runtime/part.js";
import { checkTimeZone, utcOffsetMs } from "../../runtime/forecast/calendar.js";
import { parseCsvTime, readCsv } from "./csv.js";
import type { MeterDriver, MeterValue, ReadingListener } from "./meter.js";
import { ValueChecker } from "./valueChecker.js";
import { VirtualClock, VirtualTicker } from "./virtualClock.js";

interface Row {
  ts: number;
  cells: (string | undefined)[];
}

/**
 * Replays a CSV file as a meter, `speed` times faster than real time. The first backfill_s of
 * the file go to history at once (not to MQTT), so a forecast can be made straight away.
 */
export class ReplayMeter implements MeterDriver {
  readonly id: string;
  readonly #cfg: ReplayMeterConfig;
  readonly #file: string;
  readonly #log: Logger;
  #rows: Row[] = [];
  #names: string[] = [];
  #next = 0;
  /** Added to the file's timestamps: the alignment shift plus one file length per completed loop. */
  #offset = 0;
  #period = 0;
  #ticker: VirtualTicker | undefined;
  #emitted = 0;
  #done = false;
  #checker: ValueChecker;

  constructor(cfg: ReplayMeterConfig, file: string, log: Logger) {
    this.id = cfg.id;
    this.#cfg = cfg;
    this.#file = file;
    this.#log = log;
    this.#checker = new ValueChecker(cfg.limits, cfg.stale_after_ms);
  }

  async start(onReading: ReadingListener): Promise<void> {
    this.#load();
    const first = this.#rows[0]!.ts;
    const liveStart = first + this.#cfg.backfill_s * 1000;
    this.#offset = this.#cfg.align === "now" ? Date.now() - liveStart : 0;
    this.#next = 0;
    this.#done = false;
    let backfilled = 0;
    while (this.#next < this.#rows.length && this.#rows[this.#next]!.ts < liveStart) {
      onReading(this.#reading(this.#rows[this.#next]!, true));
      this.#next++;
      backfilled++;
    }
    const clock = new VirtualClock(liveStart + this.#offset, this.#cfg.speed);
    this.#ticker = new VirtualTicker(
      clock,
      () => this.#due(),
      (now) => {
        for (let due = this.#due(); due !== undefined && due <= now; due = this.#due()) {
          onReading(this.#reading(this.#rows[this.#next]!, false));
          this.#advance();
        }
      },
    );
    this.#ticker.start();
    this.#log.info({ file: this.#file, rows: this.#rows.length, backfilled, speed: this.#cfg.speed, align: this.#cfg.align }, "replay started");
  }

  async stop(): Promise<void> {
    this.#ticker?.stop();
    this.#ticker = undefined;
  }

  health(): PartHealth {
    return { state: this.#done ? "stopped" : "running", emitted: this.#emitted, row: this.#next, rows: this.#rows.length };
  }

  #due(): number | undefined {
    const row = this.#rows[this.#next];
    return row === undefined ? undefined : row.ts + this.#offset;
  }

  #advance(): void {
    this.#next++;
    if (this.#next < this.#rows.length) return;
    if (this.#cfg.loop) {
      this.#next = 0;
      this.#offset += this.#period;
    } else {
      this.#done = true;
      this.#log.info({ emitted: this.#emitted }, "replay reached the end of the file");
    }
  }

  #reading(row: Row, backfill: boolean): import("./meter.js").Reading {
    const ts = row.ts + this.#offset;
    const values: Record<string, MeterValue> = {};
    this.#names.forEach((name, i) => {
      const spec = this.#cfg.values[name]!;
      const cell = row.cells[i];
      const num = cell === undefined || cell === "" ? Number.NaN : Number(cell);
      values[name] = this.#checker.check(name, num * spec.scale, spec.unit, ts);
    });
    this.#emitted++;
    return { meterId: this.id, ts, values, ...(backfill ? { backfill: true } : {}) };
  }

  #load(): void {
    const { header, rows } = readCsv(this.#file);
    const col = (name: string, what: string): number => {
      const i = header.indexOf(name);
      if (i < 0) throw new Error(`meter "${this.id}": ${what} column "${name}" is not in ${this.#file} (columns: ${header.join(", ")})`);
      return i;
    };
    const tsCol = col(this.#cfg.timestamp_column, "timestamp");
    const tz = this.#cfg.timezone;
    checkTimeZone(tz);
    const offsetAt = (t: number): number => utcOffsetMs(t, tz);
    this.#names = Object.keys(this.#cfg.values);
    const cols = this.#names.map((n) => col(this.#cfg.values[n]!.column, `value "${n}"`));
    const out: Row[] = [];
    rows.forEach((cells, i) => {
      const ts = parseCsvTime(cells[tsCol] ?? "", offsetAt);
      if (Number.isNaN(ts)) throw new Error(`${this.#file}:${i + 2}: timestamp "${cells[tsCol] ?? ""}" is not ISO 8601`);
      const prev = out.at(-1);
      if (prev && ts <= prev.ts)
        throw new Error(`${this.#file}:${i + 2}: timestamps must rise (${cells[tsCol]} follows ${new Date(prev.ts).toISOString()})`);
      out.push({ ts, cells: cols.map((c) => cells[c]) });
    });
    if (out.length === 0) throw new Error(`meter "${this.id}": ${this.#file} has no data rows`);
    this.#rows = out;
    const span = out.at(-1)!.ts - out[0]!.ts;
    this.#period = span + (out.length > 1 ? span / (out.length - 1) : 1000);
  }
}
