import type { MeterConfig } from "../config/sections/meters.js";
import { PRESETS } from "../../drivers/meter/presets.js";

/** The unit of a forecast series' values, from the config of the meter it comes from. */
export function sourceUnit(source: string, meters: readonly MeterConfig[]): string {
  const [kind, ref, value] = source.split(":");
  if (kind === "camera") return "count";
  const m = meters.find((x) => x.id === ref);
  if (!m || value === undefined) return "";
  let unit = "";
  switch (m.driver) {
    case "simulated":
      unit = value === "power_kw" ? "kW" : "kWh";
      break;
    case "modbus-tcp":
    case "modbus-rtu":
      unit = m.registers.find((r) => r.name === value)?.unit ?? PRESETS[m.preset].find((r) => r.name === value)?.unit ?? "";
      break;
    case "mqtt":
    case "replay":
      unit = m.values[value]?.unit ?? "";
      break;
  }
  // a counter's rise per step (delta) keeps the counter's unit: kWh per step is kWh
  return unit;
}
