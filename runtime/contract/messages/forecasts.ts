import { z } from "zod";
import { SOURCE_PATTERN } from "../../config/sections/forecasts.js";
import { defineMessage } from "../message.js";
import { count, entityId, isoMs } from "../fields.js";

export const AGGREGATES = ["mean", "delta", "sum"] as const;

export const FORECASTS = defineMessage({
  name: "forecasts",
  channel: "forecasts",
  operation: "publishForecasts",
  title: "Forecast",
  description:
    "One forecast of a series on `<base>/forecasts/<series_id>`: the model's horizon of timestamped values, made when a step of the series completed.",
  summary: "One forecast, a horizon of timestamped values.",
  v: 1,
  address: "{topic_prefix}/{device_id}/forecasts/{series_id}",
  body: z.strictObject({
    series_id: entityId(),
    source: z.string().regex(SOURCE_PATTERN).describe("The series forecast, as in the config"),
    model: z.strictObject({
      id: z.string().min(1),
      version: z.string().min(1),
      variant: z.string().optional(),
      provider: z.string().optional(),
    }),
    issued_at: isoMs("End of the history the forecast is made from = start of its first step (the series' clock)"),
    step_s: z.number().int().min(1).describe("Length of one step in seconds"),
    aggregate: z.enum(AGGREGATES).describe("What one step's value is: mean of readings, rise of a counter, or sum of counts"),
    unit: z.string(),
    horizon: z.array(z.strictObject({ ts: isoMs("Start of the step"), value: z.number() })).min(1),
    window: z.strictObject({
      from: isoMs("Start of the history window"),
      steps: z.number().int().min(1),
      filled: count("Missing steps filled by interpolation"),
    }),
  }),
  topic: (t, b) => t.forecast(b.series_id),
});

export type ForecastBody = z.output<typeof FORECASTS.body>;
