import type { Candidate, Fitted } from "./candidate.js";
import type { StepSeries } from "./stepSeries.js";

/**
 * The value one season earlier (a day, a week) at the same step; for a horizon longer than the
 * season, the latest season that is already known.
 */
export function seasonalNaive(name: string, period: number): Candidate {
  const fitted: Fitted = {
    params: { period },
    forecast(s: StepSeries, origins: readonly number[], horizon: number) {
      return origins.map((o) => {
        if (o - period < 0) return undefined;
        const out = new Float64Array(horizon);
        for (let h = 0; h < horizon; h++) {
          const back = period * Math.ceil((h + 1) / period);
          out[h] = o + h - back >= 0 ? s.values[o + h - back]! : Number.NaN;
        }
        return out;
      });
    },
  };
  return { name, needs: period, fitNeeds: 0, fit: () => fitted };
}
