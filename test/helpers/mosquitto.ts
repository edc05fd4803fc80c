import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

export const MOSQUITTO_BIN = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"].find((p) => existsSync(p));

// One implementation of these, shared with the benchmarks.
export { freePort, waitForPort } from "../../bench/benchProcess.js";
import { freePort, waitForPort } from "../../bench/benchProcess.js";

export interface MosquittoTls {
  cafile: string;
  certfile: string;
  keyfile: string;
  /** Ask clients for a certificate signed by `cafile` (mutual TLS). */
  requireCertificate?: boolean;
}

export interface MosquittoOptions {
  port?: number;
  tls?: MosquittoTls;
  /** Extra lines for mosquitto.conf. */
  extra?: string[];
}

/**
 * A real mosquitto process on 127.0.0.1 and a free port, with a generated config in a temp dir.
 * `kill("SIGKILL")` then `start()` restarts it on the same port (no persistence: a restarted
 * broker has forgotten retained messages and sessions, like a replaced one).
 */
export class Mosquitto {
  readonly dir: string;
  port = 0;
  #child: ChildProcess | undefined;
  readonly #opts: MosquittoOptions;
  log = "";

  constructor(opts: MosquittoOptions = {}) {
    if (!MOSQUITTO_BIN) throw new Error("mosquitto is not installed (apt-get install mosquitto)");
    this.#opts = opts;
    this.dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-mosquitto-"));
  }

  get url(): string {
    return `${this.#opts.tls ? "mqtts" : "mqtt"}://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  async start(): Promise<this> {
    if (this.port === 0) this.port = this.#opts.port ?? (await freePort());
    const tls = this.#opts.tls;
    const conf = [
      `listener ${this.port} 127.0.0.1`,
      "allow_anonymous true",
      "persistence false",
      "log_dest stderr",
      "log_type error",
      "log_type warning",
      "log_type notice",
      "max_queued_messages 100000",
      ...(tls
        ? [
            `cafile ${tls.cafile}`,
            `certfile ${tls.certfile}`,
            `keyfile ${tls.keyfile}`,
            `require_certificate ${tls.requireCertificate ? "true" : "false"}`,
          ]
        : []),
      ...(this.#opts.extra ?? []),
    ];
    const file = path.join(this.dir, "mosquitto.conf");
    writeFileSync(file, `${conf.join("\n")}\n`);
    const child = spawn(MOSQUITTO_BIN!, ["-c", file], { stdio: ["ignore", "pipe", "pipe"] });
    this.#child = child;
    child.stdout?.on("data", (d: Buffer) => (this.log += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (this.log += d.toString()));
    let exited: Error | undefined;
    child.once("exit", (code) => (exited = new Error(`mosquitto exited (${code}) at start:\n${this.log}`)));
    await waitForPort(this.port, 15_000, () => exited);
    return this;
  }

  /** Freezes the broker (SIGSTOP): connections stay open, nothing is acknowledged. */
  pause(): void {
    this.#child?.kill("SIGSTOP");
  }

  /** Sends the signal and waits until the process is gone. */
  async kill(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const child = this.#child;
    if (!child || !this.running) return;
    const gone = new Promise<void>((r) => child.once("exit", () => r()));
    child.kill(signal);
    await gone;
  }

  /** Stops the broker (SIGKILL if it does not go) and removes its temp dir. */
  async stop(): Promise<void> {
    await this.kill("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }
}
