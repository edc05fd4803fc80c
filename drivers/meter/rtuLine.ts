import type { Logger } from "../../runtime/log/logger.js";
import { ModbusRTU, type ModbusClient } from "./modbusLib.js";

export interface SerialSettings {
  path: string;
  baud_rate: number;
  parity: "none" | "even" | "odd";
  data_bits: 7 | 8;
  stop_bits: 1 | 2;
}

const MAX_BACKOFF_MS = 30_000;

/**
 * One RS-485 line shared by every meter wired to it. Modbus RTU has one master talking to one
 * unit at a time, so `exclusive()` runs one meter's poll after another. The port is opened on
 * first use and reopened (with backoff) after it fails.
 */
export class RtuLine {
  readonly settings: SerialSettings;
  readonly #log: Logger;
  #client: ModbusClient | undefined;
  #tail: Promise<unknown> = Promise.resolve();
  #failures = 0;
  #retryAt = 0;
  #closed = false;

  constructor(settings: SerialSettings, log: Logger) {
    this.settings = settings;
    this.#log = log;
  }

  /** Runs fn with the open port while no other meter on the line runs. */
  exclusive<T>(fn: (client: ModbusClient) => Promise<T>): Promise<T> {
    const run = this.#tail.then(async () => fn(await this.#open()));
    this.#tail = run.catch((err: unknown) => this.#log.debug({ err }, "rtu line: poll failed"));
    return run;
  }

  /** Marks the port broken: the next poll reopens it. */
  fail(): void {
    const c = this.#client;
    this.#client = undefined;
    this.#failures++;
    this.#retryAt = Date.now() + Math.min(1000 * 2 ** (this.#failures - 1), MAX_BACKOFF_MS);
    if (c?.isOpen) c.close(() => this.#log.debug("rtu line closed after a failure"));
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#tail;
    const c = this.#client;
    this.#client = undefined;
    if (c?.isOpen) await new Promise<void>((resolve) => c.close(() => resolve()));
  }

  async #open(): Promise<ModbusClient> {
    if (this.#closed) throw new Error(`serial line ${this.settings.path} is closed`);
    if (this.#client?.isOpen) return this.#client;
    if (Date.now() < this.#retryAt) throw new Error(`serial line ${this.settings.path} is down; retrying in ${this.#retryAt - Date.now()} ms`);
    const client = new ModbusRTU();
    const s = this.settings;
    try {
      await client.connectRTUBuffered(s.path, { baudRate: s.baud_rate, parity: s.parity, dataBits: s.data_bits, stopBits: s.stop_bits });
    } catch (err) {
      this.fail();
      throw new Error(`cannot open serial line ${s.path}: ${(err as Error).message}`);
    }
    client.on("error", (err: unknown) => this.#log.warn({ err, path: s.path }, "serial line error"));
    this.#failures = 0;
    this.#client = client;
    this.#log.info({ path: s.path, baud_rate: s.baud_rate }, "serial line open");
    return client;
  }
}

/** The lines of one daemon run, by device path. */
export class RtuLines {
  readonly #lines = new Map<string, RtuLine>();
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  get(settings: SerialSettings): RtuLine {
    let line = this.#lines.get(settings.path);
    if (!line) {
      line = new RtuLine(settings, this.#log.child({ line: settings.path }));
      this.#lines.set(settings.path, line);
    } else if (line.settings.baud_rate !== settings.baud_rate || line.settings.parity !== settings.parity) {
      throw new Error(
        `serial line ${settings.path}: meters on one line need the same settings (${line.settings.baud_rate} ${line.settings.parity} vs ${settings.baud_rate} ${settings.parity})`,
      );
    }
    return line;
  }

  async closeAll(): Promise<void> {
    for (const line of this.#lines.values()) await line.close();
    this.#lines.clear();
  }
}
