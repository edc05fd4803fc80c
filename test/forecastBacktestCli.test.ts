import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIKESHARING, gdtToCsv } from "../bench/gretlData.js";
import type { OfflineReport } from "../runtime/forecast/backtest/offline.js";
import { runCli } from "./helpers/cli.js";
import { debianFile } from "./helpers/debianData.js";
import { REPO_ROOT, sharedFile } from "./helpers/sharedData.js";

const TAYLOR = sharedFile("timeseries/taylor_uk_demand_halfhourly_2000.csv");
const BIKES = debianFile(BIKESHARING, "gretl-data");
const fixture = JSON.parse(readFileSync(path.join(REPO_ROOT, "test/fixtures/forecast/backtest_fixture.json"), "utf8")) as {
  start: string;
  values: number[];
  seasonal_naive_day: { mae: number; mape: number };
  seasonal_naive_week: { mae: number; mape: number };
};

const naiveBest = (r: OfflineReport): number =>
  Math.min(...r.candidates.filter((c) => c.name.startsWith("seasonal_naive") && c.mae !== null).map((c) => c.mae!));

describe("cityedge forecast backtest", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-backtest-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("prints every candidate's MAE and MAPE as JSON, the naive ones as numpy computed them, and chooses no worse than the best naive", async () => {
    const csv = path.join(dir, "series.csv");
    const t0 = Date.parse(fixture.start);
    writeFileSync(csv, `time,kw\n${fixture.values.map((v, i) => `${new Date(t0 + i * 3_600_000).toISOString()},${v}`).join("\n")}\n`);
    const { code, stdout, stderr } = await runCli([
      "forecast",
      "backtest",
      "--csv",
      csv,
      "--time-column",
      "time",
      "--value-column",
      "kw",
      "--days",
      "7",
      "--model",
      "none",
      "--json",
    ]);
    expect(code, stderr).toBe(0);
    const r = JSON.parse(stdout) as OfflineReport;
    expect(r).toMatchObject({ rows: fixture.values.length, native_step_s: 3600, step_s: 3600, horizon: 24, resampled: "none" });
    const by = Object.fromEntries(r.candidates.map((c) => [c.name, c]));
    expect(by.seasonal_naive_day!.mae).toBeCloseTo(fixture.seasonal_naive_day.mae, 3);
    expect(by.seasonal_naive_week!.mape).toBeCloseTo(fixture.seasonal_naive_week.mape, 3);
    expect(Object.keys(by).sort()).toEqual(["holt_winters", "regression", "seasonal_naive_day", "seasonal_naive_week"]);
    expect(by[r.chosen]!.mae).toBeLessThanOrEqual(naiveBest(r));
    expect(r.quantiles.p10).toHaveLength(24);
    expect(r.quantiles.p10.every((q, h) => q <= r.quantiles.p90[h]!)).toBe(true);
  });

  it("refuses bad arguments with the reason and the help", async () => {
    const { code, stderr } = await runCli(["forecast", "backtest", "--csv", "x.csv", "--time-column", "t", "--value-column", "v", "--step", "soon"]);
    expect(code).toBe(64);
    expect(stderr).toContain('--step must be seconds or a duration like 30m, 1h, 1d, got "soon"');
    const missing = await runCli([
      "forecast",
      "backtest",
      "--csv",
      path.join(dir, "none.csv"),
      "--time-column",
      "t",
      "--value-column",
      "v",
      "--model",
      "none",
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`cannot read ${path.join(dir, "none.csv")}: ENOENT`);
  });

  it("check-config refuses a source step the model cannot serve, at the key, saying why", async () => {
    const file = path.join(dir, "steps.yaml");
    const manifest = path.join(REPO_ROOT, "models/demand_lstm/manifest.json");
    const write = (step: number) =>
      writeFileSync(
        file,
        [
          "device_id: steps",
          "models:",
          `  - { id: demand, manifest: ${manifest} }`,
          "meters:",
          "  - { id: feeder, driver: mqtt, url: mqtt://127.0.0.1:1, topic: t, values: { p: { path: p, unit: kW } } }",
          "forecasts:",
          "  - id: feeder-power",
          "    source: meter:feeder:p",
          "    model: demand",
          `    source_step_s: ${step}`,
          "",
        ].join("\n"),
      );
    write(86_400);
    const daily = await runCli(["check-config", file]);
    expect(daily.code).toBe(78);
    expect(daily.stderr).toContain(
      `${file}:10:5 forecasts[0].source_step_s: model cityedge-demand-lstm (step 30 min) cannot serve a 1 d series: the source's step (1 d) is 48x the forecast step (30 min); at most 4x is interpolated (max_interpolate) (drop "model" from candidates, or use a model for this step)`,
    );
    write(2700);
    const odd = await runCli(["check-config", file]);
    expect(odd.stderr).toContain(`forecasts[0].source_step_s: the source's step (45 min) is not a whole number of forecast steps (30 min)`);
    write(3600);
    const hourly = await runCli(["check-config", file]);
    expect(hourly.code, hourly.stderr).toBe(0);
  });

  it.skipIf(!TAYLOR)(
    "on Taylor's last two weeks: the LSTM scores as its README says, and the choice beats seasonal naive (week) by 20% at 30 min and at 1 h",
    async () => {
      for (const step of ["30m", "1h"]) {
        const args = [
          "forecast",
          "backtest",
          "--csv",
          TAYLOR!,
          "--time-column",
          "timestamp",
          "--value-column",
          "demand_mw",
          "--timezone",
          "Europe/London",
        ];
        const { code, stdout, stderr } = await runCli([...args, "--unit", "MW", "--days", "14", "--step", step, "--json"]);
        expect(code, stderr).toBe(0);
        const r = JSON.parse(stdout) as OfflineReport;
        const by = Object.fromEntries(r.candidates.map((c) => [c.name, c]));
        if (step === "30m") {
          expect(r.backtest.origins).toBe(625);
          expect(by.seasonal_naive_week!.mae).toBeCloseTo(490.1, 1);
          expect(by.model!.mae).toBeCloseTo(376.1, 1);
        } else {
          expect(r.resampled).toBe("aggregated (mean) 30 min -> 1 h");
          expect(r.horizon).toBe(24);
        }
        expect(by[r.chosen]!.mae).toBeLessThanOrEqual(naiveBest(r));
        expect(r.chosen_vs_seasonal_naive_week_pct).toBeGreaterThanOrEqual(20);
      }
    },
  );

  it.skipIf(!BIKES)(
    "on Capital Bikeshare's daily rentals (Debian gretl-data): the LSTM cannot serve a day, the choice is no worse than the best naive",
    async () => {
      const csv = path.join(dir, "bikes.csv");
      gdtToCsv(BIKES!, "cnt", csv);
      const { code, stdout, stderr } = await runCli([
        "forecast",
        "backtest",
        "--csv",
        csv,
        "--time-column",
        "timestamp",
        "--value-column",
        "value",
        "--days",
        "91",
        "--horizon",
        "7",
        "--json",
      ]);
      expect(code, stderr).toBe(0);
      const r = JSON.parse(stdout) as OfflineReport;
      const by = Object.fromEntries(r.candidates.map((c) => [c.name, c]));
      expect(by.model!.unavailable).toContain(
        "the source's step (1 d) is 48x the forecast step (30 min); at most 4x is interpolated (max_interpolate)",
      );
      expect(by[r.chosen]!.mae).toBeLessThanOrEqual(naiveBest(r));
    },
  );
});
