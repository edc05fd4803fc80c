import { z } from "zod";
import { driverKey, METER_COMMON, MODBUS, POLLED } from "./configFields.js";
import type { Logger } from "../../runtime/log/logger.js";
import type { MeterDriver, MeterValue, Quality, ReadingListener, MeterHealth } from "./meter.js";
import { defineMeterKind } from "./meterKind.js";
import { modbusValues, planMeter, readBlocks } from "./modbusRead.js";
import { phaseFor, PollLoop } from "./pollLoop.js";
import type { Block } from "./registers.js";
import type { RtuLine } from "./rtuLine.js";
import { ValueChecker } from "./valueChecker.js";

export const MODBUS_RTU_METER = z.strictObject({
  driver: driverKey("modbus-rtu"),
  ...METER_COMMON,
  ...POLLED,
  ...MODBUS,
  path: z.string().min(1).describe("Serial device, e.g. /dev/ttyUSB0; meters with the same path share the line and are polled one at a time"),
  baud_rate: z.number().int().min(300).max(921_600).default(9600).describe("Baud rate"),
  parity: z.enum(["none", "even", "odd"]).default("none").describe("Parity"),
  data_bits: z.literal([7, 8]).default(8).describe("Data bits"),
  stop_bits: z.literal([1, 2]).default(1).describe("Stop bits"),
});

export type ModbusRtuMeterConfig = z.output<typeof MODBUS_RTU_METER>;

/** A meter on an RS-485 line; the line (shared with the other meters on it) serializes the polls. */
export class ModbusRtuMeter implements MeterDriver {
  readonly id: string;
  readonly #cfg: ModbusRtuMeterConfig;
  readonly #line: RtuLine;
  readonly #log: Logger;
  #loop: PollLoop | undefined;
  #blocks: Block[] = [];
  #checker: ValueChecker;
  #lastQuality: Quality | undefined;
  #lastError: string | undefined;
  #polls = 0;

  constructor(cfg: ModbusRtuMeterConfig, line: RtuLine, log: Logger) {
    this.id = cfg.id;
    this.#cfg = cfg;
    this.#line = line;
    this.#log = log;
    this.#checker = new ValueChecker(cfg.limits, cfg.stale_after_ms);
  }

  async start(onReading: ReadingListener): Promise<void> {
    this.#blocks = planMeter(this.#cfg);
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
  }

  health(): MeterHealth {
    return {
      state: this.#lastQuality === undefined ? "starting" : this.#lastQuality === "good" ? "running" : "degraded",
      polls: this.#polls,
      line: this.#cfg.path,
      ...(this.#lastError !== undefined ? { error: this.#lastError } : {}),
    };
  }

  async #poll(onReading: ReadingListener): Promise<void> {
    const ts = Date.now();
    this.#polls++;
    try {
      const res = await this.#line.exclusive(async (client) => {
        client.setID(this.#cfg.unit_id);
        client.setTimeout(this.#cfg.timeout_ms);
        return readBlocks(client, this.#blocks, this.#cfg.retries, this.#checker, ts);
      });
      if (res.failure?.connectionLost) this.#line.fail();
      this.#note(res.failure?.quality ?? "good", res.failure?.message);
      onReading({ meterId: this.id, ts, values: res.values, ...(res.failure ? { error: res.failure.message } : {}) });
    } catch (err) {
      const message = (err as Error).message;
      this.#note("error", message);
      const values: Record<string, MeterValue> = {};
      for (const r of this.#blocks.flatMap((b) => b.registers)) values[r.name] = { value: null, unit: r.unit, quality: "error" };
      onReading({ meterId: this.id, ts, values, error: message });
    }
  }

  #note(quality: Quality, message: string | undefined): void {
    if (message !== undefined && message !== this.#lastError) this.#log.warn({ quality, error: message }, "meter read failed");
    if (message === undefined && this.#lastError !== undefined) this.#log.info("meter reads again");
    this.#lastError = message;
    this.#lastQuality = quality;
  }
}

export const MODBUS_RTU = defineMeterKind({
  driver: "modbus-rtu",
  schema: MODBUS_RTU_METER,
  create: (cfg, deps) => new ModbusRtuMeter(cfg, deps.rtuLines.get(cfg), deps.log),
  ownClock: false,
  values: modbusValues,
});
