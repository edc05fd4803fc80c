import type { LoadedConfig } from "./config/load.js";
import type { Config } from "./config/schema.js";
import type { DaemonBus } from "./events/events.js";
import type { Logger } from "./log/logger.js";
import type { Metrics } from "./metrics.js";
import type { Topics } from "./mqtt/topics.js";
import type { PartReport } from "./partHealth.js";
import type { LastReload, ReloadOptions, ReloadResult } from "./supervise/reload.js";

/**
 * `retrying`: the part failed (to start, or while running) and the daemon starts it again at
 * `supervisor.retry_at`; `failed`: it failed more often than the restart policy allows within its
 * window (it is still retried, at the longest delay).
 */
export type PartState = "starting" | "running" | "degraded" | "retrying" | "failed" | "stopped";

/** What a part is; health is grouped by it. Parts built outside `parts.ts` (tests) may be "other". */
export type PartKind =
  | "broker"
  | "outbox"
  | "mqtt"
  | "camera"
  | "detector"
  | "pipeline"
  | "history"
  | "history-recorder"
  | "forecast"
  | "meters"
  | "live-view"
  | "http"
  | "health-publisher"
  | "process"
  | "commands"
  | "console"
  | "other";

/** What the daemon adds to a part's health once it has had to restart it. */
export type SupervisorHealth = {
  /** Failures the daemon answered with a restart, over the part's life. */
  restarts: number;
  /** Failures within the restart policy's window; past `supervision.max_restarts` the part is `failed`. */
  recent_failures: number;
  /** When the next start is due (ISO 8601), while one waits. */
  retry_at?: string;
};

/**
 * What every part says about itself in health reports. Each kind of part adds its own typed
 * fields (its `health()` return type; see `runtime/partHealth.ts` for the map by kind).
 */
export type PartHealth = {
  state: PartState;
  /** The last error, already free of credentials. */
  error?: string | undefined;
  supervisor?: SupervisorHealth;
};

/** Given to a part at start: how it tells the daemon that it died after a successful start. */
export interface PartSignals {
  /** The part can no longer do its work; the daemon stops it and starts it again by its restart policy. */
  died(error: Error): void;
}

/**
 * Anything with a lifecycle that the daemon builds and runs. The constructor only stores its
 * arguments; `start()` acquires resources and `stop()` releases every timer, child process and
 * socket that `start()` made. `stop()` is also called after a failed `start()`, to release what
 * it got before it failed, and a part may be started again after `stop()`.
 */
export interface Part {
  readonly name: string;
  readonly kind?: PartKind;
  /** The camera, model or meter the part is for, when it is for one (health is grouped by it). */
  readonly id?: string;
  start(signals?: PartSignals): Promise<void>;
  stop(): Promise<void>;
  health?(): PartHealth;
}

export interface PartLogger {
  log: Logger;
}

/**
 * How a part is known across reloads. `slice` is everything of the config the part reads: when
 * it is deep-equal in the new config and none of `deps` was replaced, the running part is kept
 * and the one just built is dropped (constructors only store their arguments, so that costs
 * nothing). `device_id`, `topic_prefix` and `data_dir` belong to every part's slice.
 */
export interface PartIdentity {
  slice: unknown;
  /** The parts this one holds (its sink, its frame source …): when one is replaced, so is this one. */
  deps?: readonly Part[];
}

/** The running parts, as they are now (across reloads); for parts that look others up when they act. */
export interface PartRegistry {
  /** The running part of that name, if any. */
  get(name: string): Part | undefined;
  /** Every part of a kind, in start order. */
  ofKind(kind: PartKind): Part[];
  /** Stops and starts one part (restart_pipeline); rejects when no part has that name. */
  restart(name: string): Promise<void>;
}

/** What every part factory receives: the config it runs on, its logger and the shared services. */
export interface PartContext {
  loaded: LoadedConfig;
  config: Config;
  /** Absolute data directory (created before any part starts). */
  dataDir: string;
  /** The root logger; take `log.child({ module })` for each part. */
  log: Logger;
  /**
   * Takes every secret of the config (and URL credentials) out of a value: what leaves the
   * device (command answers, health) goes through it, as log lines do.
   */
  scrub: <T>(value: T) => T;
  /** Every MQTT topic comes from here. */
  topics: Topics;
  /** The Prometheus registry; it outlives config reloads, so counters keep counting. */
  metrics: Metrics;
  /**
   * The typed event bus parts talk through (producers emit messages; the outbox and the history
   * recorder listen). It outlives config reloads: subscribe in `start()`, unsubscribe in `stop()`.
   */
  bus: DaemonBus;
  /** Every running part's health, with its name, kind and id, for health reports. */
  health: () => PartReport[];
  /** Re-reads and applies the config file (as SIGHUP does), restarting only the parts whose slice changed. */
  reload: (opts?: ReloadOptions) => Promise<ReloadResult>;
  /** The last reload's outcome (applied, rejected, rolled back …), for health; undefined before the first. */
  lastReload: () => LastReload | undefined;
  /**
   * Declares a freshly built part with its identity: returns the running part of the same name
   * when it can be kept (see {@link PartIdentity}), else `made`. Build a part's dependencies
   * through this before the part itself, so that it is wired to the ones that will run.
   */
  part<T extends Part>(made: T, identity: PartIdentity): T;
  /** The running parts, for lookups at the time of use (commands find cameras and models here). */
  parts: PartRegistry;
}
