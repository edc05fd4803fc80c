import type { MeterKind } from "./meterKind.js";
import { MODBUS_RTU } from "./modbusRtu.js";
import { MODBUS_TCP } from "./modbusTcp.js";
import { MQTT } from "./mqttIn.js";
import { REPLAY } from "./replay.js";
import { SIMULATED } from "./simulated.js";

/**
 * Every kind of meter, one line each. The config union (`meters[].driver`), `createMeterDriver`
 * and what forecasting needs to know of a meter (its clock, its values' units) come from here; a
 * new protocol is its file plus a line here.
 */
export const METER_KINDS = [MODBUS_TCP, MODBUS_RTU, MQTT, REPLAY, SIMULATED] as const;

export type MeterKindName = (typeof METER_KINDS)[number]["driver"];

/** The kind of a driver name (the config schema has checked it), typed loosely for callers that hold any meter's config. */
export function meterKind(driver: string): MeterKind<string, never> {
  const kind = METER_KINDS.find((k) => k.driver === driver);
  if (!kind) throw new Error(`unknown meter driver "${driver}" (known: ${METER_KINDS.map((k) => k.driver).join(", ")})`);
  return kind as unknown as MeterKind<string, never>;
}
