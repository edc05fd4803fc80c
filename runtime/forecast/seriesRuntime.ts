import type { ForecastConfig } from "../config/sections/forecasts.js";
import type { Logger } from "../log/logger.js";
import type { PartHealth } from "../part.js";
import type { CandidateScore, Fitted, ResidualQuantiles } from "./backtest/index.js";
import { formatStep, iso } from "./backtest/stepSeries.js";
import type { OnnxCandidateOptions } from "./backtest/onnxCandidate.js";
import type { ForecastModel } from "./forecastModel.js";
import { seriesSteps } from "./steps.js";

const DAY_MS = 86_400_000;

/** Why a forecast was not made; counted per series in health. */
export type SkipKind = "gap" | "missing" | "no_history" | "scaling" | "step";

/** One forecast series in health: its forecaster, the backtest that chose it, and what it published or skipped. */
export type SeriesHealth = PartHealth & {
  step_s: number | null;
  source_step_s: number | null;
  horizon: number;
  candidate: string | null;
  chosen_at: string | null;
  backtest: { mae: number; mape: number; days: number; origins: number } | null;
  no_backtest_reason?: string;
  last_issue: string | null;
  published: number;
  skipped: number;
  skipped_by_reason: Record<SkipKind, number>;
  last_skip_reason?: string;
  errors: number;
  last_error?: string;
  model_error?: string;
};

/** The forecaster a series uses until it is chosen again, and the backtest it was chosen by. */
export interface Selection {
  candidate: string;
  fitted: Fitted;
  /** Issue time it was chosen at (the series' clock). */
  at: number;
  /** Steps of history the chosen one looks back; the gap rules apply to them. */
  needs: number;
  backtest?: {
    from: number;
    to: number;
    days: number;
    origins: number;
    points: number;
    scores: CandidateScore[];
    quantiles: ResidualQuantiles;
  };
  /** Why there is no backtest yet (too little history). */
  reason?: string;
}

export interface SeriesSetup {
  cfg: ForecastConfig;
  model: ForecastModel | undefined;
  /** The model was configured but cannot be used (load failed, does not fit): the reason. */
  modelError: string | undefined;
  timeZone: string;
  unit: string;
  live: boolean;
  /** Step of the history buckets: the forecast's finest step. */
  bucketMs: number;
  log: Logger;
}

/**
 * One forecast series while the daemon runs: its steps once the source's native step is known,
 * the model's fitness for them, the current choice, and the counts health reports.
 */
export class SeriesRuntime {
  readonly cfg: ForecastConfig;
  readonly model: ForecastModel | undefined;
  readonly timeZone: string;
  readonly unit: string;
  readonly live: boolean;
  readonly bucketMs: number;
  readonly log: Logger;
  modelError: string | undefined;
  /** The forecast's step, its horizon and the source's step, once known. */
  stepMs: number | undefined;
  horizon = 0;
  sourceStepMs: number | undefined;
  /** Why the series cannot be forecast at all (a source step it cannot serve). */
  stepError: string | undefined;
  modelOpts: OnnxCandidateOptions | undefined;
  selection: Selection | undefined;
  lastIssue: number | undefined;
  published = 0;
  errors = 0;
  lastError: string | undefined;
  readonly skipped: Record<SkipKind, number> = { gap: 0, missing: 0, no_history: 0, scaling: 0, step: 0 };
  lastSkipReason: string | undefined;
  scalingWarned = false;

  constructor(s: SeriesSetup) {
    this.cfg = s.cfg;
    this.model = s.model;
    this.modelError = s.modelError;
    this.timeZone = s.timeZone;
    this.unit = s.unit;
    this.live = s.live;
    this.bucketMs = s.bucketMs;
    this.log = s.log;
  }

  get id(): string {
    return this.cfg.id;
  }

