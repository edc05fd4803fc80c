import { fork, type ChildProcess } from "node:child_process";
import path from "node:path";
import { REPO_ROOT } from "./sharedData.js";

const SCRIPT = path.join(REPO_ROOT, "test/fixtures/modbusServer.ts");

/** Drives test/fixtures/modbusServer.ts, a Modbus TCP server in a child process the test can kill. */
export class ModbusServerProcess {
  readonly #child: ChildProcess;
  port = 0;

  private constructor(child: ChildProcess) {
    this.#child = child;
  }

  static async start(port = 0, unitId = 1): Promise<ModbusServerProcess> {
    const child = fork(SCRIPT, [String(port), String(unitId)], {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      cwd: REPO_ROOT,
    });
    const srv = new ModbusServerProcess(child);
    srv.port = await new Promise<number>((resolve, reject) => {
      child.once("error", reject);
      child.once("exit", (code) => reject(new Error(`modbus test server exited with ${code} before it was ready`)));
      child.on("message", (m: { ready?: boolean; port?: number }) => {
        if (m.ready && m.port) resolve(m.port);
      });
    });
    return srv;
  }

  async #send(msg: Record<string, unknown>): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onMsg = (m: { ack?: string }): void => {
        if (m.ack === msg.cmd) {
          this.#child.off("message", onMsg);
          resolve();
        }
      };
      this.#child.on("message", onMsg);
      this.#child.send(msg, (err) => {
        if (err) reject(err);
      });
    });
  }

  set(table: "holding" | "input", address: number, words: number[]): Promise<void> {
    return this.#send({ cmd: "set", table, address, words });
  }

  exception(table: "holding" | "input", start: number, end: number, code: number): Promise<void> {
    return this.#send({ cmd: "exception", table, start, end, code });
  }

  delay(ms: number): Promise<void> {
    return this.#send({ cmd: "delay", ms });
  }

  clear(): Promise<void> {
    return this.#send({ cmd: "clear" });
  }

  /** SIGKILL, and resolves once the process is gone. */
  async kill(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => this.#child.once("exit", () => resolve()));
    this.#child.kill("SIGKILL");
    await gone;
  }
}
