import { aggregateOf, type ForecastConfig } from "../config/sections/forecasts.js";
import type { MeterConfig } from "../config/sections/meters.js";
import type { HistoryStore } from "../history/historyStore.js";
import type { Logger } from "../log/logger.js";
import type { Metrics } from "../metrics.js";
import type { ForecastBody } from "../contract/index.js";
import type { DaemonBus } from "../events/events.js";
import type { Part, PartHealth } from "../part.js";
import type { SeriesHealth } from "./seriesRuntime.js";
import { daySteps } from "./backtest/index.js";
import { modelWindow, toSeriesSteps } from "./backtest/onnxCandidate.js";
import type { StepSeries } from "./backtest/stepSeries.js";
import { checkTimeZone } from "./calendar.js";
import type { ForecastModel, WindowInput } from "./forecastModel.js";
import { historySeries } from "./historySeries.js";
import { forecastBody } from "./payload.js";
import { decideScaling } from "./scaling.js";
import { choose } from "./selection.js";
import { SeriesRuntime, type SkipKind } from "./seriesRuntime.js";
import { sourceFacts } from "./sourceFacts.js";
import { fillGaps, fillShortGaps } from "./window.js";

/** History read for a forecast beyond the backtest: enough to fit Holt-Winters and the regression. */
const FIT_DAYS = 28;

export interface ForecastSchedulerOptions {
  forecasts: readonly ForecastConfig[];
  meters: readonly MeterConfig[];
  /** Loads (once) the model a forecast names; the scheduler owns and releases what it returns. */
  /** `log` names the series that use the model, for the lines its loading writes. */
  loadModel: (modelId: string, log: Logger) => Promise<ForecastModel>;
  store: HistoryStore;
  /** Forecasts are emitted here. */
  bus: DaemonBus;
  log: Logger;
  metrics?: Metrics;
  /** How often step completion is checked (wall clock). */
  tickMs?: number;
  /** After the first series of a step is due, how long to wait for the others so they share one run. */
  batchWindowMs?: number;
  /** Live sources' steps also complete by the wall clock this long after they end, so a dead meter is noticed. */
  liveGraceMs?: number;
}

const iso = (t: number): string => new Date(t).toISOString();

interface ModelJob {
  rt: SeriesRuntime;
  issue: number;
  input: WindowInput;
  filled: number;
  windowFrom: number;
}

/** The forecasts in health: batched model runs, and each series' health by id (`failed` with the error when it could not be set up). */
export type ForecastHealth = PartHealth & { batches: number; series: Record<string, PartHealth | SeriesHealth> };

/**
 * Makes the forecasts. A series is due when a step of it completes (its history has a reading
 * past the step's end, or, for live meters, the wall clock is past it). Its history is read at
 * the forecast's step, its forecaster chosen by backtest (again every reselect_h hours of its
 * clock), and the chosen one forecasts; series whose choice is the ONNX model share one batched
 * run per model. A series whose recent history has too much missing is skipped with the reason
 * logged and counted. Each forecast goes to `forecasts/<series_id>` and into the history store.
 */
export class ForecastScheduler implements Part {
  readonly name = "forecasts";
  readonly kind = "forecast";
  readonly #opts: ForecastSchedulerOptions;
  readonly #log: Logger;
  #series: SeriesRuntime[] = [];
  #models = new Map<string, ForecastModel>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #firstDueAt: number | undefined;
  #batches = 0;
  readonly #failed = new Map<string, string>();

  constructor(opts: ForecastSchedulerOptions) {
    this.#opts = opts;
    this.#log = opts.log;
  }

