/** Names of history series; forecasts name them as their `source`. */

/** A meter value's series: `meter:<meter_id>:<value>`. */
export const meterSeries = (meterId: string, value: string): string => `meter:${meterId}:${value}`;

/** A camera's line crossings per counts interval: `camera:<camera_id>:counts`. */
export const countsSeries = (cameraId: string): string => `camera:${cameraId}:counts`;

export type Direction = "in" | "out";

/** A camera's counting intervals: one reading per interval (value: frames handled), so an interval with no crossing reads as zero, not as missing. */
export const intervalsSeries = (cameraId: string): string => `camera:${cameraId}:intervals`;

/** One line's crossings of one label in one direction, one reading per counts interval: `camera:<id>:line:<line>:<label>:<dir>`. */
export const lineSeries = (cameraId: string, lineId: string, label: string, dir: Direction): string =>
  `camera:${cameraId}:line:${lineId}:${encodeURIComponent(label)}:${dir}`;

/** Reads a {@link lineSeries} name back; undefined for other series. */
export function parseLineSeries(name: string): { cameraId: string; lineId: string; label: string; dir: Direction } | undefined {
  const m = /^camera:([^:]+):line:([^:]+):([^:]+):(in|out)$/.exec(name);
  return m ? { cameraId: m[1]!, lineId: m[2]!, label: decodeURIComponent(m[3]!), dir: m[4] as Direction } : undefined;
}

/** Beyond the raw retention, line counts stay in history at this step (sums per 15 minutes). */
export const COUNTS_STEP_MS = 15 * 60_000;
