import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { offlineBacktest, DEFAULT_MODEL_MANIFEST, type OfflineOptions } from "../runtime/forecast/backtest/offline.js";
import { sharedDataDir } from "./benchProcess.js";
import { BIKESHARING, gdtToCsv, NW_LOAD } from "./gretlData.js";
import type { Bench, BenchResult } from "./index.js";

/**
 * `cityedge bench forecast`: the daemon's forecaster choice, offline, on real series: the Taylor
 * demand series (shared data) at its native half-hour and aggregated to hourly over its last two
 * weeks (the LSTM's held-out test weeks), Capital Bikeshare's daily rentals (Debian gretl-data)
 * over the last 13 weeks, a week ahead, and a US Northwest utility's hourly load (gretl-data)
 * over its last week. Per series: every candidate's MAE and MAPE, the naive baselines, the
 * choice, and how much lower its MAE is than the best naive and than seasonal naive (week).
 * Figures, not timings. --days=N overrides every series' backtest days.
 */
export const forecastBench: Bench = async (args) => {
  const opt = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const shared = sharedDataDir();
  const taylor = path.join(shared, "timeseries/taylor_uk_demand_halfhourly_2000.csv");
  const tmp = mkdtempSync(path.join(os.tmpdir(), "cityedge-bench-forecast-"));
  const log = pino({ level: "silent" });
  const base = { aggregate: "mean", modelManifest: DEFAULT_MODEL_MANIFEST, scaling: "auto", maxInterpolate: 4, log } as const;
  const runs: { name: string; o: OfflineOptions | undefined; why: string }[] = [];
  const taylorOpts = (stepMs: number): OfflineOptions => ({
    ...base,
    csv: taylor,
    timeColumn: "timestamp",
    valueColumn: "demand_mw",
    timeZone: "Europe/London",
    stepMs,
    days: Number(opt("days") ?? 14),
    unit: "MW",
  });
  runs.push({ name: "taylor_30min", o: existsSync(taylor) ? taylorOpts(1_800_000) : undefined, why: `${taylor} not found` });
  runs.push({ name: "taylor_1h", o: existsSync(taylor) ? taylorOpts(3_600_000) : undefined, why: `${taylor} not found` });
  const gretl = existsSync(BIKESHARING) && existsSync(NW_LOAD);
  if (gretl) {
    gdtToCsv(BIKESHARING, "cnt", path.join(tmp, "bikes.csv"));
    gdtToCsv(NW_LOAD, "load", path.join(tmp, "nwload.csv"), "1992-01-01");
  }
  const noGretl = "Debian's gretl-data is not installed (apt-get install gretl-data)";
  runs.push({
    name: "bikesharing_daily",
    o: gretl
      ? {
          ...base,
          csv: path.join(tmp, "bikes.csv"),
          timeColumn: "timestamp",
          valueColumn: "value",
          timeZone: "America/New_York",
          days: Number(opt("days") ?? 91),
          horizon: 7,
          unit: "",
        }
      : undefined,
    why: noGretl,
  });
  runs.push({
    name: "nw_utility_load_1h",
    o: gretl
      ? {
          ...base,
          csv: path.join(tmp, "nwload.csv"),
          timeColumn: "timestamp",
          valueColumn: "value",
          timeZone: "America/Los_Angeles",
          days: Number(opt("days") ?? 7),
          unit: "MW",
        }
      : undefined,
    why: noGretl,
  });
  const results: BenchResult[] = [];
  try {
    for (const r of runs) {
      if (!r.o) {
        results.push({ name: `forecast ${r.name}`, figures: { skipped: r.why } });
        continue;
      }
      const { report } = await offlineBacktest(r.o);
      const figures: Record<string, number | string> = {
        step_s: report.step_s,
        horizon_steps: report.horizon,
        backtest: `${report.backtest.from} .. ${report.backtest.to} (${report.backtest.origins} origins)`,
      };
      for (const c of report.candidates) {
        if (c.mae === null) figures[`${c.name}`] = `unavailable: ${c.unavailable ?? ""}`;
        else figures[`${c.name} MAE / MAPE %`] = `${c.mae.toFixed(2)} / ${c.mape?.toFixed(3) ?? "-"}`;
      }
      figures.chosen = report.chosen;
      figures["chosen vs best naive (MAE, % lower)"] = report.chosen_vs_best_naive_pct;
      if (report.chosen_vs_seasonal_naive_week_pct !== null)
        figures["chosen vs seasonal_naive_week (MAE, % lower)"] = report.chosen_vs_seasonal_naive_week_pct;
      results.push({ name: `forecast ${r.name}`, figures });
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return results;
};
