import type { Logger } from "../log/logger.js";
import { NotifySocket } from "./notifySocket.js";

export interface SystemdNotifierOptions {
  log: Logger;
  env?: NodeJS.ProcessEnv;
  /** Asked before each watchdog feed; false skips the feed so systemd restarts a wedged daemon. */
  isHealthy?: () => boolean;
}

/**
 * Talks to systemd for a `Type=notify` service: READY=1 once started, RELOADING=1 around a
 * reload, STOPPING=1 at shutdown, and WATCHDOG=1 at half the `WatchdogSec` period. The feed runs
 * on the main event loop, so a blocked loop stops feeding and systemd restarts the daemon.
 * Without NOTIFY_SOCKET (not under systemd) every call does nothing.
 */
export class SystemdNotifier {
  readonly #log: Logger;
  readonly #env: NodeJS.ProcessEnv;
  readonly #isHealthy: () => boolean;
  #socket: NotifySocket | undefined;
  #timer: NodeJS.Timeout | undefined;
  #feeds = 0;

  constructor(opts: SystemdNotifierOptions) {
    this.#log = opts.log.child({ module: "systemd" });
    this.#env = opts.env ?? process.env;
    this.#isHealthy = opts.isHealthy ?? (() => true);
  }

  /** The watchdog period systemd asked for, in ms, or undefined when there is none for this process. */
  watchdogMs(): number | undefined {
    const usec = Number(this.#env.WATCHDOG_USEC);
    if (!Number.isFinite(usec) || usec <= 0) return undefined;
    const pid = this.#env.WATCHDOG_PID;
    if (pid !== undefined && pid !== "" && Number(pid) !== process.pid) return undefined;
    return Math.max(1, Math.floor(usec / 1000));
  }

  start(): void {
    const path = this.#env.NOTIFY_SOCKET;
    if (!path) return;
    const socket = new NotifySocket(path, (err) => this.#log.warn({ err }, "notify socket error"));
    try {
      socket.open();
    } catch (err) {
      this.#log.error({ err }, "cannot talk to systemd; readiness and watchdog are off");
      return;
    }
    this.#socket = socket;
    const period = this.watchdogMs();
    if (period !== undefined) {
      const every = Math.max(1, Math.floor(period / 2));
      this.#timer = setInterval(() => this.#feed(), every);
      this.#log.info({ watchdog_ms: period, feed_every_ms: every }, "systemd watchdog on");
    }
  }

  #feed(): void {
    if (!this.#isHealthy()) {
      this.#log.error("daemon unhealthy: not feeding the systemd watchdog");
      return;
    }
    this.#feeds++;
    this.#send("WATCHDOG=1");
  }

  /** How many times the watchdog was fed (for health). */
  get feeds(): number {
    return this.#feeds;
  }

  ready(status = "running"): void {
    this.#send(`READY=1\nSTATUS=${status}\nMAINPID=${process.pid}`);
  }

  reloading(): void {
    // MONOTONIC_USEC lets systemd ≥ 253 order this against its own reload request.
    const usec = process.hrtime.bigint() / 1000n;
    this.#send(`RELOADING=1\nMONOTONIC_USEC=${usec}\nSTATUS=reloading the config`);
  }

  stopping(): void {
    this.#send("STOPPING=1\nSTATUS=stopping");
  }

  status(text: string): void {
    this.#send(`STATUS=${text.replace(/\n/g, " ")}`);
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#socket?.close();
    this.#socket = undefined;
  }

  #send(state: string): void {
    const socket = this.#socket;
    if (!socket) return;
    socket.send(state).catch((err: unknown) => this.#log.warn({ err, state: state.split("\n")[0] }, "sd_notify failed"));
  }
}
