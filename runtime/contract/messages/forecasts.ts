import { z } from "zod";
import { SOURCE_PATTERN } from "../../config/sections/forecasts.js";
import { defineMessage } from "../message.js";
import { count, entityId, isoMs } from "../fields.js";

export const AGGREGATES = ["mean", "delta", "sum"] as const;
/** The forecasters a series' backtest chooses from. */
export const CANDIDATES = ["seasonal_naive_day", "seasonal_naive_week", "holt_winters", "regression", "model"] as const;

const score = z.number().nullable();

const BACKTEST = z
  .strictObject({
    from: isoMs("First origin"),
    to: isoMs("End of the last origin's horizon"),
    days: z.number().positive().describe("Days of origins"),
    origins: z.number().int().min(1).describe("Origins: one per step of the backtest"),
    mae: score.describe("The chosen one's mean absolute error, in the series' unit"),
    mape: score.describe("Its mean absolute percentage error (percent, over the non-zero actual values)"),
    naive: z
      .record(z.string(), z.strictObject({ mae: score, mape: score }))
      .describe("The naive baselines' MAE and MAPE (seasonal_naive_day, seasonal_naive_week)"),
    candidates: z
      .array(
        z.strictObject({
          name: z.string().min(1),
          mae: score,
          mape: score,
          unavailable: z.string().optional().describe("Why it could not take part (too little history, a step it cannot serve, ...)"),
        }),
      )
      .describe("Every candidate's scores, on the same points"),
  })
  .describe("The rolling-origin backtest on the series' own history that chose it");

export const FORECASTS = defineMessage({
  name: "forecasts",
  channel: "forecasts",
  operation: "publishForecasts",
  title: "Forecast",
  description:
    "One forecast of a series on `<base>/forecasts/<series_id>`, made when a step of the series completed, by the forecaster that a backtest on the series' own history chose: a horizon of timestamped values with P10/P50/P90 from the chosen one's backtest errors. v2 added `horizon[].p10/p50/p90`, `choice` and `source_step_s`.",
  summary: "One forecast: a horizon of timestamped values with intervals, and which forecaster made it.",
  v: 2,
  address: "{topic_prefix}/{device_id}/forecasts/{series_id}",
  body: z.strictObject({
    series_id: entityId(),
    source: z.string().regex(SOURCE_PATTERN).describe("The series forecast, as in the config"),
    model: z
      .strictObject({
        id: z.string().min(1),
        version: z.string().min(1),
        variant: z.string().optional(),
        provider: z.string().optional(),
      })
      .describe('What made it: the ONNX model (id, version, variant, provider) or a built-in forecaster (id: its candidate name, version "builtin")'),
    issued_at: isoMs("End of the history the forecast is made from = start of its first step (the series' clock)"),
    step_s: z.number().int().min(1).describe("Length of one step in seconds: the model's step, or the source's own when it is coarser"),
    source_step_s: z.number().positive().describe("The source's native step in seconds (configured, or measured from its readings' spacing)"),
    aggregate: z.enum(AGGREGATES).describe("What one step's value is: mean of readings, rise of a counter, or sum of counts"),
    unit: z.string(),
    horizon: z
      .array(
        z.strictObject({
          ts: isoMs("Start of the step"),
          value: z.number(),
          p10: z
            .number()
            .optional()
            .describe("10th percentile: the value plus the 10% quantile of the chosen forecaster's backtest errors at this step"),
          p50: z.number().optional().describe("Median: the value plus the median backtest error at this step"),
          p90: z.number().optional().describe("90th percentile (p10 <= p50 <= p90); the three are absent while there is no backtest yet"),
        }),
      )
      .min(1),
    window: z.strictObject({
      from: isoMs("Start of the history window"),
      steps: z.number().int().min(1),
      filled: count("Missing steps filled by interpolation"),
    }),
    choice: z
      .strictObject({
        candidate: z.enum(CANDIDATES).describe("The forecaster that made this forecast"),
        chosen_at: isoMs("Issue time (the series' clock) at which it was chosen"),
        backtest: BACKTEST.nullable(),
        reason: z
          .string()
          .optional()
          .describe("Why there is no backtest yet (too little history): the model, else a naive forecast, is used meanwhile"),
      })
      .describe("Which forecaster made the forecast and why: the lowest backtest MAE wins, so it is never worse on its backtest than the best naive"),
  }),
  topic: (t, b) => t.forecast(b.series_id),
});

export type ForecastBody = z.output<typeof FORECASTS.body>;
