import { z } from "zod";
import { ManifestError, type ModelManifest } from "../inference/index.js";
import { CALENDAR_FEATURES } from "./calendar.js";

const FEATURE = z.enum(["value", ...CALENDAR_FEATURES]);

const FORECAST_FIELDS = z.looseObject({
  task: z.literal("forecast"),
  input: z.looseObject({
    name: z.string().min(1),
    history_steps: z.number().int().min(1),
    features: z
      .array(FEATURE)
      .min(1)
      .refine((f) => f.includes("value"), 'must include "value"'),
    time_zone: z.string().min(1).optional(),
  }),
  training: z.looseObject({ time_zone: z.string().min(1).optional() }).optional(),
  output: z.looseObject({ name: z.string().min(1), horizon: z.number().int().min(1) }),
  step_seconds: z.number().int().min(1),
  unit: z.string().optional(),
  value_range: z
    .strictObject({ min: z.number(), max: z.number() })
    .refine((r) => r.max > r.min, "max must be greater than min")
    .optional(),
  normalization: z.strictObject({ mean: z.number(), std: z.number().positive() }),
});

/** What the scheduler needs of a forecasting model's manifest. */
export interface ForecastSpec {
  id: string;
  version: string;
  inputName: string;
  outputName: string;
  historySteps: number;
  horizon: number;
  features: z.output<typeof FEATURE>[];
  stepMs: number;
  timeZone: string;
  mean: number;
  std: number;
  /** The unit of the values it was trained on ("" when the manifest does not say). */
  unit: string;
  /** The range of the values it was trained on, when the manifest declares it. */
  valueRange: { min: number; max: number } | undefined;
}

export function forecastSpec(m: ModelManifest): ForecastSpec {
  const parsed = FORECAST_FIELDS.safeParse(m);
  if (!parsed.success) {
    throw new ManifestError(
      m.manifest_file,
      parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`),
    );
  }
  const d = parsed.data;
  return {
    id: m.id,
    version: String(m.version),
    inputName: d.input.name,
    outputName: d.output.name,
    historySteps: d.input.history_steps,
    horizon: d.output.horizon,
    features: d.input.features,
    stepMs: d.step_seconds * 1000,
    timeZone: d.input.time_zone ?? d.training?.time_zone ?? "UTC",
    mean: d.normalization.mean,
    std: d.normalization.std,
    unit: d.unit ?? "",
    valueRange: d.value_range,
  };
}
