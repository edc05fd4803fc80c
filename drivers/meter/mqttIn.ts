import mqtt, { type MqttClient } from "mqtt";
import { z } from "zod";
import { driverKey, METER_COMMON, valueName } from "./configFields.js";
import { redactUrl, type Logger } from "../../runtime/log/logger.js";
import type { MeterDriver, MeterValue, ReadingListener, MeterHealth } from "./meter.js";
import { defineMeterKind } from "./meterKind.js";
import { ValueChecker } from "./valueChecker.js";

const MQTT_FIELD = z.strictObject({
  path: z.string().min(1).describe('Dotted path of the number in the JSON message, e.g. "ENERGY.Power"'),
  unit: z.string().max(16).default("").describe("Unit of the scaled value"),
  scale: z.number().default(1).describe("The value is multiplied by this"),
});

export const MQTT_METER = z.strictObject({
  driver: driverKey("mqtt"),
  ...METER_COMMON,
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

export type MqttMeterConfig = z.output<typeof MQTT_METER>;

/** `a.b.0.c` inside parsed JSON. */
export function atPath(obj: unknown, dotted: string): unknown {
  let cur: unknown = obj;
  for (const seg of dotted.split(".")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

/** The measurement times a reading can carry: from the epoch to the last instant of year 9999 (ISO 8601 with four digits). */
export const LATEST_TIMESTAMP_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** A measurement time that no reading can carry, with why; undefined when it can. */
export function timestampProblem(ts: number): string | undefined {
  if (!Number.isFinite(ts)) return "is not a finite number";
  if (ts < 0) return "is before 1970-01-01";
  if (ts > LATEST_TIMESTAMP_MS) return "is after 9999-12-31";
  return undefined;
}

/** ISO 8601 text, or epoch seconds / milliseconds (told apart by size). */
export function parseTimestamp(v: unknown): number | undefined {
  if (typeof v === "number" && Number.isFinite(v)) return v < 1e11 ? v * 1000 : v;
  if (typeof v === "string" && v.trim() !== "") {
    if (/^\d+(\.\d+)?$/.test(v.trim())) return parseTimestamp(Number(v));
    const t = Date.parse(v);
    return Number.isNaN(t) ? undefined : t;
  }
  return undefined;
}

/**
 * A meter that already publishes JSON over MQTT (Tasmota, Shelly, a PLC gateway). Each message
 * is one reading; the configured fields are taken by dotted path and scaled. A message older
 * than stale_after_ms (by its own timestamp) is flagged stale.
 */
export class MqttInMeter implements MeterDriver {
  readonly id: string;
  readonly #cfg: MqttMeterConfig;
  readonly #log: Logger;
  #client: MqttClient | undefined;
  #checker: ValueChecker;
  #messages = 0;
  #lastError: string | undefined;

  constructor(cfg: MqttMeterConfig, log: Logger) {
    this.id = cfg.id;
    this.#cfg = cfg;
    this.#log = log;
    this.#checker = new ValueChecker(cfg.limits, cfg.stale_after_ms);
  }

  async start(onReading: ReadingListener): Promise<void> {
    const cfg = this.#cfg;
    const client = mqtt.connect(cfg.url, {
      clientId: `cityedge-meter-${cfg.id}-${process.pid}`,
      reconnectPeriod: 2000,
      connectTimeout: 10_000,
      ...(cfg.username !== undefined ? { username: cfg.username } : {}),
      ...(cfg.password !== undefined ? { password: cfg.password } : {}),
    });
    this.#client = client;
    client.on("connect", () => {
      this.#log.info({ url: redactUrl(cfg.url), topic: cfg.topic }, "mqtt meter connected");
      client.subscribe(cfg.topic, { qos: 1 }, (err) => {
        if (err) this.#log.error({ err, topic: cfg.topic }, "mqtt meter: subscribe failed");
      });
    });
    client.on("error", (err) => {
      this.#lastError = err.message;
      this.#log.warn({ err: err.message }, "mqtt meter: connection error");
    });
    client.on("message", (_topic, payload) => onReading(this.#parse(payload)));
  }

  async stop(): Promise<void> {
    const c = this.#client;
    this.#client = undefined;
    if (c) await c.endAsync(true);
  }

  health(): MeterHealth {
    const connected = this.#client?.connected === true;
    return {
      state: connected ? "running" : "degraded",
      connected,
      messages: this.#messages,
      ...(this.#lastError !== undefined ? { error: this.#lastError } : {}),
    };
  }

  #parse(payload: Buffer): ReturnType<typeof this.toReading> {
    this.#messages++;
    let doc: unknown;
    try {
      doc = JSON.parse(payload.toString("utf8"));
    } catch (err) {
      return this.toReading(Date.now(), undefined, `message is not JSON: ${(err as Error).message}`);
    }
    const stamp = this.#cfg.timestamp_path !== undefined ? parseTimestamp(atPath(doc, this.#cfg.timestamp_path)) : undefined;
    if (this.#cfg.timestamp_path !== undefined && stamp === undefined) {
      return this.toReading(Date.now(), undefined, `no timestamp at "${this.#cfg.timestamp_path}"`);
    }
    // A clock gone wild (a year past 9999, a negative epoch) is a bad reading at arrival time, never a lost one.
    const wild = stamp !== undefined ? timestampProblem(stamp) : undefined;
    if (wild !== undefined) {
      const shown = JSON.stringify(atPath(doc, this.#cfg.timestamp_path!)).slice(0, 40);
      return this.toReading(Date.now(), undefined, `timestamp at "${this.#cfg.timestamp_path}" ${wild}, got ${shown}`);
    }
    return this.toReading(stamp ?? Date.now(), doc, undefined);
  }

  /** One reading from a parsed message (doc undefined: the message was unusable). */
  toReading(ts: number, doc: unknown, error: string | undefined): import("./meter.js").Reading {
    const values: Record<string, MeterValue> = {};
    const missing: string[] = [];
    const stale = this.#cfg.stale_after_ms !== undefined && Date.now() - ts > this.#cfg.stale_after_ms;
    for (const [name, f] of Object.entries(this.#cfg.values)) {
      const raw = doc === undefined ? undefined : atPath(doc, f.path);
      const num = typeof raw === "number" ? raw : typeof raw === "string" && raw.trim() !== "" ? Number(raw) : undefined;
      if (num === undefined) {
        values[name] = { value: null, unit: f.unit, quality: "error" };
        missing.push(f.path);
        continue;
      }
      const v = this.#checker.check(name, num * f.scale, f.unit, ts);
      values[name] = stale && v.quality === "good" ? { ...v, quality: "stale" } : v;
    }
    const why =
      error ??
      (missing.length > 0
        ? `message has no number at ${missing.map((p) => `"${p}"`).join(", ")}`
        : stale
          ? "message is older than stale_after_ms"
          : undefined);
    if (why !== undefined && why !== this.#lastError) this.#log.warn({ error: why }, "mqtt meter: bad message");
    this.#lastError = why;
    return { meterId: this.id, ts, values, ...(why !== undefined ? { error: why } : {}) };
  }
}

export const MQTT = defineMeterKind({
  driver: "mqtt",
  schema: MQTT_METER,
  create: (cfg, deps) => new MqttInMeter(cfg, deps.log),
  ownClock: false,
  values: (cfg) => Object.fromEntries(Object.entries(cfg.values).map(([name, v]) => [name, v.unit])),
});
