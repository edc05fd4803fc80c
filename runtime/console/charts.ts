import { COUNTS_STEP_MS, intervalsSeries, parseLineSeries, type Direction } from "../history/series.js";
import type { HistoryStore } from "../history/historyStore.js";

/** Counts of one camera over time, ready for a chart: one x value per bin, one y series per line, label and direction. */
export interface CountsHistory {
  camera: string;
  /** The range asked for, ms since epoch. */
  from: number;
  to: number;
  /** Milliseconds per bin: the counts interval or a multiple of it (raw readings), or the history step (older ranges). */
  step_ms: number;
  source: "raw" | "buckets";
  /** Bin starts, ms since epoch, oldest first, from the first bin with counts in the range. */
  t: number[];
  /** Crossings per bin; null where the camera was not counting (the daemon was stopped). */
  series: { line: string; label: string; dir: Direction; values: (number | null)[] }[];
}

/** About this many bins per chart, so a week of 30 s intervals stays readable. */
const BINS = 240;

/**
 * A camera's line counts from `from` to `to`. Within the raw retention, per counts interval
 * (or per several, on long ranges); further back, per 15-minute sums. A bin in which the camera
 * counted but nothing crossed reads 0; one in which it did not count at all reads null.
 */
export function countsHistory(
  store: HistoryStore,
  cameraId: string,
  from: number,
  to: number,
  rawRetentionMs: number,
  intervalMs: number,
): CountsHistory {
  const names = store.seriesNames(`camera:${cameraId}:line:`);
  const newest = store.watermark(intervalsSeries(cameraId)) ?? to;
  const useRaw = rawRetentionMs > 0 && from >= newest - rawRetentionMs;
  const step = useRaw ? Math.max(intervalMs, Math.ceil((to - from) / BINS / intervalMs) * intervalMs) : COUNTS_STEP_MS;
  const binOf = (ts: number) => Math.floor(ts / step) * step;
  const counting = new Set<number>();
  if (useRaw) for (const r of store.raw(intervalsSeries(cameraId), from, to)) counting.add(binOf(r.ts));
  else for (const b of store.buckets(intervalsSeries(cameraId), COUNTS_STEP_MS, from, to)) counting.add(b.start);
  const t: number[] = [];
  const index = new Map<number, number>();
  if (counting.size > 0) {
    for (let s = Math.min(...counting); s < to; s += step) {
      index.set(s, t.length);
      t.push(s);
    }
  }
  const series: CountsHistory["series"] = [];
  for (const name of names) {
    const p = parseLineSeries(name);
    if (!p) continue;
    const values: (number | null)[] = t.map((s) => (counting.has(s) ? 0 : null));
    const add = (bin: number, v: number) => {
      const i = index.get(bin);
      if (i !== undefined) values[i] = (values[i] ?? 0) + v;
    };
    if (useRaw) for (const r of store.raw(name, from, to)) add(binOf(r.ts), r.value ?? 0);
    else for (const b of store.buckets(name, COUNTS_STEP_MS, from, to)) add(b.start, b.sum);
    if (values.some((v) => v !== null && v > 0)) series.push({ line: p.lineId, label: p.label, dir: p.dir, values });
  }
  return { camera: cameraId, from, to, step_ms: step, source: useRaw ? "raw" : "buckets", t, series };
}
