import type { Logger } from "./log/logger.js";

export type PartState = "starting" | "running" | "degraded" | "failed" | "stopped";

/** What a part says about itself in health reports. */
export interface PartHealth {
  state: PartState;
  /** The last error, already free of credentials. */
  error?: string;
  [detail: string]: unknown;
}

/**
 * Anything with a lifecycle that the daemon builds and runs. The constructor only stores its
 * arguments; `start()` acquires resources and `stop()` releases every timer, child process and
 * socket that `start()` made.
 */
export interface Part {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  health?(): PartHealth;
}

export interface PartLogger {
  log: Logger;
}
