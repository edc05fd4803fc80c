import { z } from "zod";
import { id, port } from "./common.js";

/** Names of values a meter reports; they become payload keys and history series names. */
const valueName = () =>
  z
    .string()
    .regex(/^[a-z][a-z0-9_]{0,63}$/, 'must be 1-64 characters of lower-case letters, digits and "_", starting with a letter')
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

const LIMIT_SCHEMA = z.strictObject(range).describe("Valid range of one value");

const COMMON = {
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

const POLLED = {
  interval_ms: z.number().int().min(100).max(86_400_000).default(1000).describe("Poll interval"),
  timeout_ms: z.number().int().min(50).max(60_000).default(1000).describe("Time allowed for one Modbus request"),
  retries: z.number().int().min(0).max(10).default(1).describe("Extra attempts of a failed request within one poll"),
};

const MODBUS = {
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

export const MODBUS_TCP_METER = z.strictObject({
  driver: z.literal("modbus-tcp").describe("How readings are obtained"),
  ...COMMON,
  ...POLLED,
  ...MODBUS,
  host: z.string().min(1).describe("Meter or gateway address"),
  port: port().default(502).describe("Modbus TCP port"),
});

export const MODBUS_RTU_METER = z.strictObject({
  driver: z.literal("modbus-rtu").describe("How readings are obtained"),
  ...COMMON,
  ...POLLED,
  ...MODBUS,
  path: z.string().min(1).describe("Serial device, e.g. /dev/ttyUSB0; meters with the same path share the line and are polled one at a time"),
  baud_rate: z.number().int().min(300).max(921_600).default(9600).describe("Baud rate"),
  parity: z.enum(["none", "even", "odd"]).default("none").describe("Parity"),
  data_bits: z.literal([7, 8]).default(8).describe("Data bits"),
  stop_bits: z.literal([1, 2]).default(1).describe("Stop bits"),
});

const MQTT_FIELD = z.strictObject({
  path: z.string().min(1).describe('Dotted path of the number in the JSON message, e.g. "ENERGY.Power"'),
  unit: z.string().max(16).default("").describe("Unit of the scaled value"),
  scale: z.number().default(1).describe("The value is multiplied by this"),
});

export const MQTT_METER = z.strictObject({
  driver: z.literal("mqtt").describe("How readings are obtained"),
  ...COMMON,
  url: z
    .string()
    .regex(/^(mqtts?|wss?):\/\/[^\s]+$/, "must be a URL starting with mqtt://, mqtts://, ws:// or wss://")
    .describe("Broker the meter publishes to"),
  username: z.string().optional().describe("User name"),
  password: z.string().optional().describe("Password; use ${env:NAME} or ${file:/path}"),
  topic: z.string().min(1).describe("Topic the meter publishes its JSON on (wildcards allowed)"),
  values: z.record(valueName(), MQTT_FIELD).describe("Values to take from each message, by name"),
  timestamp_path: z.string().optional().describe("Dotted path of the measurement time (ISO 8601 or epoch seconds/ms); default: arrival time"),
});

const REPLAY_COLUMN = z.strictObject({
  column: z.string().min(1).describe("CSV column holding the value"),
  unit: z.string().max(16).default("").describe("Unit of the scaled value"),
  scale: z.number().default(1).describe("The value is multiplied by this"),
});

const TIMED = {
  speed: z.number().min(0.01).max(1_000_000).default(1).describe("Time acceleration: seconds of meter time per wall-clock second"),
  backfill_s: z
    .number()
    .min(0)
    .default(0)
    .describe(
      "Meter time emitted at once on start (into history only, not MQTT), so forecasts can start at once; a replay streams its file, so any length works",
    ),
};

export const REPLAY_METER = z.strictObject({
  driver: z.literal("replay").describe("How readings are obtained"),
  ...COMMON,
  ...TIMED,
  file: z.string().min(1).describe("CSV file with a header row (relative paths are from the config file)"),
  timestamp_column: z.string().min(1).default("timestamp").describe("Column with ISO 8601 timestamps"),
  timezone: z.string().min(1).default("UTC").describe('IANA time zone of timestamps without an offset (a local-clock file, e.g. "Europe/London")'),
  values: z.record(valueName(), REPLAY_COLUMN).describe("Values to take from each row, by name"),
  align: z
    .enum(["original", "now"])
    .default("original")
    .describe("original: readings keep the file's timestamps; now: shifted so the first live row is now (the backfill lies in the past)"),
  loop: z.boolean().default(false).describe("Start again at the end of the file (timestamps keep rising)"),
});

export const SIMULATED_METER = z.strictObject({
  driver: z.literal("simulated").describe("How readings are obtained"),
  ...COMMON,
  ...TIMED,
  backfill_s: z
    .number()
    .min(0)
    .max(400 * 86_400)
    .default(0)
    .describe("Meter time simulated at once on start (into history only, not MQTT), so forecasts can start at once"),
  interval_ms: z.number().int().min(100).max(86_400_000).default(1000).describe("Meter time between readings"),
  base_kw: z.number().min(0).default(40).describe("Night-time base load"),
  peak_kw: z.number().min(0).default(120).describe("Weekday evening peak load"),
  noise: z.number().min(0).max(1).default(0.03).describe("Relative noise on each reading"),
  seed: z.number().int().default(1).describe("Random seed, so runs repeat"),
});

export const METER_SCHEMA = z.discriminatedUnion("driver", [MODBUS_TCP_METER, MODBUS_RTU_METER, MQTT_METER, REPLAY_METER, SIMULATED_METER]);

export type MeterConfig = z.output<typeof METER_SCHEMA>;
export type ModbusTcpMeterConfig = z.output<typeof MODBUS_TCP_METER>;
export type ModbusRtuMeterConfig = z.output<typeof MODBUS_RTU_METER>;
export type MqttMeterConfig = z.output<typeof MQTT_METER>;
export type ReplayMeterConfig = z.output<typeof REPLAY_METER>;
export type SimulatedMeterConfig = z.output<typeof SIMULATED_METER>;
export type RegisterConfig = z.output<typeof REGISTER_SCHEMA>;

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
