import { aggregateOf, type ForecastConfig } from "../config/sections/forecasts.js";
import type { MeterConfig } from "../config/sections/meters.js";
import type { HistoryStore } from "../history/historyStore.js";
import type { Logger } from "../log/logger.js";
import type { Metrics } from "../metrics.js";
import { FORECASTS, type ForecastBody } from "../contract/index.js";
import type { MessageSink } from "../mqtt/sink.js";
import type { Topics } from "../mqtt/topics.js";
import type { Part, PartHealth } from "../part.js";
import { checkTimeZone } from "./calendar.js";
import type { ForecastModel, WindowInput } from "./forecastModel.js";
import { sourceUnit } from "./sourceUnit.js";
import { buildWindow } from "./window.js";

export interface ForecastSchedulerOptions {
  forecasts: readonly ForecastConfig[];
  meters: readonly MeterConfig[];
  /** Loads (once) the model a forecast names; the scheduler owns and releases what it returns. */
  loadModel: (modelId: string) => Promise<ForecastModel>;
  store: HistoryStore;
  sink: MessageSink;
  topics: Topics;
  log: Logger;
  metrics?: Metrics;
  /** How often step completion is checked (wall clock). */
  tickMs?: number;
  /** After the first series of a step is due, how long to wait for the others so they share one run. */
  batchWindowMs?: number;
  /** Live sources' steps also complete by the wall clock this long after they end, so a dead meter is noticed. */
  liveGraceMs?: number;
}

interface SeriesState {
  cfg: ForecastConfig;
  model: ForecastModel;
  timeZone: string;
  unit: string;
  live: boolean;
  lastIssue: number | undefined;
  published: number;
  skipped: number;
  lastReason: string | undefined;
}

const iso = (t: number): string => new Date(t).toISOString();

/**
 * Makes the forecasts. A series is due when a step of its model completes (its history has a
 * reading past the step's end, or, for live meters, the wall clock is past it). Then its window
 * is built from history, short gaps filled, and every series due at the same time runs through
 * its model in one batched run; a series whose window has too much missing is skipped with
 * the reason logged. Each forecast goes to `forecasts/<series_id>`.
 */
export class ForecastScheduler implements Part {
  readonly name = "forecasts";
  readonly kind = "forecast";
  readonly #opts: ForecastSchedulerOptions;
  readonly #log: Logger;
  #series: SeriesState[] = [];
  readonly #failed = new Map<string, string>();
  #models = new Map<string, ForecastModel>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #firstDueAt: number | undefined;
  #batches = 0;

  constructor(opts: ForecastSchedulerOptions) {
    this.#opts = opts;
    this.#log = opts.log;
  }

