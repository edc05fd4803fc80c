import { mkdirSync } from "node:fs";
import { ConfigError, formatProblem } from "./config/errors.js";
import { loadConfig, resolvePath, type LoadedConfig } from "./config/load.js";
import type { Config } from "./config/schema.js";
import type { Logger, SecretScrubber } from "./log/logger.js";
import { Metrics } from "./metrics.js";
import { Topics } from "./mqtt/topics.js";
import type { Part, PartContext, PartHealth } from "./part.js";
import { buildParts } from "./parts.js";

export interface DaemonOptions {
  configFile: string;
  loaded: LoadedConfig;
  log: Logger;
  scrubber: SecretScrubber;
  env?: NodeJS.ProcessEnv;
  /** Builds the parts for a config, in start order. Injected so tests can run the daemon with their own. */
  buildParts?: (ctx: PartContext) => Part[] | Promise<Part[]>;
}

const PART_STOP_TIMEOUT_MS = 8000;
const HEARTBEAT_MS = 1000;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The composition root: builds every part from the config, gives each its logger and
 * dependencies, and runs them so that one failing part never takes down the others.
 */
export class Daemon {
  readonly #opts: DaemonOptions;
  readonly #log: Logger;
  #loaded: LoadedConfig;
  #parts: Part[] = [];
  readonly #failed = new Map<string, string>();
  #reloading: Promise<boolean> | undefined;
  #stopped = false;
  readonly metrics = new Metrics();
  #heartbeat: NodeJS.Timeout | undefined;
  /** The longest delay of the 1 s heartbeat timer since the last read: the event loop's lag. */
  #lagMs = 0;

  constructor(opts: DaemonOptions) {
    this.#opts = opts;
    this.#loaded = opts.loaded;
    this.#log = opts.log.child({ module: "daemon" });
  }

  get config(): Config {
    return this.#loaded.config;
  }

  async start(): Promise<void> {
    this.#stopped = false;
    this.#startHeartbeat();
    const cfg = this.#loaded.config;
    const dataDir = resolvePath(this.#loaded, cfg.data_dir);
    mkdirSync(dataDir, { recursive: true });
    const ctx: PartContext = {
      loaded: this.#loaded,
      config: cfg,
      dataDir,
      log: this.#opts.log,
      topics: new Topics(cfg.topic_prefix, cfg.device_id),
      metrics: this.metrics,
      health: () => this.health(),
      reload: () => this.reload(),
    };
    this.#parts = await (this.#opts.buildParts ?? buildParts)(ctx);
    this.#log.info(
      {
        device_id: cfg.device_id,
        config: this.#loaded.file,
        data_dir: dataDir,
        mqtt: cfg.mqtt.url,
        broker: cfg.broker.enabled ? `${cfg.broker.host}:${cfg.broker.port}` : "off",
        cameras: cfg.cameras.map((c) => c.id),
        models: cfg.models.map((m) => m.id),
        meters: cfg.meters.map((m) => m.id),
        forecasts: cfg.forecasts.map((f) => f.id),
        parts: this.#parts.map((p) => p.name),
      },
      "starting cityedge",
    );
    this.#failed.clear();
    for (const part of this.#parts) {
      try {
        await part.start();
        this.#log.debug({ part: part.name }, "part started");
      } catch (err) {
        // One part's failure is reported and contained: the rest still start.
        this.#failed.set(part.name, (err as Error).message);
        this.#log.error({ part: part.name, err }, "part failed to start; the others keep running");
      }
    }
    this.#log.info({ running: this.#parts.length - this.#failed.size, failed: [...this.#failed.keys()] }, "cityedge started");
  }

  /** Stops every part, last started first, each bounded in time so one stuck part cannot hang shutdown. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const part of [...this.#parts].reverse()) {
      try {
        await withTimeout(part.stop(), PART_STOP_TIMEOUT_MS, `stopping ${part.name}`);
      } catch (err) {
        this.#log.error({ part: part.name, err }, "part did not stop cleanly");
      }
    }
    this.#parts = [];
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    this.#log.info("cityedge stopped");
  }

  /**
   * A 1 s timer that keeps the process alive while the daemon runs (even with no parts) and
   * measures event-loop lag, which health and the systemd watchdog report.
   */
  #startHeartbeat(): void {
    if (this.#heartbeat) return;
    const lag = this.metrics.gauge(
      "cityedge_event_loop_lag_seconds",
      "Largest event-loop delay seen by the 1 s heartbeat since the last scrape",
      (g) => {
        g.set(this.#lagMs / 1000);
        this.#lagMs = 0;
      },
    );
    void lag;
    let expected = Date.now() + HEARTBEAT_MS;
    this.#heartbeat = setInterval(() => {
      const now = Date.now();
      this.#lagMs = Math.max(this.#lagMs, now - expected);
      expected = now + HEARTBEAT_MS;
      this.lastHeartbeat = now;
    }, HEARTBEAT_MS);
  }

  /** When the heartbeat last ran (ms since epoch): a stuck event loop stops moving it. */
  lastHeartbeat = Date.now();

  /**
   * Re-reads the config file. A valid file is applied (the parts are rebuilt on it); an invalid
   * one is rejected with every problem logged, and the running config stays.
   * Resolves true when the new config was applied.
   */
  async reload(): Promise<boolean> {
    if (this.#reloading) return this.#reloading;
    this.#reloading = this.#reload().finally(() => {
      this.#reloading = undefined;
    });
    return this.#reloading;
  }

  async #reload(): Promise<boolean> {
    let next: LoadedConfig;
    try {
      next = loadConfig(this.#opts.configFile, this.#opts.env ?? process.env);
    } catch (err) {
      if (err instanceof ConfigError) {
        for (const p of err.problems) this.#log.error({ problem: p }, `config reload rejected: ${formatProblem(p)}`);
        this.#log.warn({ problems: err.problems.length }, "config reload rejected; still running on the previous config");
        return false;
      }
      throw err;
    }
    this.#log.info({ config: next.file }, "config reload: valid, applying");
    await this.stop();
    this.#loaded = next;
    this.#opts.scrubber.setSecrets(next.secrets);
    this.#opts.log.level = next.config.log_level;
    await this.start();
    return true;
  }

  health(): Record<string, PartHealth> {
    const out: Record<string, PartHealth> = {};
    for (const part of this.#parts) {
      const failed = this.#failed.get(part.name);
      out[part.name] = failed !== undefined ? { state: "failed", error: failed } : (part.health?.() ?? { state: "running" });
    }
    return out;
  }
}
