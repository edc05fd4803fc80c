import { z } from "zod";
import { VALUE_NAME_PATTERN } from "../../runtime/contract/messages/readings.js";
import { id } from "../../runtime/config/sections/common.js";

/**
 * Config keys shared by several meter kinds. Each kind's file builds its own schema from these
 * and its own keys; the config union of runtime/config is built from the kinds.
 */

/** Names of values a meter reports; they become payload keys and history series names. */
export const valueName = () =>
  z
    .string()
    .regex(VALUE_NAME_PATTERN, 'must be 1-64 characters of lower-case letters, digits and "_", starting with a letter')
    .describe("Name of the value, a snake_case payload key");

export const REGISTER_TYPES = ["int16", "uint16", "int32", "uint32", "float32", "float64"] as const;
export const ORDER = z.enum(["big", "little"]);

const range = {
  min: z.number().optional().describe("Smallest valid value (after scaling); lower readings are flagged out_of_range"),
  max: z.number().optional().describe("Largest valid value (after scaling); higher readings are flagged out_of_range"),
};

export const REGISTER_SCHEMA = z.strictObject({
  name: valueName(),
  function: z.enum(["holding", "input"]).default("input").describe("Modbus table: holding (FC3) or input (FC4) registers"),
  address: z.number().int().min(0).max(65535).describe("Zero-based register address (protocol address, not 3xxxx/4xxxx notation)"),
  type: z.enum(REGISTER_TYPES).default("float32").describe("How the register words decode"),
  word_order: ORDER.optional().describe("Order of the 16-bit words in 32/64-bit values; default: the meter's word_order"),
  byte_order: ORDER.optional().describe("Order of the two bytes inside each word; default: the meter's byte_order"),
  scale: z.number().default(1).describe("The decoded value is multiplied by this"),
  unit: z.string().max(16).default("").describe('Unit of the scaled value, e.g. "W", "kWh", "V"'),
  ...range,
});

export type RegisterConfig = z.output<typeof REGISTER_SCHEMA>;

const LIMIT_SCHEMA = z.strictObject(range).describe("Valid range of one value");

/** Every meter's keys, whatever its driver. */
export const METER_COMMON = {
  id: id("meter id"),
  enabled: z.boolean().default(true).describe("Set false to keep a meter configured but not polled"),
  limits: z
    .record(z.string(), LIMIT_SCHEMA)
    .default({})
    .describe("Valid ranges by value name; readings outside are flagged out_of_range (negative values are valid unless a limit says otherwise)"),
  stale_after_ms: z
    .number()
    .int()
    .min(1000)
    .max(86_400_000)
    .optional()
    .describe("Flag a value stale when it has not changed (or no message came) for this long; off when unset"),
};

/** The `driver` key of a kind. */
export const driverKey = <N extends string>(name: N) => z.literal(name).describe("How readings are obtained");

/** Meters that are polled. */
export const POLLED = {
  interval_ms: z.number().int().min(100).max(86_400_000).default(1000).describe("Poll interval"),
  timeout_ms: z.number().int().min(50).max(60_000).default(1000).describe("Time allowed for one Modbus request"),
  retries: z.number().int().min(0).max(10).default(1).describe("Extra attempts of a failed request within one poll"),
};

/** Modbus meters (TCP or RTU). */
export const MODBUS = {
  unit_id: z.number().int().min(0).max(255).default(1).describe("Modbus unit (slave) id"),
  preset: z
    .enum(["sdm630", "sdm120", "generic", "none"])
    .default("none")
    .describe("Built-in register map: Eastron SDM630 (three-phase), SDM120 (single-phase), or a generic power/energy map"),
  registers: z.array(REGISTER_SCHEMA).default([]).describe("Registers to read; entries with a preset's name replace the preset's entry"),
  word_order: ORDER.default("big").describe("Default word order of 32/64-bit values (big: high word first)"),
  byte_order: ORDER.default("big").describe("Default byte order inside a word (big: Modbus standard)"),
  max_block: z.number().int().min(1).max(125).default(100).describe("Most registers read in one request; nearby registers are read together"),
};

/** Meters that run on their own, accelerated clock (replay, simulation). */
export const TIMED = {
  speed: z.number().min(0.01).max(1_000_000).default(1).describe("Time acceleration: seconds of meter time per wall-clock second"),
  backfill_s: z
    .number()
    .min(0)
    .default(0)
    .describe(
      "Meter time emitted at once on start (into history only, not MQTT), so forecasts can start at once; a replay streams its file, so any length works",
    ),
};

/** What the Modbus code reads of a TCP or RTU meter's config. */
export type ModbusSettings = z.output<z.ZodObject<typeof MODBUS>> & { id: string };
