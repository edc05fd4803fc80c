import { meterKind } from "../../drivers/meter/kinds.js";
import type { MeterConfig } from "../config/sections/meters.js";

/** What forecasting needs to know of a series' source, asked of the meter's kind (no kind is named here). */
export interface SourceFacts {
  /** The unit of the values (a counter's rise per step keeps the counter's unit: kWh per step is kWh). */
  unit: string;
  /** Its steps also complete by the wall clock (a live meter, a camera), not only by its readings (a meter on its own clock). */
  live: boolean;
}

export function sourceFacts(source: string, meters: readonly MeterConfig[]): SourceFacts {
  const [kind, ref, value] = source.split(":");
  if (kind === "camera") return { unit: "count", live: true };
  const m = meters.find((x) => x.id === ref);
  if (!m) return { unit: "", live: true };
  const k = meterKind(m.driver);
  return { unit: (value !== undefined ? k.values(m as never)[value] : undefined) ?? "", live: !k.ownClock };
}
