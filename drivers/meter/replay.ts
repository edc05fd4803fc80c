import path from "node:path";
import { z } from "zod";
import { driverKey, METER_COMMON, TIMED, valueName } from "./configFields.js";
import type { Logger } from "../../runtime/log/logger.js";
import { checkTimeZone, utcOffsetMs } from "../../runtime/forecast/calendar.js";
import { parseCsvTime, streamCsv } from "./csv.js";
import type { MeterDriver, MeterHealth, MeterValue, Reading, ReadingListener } from "./meter.js";
import { defineMeterKind } from "./meterKind.js";
import { ValueChecker } from "./valueChecker.js";
import { VirtualClock, VirtualTicker } from "./virtualClock.js";

const REPLAY_COLUMN = z.strictObject({
  column: z.string().min(1).describe("CSV column holding the value"),
  unit: z.string().max(16).default("").describe("Unit of the scaled value"),
  scale: z.number().default(1).describe("The value is multiplied by this"),
});

export const REPLAY_METER = z.strictObject({
  driver: driverKey("replay"),
  ...METER_COMMON,
  ...TIMED,
  file: z.string().min(1).describe("CSV file with a header row (relative paths are from the config file)"),
  timestamp_column: z.string().min(1).default("timestamp").describe("Column with ISO 8601 timestamps"),
  timezone: z.string().min(1).default("UTC").describe('IANA time zone of timestamps without an offset (a local-clock file, e.g. "Europe/London")'),
  values: z.record(valueName(), REPLAY_COLUMN).describe("Values to take from each row, by name"),
  align: z
    .enum(["original", "now"])
    .default("original")
    .describe("original: readings keep the file's timestamps; now: shifted so the first live row is now (the backfill lies in the past)"),
  loop: z.boolean().default(false).describe("Start again at the end of the file (timestamps keep rising)"),
});

export type ReplayMeterConfig = z.output<typeof REPLAY_METER>;

interface Row {
  ts: number;
  cells: (string | undefined)[];
}

/** Rows read ahead of the replay clock; read again in the background when fewer are left. */
const READ_AHEAD = 4096;
const LOW_WATER = 1024;
/** Back-filled rows between two yields to the event loop (so history flushes and timers run). */
const BACKFILL_CHUNK = 5000;

/**
 * Replays a CSV file as a meter, `speed` times faster than real time. The first backfill_s of
 * the file go to history at once (not to MQTT), so a forecast can be made straight away. The
 * file is streamed: a back-fill of years and a file of any length take memory for a few
 * thousand rows only. A bad row stops the replay there, with the file and line named.
 */
export class ReplayMeter implements MeterDriver {
  readonly id: string;
  readonly #cfg: ReplayMeterConfig;
  readonly #file: string;
  readonly #log: Logger;
  #names: string[] = [];
  #rows: AsyncGenerator<Row> | undefined;
  #ahead: Row[] = [];
  #eof = false;
  #reading: Promise<void> | undefined;
  #first = 0;
  #lastTs = -Infinity;
  #count = 0;
  #spacing = 1000;
  /** Added to the file's timestamps: the alignment shift plus one file length per completed loop. */
  #offset = 0;
  #ticker: VirtualTicker | undefined;
  #emitted = 0;
  #done = false;
  #error: string | undefined;
  #checker: ValueChecker;
  #onReading: ReadingListener = () => undefined;

  constructor(cfg: ReplayMeterConfig, file: string, log: Logger) {
    this.id = cfg.id;
    this.#cfg = cfg;
    this.#file = file;
    this.#log = log;
    this.#checker = new ValueChecker(cfg.limits, cfg.stale_after_ms);
  }

