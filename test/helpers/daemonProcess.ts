import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { REPO_ROOT } from "./sharedData.js";

/**
 * A daemon in its own process (the real CLI, or a fixture that builds the daemon the same way),
 * with its log captured so a test can wait for a line instead of sleeping.
 */
export class DaemonProcess {
  readonly #args: string[];
  readonly #env: NodeJS.ProcessEnv;
  #child: ChildProcess | undefined;
  log = "";
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;

  /** `args` after `node --import tsx`, e.g. ["runtime/cli.ts", "run", "--config", file]. */
  constructor(args: string[], env: NodeJS.ProcessEnv = {}) {
    this.#args = args;
    this.#env = env;
  }

  static cli(configFile: string, env: NodeJS.ProcessEnv = {}): DaemonProcess {
    return new DaemonProcess(["runtime/cli.ts", "run", "--config", configFile], env);
  }

  /** The daemon plus a test part publishing `burst` messages on each of `topics` topics every `intervalMs`. */
  static ticker(configFile: string, topics = 3, intervalMs = 20, burst = 1, env: NodeJS.ProcessEnv = {}): DaemonProcess {
    return new DaemonProcess(["test/fixtures/tickerDaemon.ts", configFile, String(topics), String(intervalMs), String(burst)], env);
  }

  start(): this {
    this.log = "";
    this.exitCode = null;
    this.exitSignal = null;
    const child = spawn(process.execPath, ["--import", "tsx", ...this.#args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...this.#env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.#child = child;
    child.stdout?.on("data", (d: Buffer) => (this.log += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (this.log += d.toString()));
    child.once("exit", (code, signal) => {
      this.exitCode = code;
      this.exitSignal = signal;
    });
    return this;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Resident set size in bytes, from /proc (Linux). */
  rss(): number {
    const pid = this.#child?.pid;
    if (pid === undefined) return 0;
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  }

  get running(): boolean {
    const c = this.#child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  /** Resolves when the log matches `re`; rejects when the process exits first or after `timeoutMs`. */
  async waitForLog(re: RegExp, timeoutMs = 60_000, from = 0): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!re.test(this.log.slice(from))) {
      if (!this.running)
        throw new Error(`daemon exited (${this.exitCode ?? this.exitSignal}) before its log matched ${re}:\n${this.log.slice(-3000)}`);
      if (Date.now() > deadline) throw new Error(`daemon log did not match ${re} within ${timeoutMs} ms:\n${this.log.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Sends the signal and waits for the exit; returns the exit code (null when killed by a signal). */
  async kill(signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
    const child = this.#child;
    if (!child || !this.running) return this.exitCode;
    const gone = new Promise<void>((r) => child.once("exit", () => r()));
    child.kill(signal);
    await gone;
    return this.exitCode;
  }

  /** For afterEach/afterAll: SIGKILL if still running. */
  async stop(): Promise<void> {
    await this.kill("SIGKILL");
  }
}