  async start(): Promise<void> {
    const o = this.#opts;
    const modelErrors = new Map<string, string>();
    for (const cfg of o.forecasts) {
      try {
        if (modelErrors.has(cfg.model)) throw new Error(modelErrors.get(cfg.model));
        let model = this.#models.get(cfg.model);
        if (!model) {
          try {
            model = await o.loadModel(cfg.model);
          } catch (err) {
            modelErrors.set(cfg.model, `model "${cfg.model}": ${(err as Error).message}`);
            throw new Error(modelErrors.get(cfg.model));
          }
          this.#models.set(cfg.model, model);
        }
        const timeZone = cfg.timezone ?? model.spec.timeZone;
        checkTimeZone(timeZone);
        o.store.track(cfg.source, model.spec.stepMs);
        const meter = cfg.source.startsWith("meter:") ? o.meters.find((m) => m.id === cfg.source.split(":")[1]) : undefined;
        this.#series.push({
          cfg,
          model,
          timeZone,
          unit: sourceUnit(cfg.source, o.meters),
          live: meter === undefined || meter.driver === "modbus-tcp" || meter.driver === "modbus-rtu" || meter.driver === "mqtt",
          lastIssue: undefined,
          published: 0,
          skipped: 0,
          lastReason: undefined,
        });
      } catch (err) {
        this.#failed.set(cfg.id, (err as Error).message);
        this.#log.error({ series: cfg.id, err }, "forecast series cannot run; the others keep running");
      }
    }
    if (this.#series.length > 0) this.#timer = setInterval(() => this.#tick(), o.tickMs ?? 250);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
    for (const m of this.#models.values()) await m.release();
    this.#models.clear();
    this.#series = [];
  }

  health(): PartHealth {
    const series: Record<string, unknown> = {};
    for (const s of this.#series) {
      series[s.cfg.id] = {
        last_issue: s.lastIssue !== undefined ? iso(s.lastIssue) : null,
        published: s.published,
        skipped: s.skipped,
        ...(s.lastReason !== undefined ? { last_skip_reason: s.lastReason } : {}),
      };
    }
    for (const [id, error] of this.#failed) series[id] = { state: "failed", error };
    return { state: this.#failed.size > 0 ? "degraded" : "running", batches: this.#batches, series };
  }

  /** The start of the newest step of a series that is complete, or undefined when nothing is known. */
  #issueTime(s: SeriesState): number | undefined {
    const step = s.model.spec.stepMs;
    const mark = this.#opts.store.watermark(s.cfg.source);
    const clock = s.live ? Math.max(mark ?? -Infinity, Date.now() - (this.#opts.liveGraceMs ?? 5000)) : mark;
    if (clock === undefined || !Number.isFinite(clock)) return undefined;
    return Math.floor(clock / step) * step;
  }

  #tick(): void {
    if (this.#running) return;
    const due: { s: SeriesState; issue: number }[] = [];
    for (const s of this.#series) {
      const issue = this.#issueTime(s);
      if (issue !== undefined && (s.lastIssue === undefined || issue > s.lastIssue)) due.push({ s, issue });
    }
    if (due.length === 0) return;
    const now = Date.now();
    this.#firstDueAt ??= now;
    if (due.length < this.#series.length && now - this.#firstDueAt < (this.#opts.batchWindowMs ?? 1000)) return;
    this.#firstDueAt = undefined;
    this.#running = this.runDue(due)
      .catch((err: unknown) => this.#log.error({ err }, "forecast run failed"))
      .finally(() => {
        this.#running = undefined;
      });
  }

  /** Builds the windows of the due series and runs each model once for all of them. */
  async runDue(due: readonly { s: SeriesState; issue: number }[]): Promise<void> {
    const byModel = new Map<ForecastModel, { s: SeriesState; issue: number; input: WindowInput; filled: number }[]>();
    for (const { s, issue } of due) {
      s.lastIssue = issue;
      const spec = s.model.spec;
      const from = issue - spec.historySteps * spec.stepMs;
      const buckets = this.#opts.store.buckets(s.cfg.source, spec.stepMs, from - spec.stepMs, issue);
      const w = buildWindow(buckets, {
        from,
        steps: spec.historySteps,
        stepMs: spec.stepMs,
        aggregate: aggregateOf(s.cfg),
        maxGapSteps: s.cfg.max_gap_steps,
        maxMissingRatio: s.cfg.max_missing_ratio,
      });
      if (!w.ok) {
        s.skipped++;
        s.lastReason = w.reason;
        this.#opts.metrics
          ?.counter("cityedge_forecasts_skipped_total", "Forecasts skipped because too much history was missing")
          .inc({ series: s.cfg.id });
        this.#log.warn({ series: s.cfg.id, source: s.cfg.source, issue: iso(issue), reason: w.reason }, `forecast ${s.cfg.id} skipped: ${w.reason}`);
        continue;
      }
      const list = byModel.get(s.model) ?? [];
      list.push({ s, issue, input: { values: w.values, from, timeZone: s.timeZone, scaling: s.cfg.scaling }, filled: w.filled });
      byModel.set(s.model, list);
    }
    for (const [model, items] of byModel) {
      const t0 = performance.now();
      const outputs = await model.predict(items.map((i) => i.input));
      const ms = performance.now() - t0;
      this.#batches++;
      this.#opts.metrics
        ?.histogram("cityedge_forecast_batch_seconds", "Time of one batched forecast run", [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5])
        .observe(ms / 1000, { model: model.spec.id });
      this.#log.debug({ model: model.spec.id, series: items.length, ms: Math.round(ms * 10) / 10 }, "forecast batch ran");
      items.forEach((item, b) => this.#publish(item.s, item.issue, outputs[b]!, item.filled));
    }
  }

  #publish(s: SeriesState, issue: number, horizon: number[], filled: number): void {
    const spec = s.model.spec;
    const body: ForecastBody = {
      series_id: s.cfg.id,
      source: s.cfg.source,
      model: { id: spec.id, version: spec.version, variant: s.model.session.variant, provider: s.model.session.provider },
      issued_at: iso(issue),
      step_s: spec.stepMs / 1000,
      aggregate: aggregateOf(s.cfg),
      unit: s.unit,
      horizon: horizon.map((value, k) => ({ ts: iso(issue + k * spec.stepMs), value })),
      window: { from: iso(issue - spec.historySteps * spec.stepMs), steps: spec.historySteps, filled },
    };
    try {
      FORECASTS.publish(this.#opts.sink, this.#opts.topics, body);
      s.published++;
      s.lastReason = undefined;
      this.#opts.metrics?.counter("cityedge_forecasts_total", "Forecasts published").inc({ series: s.cfg.id });
    } catch (err) {
      this.#log.error({ series: s.cfg.id, err }, "forecast could not be published");
    }
  }
}
