import type { LoadedConfig } from "./config/load.js";
import type { Config } from "./config/schema.js";
import type { Logger } from "./log/logger.js";
import type { Metrics } from "./metrics.js";
import type { Topics } from "./mqtt/topics.js";

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

/** What every part factory receives: the config it runs on, its logger and the shared services. */
export interface PartContext {
  loaded: LoadedConfig;
  config: Config;
  /** Absolute data directory (created before any part starts). */
  dataDir: string;
  /** The root logger; take `log.child({ module })` for each part. */
  log: Logger;
  /** Every MQTT topic comes from here. */
  topics: Topics;
  /** The Prometheus registry; it outlives config reloads, so counters keep counting. */
  metrics: Metrics;
  /** The state of every part, for health reports. */
  health: () => Record<string, PartHealth>;
  /** Re-reads and applies the config file (as SIGHUP does); resolves true when applied. */
  reload: () => Promise<boolean>;
}
