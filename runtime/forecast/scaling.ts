import type { ForecastSpec } from "./forecastManifest.js";

export type ScalingSetting = "auto" | "model" | "window";

export type ScalingDecision = { scaling: "model" | "window"; warning?: string } | { refused: string };

/**
 * How a window is normalised for a model, so that a series unlike the training data does not
 * give silent garbage. auto: the manifest's mean/std when the series is in the model's unit and
 * its values lie near the range the model was trained on, else the window's own (with a
 * warning that says why). model: the manifest's, and a series that is in another unit or far
 * outside the range is refused. window: always the window's own.
 */
export function decideScaling(
  setting: ScalingSetting,
  spec: Pick<ForecastSpec, "id" | "unit" | "valueRange">,
  unit: string,
  values: ArrayLike<number>,
): ScalingDecision {
  if (setting === "window") return { scaling: "window" };
  let problem: string | undefined;
  if (spec.unit !== "" && unit !== spec.unit)
    problem =
      unit === ""
        ? `the series' unit is not known (model ${spec.id} was trained in ${spec.unit})`
        : `the series is in ${unit}, model ${spec.id} was trained in ${spec.unit}`;
  else if (spec.valueRange) {
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const { min, max } = spec.valueRange;
    const margin = 0.5 * (max - min);
    if (lo < min - margin || hi > max + margin)
      problem = `the window's values (${round(lo)} .. ${round(hi)}) lie far outside the range model ${spec.id} was trained on (${round(min)} .. ${round(max)}${spec.unit ? ` ${spec.unit}` : ""})`;
  }
  if (problem === undefined) return { scaling: "model" };
  if (setting === "model") return { refused: `${problem}; scaling: model refuses it (use scaling: auto or window)` };
  return { scaling: "window", warning: `${problem}: normalised by the window's own mean and spread` };
}

const round = (v: number): string => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3));
