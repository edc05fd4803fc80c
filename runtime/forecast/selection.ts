import { backtest, builtinCandidates, daySteps, type Candidate } from "./backtest/index.js";
import { onnxCandidate } from "./backtest/onnxCandidate.js";
import { seasons, type StepSeries } from "./backtest/stepSeries.js";
import { decideScaling } from "./scaling.js";
import type { Selection, SeriesRuntime } from "./seriesRuntime.js";

const yieldLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

/** The model as a candidate for this series, with its scaling decided on the series' values; or why not. */
function modelCandidate(rt: SeriesRuntime, s: StepSeries): { c?: Candidate; reason?: string } {
  if (!rt.model || !rt.modelOpts) return {};
  const finite = Array.from(s.values).filter(Number.isFinite);
  const d = decideScaling(rt.cfg.scaling, rt.model.spec, rt.unit, finite);
  if ("refused" in d) return { reason: d.refused };
  if (d.warning && !rt.scalingWarned) {
    rt.scalingWarned = true;
    rt.log.warn({ model: rt.model.spec.id }, `forecast ${rt.id}: ${d.warning}`);
  }
  rt.modelOpts.scaling = d.scaling;
  return { c: onnxCandidate(rt.model, rt.modelOpts) };
}

/**
 * Chooses the series' forecaster on its own history `s` (ending at the issue time): every
 * candidate is backtested over the last backtest_days days (fewer while the history is short)
 * and the lowest MAE wins, so the choice is never worse on the backtest than the best naive.
 * Until the history covers the naive week (or day) and the model plus one day of origins, the
 * model is used (else the naive forecast that the history allows), and the reason is kept.
 */
export async function choose(rt: SeriesRuntime, s: StepSeries, issue: number): Promise<Selection | { none: string; scaling?: true }> {
  const E = rt.stepMs!;
  const H = rt.horizon;
  const built = builtinCandidates(E, H, rt.cfg.candidates);
  const model = rt.cfg.candidates.includes("model") ? modelCandidate(rt, s) : {};
  const candidates = [...built.candidates, ...(model.c ? [model.c] : [])];
  const n = s.values.length;
  const naive = built.candidates.find((c) => c.name === "seasonal_naive_week") ?? built.candidates.find((c) => c.name === "seasonal_naive_day");
  const required = Math.max(naive?.needs ?? 0, model.c?.needs ?? 0);
  const perDay = daySteps(1, E);
  if (candidates.length === 0) {
    if (model.reason) return { none: model.reason, scaling: true };
    return {
      none: `no candidate can forecast this series (${[...built.unavailable.map((u) => `${u.name}: ${u.reason}`), rt.modelError].filter(Boolean).join("; ")})`,
    };
  }
  const days = Math.min(rt.cfg.backtest_days, (n - required) / perDay);
  // at least a day of origins, each with its whole horizon inside the history
  if (daySteps(days, E) - H + 1 >= perDay) {
    const r = await backtest(s, candidates, { horizon: H, days, yieldFn: yieldLoop });
    const chosen = candidates.find((c) => c.name === r.chosen)!;
    const scores = [
      ...r.scores,
      ...built.unavailable.map((u) => ({ name: u.name, mae: Number.NaN, mape: Number.NaN, points: 0, unavailable: u.reason })),
    ];
    if (rt.cfg.candidates.includes("model") && !model.c && (model.reason ?? rt.modelError))
      scores.push({ name: "model", mae: Number.NaN, mape: Number.NaN, points: 0, unavailable: model.reason ?? rt.modelError! });
    // live forecasts come from a fit on all of the history, the backtest's own fit is on the part before it
    const fitted = await chosen.fit(s, n);
    return {
      candidate: r.chosen,
      fitted,
      at: issue,
      needs: chosen.needs,
      backtest: {
        from: s.start + r.firstOrigin * E,
        to: s.start + (r.lastOrigin + H) * E,
        days,
        origins: r.origins,
        points: r.points,
        scores,
        quantiles: r.quantiles,
      },
    };
  }
  const reason = `no backtest yet: ${n} steps of history, a day of backtest origins needs ${required + perDay + H - 1}`;
  const { week, day } = seasons(E);
  const fallback =
    model.c ??
    candidates.find((c) => c.name === "seasonal_naive_week" && week !== undefined && n >= week) ??
    candidates.find((c) => c.name === "seasonal_naive_day" && day !== undefined && n >= day);
  if (!fallback) return { none: `${reason}; not even a naive forecast can be made yet` };
  return { candidate: fallback.name, fitted: await fallback.fit(s, n), at: issue, needs: fallback.needs, reason };
}
