import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { describeWriteError } from "../disk/storageErrors.js";
import { ThrottledLog } from "../disk/throttledLog.js";
import type { Logger } from "../log/logger.js";
import type { Metrics } from "../metrics.js";
import type { Part, PartHealth } from "../part.js";
import { measuredStep } from "../forecast/resample.js";
import { stepValues, type Aggregate } from "../forecast/window.js";

/** One step of a series: the good readings that fell in [start, start + step). */
export interface Bucket {
  start: number;
  n: number;
  sum: number;
  first: number;
  firstTs: number;
  last: number;
  lastTs: number;
}

export interface HistoryStoreOptions {
  file: string;
  /** Raw readings older than this (behind the series' newest reading) are deleted; 0 keeps none. */
  rawRetentionMs: number;
  /** Per-step buckets older than this are deleted. */
  retentionMs: number;
  log: Logger;
  metrics?: Metrics;
  /** How often queued readings are written; the scheduler also flushes before it reads. */
  flushIntervalMs?: number;
}

interface Pending {
  series: string;
  ts: number;
  value: number | null;
  quality: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS raw (series TEXT NOT NULL, ts INTEGER NOT NULL, value REAL, quality TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS raw_series_ts ON raw (series, ts);
CREATE TABLE IF NOT EXISTS buckets (
  series TEXT NOT NULL, step_ms INTEGER NOT NULL, start INTEGER NOT NULL,
  n INTEGER NOT NULL, sum REAL NOT NULL,
  first_ts INTEGER NOT NULL, first REAL NOT NULL, last_ts INTEGER NOT NULL, last REAL NOT NULL,
  PRIMARY KEY (series, step_ms, start)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS watermarks (series TEXT PRIMARY KEY, ts INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS forecasts (
  series_id TEXT NOT NULL, issued_at INTEGER NOT NULL, source TEXT NOT NULL, step_ms INTEGER NOT NULL, aggregate TEXT NOT NULL,
  bucket_ms INTEGER NOT NULL, body TEXT NOT NULL,
  PRIMARY KEY (series_id, issued_at)
) WITHOUT ROWID;
`;

/** One issued forecast as the archive keeps it: the payload as published (without the envelope). */
export interface StoredForecast {
  series_id: string;
  issued_at: string;
  body: Record<string, unknown>;
}

/** What the archive needs to find a forecast's actual values again. */
export interface ForecastRecord {
  seriesId: string;
  issuedAt: number;
  source: string;
  /** The forecast's step and how a step's value is made. */
  stepMs: number;
  aggregate: Aggregate;
  /** The step of the history buckets the series is read from (a divisor of stepMs). */
  bucketMs: number;
  body: Record<string, unknown>;
}

/** Reading times kept per series to measure its native step. */
const SPACING_SAMPLES = 33;

const UPSERT = `
INSERT INTO buckets (series, step_ms, start, n, sum, first_ts, first, last_ts, last) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?)
ON CONFLICT (series, step_ms, start) DO UPDATE SET
  n = n + 1, sum = sum + excluded.sum,
  first = CASE WHEN excluded.first_ts < first_ts THEN excluded.first ELSE first END,
  first_ts = MIN(first_ts, excluded.first_ts),
  last = CASE WHEN excluded.last_ts >= last_ts THEN excluded.last ELSE last END,
  last_ts = MAX(last_ts, excluded.last_ts)`;

const PRUNE_INTERVAL_MS = 10 * 60_000;
/** Readings kept for the next flush while writes fail (a full disk); older ones are not recorded. */
const HELD_MAX = 20_000;
/** Rows per write transaction. */
const WRITE_CHUNK = 1000;

/** The history store in health: series kept, readings written, readings waiting, readings lost (a full disk). */
export type HistoryHealth = PartHealth & { series: number; written: number; queued: number; not_recorded: number };

/**
 * The history of every meter value (and camera count) in one SQLite file: raw readings with
 * their quality for a short retention, and per-step buckets (count, sum, first and last value)
 * for each step a forecaster asked for, kept longer. Only good values enter buckets, so bad
 * readings never reach a forecast window. Writes are queued and committed in one transaction
 * per flush, so hundreds of meters at 1 Hz cost one commit a second.
 */
export class HistoryStore implements Part {
  readonly name = "history";
  readonly kind = "history";
  /** Removes this store's reader of the queue gauge (a reload's new store registers its own). */
  #uncollect: (() => void) | undefined;
  readonly #opts: HistoryStoreOptions;
  readonly #log: Logger;
  #db: Database.Database | undefined;
  #queue: Pending[] = [];
  readonly #steps = new Map<string, Set<number>>();
  readonly #watermarks = new Map<string, number>();
  readonly #times = new Map<string, number[]>();
  #flushTimer: NodeJS.Timeout | undefined;
  #pruneTimer: NodeJS.Timeout | undefined;
  #written = 0;
  #error: string | undefined;
  #lostRows = 0;
  readonly #errors: ThrottledLog;
  #writeBatch: ((rows: Pending[]) => void) | undefined;
  #selectBuckets: Database.Statement<[string, number, number, number], number[]> | undefined;

  constructor(opts: HistoryStoreOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    this.#errors = new ThrottledLog(opts.log);
  }

  async start(): Promise<void> {
    mkdirSync(path.dirname(this.#opts.file), { recursive: true });
    const db = new Database(this.#opts.file);
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.exec(SCHEMA);
    this.#db = db;
    for (const row of db.prepare("SELECT series, ts FROM watermarks").all() as { series: string; ts: number }[])
      this.#watermarks.set(row.series, row.ts);
    const insertRaw = db.prepare("INSERT INTO raw (series, ts, value, quality) VALUES (?, ?, ?, ?)");
    const upsert = db.prepare(UPSERT);
    const setMark = db.prepare("INSERT INTO watermarks (series, ts) VALUES (?, ?) ON CONFLICT (series) DO UPDATE SET ts = MAX(ts, excluded.ts)");
    const keepRaw = this.#opts.rawRetentionMs > 0;
    this.#writeBatch = db.transaction((rows: Pending[]) => {
      const marks = new Map<string, number>();
      for (const r of rows) {
        if (keepRaw) insertRaw.run(r.series, r.ts, r.value, r.quality);
        marks.set(r.series, Math.max(marks.get(r.series) ?? r.ts, r.ts));
        if (r.quality !== "good" || r.value === null) continue;
        for (const step of this.#steps.get(r.series) ?? []) {
          upsert.run(r.series, step, r.ts - (((r.ts % step) + step) % step), r.value, r.ts, r.value, r.ts, r.value);
        }
      }
      for (const [s, ts] of marks) setMark.run(s, ts);
    });
    // Rows as arrays: better-sqlite3 builds them several times faster than objects, and a
    // batch of forecasts reads hundreds of rows per series.
    this.#selectBuckets = db
      .prepare<[string, number, number, number], number[]>(
        "SELECT start, n, sum, first, first_ts, last, last_ts FROM buckets WHERE series = ? AND step_ms = ? AND start >= ? AND start < ? ORDER BY start",
      )
      .raw(true);
    this.prune();
    this.#flushTimer = setInterval(() => this.#flushLogged(), this.#opts.flushIntervalMs ?? 1000);
    this.#pruneTimer = setInterval(() => this.prune(), PRUNE_INTERVAL_MS);
    this.#uncollect = this.#opts.metrics?.collect("cityedge_history_queue", (g) => g.set(this.#queue.length));
    this.#log.info({ file: this.#opts.file, series: this.#watermarks.size }, "history store open");
  }

  async stop(): Promise<void> {
    this.#uncollect?.();
    this.#uncollect = undefined;
    clearInterval(this.#flushTimer);
    clearInterval(this.#pruneTimer);
    this.#flushTimer = undefined;
    this.#pruneTimer = undefined;
    if (this.#db) {
      this.#flushLogged();
      this.#db.close();
      this.#db = undefined;
      this.#selectBuckets = undefined;
      this.#writeBatch = undefined;
    }
  }

  health(): HistoryHealth {
    return {
      state: this.#db === undefined ? "stopped" : this.#error !== undefined ? "degraded" : "running",
      series: this.#watermarks.size,
      written: this.#written,
      queued: this.#queue.length,
      not_recorded: this.#lostRows,
      ...(this.#error !== undefined ? { error: this.#error } : {}),
    };
  }

  /**
   * Keeps per-step buckets of `series` from now on. When raw readings of the series are still
   * kept and the step has no buckets yet, they are built from those readings first.
   */
  track(series: string, stepMs: number): void {
    const steps = this.#steps.get(series) ?? new Set<number>();
    if (steps.has(stepMs)) return;
    steps.add(stepMs);
    this.#steps.set(series, steps);
    const db = this.#require();
    this.flush();
    const has = db.prepare("SELECT 1 FROM buckets WHERE series = ? AND step_ms = ? LIMIT 1").get(series, stepMs);
    if (has) return;
    const info = db
      .prepare(
        `INSERT INTO buckets (series, step_ms, start, n, sum, first_ts, first, last_ts, last)
         SELECT series, @step, ts - (((ts % @step) + @step) % @step) AS b, COUNT(*), SUM(value), MIN(ts), 0, MAX(ts), 0
         FROM raw WHERE series = @series AND quality = 'good' AND value IS NOT NULL GROUP BY b`,
      )
      .run({ series, step: stepMs });
    if (info.changes > 0) {
      db.prepare(
        `UPDATE buckets SET
           first = (SELECT value FROM raw WHERE raw.series = buckets.series AND raw.ts = buckets.first_ts AND quality = 'good' LIMIT 1),
           last = (SELECT value FROM raw WHERE raw.series = buckets.series AND raw.ts = buckets.last_ts AND quality = 'good' LIMIT 1)
         WHERE series = ? AND step_ms = ?`,
      ).run(series, stepMs);
      this.#log.info({ series, step_ms: stepMs, buckets: info.changes }, "history: built buckets from raw readings");
    }
  }

  /**
   * Deletes every series whose name starts with `prefix` (raw, buckets and clock). A replayed
   * or simulated meter runs on its own clock, so it starts its history afresh on each start
   * rather than mixing two runs' timelines.
   */
  forget(prefix: string): number {
    const db = this.#require();
    this.flush();
    let n = 0;
    for (const table of ["raw", "buckets", "watermarks"]) {
      n += db.prepare(`DELETE FROM ${table} WHERE substr(series, 1, ?) = ?`).run(prefix.length, prefix).changes;
    }
    n += db.prepare("DELETE FROM forecasts WHERE substr(source, 1, ?) = ?").run(prefix.length, prefix).changes;
    for (const series of [...this.#times.keys()]) if (series.startsWith(prefix)) this.#times.delete(series);
    for (const series of [...this.#watermarks.keys()]) if (series.startsWith(prefix)) this.#watermarks.delete(series);
    return n;
  }

  /** Queues one value; written at the next flush. */
  record(series: string, ts: number, value: number | null, quality: string): void {
    if (!this.#db) throw new Error(`history store is not open (recording ${series})`);
    this.#queue.push({ series, ts, value, quality });
    if ((this.#watermarks.get(series) ?? -Infinity) < ts) this.#watermarks.set(series, ts);
    let times = this.#times.get(series);
    if (!times) this.#times.set(series, (times = []));
    times.push(ts);
    if (times.length > SPACING_SAMPLES) times.shift();
    // A long back-fill must not pile up in memory before the next timed flush; while writes fail
    // (a full disk) only the timed flush tries again, or every reading would be a failed write.
    if (this.#queue.length >= 20_000 && this.#error === undefined) this.#flushLogged();
  }

  /**
   * The native step of a series: the median spacing of its latest readings, or, after a restart
   * with few readings yet, of its latest non-empty buckets at `bucketMs` (never finer than that).
   */
  nativeStep(series: string, bucketMs?: number): number | undefined {
    const times = this.#times.get(series) ?? [];
    if (times.length >= 9) return measuredStep(times);
    if (bucketMs === undefined) return undefined;
    const mark = this.#watermarks.get(series);
    if (mark === undefined) return undefined;
    const starts = this.buckets(series, bucketMs, mark - 64 * 7 * 86_400_000, mark + bucketMs)
      .slice(-65)
      .map((b) => b.start);
    return starts.length >= 9 ? measuredStep(starts) : undefined;
  }

  /** Keeps an issued forecast (replacing one of the same series and issue time). */
  recordForecast(f: ForecastRecord): void {
    this.#require()
      .prepare("INSERT OR REPLACE INTO forecasts (series_id, issued_at, source, step_ms, aggregate, bucket_ms, body) VALUES (?, ?, ?, ?, ?, ?, ?)")
      .run(f.seriesId, f.issuedAt, f.source, f.stepMs, f.aggregate, f.bucketMs, JSON.stringify(f.body));
  }

  /** Forecasts of a series issued in [since, until), oldest first, as they were published. */
  forecasts(seriesId: string, since: number, until = Number.MAX_SAFE_INTEGER): StoredForecast[] {
    const rows = this.#require()
      .prepare("SELECT issued_at, body FROM forecasts WHERE series_id = ? AND issued_at >= ? AND issued_at < ? ORDER BY issued_at")
      .all(seriesId, since, until) as { issued_at: number; body: string }[];
    return rows.map((r) => ({
      series_id: seriesId,
      issued_at: new Date(r.issued_at).toISOString(),
      body: JSON.parse(r.body) as Record<string, unknown>,
    }));
  }

  /**
   * The actual values of a forecast series over [from, to), one per forecast step, made as its
   * forecasts' values are (the same step and aggregate); null where nothing was read. Empty when
   * the series has issued no forecast yet.
   */
  actuals(seriesId: string, from: number, to: number): { ts: string; value: number | null }[] {
    const last = this.#require()
      .prepare("SELECT source, step_ms, aggregate, bucket_ms FROM forecasts WHERE series_id = ? ORDER BY issued_at DESC LIMIT 1")
      .get(seriesId) as { source: string; step_ms: number; aggregate: Aggregate; bucket_ms: number } | undefined;
    if (!last) return [];
    const step = last.step_ms;
    const start = Math.ceil(from / step) * step;
    const steps = Math.max(0, Math.floor((to - start) / step));
    const g = Math.max(1, Math.round(step / last.bucket_ms));
    const fine = stepValues(this.buckets(last.source, last.bucket_ms, start - last.bucket_ms, start + steps * step), {
      from: start,
      steps: steps * g,
      stepMs: last.bucket_ms,
      aggregate: last.aggregate,
    });
    return Array.from({ length: steps }, (_, i) => {
      const part = fine.slice(i * g, (i + 1) * g).filter((v) => !Number.isNaN(v));
      const value =
        part.length === 0 ? null : last.aggregate === "mean" ? part.reduce((a, b) => a + b, 0) / part.length : part.reduce((a, b) => a + b, 0);
      return { ts: new Date(start + i * step).toISOString(), value };
    });
  }

  /** How long raw readings are kept behind each series' newest one (ms; 0: none kept). */
  get rawRetentionMs(): number {
    return this.#opts.rawRetentionMs;
  }

  /** The series recorded so far whose names start with `prefix`, sorted. */
  seriesNames(prefix: string): string[] {
    return [...this.#watermarks.keys()].filter((s) => s.startsWith(prefix)).sort();
  }

  /** The newest reading time of a series (good or not): how far its clock has got. */
  watermark(series: string): number | undefined {
    return this.#watermarks.get(series);
  }

  /**
   * Writes every queued reading, in transactions of at most WRITE_CHUNK rows. When a write fails
   * (a full disk) the rest stay queued for the next flush, at most HELD_MAX of them (the newest),
   * and it throws. Small transactions matter there: one that outgrows SQLite's page cache on a
   * full disk makes SQLite retry its spill for every page, which held the event loop for minutes.
   */
  flush(): void {
    if (this.#queue.length === 0 || !this.#writeBatch) return;
    try {
      while (this.#queue.length > 0) {
        const rows = this.#queue.slice(0, WRITE_CHUNK);
        this.#writeBatch(rows);
        this.#queue.splice(0, rows.length);
        this.#written += rows.length;
      }
    } catch (err) {
      const over = this.#queue.length - HELD_MAX;
      if (over > 0) {
        this.#queue.splice(0, over);
        this.#lostRows += over;
      }
      throw err;
    }
  }

  /** Buckets of a series at a step with start in [from, to), oldest first. */
  buckets(series: string, stepMs: number, from: number, to: number): Bucket[] {
    // Reads work on a full disk: a failed flush only leaves the newest readings out for now.
    this.#flushLogged();
    this.#require();
    return this.#selectBuckets!.all(series, stepMs, from, to).map((r) => ({
      start: r[0]!,
      n: r[1]!,
      sum: r[2]!,
      first: r[3]!,
      firstTs: r[4]!,
      last: r[5]!,
      lastTs: r[6]!,
    }));
  }

  /** Raw readings of a series in [from, to), for tools and tests. */
  raw(series: string, from: number, to: number): { ts: number; value: number | null; quality: string }[] {
    this.#flushLogged();
    return this.#require()
      .prepare("SELECT ts, value, quality FROM raw WHERE series = ? AND ts >= ? AND ts < ? ORDER BY ts")
      .all(series, from, to) as {
      ts: number;
      value: number | null;
      quality: string;
    }[];
  }

  /**
   * Deletes what is past retention. Retention runs on each series' own clock (its newest
   * reading), so a replay of old data is not deleted the moment it is written.
   */
  prune(): void {
    const db = this.#require();
    try {
      this.flush();
      let raw = 0;
      let buckets = 0;
      for (const [series, mark] of this.#watermarks) {
        raw += db.prepare("DELETE FROM raw WHERE series = ? AND ts < ?").run(series, mark - this.#opts.rawRetentionMs).changes;
        buckets += db.prepare("DELETE FROM buckets WHERE series = ? AND start < ?").run(series, mark - this.#opts.retentionMs).changes;
        db.prepare("DELETE FROM forecasts WHERE source = ? AND issued_at < ?").run(series, mark - this.#opts.retentionMs);
      }
      if (raw + buckets > 0) this.#log.debug({ raw, buckets }, "history: pruned past retention");
    } catch (err) {
      this.#error = describeWriteError(err, path.dirname(this.#opts.file));
      this.#errors.failure({ error: this.#error }, "history: prune failed");
    }
  }

  #flushLogged(): void {
    try {
      this.flush();
      if (this.#error !== undefined) this.#errors.success({ not_recorded: this.#lostRows }, "history: writes work again");
      this.#error = undefined;
    } catch (err) {
      this.#error = describeWriteError(err, path.dirname(this.#opts.file));
      this.#errors.failure(
        { error: this.#error, queued: this.#queue.length, not_recorded: this.#lostRows },
        `history: write failed; readings wait in memory (at most ${HELD_MAX}, older ones are not recorded; they were still published)`,
      );
    }
  }

  #require(): Database.Database {
    if (!this.#db) throw new Error("history store is not open");
    return this.#db;
  }
}
