import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";

/**
 * Real series from Debian's gretl-data package (GPL-3; the data sets are the textbooks' and
 * their sources'), read from its .gdt files: gretl's XML, gzip-compressed or plain.
 */
export const GRETL_DATA = process.env.CITYEDGE_GRETL_DATA ?? "/usr/share/gretl/data";

/** Capital Bikeshare (Washington D.C.) daily rentals 2011-2012: the UCI bike sharing data set (Fanaee-T and Gama 2014). */
export const BIKESHARING = `${GRETL_DATA}/misc/bikesharing.gdt`;
/** Hourly load (MW) of an electric utility in the US Northwest, January 1992 (Ramanathan, data 10-2). */
export const NW_LOAD = `${GRETL_DATA}/ramanathan/data10-2.gdt`;

export interface GretlSeries {
  frequency: number;
  startobs: string;
  variables: string[];
  rows: number[][];
}

export function readGdt(file: string): GretlSeries {
  const raw = readFileSync(file);
  const xml = (raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw).toString("utf8");
  const head = /<gretldata[^>]*frequency="(\d+)"[^>]*startobs="([^"]+)"/.exec(xml);
  if (!head) throw new Error(`${file}: not a gretl data file`);
  const variables = [...xml.matchAll(/<variable name="([^"]+)"/g)].map((m) => m[1]!);
  const rows = [...xml.matchAll(/<obs[^>]*>([^<]*)<\/obs>/g)].map((m) => m[1]!.trim().split(/\s+/).map(Number));
  return { frequency: Number(head[1]), startobs: head[2]!, variables, rows };
}

/**
 * Writes `timestamp,value` for one variable: dated daily data from its start date, and
 * undated hourly data ("day.hour", hours 1..24) from `firstDay` (hour 1 is the hour from 00:00).
 */
export function gdtToCsv(file: string, variable: string, out: string, firstDay?: string): number {
  const g = readGdt(file);
  const col = g.variables.indexOf(variable);
  if (col < 0) throw new Error(`${file}: no variable ${variable} (${g.variables.join(", ")})`);
  const pad = (n: number): string => String(n).padStart(2, "0");
  const stamp = (i: number): string => {
    if (g.frequency === 7 || g.frequency === 5) {
      const d = new Date(Date.parse(`${g.startobs}T00:00:00Z`) + i * 86_400_000);
      return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T00:00`;
    }
    if (g.frequency === 24 && firstDay) {
      const d = new Date(Date.parse(`${firstDay}T00:00:00Z`) + i * 3_600_000);
      return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:00`;
    }
    throw new Error(`${file}: frequency ${g.frequency} without a known calendar`);
  };
  writeFileSync(out, `timestamp,value\n${g.rows.map((r, i) => `${stamp(i)},${r[col]}`).join("\n")}\n`);
  return g.rows.length;
}

export const hasGretlData = (): boolean => existsSync(BIKESHARING) && existsSync(NW_LOAD);
