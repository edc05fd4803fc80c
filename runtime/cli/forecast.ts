import pino from "pino";
import { offlineBacktest, DEFAULT_MODEL_MANIFEST, type OfflineReport } from "../forecast/backtest/offline.js";
import { createRootLogger } from "../log/logger.js";
import { EXIT_FATAL, flag, usageError, type CliCommand } from "./command.js";

const HELP = `Usage: cityedge forecast backtest --csv FILE --time-column C --value-column V [OPTIONS]

Runs the daemon's forecaster choice offline on a CSV file: a rolling-origin backtest over the
last N days, a forecast of H steps from every step, for each candidate (seasonal naive a day
and a week back, double-seasonal Holt-Winters, the lag regression, and an ONNX forecaster),
and prints each one's MAE and MAPE and the one the daemon would choose (the lowest MAE).

Options:
  --csv FILE            the series, one row per reading, with a header row
  --time-column C       ISO 8601 times (without an offset they are the wall clock of --timezone)
  --value-column V      the values
  --step S              backtest at this step (seconds, or 30m, 1h, 1d); default: the file's own.
                        A finer file is aggregated (--aggregate), a coarser one interpolated
  --horizon H           steps forecast from each origin; default: the model's horizon, else a day
  --days N              days of origins at the end of the file (default 14)
  --aggregate A         mean (default), sum or delta: what one step's value is
  --timezone TZ         IANA zone of the local clock (default UTC)
  --model FILE          an ONNX forecaster's manifest (default: the shipped demand LSTM); "none" for none
  --unit U              the values' unit, for the model's scaling (auto: the model's own mean/std
                        only for its unit and range)
  --scaling S           auto (default), model or window
  --max-interpolate K   the most a coarser series is interpolated (default 4x)
  --every K             steps between origins (default 1)
  --json                one JSON document (described in docs/meters-and-forecasts.md)

Exit codes: 0 done, 64 bad arguments, 1 the file or model could not be used.`;

/** Seconds, or a number with s, m/min, h or d; milliseconds out. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(s|m|min|h|d)?$/.exec(text.trim());
  if (!m) return undefined;
  const unit = { s: 1, m: 60, min: 60, h: 3600, d: 86_400 }[m[2] ?? "s"] ?? 1;
  return Math.round(Number(m[1]) * unit * 1000);
}

function table(r: OfflineReport): string {
  const fmt = (v: number | null, d: number): string => (v === null ? "-" : v.toFixed(d));
  const lines = [
    `${r.file}: ${r.rows} rows, native step ${r.native_step_s} s, backtest step ${r.step_s} s (resampled: ${r.resampled})`,
    `backtest ${r.backtest.from} .. ${r.backtest.to}: ${r.backtest.origins} origins x ${r.horizon} steps, ${r.backtest.points} points`,
    "",
    `${"candidate".padEnd(22)} ${"MAE".padStart(12)} ${"MAPE %".padStart(9)}`,
  ];
  for (const c of r.candidates) {
    const mark = c.name === r.chosen ? "  <- chosen" : "";
    lines.push(
      `${c.name.padEnd(22)} ${fmt(c.mae, 3).padStart(12)} ${fmt(c.mape, 3).padStart(9)}${mark}${c.unavailable ? `  (${c.unavailable})` : ""}`,
    );
  }
  lines.push(
    "",
    `chosen: ${r.chosen}; ${r.chosen_vs_best_naive_pct}% lower MAE than the best naive (${r.best_naive})` +
      (r.chosen_vs_seasonal_naive_week_pct !== null ? `, ${r.chosen_vs_seasonal_naive_week_pct}% lower than seasonal_naive_week` : ""),
  );
  return `${lines.join("\n")}\n`;
}

export const forecastCommand: CliCommand = {
  name: "forecast",
  synopsis: "forecast backtest --csv FILE --time-column C --value-column V [...]",
  summary: "backtest the forecasters on a CSV series and show which one the daemon would choose",
  help: HELP,
  async run(args) {
    const [sub, ...rest] = args;
    if (sub !== "backtest") return usageError(forecastCommand, sub === undefined ? "missing sub-command (backtest)" : `unknown sub-command "${sub}"`);
    const csv = flag(rest, "--csv");
    const timeColumn = flag(rest, "--time-column");
    const valueColumn = flag(rest, "--value-column");
    if (!csv || !timeColumn || !valueColumn) return usageError(forecastCommand, "--csv, --time-column and --value-column are required");
    const num = (name: string, fallback: number | undefined, ok: (v: number) => boolean): number | undefined | Error => {
      const text = flag(rest, name);
      if (text === undefined) return fallback;
      const v = Number(text);
      return Number.isFinite(v) && ok(v)
        ? v
        : new Error(`${name} must be a ${fallback === undefined ? "positive integer" : "positive number"}, got "${text}"`);
    };
    const stepText = flag(rest, "--step");
    const stepMs = stepText === undefined ? undefined : parseDuration(stepText);
    if (stepText !== undefined && (stepMs === undefined || stepMs <= 0))
      return usageError(forecastCommand, `--step must be seconds or a duration like 30m, 1h, 1d, got "${stepText}"`);
    const horizon = num("--horizon", undefined, (v) => Number.isInteger(v) && v >= 1);
    const days = num("--days", 14, (v) => v > 0);
    const maxInterpolate = num("--max-interpolate", 4, (v) => Number.isInteger(v) && v >= 1);
    const every = num("--every", 1, (v) => Number.isInteger(v) && v >= 1);
    for (const v of [horizon, days, maxInterpolate, every]) if (v instanceof Error) return usageError(forecastCommand, v.message);
    const aggregate = flag(rest, "--aggregate") ?? "mean";
    if (aggregate !== "mean" && aggregate !== "sum" && aggregate !== "delta")
      return usageError(forecastCommand, `--aggregate must be mean, sum or delta, got "${aggregate}"`);
    const scaling = flag(rest, "--scaling") ?? "auto";
    if (scaling !== "auto" && scaling !== "model" && scaling !== "window")
      return usageError(forecastCommand, `--scaling must be auto, model or window, got "${scaling}"`);
    const model = flag(rest, "--model");
    const log = createRootLogger({ level: "warn", pretty: false, destination: pino.destination(2) });
    try {
      const { report } = await offlineBacktest({
        csv,
        timeColumn,
        valueColumn,
        timeZone: flag(rest, "--timezone") ?? "UTC",
        stepMs,
        horizon: horizon as number | undefined,
        days: days as number,
        aggregate,
        modelManifest: model === "none" ? null : (model ?? DEFAULT_MODEL_MANIFEST),
        unit: flag(rest, "--unit") ?? "",
        scaling,
        maxInterpolate: maxInterpolate as number,
        every: every as number,
        log,
      });
      process.stdout.write(rest.includes("--json") ? `${JSON.stringify(report, null, 2)}\n` : table(report));
      return 0;
    } catch (err) {
      process.stderr.write(`cityedge forecast backtest: ${(err as Error).message}\n`);
      return EXIT_FATAL;
    }
  },
};
