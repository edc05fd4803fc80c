import { z } from "zod";
import { defineMessage } from "../message.js";
import { entityId, isoMs } from "../fields.js";

/** Why a value cannot be trusted; only `good` values enter forecast windows. */
export const VALUE_QUALITIES = ["good", "timeout", "exception", "nan", "out_of_range", "stale", "error"] as const;
export const READING_QUALITIES = ["good", "partial", "bad"] as const;

/** Names of meter values: payload keys and history series names. */
export const VALUE_NAME_PATTERN = /^[a-z][a-z0-9_]{0,63}$/;

const VALUE = z.strictObject({
  value: z.number().nullable().describe("The scaled value; null when none could be read"),
  unit: z.string(),
  quality: z
    .enum(VALUE_QUALITIES)
    .describe(
      "timeout: no answer in time (also a wrong unit id); exception: a Modbus exception response; nan: not a number; out_of_range: outside the configured limits; stale: unchanged or too old for stale_after_ms; error: connection or message failure",
    ),
});

export const READINGS = defineMessage({
  name: "readings",
  channel: "readings",
  operation: "publishReadings",
  title: "Meter reading",
  description:
    "One reading of a meter on `<base>/meters/<meter_id>/readings`: every value it reports at one instant, each with its unit and quality. Only `good` values enter forecast windows. Negative values are valid (export, net metering).",
  summary: "One meter reading, values with units.",
  v: 1,
  address: "{topic_prefix}/{device_id}/meters/{meter_id}/readings",
  body: z.strictObject({
    meter_id: entityId(),
    measured_at: isoMs(
      "When the values were measured (the meter's time; for a time-accelerated replay or simulation, its own clock), ISO 8601 UTC with milliseconds",
    ),
    quality: z.enum(READING_QUALITIES).describe("good: every value is good; partial: some are; bad: none is"),
    values: z
      .record(z.string().regex(VALUE_NAME_PATTERN), VALUE)
      .refine((v) => Object.keys(v).length > 0, "must hold at least one value")
      .meta({ minProperties: 1 }),
    error: z.string().optional().describe("What went wrong, when a value is not good"),
  }),
  topic: (t, b) => t.readings(b.meter_id),
});

export type ReadingsBody = z.output<typeof READINGS.body>;
export type ValueQuality = (typeof VALUE_QUALITIES)[number];
export type MeterValueBody = z.output<typeof VALUE>;
