import { z } from "zod";
import { METER_KINDS } from "../../../drivers/meter/kinds.js";

export type { RegisterConfig } from "../../../drivers/meter/configFields.js";
export { REGISTER_SCHEMA, REGISTER_TYPES } from "../../../drivers/meter/configFields.js";
export type { ModbusRtuMeterConfig } from "../../../drivers/meter/modbusRtu.js";
export type { ModbusTcpMeterConfig } from "../../../drivers/meter/modbusTcp.js";
export type { MqttMeterConfig } from "../../../drivers/meter/mqttIn.js";
export type { ReplayMeterConfig } from "../../../drivers/meter/replay.js";
export type { SimulatedMeterConfig } from "../../../drivers/meter/simulated.js";

type SchemasOf<T extends readonly unknown[]> = { -readonly [I in keyof T]: T[I] extends { schema: infer S } ? S : never };
type Schemas = SchemasOf<typeof METER_KINDS>;

/** A meter: one form per kind of driver (each kind's file in drivers/meter defines its keys), told apart by `driver`. */
export const METER_SCHEMA = z.discriminatedUnion("driver", METER_KINDS.map((k) => k.schema) as unknown as Schemas);

export type MeterConfig = z.output<typeof METER_SCHEMA>;

export const METERS_SCHEMA = z.array(METER_SCHEMA).default([]).describe("Utility meters wired to this device");

export const HISTORY_SCHEMA = z
  .strictObject({
    raw_retention_h: z
      .number()
      .min(0)
      .max(24 * 366)
      .default(6)
      .describe("Hours of raw readings kept (0: none kept)"),
    retention_days: z.number().min(1).max(3660).default(60).describe("Days of per-step (downsampled) history kept for forecasting"),
  })
  .describe("The SQLite history of readings that forecasts are built from");
