import { COUNTS_STEP_MS, intervalsSeries, parseLineSeries, type Direction } from "../history/series.js";
import type { HistoryStore } from "../history/historyStore.js";

/** Counts of one camera over time, ready for a chart: one x value per interval, one y series per line, label and direction. */
export interface CountsHistory {
  camera: string;
  /** The range asked for, ms since epoch. */
  from: number;
  to: number;
  /** Seconds per point: the counts interval (raw readings) or the history step (older ranges). */
  step_s: number;
  source: "raw" | "buckets";
  /** Point times: interval (or step) starts, ms since epoch, oldest first. */
  t: number[];
  series: { line: string; label: string; dir: Direction; values: number[] }[];
}

/**
 * A camera's line counts from `from` to `to`. Within the raw retention, one point per counts
 * interval (intervals with no crossing read 0); further back, per 15-minute sums.
 */
export function countsHistory(
  store: HistoryStore,
  cameraId: string,
  from: number,
  to: number,
  rawRetentionMs: number,
  intervalMs: number,
): CountsHistory {
  const prefix = `camera:${cameraId}:line:`;
  const names = store.seriesNames(prefix);
  const newest = store.watermark(intervalsSeries(cameraId)) ?? to;
  const useRaw = rawRetentionMs > 0 && from >= newest - rawRetentionMs;
  const index = new Map<number, number>();
  const t: number[] = [];
  const step = useRaw ? intervalMs : COUNTS_STEP_MS;
  if (useRaw) {
    const intervals = store.raw(intervalsSeries(cameraId), from, to);
    for (const r of intervals) {
      if (index.has(r.ts)) continue;
      index.set(r.ts, index.size);
      t.push(r.ts);
    }
  } else {
    const start = Math.floor(from / COUNTS_STEP_MS) * COUNTS_STEP_MS;
    for (let s = start; s < to; s += COUNTS_STEP_MS) {
      index.set(s, index.size);
      t.push(s);
    }
  }
  const series: CountsHistory["series"] = [];
  for (const name of names) {
    const p = parseLineSeries(name);
    if (!p) continue;
    const values = new Array<number>(t.length).fill(0);
    if (useRaw) {
      for (const r of store.raw(name, from, to)) {
        const i = index.get(r.ts);
        if (i !== undefined && r.value !== null) values[i]! += r.value;
      }
    } else {
      for (const b of store.buckets(name, COUNTS_STEP_MS, t[0] ?? from, to)) {
        const i = index.get(b.start);
        if (i !== undefined) values[i] = b.sum;
      }
    }
    series.push({ line: p.lineId, label: p.label, dir: p.dir, values });
  }
  return { camera: cameraId, from, to, step_s: Math.round(step / 1000), source: useRaw ? "raw" : "buckets", t, series };
}
