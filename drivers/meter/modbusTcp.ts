import { ModbusRTU } from "./modbusLib.js";
import { z } from "zod";
import { port } from "../../runtime/config/sections/common.js";
import { driverKey, METER_COMMON, MODBUS, POLLED } from "./configFields.js";
import type { Logger } from "../../runtime/log/logger.js";
import type { MeterDriver, Quality, ReadingListener, MeterHealth } from "./meter.js";
import { defineMeterKind } from "./meterKind.js";
import { modbusValues, planMeter, readBlocks, type ModbusClient } from "./modbusRead.js";
import { phaseFor, PollLoop } from "./pollLoop.js";
import type { Block } from "./registers.js";
import { ValueChecker } from "./valueChecker.js";

const MAX_BACKOFF_MS = 30_000;

export const MODBUS_TCP_METER = z.strictObject({
  driver: driverKey("modbus-tcp"),
  ...METER_COMMON,
  ...POLLED,
  ...MODBUS,
  host: z.string().min(1).describe("Meter or gateway address"),
  port: port().default(502).describe("Modbus TCP port"),
});

export type ModbusTcpMeterConfig = z.output<typeof MODBUS_TCP_METER>;

/** Rejects after ms; the caller cleans up what the slow promise leaves behind. */
export function deadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error(`${what} timed out after ${ms} ms`), { errno: "ETIMEDOUT" })), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * A meter (or a Modbus TCP gateway's unit) polled over its own TCP connection. A lost
 * connection is reopened on a later poll, with exponential backoff while it keeps failing.
 */
export class ModbusTcpMeter implements MeterDriver {
  readonly id: string;
  readonly #cfg: ModbusTcpMeterConfig;
  readonly #log: Logger;
  #client: ModbusClient | undefined;
  #loop: PollLoop | undefined;
  #blocks: Block[] = [];
  #checker: ValueChecker;
  #failures = 0;
  #retryAt = 0;
  #lastError: string | undefined;
  #lastQuality: Quality | undefined;
  #polls = 0;

  constructor(cfg: ModbusTcpMeterConfig, log: Logger) {
    this.id = cfg.id;
    this.#cfg = cfg;
    this.#log = log;
    this.#checker = new ValueChecker(cfg.limits, cfg.stale_after_ms);
  }

  async start(onReading: ReadingListener): Promise<void> {
    this.#blocks = planMeter(this.#cfg);
    this.#checker = new ValueChecker(this.#cfg.limits, this.#cfg.stale_after_ms);
    this.#loop = new PollLoop(
      this.#cfg.interval_ms,
      () => this.#poll(onReading),
      (err) => this.#log.error({ err }, "poll failed"),
    );
    this.#loop.start(phaseFor(this.id, this.#cfg.interval_ms));
  }

  async stop(): Promise<void> {
    await this.#loop?.stop();
    this.#loop = undefined;
    this.#disconnect();
  }

  health(): MeterHealth {
    const connected = this.#client !== undefined;
    return {
      state: this.#lastQuality === undefined ? "starting" : this.#lastQuality === "good" && connected ? "running" : "degraded",
      connected,
      polls: this.#polls,
      ...(this.#lastError !== undefined ? { error: this.#lastError } : {}),
    };
  }

  async #connect(): Promise<ModbusClient> {
    const client = new ModbusRTU();
    try {
      await deadline(
        client.connectTCP(this.#cfg.host, { port: this.#cfg.port }),
        Math.max(this.#cfg.timeout_ms, 1000),
        `connecting to ${this.#cfg.host}:${this.#cfg.port}`,
      );
    } catch (err) {
      client.destroy(() => this.#log.debug("failed connection closed"));
      throw err;
    }
    client.setID(this.#cfg.unit_id);
    client.setTimeout(this.#cfg.timeout_ms);
    client.on("error", (err: unknown) => this.#log.debug({ err }, "modbus socket error"));
    this.#log.info({ host: this.#cfg.host, port: this.#cfg.port, unit_id: this.#cfg.unit_id }, "modbus tcp connected");
    return client;
  }

  #disconnect(): void {
    const c = this.#client;
    this.#client = undefined;
    if (c) c.destroy(() => this.#log.debug("modbus connection closed"));
  }

  #noteFailure(quality: Quality, message: string, connectionLost: boolean): void {
    if (connectionLost) {
      this.#disconnect();
      this.#failures++;
      this.#retryAt = Date.now() + Math.min(this.#cfg.interval_ms * 2 ** (this.#failures - 1), MAX_BACKOFF_MS);
    }
    if (this.#lastError !== message)
      this.#log.warn({ quality, error: message, retry_in_ms: connectionLost ? this.#retryAt - Date.now() : undefined }, "meter read failed");
    this.#lastError = message;
    this.#lastQuality = quality;
  }

  async #poll(onReading: ReadingListener): Promise<void> {
    const ts = Date.now();
    if (!this.#client) {
      if (ts < this.#retryAt) return;
      try {
        this.#client = await this.#connect();
        this.#client.on("close", () => {
          if (this.#client) this.#log.warn("modbus connection closed by the meter");
          this.#client = undefined;
        });
      } catch (err) {
        const message = `cannot connect to ${this.#cfg.host}:${this.#cfg.port}: ${(err as Error).message}`;
        this.#noteFailure("error", message, true);
        const values = Object.fromEntries(
          this.#blocks.flatMap((b) => b.registers).map((r) => [r.name, { value: null, unit: r.unit, quality: "error" as const }]),
        );
        onReading({ meterId: this.id, ts, values, error: message });
        return;
      }
    }
    this.#polls++;
    const res = await readBlocks(this.#client, this.#blocks, this.#cfg.retries, this.#checker, ts);
    if (res.failure) {
      this.#noteFailure(res.failure.quality, res.failure.message, res.failure.connectionLost);
      onReading({ meterId: this.id, ts, values: res.values, error: res.failure.message });
      return;
    }
    if (this.#lastError !== undefined) this.#log.info("meter reads again");
    this.#failures = 0;
    this.#lastError = undefined;
    this.#lastQuality = "good";
    onReading({ meterId: this.id, ts, values: res.values });
  }
}

export const MODBUS_TCP = defineMeterKind({
  driver: "modbus-tcp",
  schema: MODBUS_TCP_METER,
  create: (cfg, deps) => new ModbusTcpMeter(cfg, deps.log),
  ownClock: false,
  values: modbusValues,
});
