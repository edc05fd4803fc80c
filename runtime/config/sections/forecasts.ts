import { z } from "zod";
import { meterKind, METER_KINDS } from "../../../drivers/meter/kinds.js";
import { id } from "./common.js";

export const SOURCE_PATTERN = /^(meter:[A-Za-z0-9][A-Za-z0-9_.-]{0,63}:[a-z][a-z0-9_]{0,63}|camera:[A-Za-z0-9][A-Za-z0-9_.-]{0,63}:counts)$/;

export const FORECAST_SCHEMA = z.strictObject({
  id: id("forecast series id"),
  source: z
    .string()
    .regex(SOURCE_PATTERN, 'must be "meter:<meter_id>:<value>" or "camera:<camera_id>:counts"')
    .describe('What to forecast: "meter:<meter_id>:<value>" or "camera:<camera_id>:counts"'),
  model: z
    .string()
    .min(1)
    .optional()
    .describe("Id of an ONNX forecasting model (in `models`), one of the candidates; without it only the built-in ones compete"),
  candidates: z
    .array(z.enum(["seasonal_naive_day", "seasonal_naive_week", "holt_winters", "regression", "model"]))
    .min(1)
    .default(["seasonal_naive_day", "seasonal_naive_week", "holt_winters", "regression", "model"])
    .describe(
      "Forecasters the backtest chooses from (the lowest MAE wins): seasonal naive a day or a week back, double-seasonal Holt-Winters, the lag regression, and `model`",
    ),
  step_s: z
    .number()
    .int()
    .min(1)
    .max(7 * 86_400)
    .optional()
    .describe("Step of the forecast in seconds; default: the model's step_seconds, else 1800. A coarser source forecasts at its own step"),
  source_step_s: z
    .number()
    .int()
    .min(1)
    .max(7 * 86_400)
    .optional()
    .describe("Native step of the source in seconds (one reading per step); default: measured from the readings' spacing"),
  max_interpolate: z
    .number()
    .int()
    .min(1)
    .max(16)
    .default(4)
    .describe("The most a coarser series is interpolated to serve a model's step (2: hourly values for a half-hourly model)"),
  horizon: z.number().int().min(1).max(10_000).optional().describe("Steps forecast; default: the model's horizon, else a day"),
  backtest_days: z.number().min(1).max(60).default(14).describe("Days of the series' own history the candidates are backtested on"),
  reselect_h: z
    .number()
    .min(1)
    .max(24 * 60)
    .default(24)
    .describe("Hours of the series' clock between re-fitting and re-choosing"),
  aggregate: z
    .enum(["mean", "delta", "sum"])
    .optional()
    .describe(
      "How readings become one value per model step: mean (power), delta (rise of an energy counter) or sum (counts); default: sum for camera counts, mean for meters",
    ),
  timezone: z
    .string()
    .min(1)
    .optional()
    .describe('IANA time zone of the local clock for the calendar features, e.g. "Europe/London"; default: the model manifest\'s input.time_zone'),
  scaling: z
    .enum(["auto", "model", "window"])
    .default("auto")
    .describe(
      "How the model's input is normalised. model: the manifest's mean/std (refused for another unit or values far outside its training range); window: the window's own mean/std; auto: model when the series is in the model's unit and range, else window, with a warning",
    ),
  max_gap_steps: z
    .number()
    .int()
    .min(0)
    .max(1000)
    .default(6)
    .describe("Longest run of missing steps that is filled by interpolation; a longer gap skips the forecast"),
  max_missing_ratio: z
    .number()
    .min(0)
    .max(1)
    .default(0.1)
    .describe("Largest share of missing steps in a window that is still filled; more skips the forecast"),
});

export type ForecastConfig = z.output<typeof FORECAST_SCHEMA>;

/** The aggregate a forecast uses: the configured one, else sum for camera counts and mean for meter values. */
export function aggregateOf(f: Pick<ForecastConfig, "aggregate" | "source">): "mean" | "delta" | "sum" {
  return f.aggregate ?? (f.source.startsWith("camera:") ? "sum" : "mean");
}

export const FORECASTS_SCHEMA = z
  .array(FORECAST_SCHEMA)
  .default([])
  .describe("Series to forecast; each one's forecaster is chosen by backtest on its own history");

interface MeterLike {
  id?: unknown;
  driver?: unknown;
}

/** The value names a meter config will report (asked of its kind), or undefined when the config is not valid enough to tell. */
export function meterValueNames(m: MeterLike): Set<string> | undefined {
  const kind = METER_KINDS.find((k) => k.driver === m.driver);
  const parsed = kind?.schema.safeParse(m);
  if (!kind || !parsed?.success) return undefined;
  return new Set(Object.keys(meterKind(kind.driver).values(parsed.data as never)));
}

/** Cross-section check: every meter source names a configured meter and one of its values. */
export function checkForecastSources(
  forecasts: readonly { source?: unknown }[],
  meters: readonly MeterLike[],
  cameras: readonly { id?: unknown }[],
  ctx: z.RefinementCtx,
): void {
  const byId = new Map(meters.filter((m) => typeof m.id === "string").map((m) => [m.id as string, m]));
  const cameraIds = new Set(cameras.map((c) => c.id));
  forecasts.forEach((f, i) => {
    if (typeof f.source !== "string" || !SOURCE_PATTERN.test(f.source)) return;
    const [kind, ref, value] = f.source.split(":") as [string, string, string];
    const path = ["forecasts", i, "source"];
    if (kind === "camera") {
      if (!cameraIds.has(ref))
        ctx.addIssue({ code: "custom", path, message: `unknown camera "${ref}" (cameras: ${[...cameraIds].join(", ") || "none defined"})` });
      return;
    }
    const meter = byId.get(ref);
    if (!meter) {
      ctx.addIssue({ code: "custom", path, message: `unknown meter "${ref}" (meters: ${[...byId.keys()].join(", ") || "none defined"})` });
      return;
    }
    const names = meterValueNames(meter);
    if (names && !names.has(value)) {
      ctx.addIssue({ code: "custom", path, message: `meter "${ref}" has no value "${value}" (values: ${[...names].sort().join(", ") || "none"})` });
    }
  });
}