  async start(onReading: ReadingListener): Promise<void> {
    this.#onReading = onReading;
    this.#done = false;
    this.#error = undefined;
    checkTimeZone(this.#cfg.timezone);
    await this.#open();
    await this.#fill();
    const head = this.#ahead[0];
    if (!head) throw new Error(`meter "${this.id}": ${this.#file} has no data rows`);
    this.#first = head.ts;
    const liveStart = this.#first + this.#cfg.backfill_s * 1000;
    this.#offset = this.#cfg.align === "now" ? Date.now() - liveStart : 0;
    let backfilled = 0;
    for (;;) {
      if (this.#ahead.length === 0 && !this.#eof) await this.#fill();
      const row = this.#ahead[0];
      if (!row || row.ts >= liveStart) break;
      this.#ahead.shift();
      onReading(this.#toReading(row, true));
      if (++backfilled % BACKFILL_CHUNK === 0) await new Promise((r) => setImmediate(r));
    }
    const clock = new VirtualClock(liveStart + this.#offset, this.#cfg.speed);
    this.#ticker = new VirtualTicker(
      clock,
      () => this.#due(),
      (now) => {
        for (let due = this.#due(); due !== undefined && due <= now; due = this.#due()) {
          this.#onReading(this.#toReading(this.#ahead.shift()!, false));
          this.#readAhead();
        }
        this.#readAhead();
      },
    );
    this.#ticker.start();
    this.#log.info({ file: this.#file, backfilled, speed: this.#cfg.speed, align: this.#cfg.align }, "replay started");
  }

  async stop(): Promise<void> {
    this.#ticker?.stop();
    this.#ticker = undefined;
    await this.#reading;
    await this.#rows?.return(undefined);
    this.#rows = undefined;
  }

  health(): MeterHealth {
    return {
      state: this.#error !== undefined ? "failed" : this.#done ? "stopped" : "running",
      ...(this.#error !== undefined ? { error: this.#error } : {}),
      emitted: this.#emitted,
      rows_read: this.#count,
    };
  }

  #due(): number | undefined {
    const row = this.#ahead[0];
    return row === undefined ? undefined : row.ts + this.#offset;
  }

  /** Keeps rows ahead of the clock; at the end of the file, loops (or ends) once they are used up. */
  #readAhead(): void {
    if (this.#reading || this.#done || this.#error !== undefined) return;
    if (this.#ahead.length >= LOW_WATER) return;
    if (this.#eof && this.#ahead.length > 0) return;
    this.#reading = (async () => {
      if (this.#eof) {
        if (!this.#cfg.loop) {
          this.#done = true;
          this.#log.info({ emitted: this.#emitted }, "replay reached the end of the file");
          return;
        }
        this.#offset += this.#lastTs - this.#first + this.#spacing;
        await this.#open();
      }
      await this.#fill();
    })()
      .catch((err: unknown) => {
        this.#error = (err as Error).message;
        this.#log.error({ err }, `replay stopped: ${this.#error}`);
      })
      .finally(() => {
        this.#reading = undefined;
        this.#ticker?.wake();
      });
  }

  async #open(): Promise<void> {
    await this.#rows?.return(undefined);
    this.#eof = false;
    this.#lastTs = -Infinity;
    const lines = streamCsv(this.#file);
    const head = await lines.next();
    if (head.done) throw new Error(`${this.#file}: empty file (a header row is needed)`);
    const header = head.value.cells;
    const col = (name: string, what: string): number => {
      const i = header.indexOf(name);
      if (i < 0) throw new Error(`meter "${this.id}": ${what} column "${name}" is not in ${this.#file} (columns: ${header.join(", ")})`);
      return i;
    };
    const tsCol = col(this.#cfg.timestamp_column, "timestamp");
    this.#names = Object.keys(this.#cfg.values);
    const cols = this.#names.map((n) => col(this.#cfg.values[n]!.column, `value "${n}"`));
    const tz = this.#cfg.timezone;
    const offsetAt = (t: number): number => utcOffsetMs(t, tz);
    this.#rows = this.#parse(lines, tsCol, cols, offsetAt);
  }

  async *#parse(
    lines: AsyncGenerator<{ line: number; cells: string[] }>,
    tsCol: number,
    cols: number[],
    offsetAt: (t: number) => number,
  ): AsyncGenerator<Row> {
    for await (const { line, cells } of lines) {
      const ts = parseCsvTime(cells[tsCol] ?? "", offsetAt);
      if (Number.isNaN(ts)) throw new Error(`${this.#file}:${line}: timestamp "${cells[tsCol] ?? ""}" is not ISO 8601`);
      if (ts <= this.#lastTs)
        throw new Error(`${this.#file}:${line}: timestamps must rise (${cells[tsCol]} follows ${new Date(this.#lastTs).toISOString()})`);
      if (Number.isFinite(this.#lastTs)) this.#spacing = ts - this.#lastTs;
      this.#lastTs = ts;
      yield { ts, cells: cols.map((c) => cells[c]) };
    }
  }

  async #fill(): Promise<void> {
    while (this.#ahead.length < READ_AHEAD && this.#rows) {
      const r = await this.#rows.next();
      if (r.done) {
        this.#eof = true;
        return;
      }
      this.#count++;
      this.#ahead.push(r.value);
    }
  }

  #toReading(row: Row, backfill: boolean): Reading {
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
}

export const REPLAY = defineMeterKind({
  driver: "replay",
  schema: REPLAY_METER,
  create: (cfg, deps) => new ReplayMeter(cfg, path.resolve(deps.baseDir, cfg.file), deps.log),
  ownClock: true,
  values: (cfg) => Object.fromEntries(Object.entries(cfg.values).map(([name, v]) => [name, v.unit])),
});
