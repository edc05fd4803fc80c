import { mkdirSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";
import { ConfigError, formatProblem } from "./config/errors.js";
import { loadConfig, resolvePath, type LoadedConfig } from "./config/load.js";
import type { Config } from "./config/schema.js";
import type { Logger, SecretScrubber } from "./log/logger.js";
import { DaemonBus } from "./events/events.js";
import { Metrics } from "./metrics.js";
import { Topics } from "./mqtt/topics.js";
import type { Part, PartContext, PartHealth, PartIdentity, PartKind, PartRegistry } from "./part.js";
import type { PartReport } from "./partHealth.js";
import { buildParts } from "./parts.js";
import type { LastReload, ReloadChanges, ReloadFailure, ReloadOptions, ReloadResult } from "./supervise/reload.js";
import { SupervisedPart } from "./supervise/supervisedPart.js";

export interface DaemonOptions {
  configFile: string;
  loaded: LoadedConfig;
  log: Logger;
  scrubber: SecretScrubber;
  env?: NodeJS.ProcessEnv;
  /** Builds the parts for a config, in start order. Injected so tests can run the daemon with their own. */
  buildParts?: (ctx: PartContext) => Part[] | Promise<Part[]>;
  /**
   * The daemon cannot go on: a reload failed and the previous config could not be brought back.
   * `cityedge run` exits non-zero, so that systemd starts it afresh.
   */
  onFatal?: (err: Error) => void;
}

const PART_STOP_TIMEOUT_MS = 8000;
const HEARTBEAT_MS = 1000;

/** What a part was built from: its slice (with the daemon-wide keys), and whether it declared one. */
interface Identity {
  slice: unknown;
  /** False for a part built without `ctx.part`: its slice is then the whole config. */
  declared: boolean;
}

/** A part as the daemon runs it: its supervisor and what it was built from. */
interface Entry extends Identity {
  sup: SupervisedPart;
}

/** The parts one config asks for, in start order, and which of them are already running. */
interface Plan {
  loaded: LoadedConfig;
  parts: Part[];
  identities: Map<Part, Identity>;
  /** Parts of the running set that the new config keeps as they are. */
  kept: Set<Part>;
}

/** What every part's slice includes: a change to one of these restarts everything. */
function daemonSlice(cfg: Config, dataDir: string): unknown {
  return { device_id: cfg.device_id, topic_prefix: cfg.topic_prefix, data_dir: dataDir };
}

/** The slice of a part built without an identity: the whole config, less what applies in place. */
function wholeSlice(cfg: Config, dataDir: string): unknown {
  const { log_level: _level, supervision: _supervision, ...rest } = cfg;
  return { ...rest, data_dir: dataDir };
}

/**
 * The composition root: builds every part from the config, gives each its logger and
 * dependencies, runs each under its restart policy so that one failing part never takes down the
 * others, and reloads by difference: only the parts whose config slice changed are restarted.
 */
export class Daemon {
  readonly #opts: DaemonOptions;
  readonly #log: Logger;
  #loaded: LoadedConfig;
  #entries: Entry[] = [];
  #reloading: Promise<ReloadResult> | undefined;
  #lastReload: LastReload | undefined;
  #stopped = false;
  readonly metrics = new Metrics();
  /** The parts' event bus; like the metrics it outlives reloads, and parts subscribe from start to stop. */
  readonly bus: DaemonBus;
  #heartbeat: NodeJS.Timeout | undefined;
  /** The running parts, looked up at the time of use; the same object across reloads. */
  readonly parts: PartRegistry = {
    get: (name) => this.#entries.find((e) => e.sup.name === name)?.sup.part,
    ofKind: (kind: PartKind) => this.#entries.filter((e) => e.sup.part.kind === kind).map((e) => e.sup.part),
    restart: async (name) => {
      const entry = this.#entries.find((e) => e.sup.name === name);
      if (!entry) throw new Error(`no part "${name}" runs in this daemon`);
      await entry.sup.restart();
    },
  };

  constructor(opts: DaemonOptions) {
    this.#opts = opts;
    this.#loaded = opts.loaded;
    this.#log = opts.log.child({ module: "daemon" });
    this.bus = new DaemonBus(opts.log.child({ module: "events" }));
  }

  get config(): Config {
    return this.#loaded.config;
  }

  /** The last reload's outcome, for health; undefined until one was asked for. */
  get lastReload(): LastReload | undefined {
    return this.#lastReload;
  }

  async start(): Promise<void> {
    this.#stopped = false;
    this.#startHeartbeat();
    const dataDir = this.#prepareDataDir(this.#loaded);
    const plan = await this.#plan(this.#loaded, dataDir, []);
    const cfg = this.#loaded.config;
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
        parts: plan.parts.map((p) => p.name),
      },
      "starting cityedge",
    );
    this.#entries = plan.parts.map((part) => ({ sup: this.#supervise(part), ...plan.identities.get(part)! }));
    this.metrics.prime(cfg);
    const failed: string[] = [];
    for (const { sup } of this.#entries) {
      if (this.#stopped) return;
      // One part's failure is reported and contained: the rest still start, and it is retried.
      const err = await sup.start({ retry: true });
      if (err) {
        failed.push(sup.name);
        this.#log.error({ part: sup.name, err }, "part failed to start; the others keep running");
      } else this.#log.debug({ part: sup.name }, "part started");
    }
    this.#log.info({ running: this.#entries.length - failed.length, failed }, "cityedge started");
  }

  /** Stops every part, last started first, each bounded in time so one stuck part cannot hang shutdown. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#stopEntries(this.#entries);
    this.#entries = [];
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    this.#log.info("cityedge stopped");
  }

  async #stopEntries(entries: readonly Entry[]): Promise<void> {
    for (const { sup } of [...entries].reverse()) await sup.stop();
  }

  #supervise(part: Part): SupervisedPart {
    return new SupervisedPart({ part, policy: this.#loaded.config.supervision, log: this.#log, stopTimeoutMs: PART_STOP_TIMEOUT_MS });
  }

  /** The config's data directory, created; throws with the path and the reason when it cannot be. */
  #prepareDataDir(loaded: LoadedConfig): string {
    const dir = resolvePath(loaded, loaded.config.data_dir);
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw new Error(`data_dir: cannot create ${dir}: ${(err as Error).message}`);
    }
    return dir;
  }

  /**
   * Builds the parts a config asks for. Each part declared with an identity (`ctx.part`) whose
   * slice is unchanged and whose dependencies are all kept is replaced by its running twin, so
   * the parts built after it are wired to the one that keeps running.
   */
  async #plan(loaded: LoadedConfig, dataDir: string, running: readonly Entry[]): Promise<Plan> {
    const cfg = loaded.config;
    const byName = new Map(running.map((e) => [e.sup.name, e]));
    const kept = new Set<Part>();
    const identities = new Map<Part, Identity>();
    const common = daemonSlice(cfg, dataDir);
    /** The running twin of `made`, when it was built from the same identity and can be kept. */
    const twin = (made: Part, identity: Identity, depsKept: boolean): Part | undefined => {
      const prev = byName.get(made.name);
      if (!prev || !depsKept || prev.declared !== identity.declared || prev.sup.part.constructor !== made.constructor) return undefined;
      return isDeepStrictEqual(prev.slice, identity.slice) ? prev.sup.part : undefined;
    };
    const ctx: PartContext = {
      loaded,
      config: cfg,
      dataDir,
      log: this.#opts.log,
      scrub: <T>(value: T): T => this.#opts.scrubber.scrubDeep(value, 32) as T,
      topics: new Topics(cfg.topic_prefix, cfg.device_id),
      metrics: this.metrics,
      bus: this.bus,
      health: () => this.report(),
      reload: (opts) => this.reload(opts),
      lastReload: () => this.#lastReload,
      parts: this.parts,
      part: <T extends Part>(made: T, declared: PartIdentity): T => {
        const identity = { slice: { daemon: common, part: declared.slice }, declared: true };
        const prev = twin(
          made,
          identity,
          (declared.deps ?? []).every((d) => kept.has(d)),
        );
        const part = (prev ?? made) as T;
        if (prev) kept.add(prev);
        identities.set(part, identity);
        return part;
      },
    };
    const built = await (this.#opts.buildParts ?? buildParts)(ctx);
    const names = new Set<string>();
    const parts: Part[] = [];
    for (const made of built) {
      if (names.has(made.name)) throw new Error(`two parts are named "${made.name}"`);
      names.add(made.name);
      let part = made;
      if (!identities.has(part)) {
        // Built without an identity: as far as anyone can tell, it depends on the whole config.
        const identity = { slice: wholeSlice(cfg, dataDir), declared: false };
        const prev = twin(part, identity, true);
        if (prev) {
          part = prev;
          kept.add(prev);
        }
        identities.set(part, identity);
      }
      parts.push(part);
    }
    return { loaded, parts, identities, kept: new Set(parts.filter((p) => kept.has(p))) };
  }

  /** A 1 s timer that keeps the process alive while the daemon runs, even with no parts, and shows the loop turning. */
  #startHeartbeat(): void {
    if (this.#heartbeat) return;
    this.#heartbeat = setInterval(() => {
      this.lastHeartbeat = Date.now();
    }, HEARTBEAT_MS);
  }

  /** When the heartbeat last ran (ms since epoch): a stuck event loop stops moving it. */
  lastHeartbeat = Date.now();

  /**
   * Re-reads the config file and applies it by difference: parts whose slice is unchanged keep
   * running, the others are stopped and started anew, `log_level` and `supervision` apply in
   * place. An invalid file (or one whose data_dir cannot be made) is rejected and nothing changes;
   * a new config whose parts fail to start is rolled back to the running one.
   */
  async reload(opts: ReloadOptions = {}): Promise<ReloadResult> {
    if (opts.dryRun) {
      if (this.#reloading) await this.#reloading;
      return this.#reload(true);
    }
    if (this.#reloading) return this.#reloading;
    const reloading = this.#reload(false).then((result) => {
      if (result.outcome !== "planned") this.#lastReload = { at: new Date().toISOString(), ...result };
      return result;
    });
    this.#reloading = reloading.finally(() => {
      this.#reloading = undefined;
    });
    return this.#reloading;
  }

  async #reload(dryRun: boolean): Promise<ReloadResult> {
    const file = this.#opts.configFile;
    let next: LoadedConfig;
    let dataDir: string;
    try {
      next = loadConfig(file, this.#opts.env ?? process.env);
      dataDir = this.#prepareDataDir(next);
    } catch (err) {
      if (err instanceof ConfigError) {
        for (const p of err.problems) this.#log.error({ problem: p }, `config reload rejected: ${formatProblem(p)}`);
        this.#log.warn({ problems: err.problems.length }, "config reload rejected; still running on the previous config");
        return { outcome: "rejected", config: file, problems: err.problems.map(formatProblem) };
      }
      const problem = `${file}: ${(err as Error).message}`;
      this.#log.error({ err }, `config reload rejected: ${problem}`);
      this.#log.warn({ problems: 1 }, "config reload rejected; still running on the previous config");
      return { outcome: "rejected", config: file, problems: [problem] };
    }
    const previous = this.#loaded;
    const old = this.#entries;
    const plan = await this.#plan(next, dataDir, old);
    const changes = this.#changes(old, plan, previous.config, next.config);
    if (dryRun) return { outcome: "planned", config: next.file, ...changes };

    this.#log.info({ config: next.file, ...changes }, "config reload: valid, applying");
    this.#opts.scrubber.setSecrets([...new Set([...previous.secrets, ...next.secrets])]);
    this.#opts.log.level = next.config.log_level;
    for (const e of old) if (plan.kept.has(e.sup.part)) e.sup.configure(next.config.supervision);
    const wasRunning = new Set(old.filter((e) => e.sup.running).map((e) => e.sup.name));
    const failed = await this.#switchTo(plan);
    if (failed.length === 0) {
      this.#log.info(
        { device_id: next.config.device_id, config: next.file, parts: plan.parts.map((p) => p.name), reload: true },
        "starting cityedge",
      );
      this.#log.info({ restarted: changes.restarted, started: changes.started, stopped: changes.stopped }, "config reload applied");
      return { outcome: "applied", config: next.file, ...changes };
    }

    // Back to the config that ran: the parts of the new one that started stop again, the old
    // ones are built afresh and started; what was kept keeps running throughout.
    this.#log.error({ failed }, "config reload: the new config's parts failed to start; rolling back to the running config");
    this.#opts.log.level = previous.config.log_level;
    const back = await this.#plan(previous, this.#prepareDataDir(previous), this.#entries);
    const stillFailing = await this.#switchTo(back, { retry: true });
    for (const e of this.#entries) e.sup.configure(previous.config.supervision);
    const lost = stillFailing.filter((f) => wasRunning.has(f.part));
    if (lost.length > 0) {
      const err = new Error(`config reload rolled back, but ${lost.map((f) => `${f.part} (${f.error})`).join(", ")} could not be started again`);
      this.#log.fatal({ err }, "the previous config cannot be brought back");
      this.#opts.onFatal?.(err);
    } else this.#log.warn({ failed }, "config reload rolled back; running on the previous config");
    return { outcome: "rolled_back", config: next.file, failed, ...changes };
  }

  /**
   * Stops the running parts the plan does not keep (last started first), then starts the plan's
   * new ones in order. Without `retry`, the first part that fails to start ends the switch and
   * is returned; with it, every part is started and failures go to their restart policy.
   */
  async #switchTo(plan: Plan, opts: { retry?: boolean } = {}): Promise<ReloadFailure[]> {
    const old = this.#entries;
    await this.#stopEntries(old.filter((e) => !plan.kept.has(e.sup.part)));
    const byPart = new Map(old.map((e) => [e.sup.part, e.sup]));
    this.#loaded = plan.loaded;
    this.metrics.prime(plan.loaded.config);
    this.#entries = plan.parts.map((part) => ({ sup: byPart.get(part) ?? this.#supervise(part), ...plan.identities.get(part)! }));
    const failed: ReloadFailure[] = [];
    for (const e of this.#entries) {
      if (plan.kept.has(e.sup.part) || this.#stopped) continue;
      const err = await e.sup.start({ retry: opts.retry ?? false });
      if (!err) continue;
      failed.push({ part: e.sup.name, error: err.message });
      this.#log.error({ part: e.sup.name, err }, "part failed to start");
      if (!opts.retry) break;
    }
    return failed;
  }

  #changes(old: readonly Entry[], plan: Plan, before: Config, after: Config): ReloadChanges {
    const oldNames = new Set(old.map((e) => e.sup.name));
    const newNames = new Set(plan.parts.map((p) => p.name));
    const replaced = old.filter((e) => !plan.kept.has(e.sup.part)).map((e) => e.sup.name);
    const fresh = plan.parts.filter((p) => !plan.kept.has(p)).map((p) => p.name);
    const inPlace: string[] = [];
    if (before.log_level !== after.log_level) inPlace.push("log_level");
    if (!isDeepStrictEqual(before.supervision, after.supervision)) inPlace.push("supervision");
    return {
      restarted: replaced.filter((n) => newNames.has(n)),
      started: fresh.filter((n) => !oldNames.has(n)),
      stopped: replaced.filter((n) => !newNames.has(n)),
      kept: plan.parts.filter((p) => plan.kept.has(p)).map((p) => p.name),
      in_place: inPlace,
    };
  }

  /** Every part's health by name. */
  health(): Record<string, PartHealth> {
    const out: Record<string, PartHealth> = {};
    for (const { sup } of this.#entries) out[sup.name] = sup.health();
    return out;
  }

  /** Every part's health with its kind and id, in start order: what health summaries group. */
  report(): PartReport[] {
    return this.#entries.map(({ sup }) => {
      const { name, kind = "other", id } = sup.part;
      // A part's class fixes its kind and its health's type together (runtime/partHealth.ts).
      return { name, kind, ...(id !== undefined ? { id } : {}), health: sup.health() } as PartReport;
    });
  }
}