  async start(): Promise<void> {
    const o = this.#opts;
    const modelErrors = new Map<string, string>();
    for (const id of new Set(o.forecasts.map((f) => f.model).filter((m): m is string => m !== undefined))) {
      const users = o.forecasts.filter((f) => f.model === id).map((f) => f.id);
      try {
        this.#models.set(id, await o.loadModel(id, this.#log.child({ series: users })));
      } catch (err) {
        const msg = `model "${id}": ${(err as Error).message}`;
        modelErrors.set(id, msg);
        this.#log.error({ model: id, series: users, err }, `forecast series ${users.join(", ")}: ${msg}; they run on the built-in forecasters`);
      }
    }
    for (const cfg of o.forecasts) {
      const log = this.#log.child({ series: cfg.id });
      try {
        const model = cfg.model !== undefined ? this.#models.get(cfg.model) : undefined;
        const timeZone = cfg.timezone ?? model?.spec.timeZone ?? "UTC";
        checkTimeZone(timeZone);
        const bucketMs = cfg.step_s !== undefined ? cfg.step_s * 1000 : (model?.spec.stepMs ?? 1_800_000);
        o.store.track(cfg.source, bucketMs);
        const facts = sourceFacts(cfg.source, o.meters);
        this.#series.push(
          new SeriesRuntime({
            cfg,
            model,
            modelError: cfg.model !== undefined ? modelErrors.get(cfg.model) : undefined,
            timeZone,
            unit: facts.unit,
            live: facts.live,
            bucketMs,
            log,
          }),
        );
      } catch (err) {
        this.#failed.set(cfg.id, (err as Error).message);
        log.error({ err }, `forecast ${cfg.id} cannot run; the others keep running`);
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

  health(): ForecastHealth {
    const series: Record<string, PartHealth | SeriesHealth> = {};
    for (const s of this.#series) series[s.id] = s.health();
    for (const [id, error] of this.#failed) series[id] = { state: "failed", error };
    const degraded = this.#failed.size > 0 || this.#series.some((s) => s.health().state !== "running");
    return { state: degraded ? "degraded" : "running", batches: this.#batches, series };
  }

  /** The start of the newest complete step of a series, or undefined when nothing is known. */
  #issueTime(s: SeriesRuntime): number | undefined {
    const step = s.stepMs!;
    const mark = this.#opts.store.watermark(s.cfg.source);
    const clock = s.live ? Math.max(mark ?? -Infinity, Date.now() - (this.#opts.liveGraceMs ?? 5000)) : mark;
    if (clock === undefined || !Number.isFinite(clock)) return undefined;
    return Math.floor(clock / step) * step;
  }

  #tick(): void {
    if (this.#running) return;
    const due: { s: SeriesRuntime; issue: number }[] = [];
    for (const s of this.#series) {
      if (!s.resolveSteps(this.#opts.store.nativeStep(s.cfg.source, s.bucketMs)) || s.stepError !== undefined) continue;
      const issue = this.#issueTime(s);
      if (issue !== undefined && (s.lastIssue === undefined || issue > s.lastIssue)) due.push({ s, issue });
    }
    if (due.length === 0) return;
    const now = Date.now();
    this.#firstDueAt ??= now;
    if (due.length < this.#series.length && now - this.#firstDueAt < (this.#opts.batchWindowMs ?? 1000)) return;
    this.#firstDueAt = undefined;
    this.#running = this.runDue(due)
      .catch((err: unknown) => this.#log.error({ err, series: due.map((d) => d.s.id) }, "forecast run failed"))
      .finally(() => {
        this.#running = undefined;
      });
  }

  /** The series' history up to the issue time, as read (raw) and with short gaps filled (for the built-in forecasters). */
  #history(rt: SeriesRuntime, issue: number): { raw: StepSeries; filled: StepSeries } {
    const E = rt.stepMs!;
    const steps = daySteps(rt.cfg.backtest_days + FIT_DAYS, E);
    const raw = historySeries(this.#opts.store, rt.cfg.source, {
      bucketMs: rt.bucketMs,
      stepMs: E,
      from: issue - steps * E,
      to: issue,
      aggregate: aggregateOf(rt.cfg),
      timeZone: rt.timeZone,
    });
    let first = 0;
    while (first < raw.values.length && Number.isNaN(raw.values[first]!)) first++;
    const trimmed = { ...raw, start: raw.start + first * E, values: raw.values.subarray(first) };
    return { raw: trimmed, filled: { ...trimmed, values: fillShortGaps(trimmed.values, rt.cfg.max_gap_steps) } };
  }

  /** Builds every due series' forecast: built-in ones at once, the model's in one batched run per model. */
  async runDue(due: readonly { s: SeriesRuntime; issue: number }[]): Promise<void> {
    const jobs = new Map<ForecastModel, ModelJob[]>();
    for (const { s: rt, issue } of due) {
      rt.lastIssue = issue;
      try {
        const { raw, filled: series } = this.#history(rt, issue);
        const reselect =
          rt.selection === undefined || rt.selection.backtest === undefined || issue - rt.selection.at >= rt.cfg.reselect_h * 3_600_000;
        if (reselect) {
          const picked = await choose(rt, series, issue);
          if ("none" in picked) {
            this.#skip(rt, picked.scaling ? "scaling" : "no_history", picked.none, issue);
            continue;
          }
          const changed = rt.selection?.candidate !== picked.candidate;
          rt.selection = picked;
          const bt = picked.backtest;
          rt.log.info(
            {
              candidate: picked.candidate,
              ...(bt
                ? { backtest: Object.fromEntries(bt.scores.map((c) => [c.name, c.unavailable ?? { mae: c.mae, mape: c.mape }])), days: bt.days }
                : { reason: picked.reason }),
            },
            `forecast ${rt.id}: ${changed ? "chose" : "kept"} ${picked.candidate}${bt ? ` (backtest MAE ${bt.scores.find((c) => c.name === picked.candidate)!.mae.toPrecision(4)} over ${bt.days.toFixed(1)} days)` : ` (${picked.reason})`}`,
          );
        }
        const sel = rt.selection!;
        const n = series.values.length;
        if (sel.candidate === "model" && rt.model && rt.modelOpts) {
          const w = modelWindow(rt.model, rt.modelOpts, raw, n);
          if (!w.ok) {
            this.#skip(rt, w.kind, w.reason, issue);
            continue;
          }
          const decision = rt.cfg.scaling === "window" ? undefined : decideScaling(rt.cfg.scaling, rt.model.spec, rt.unit, w.input.values);
          if (decision && "refused" in decision) {
            this.#skip(rt, "scaling", decision.refused, issue);
            continue;
          }
          const input = decision && "scaling" in decision ? { ...w.input, scaling: decision.scaling } : w.input;
          const list = jobs.get(rt.model) ?? [];
          list.push({ rt, issue, input, filled: w.filled, windowFrom: w.input.from });
          jobs.set(rt.model, list);
          continue;
        }
        const look = Math.min(sel.needs, n);
        const E = rt.stepMs!;
        const check = fillGaps(Array.from(raw.values.subarray(n - look)), {
          from: issue - look * E,
          steps: look,
          stepMs: E,
          maxGapSteps: rt.cfg.max_gap_steps,
          maxMissingRatio: rt.cfg.max_missing_ratio,
        });
        if (!check.ok) {
          this.#skip(rt, check.missing === look ? "no_history" : check.longestGap > rt.cfg.max_gap_steps ? "gap" : "missing", check.reason, issue);
          continue;
        }
        const [values] = await sel.fitted.forecast(series, [n], rt.horizon);
        if (!values || values.some((v) => !Number.isFinite(v))) {
          this.#skip(rt, "missing", `${sel.candidate} could not forecast: values it needs are missing`, issue);
          continue;
        }
        this.#publish(rt, issue, values, { id: sel.candidate, version: "builtin" }, { from: issue - look * E, steps: look, filled: check.filled });
      } catch (err) {
        rt.fail(err, issue);
      }
    }
    for (const [model, items] of jobs) {
      const ids = items.map((i) => i.rt.id);
      const t0 = performance.now();
      let outputs: number[][];
      try {
        outputs = await model.predict(items.map((i) => i.input));
      } catch (err) {
        const e = new Error(`series ${ids.join(", ")}: ${(err as Error).message}`);
        for (const i of items) i.rt.fail(e, i.issue);
        continue;
      }
      const ms = performance.now() - t0;
      this.#batches++;
      this.#opts.metrics?.histogram("cityedge_forecast_batch_seconds").observe(ms / 1000, { model: model.spec.id });
      this.#log.debug({ model: model.spec.id, series: ids, ms: Math.round(ms * 10) / 10 }, "forecast batch ran");
      items.forEach((item, b) => {
        const values = toSeriesSteps(model, item.rt.modelOpts!, outputs[b]!, item.rt.horizon);
        const info = { id: model.spec.id, version: model.spec.version, variant: model.session.variant, provider: model.session.provider };
        this.#publish(item.rt, item.issue, values, info, { from: item.windowFrom, steps: model.spec.historySteps, filled: item.filled });
      });
    }
  }

  #skip(rt: SeriesRuntime, kind: SkipKind, reason: string, issue: number): void {
    rt.skip(kind, reason, issue);
    this.#opts.metrics?.counter("cityedge_forecasts_skipped_total").inc({ series: rt.id });
  }

  #publish(
    rt: SeriesRuntime,
    issue: number,
    values: Float64Array,
    model: ForecastBody["model"],
    window: { from: number; steps: number; filled: number },
  ): void {
    const finite = Array.from(values).filter(Number.isFinite);
    const horizon = Float64Array.from(
      values.subarray(0, finite.length === values.length ? values.length : values.findIndex((v) => !Number.isFinite(v))),
    );
    const aggregate = aggregateOf(rt.cfg);
    const body = forecastBody(rt, issue, horizon, model, window, aggregate);
    try {
      this.#opts.bus.emit("forecasts", body);
      rt.published++;
      rt.lastSkipReason = undefined;
      rt.lastError = undefined;
      this.#opts.metrics?.counter("cityedge_forecasts_total").inc({ series: rt.id });
    } catch (err) {
      rt.fail(err, issue);
      return;
    }
    try {
      this.#opts.store.recordForecast({
        seriesId: rt.id,
        issuedAt: issue,
        source: rt.cfg.source,
        stepMs: rt.stepMs!,
        aggregate,
        bucketMs: rt.bucketMs,
        body,
      });
    } catch (err) {
      rt.log.error({ err, issue: iso(issue) }, `forecast ${rt.id}: published but not kept in the history store`);
    }
  }
}