  /**
   * Works out the forecast's step from the source's (configured, else measured): the bucket
   * step for a finer source, the source's own step for a coarser one, and whether the model can
   * serve that step. False while the source's step is not known yet.
   */
  resolveSteps(measured: number | undefined): boolean {
    if (this.stepMs !== undefined || this.stepError !== undefined) return true;
    const source = this.cfg.source_step_s !== undefined ? this.cfg.source_step_s * 1000 : measured;
    if (source === undefined) return false;
    this.sourceStepMs = source;
    const m = this.model;
    const useModel = m !== undefined && this.cfg.candidates.includes("model");
    const steps = seriesSteps(this.bucketMs, source, useModel ? { id: m.spec.id, stepMs: m.spec.stepMs } : undefined, this.cfg.max_interpolate);
    if (steps.error !== undefined) {
      this.stepError = steps.error;
      this.log.error({ source_step_ms: source, step_ms: this.bucketMs }, `forecast ${this.id} cannot run: ${this.stepError}`);
      return true;
    }
    const e = steps.stepMs!;
    this.stepMs = e;
    if (steps.modelError !== undefined) {
      this.modelError = steps.modelError;
      this.log.warn({ model: m?.spec.id }, `forecast ${this.id}: ${this.modelError}; the other candidates still run`);
    } else if (useModel) {
      this.modelOpts = {
        seriesStepMs: e,
        aggregate: this.cfg.aggregate ?? (this.cfg.source.startsWith("camera:") ? "sum" : "mean"),
        scaling: "window",
        maxGapSteps: this.cfg.max_gap_steps,
        maxMissingRatio: this.cfg.max_missing_ratio,
      };
    }
    this.horizon = this.cfg.horizon ?? (this.modelOpts && m ? Math.floor((m.spec.horizon * m.spec.stepMs) / e) : Math.max(1, Math.round(DAY_MS / e)));
    this.log.info(
      { source_step_ms: source, step_ms: e, horizon: this.horizon, model: this.modelOpts ? m?.spec.id : null },
      `forecast ${this.id}: source step ${formatStep(source)}, forecasts every ${formatStep(e)}, ${this.horizon} steps ahead`,
    );
    return true;
  }

  skip(kind: SkipKind, reason: string, issue: number): void {
    this.skipped[kind]++;
    this.lastSkipReason = reason;
    this.log.warn({ source: this.cfg.source, issue: iso(issue), reason, kind }, `forecast ${this.id} skipped: ${reason}`);
  }

  fail(err: unknown, issue: number): void {
    this.errors++;
    this.lastError = (err instanceof Error ? err.message : String(err)).split("\n")[0]!;
    this.log.error({ source: this.cfg.source, issue: iso(issue), err }, `forecast ${this.id} failed: ${this.lastError}`);
  }

  health(): SeriesHealth {
    const sel = this.selection;
    const bt = sel?.backtest;
    const chosen = bt?.scores.find((s) => s.name === sel?.candidate);
    const skipped = Object.values(this.skipped).reduce((a, b) => a + b, 0);
    const problem = this.stepError ?? this.modelError ?? this.lastError;
    return {
      state: this.stepError ? "failed" : problem !== undefined ? "degraded" : "running",
      ...(problem !== undefined ? { error: problem } : {}),
      step_s: this.stepMs !== undefined ? this.stepMs / 1000 : null,
      source_step_s: this.sourceStepMs !== undefined ? this.sourceStepMs / 1000 : null,
      horizon: this.horizon,
      candidate: sel?.candidate ?? null,
      chosen_at: sel ? iso(sel.at) : null,
      backtest: bt && chosen ? { mae: chosen.mae, mape: chosen.mape, days: bt.days, origins: bt.origins } : null,
      ...(sel?.reason !== undefined ? { no_backtest_reason: sel.reason } : {}),
      last_issue: this.lastIssue !== undefined ? iso(this.lastIssue) : null,
      published: this.published,
      skipped,
      skipped_by_reason: { ...this.skipped },
      ...(this.lastSkipReason !== undefined ? { last_skip_reason: this.lastSkipReason } : {}),
      errors: this.errors,
      ...(this.lastError !== undefined ? { last_error: this.lastError } : {}),
      ...(this.modelError !== undefined ? { model_error: this.modelError } : {}),
    };
  }
}
