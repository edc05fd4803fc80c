import type { HistoryStore } from "../history/historyStore.js";

/** One issued forecast as the charts draw it: times in ms, values, and its P10..P90 interval when it has one. */
export interface IssuedForecast {
  issued_at: number;
  t: number[];
  v: number[];
  lo?: number[];
  hi?: number[];
}

export interface ForecastChart {
  id: string;
  source: string;
  unit: string;
  step_s: number;
  /** The series' own clock (its source's newest reading): a replayed or simulated meter runs on its own. */
  now: number | null;
  actual: { t: number[]; v: (number | null)[] };
  forecasts: IssuedForecast[];
}

interface Horizon {
  ts?: unknown;
  value?: unknown;
  p10?: unknown;
  p90?: unknown;
}

const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

/**
 * The charts' view of a forecast series, from the history store's archive: the forecasts issued
 * in the last hours of the series' own clock (with P10/P90 when the forecast has them), and the
 * actual values they forecast, made as the forecasts' values are (same step and aggregate).
 */
export function forecastChart(store: HistoryStore, series: { id: string; source: string }, hours: number): ForecastChart {
  const now = store.watermark(series.source) ?? null;
  const out: ForecastChart = { id: series.id, source: series.source, unit: "", step_s: 0, now, actual: { t: [], v: [] }, forecasts: [] };
  if (now === null) return out;
  const from = now - hours * 3_600_000;
  const issued = store.forecasts(series.id, from);
  const last = issued.at(-1)?.body;
  out.unit = typeof last?.unit === "string" ? last.unit : "";
  out.step_s = num(last?.step_s) ?? 0;
  for (const f of issued) {
    const horizon = Array.isArray(f.body.horizon) ? (f.body.horizon as Horizon[]) : [];
    const chart: IssuedForecast = { issued_at: Date.parse(f.issued_at), t: [], v: [] };
    const lo: number[] = [];
    const hi: number[] = [];
    for (const h of horizon) {
      const t = Date.parse(String(h.ts));
      const v = num(h.value);
      if (Number.isNaN(t) || v === undefined) continue;
      chart.t.push(t);
      chart.v.push(v);
      const l = num(h.p10);
      const u = num(h.p90);
      if (l !== undefined && u !== undefined) {
        lo.push(l);
        hi.push(u);
      }
    }
    if (lo.length > 0 && lo.length === chart.t.length) Object.assign(chart, { lo, hi });
    out.forecasts.push(chart);
  }
  for (const a of store.actuals(series.id, from, now + 1)) {
    out.actual.t.push(Date.parse(a.ts));
    out.actual.v.push(a.value);
  }
  return out;
}
