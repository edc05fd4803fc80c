import type { Logger } from "../log/logger.js";
import type { Part, PartHealth, SupervisorHealth } from "../part.js";
import { RestartPolicy, type RestartPolicyOptions } from "./restartPolicy.js";

export interface SupervisedPartOptions {
  part: Part;
  policy: RestartPolicyOptions;
  /** The daemon's logger; lines name the part. */
  log: Logger;
  /** How long the part's stop() may take before it is given up on (and logged). */
  stopTimeoutMs: number;
}

/** Where the supervisor is with its part. */
type Phase = "stopped" | "starting" | "running" | "retrying" | "failed";

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * One part under the daemon's restart policy: a part that fails to start, or reports through
 * `died()` that it stopped working, is stopped (to release what it holds) and started again after
 * the policy's delay, for as long as the daemon runs. Health shows the failure and the next retry.
 */
export class SupervisedPart {
  readonly part: Part;
  readonly #o: SupervisedPartOptions;
  readonly #policy: RestartPolicy;
  #phase: Phase = "stopped";
  #error: string | undefined;
  #startedAt = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  /** Moves on at every stop(), so that callbacks of an earlier life do nothing. */
  #life = 0;
  /** A start was attempted and the part not stopped since: only then has it anything to stop. */
  #live = false;
  /** Start attempts and restarts run one after another. */
  #chain: Promise<unknown> = Promise.resolve();

  constructor(opts: SupervisedPartOptions) {
    this.part = opts.part;
    this.#o = opts;
    this.#policy = new RestartPolicy(opts.policy);
  }

  get name(): string {
    return this.part.name;
  }

  /** True while the part runs (its last start succeeded and it has not died since). */
  get running(): boolean {
    return this.#phase === "running";
  }

  /** The restart policy's settings changed (a reload): they apply from the next failure on. */
  configure(policy: RestartPolicyOptions): void {
    this.#policy.configure(policy);
  }

  /**
   * Starts the part. Resolves with the error when that first start failed; with `retry` the
   * failure is then handled like any other (restart after the policy's delay), without it the
   * part is left stopped (a reload rolls back instead).
   */
  start(opts: { retry: boolean }): Promise<Error | undefined> {
    const life = ++this.#life;
    return this.#serial(async () => {
      const err = await this.#attempt(life);
      if (err && opts.retry && life === this.#life) this.#scheduleRetry(0);
      return err;
    });
  }

  /** Stops the part, and any retry; bounded in time (a stuck part is logged and left behind). */
  async stop(): Promise<void> {
    this.#life++;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#phase = "stopped";
    if (!this.#live) return;
    this.#live = false;
    await this.#stopPart();
  }

  /** Stops and starts the part now (restart_pipeline); rejects with the start's error, which the policy then retries. */
  async restart(): Promise<void> {
    await this.stop();
    const err = await this.start({ retry: true });
    if (err) throw err;
  }

  health(): PartHealth {
    const own: PartHealth = this.part.health?.() ?? { state: this.#phase === "starting" ? "starting" : "running" };
    const restarts = this.#policy.restarts;
    const supervisor: SupervisorHealth = { restarts, recent_failures: this.#policy.recentFailures };
    const retryAt = this.#policy.retryAt;
    if (retryAt !== undefined && this.#retryTimer !== undefined) supervisor.retry_at = new Date(retryAt).toISOString();
    switch (this.#phase) {
      case "running":
      case "starting":
        return restarts > 0 ? { ...own, supervisor } : own;
      case "retrying":
      case "failed":
        return { ...own, state: this.#phase, ...(this.#error !== undefined ? { error: this.#error } : {}), supervisor };
      case "stopped":
        return { ...own, state: "stopped" };
    }
  }

  #serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#chain.then(work);
    // The chain only orders the work; each caller gets its own outcome from `next`.
    this.#chain = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }

  async #attempt(life: number): Promise<Error | undefined> {
    this.#phase = "starting";
    this.#policy.attempting();
    this.#live = true;
    try {
      await this.part.start({ died: (err) => this.#died(life, err) });
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      // What it acquired before failing is released before the next attempt.
      await this.#stopPart();
      this.#live = false;
      if (life === this.#life) {
        this.#error = e.message;
        this.#phase = "retrying";
      }
      return e;
    }
    if (life !== this.#life) {
      // stop() came while it was starting: what just started must not stay behind.
      await this.#stopPart();
      return undefined;
    }
    this.#phase = "running";
    this.#startedAt = Date.now();
    this.#error = undefined;
    return undefined;
  }

  #scheduleRetry(ranMs: number): void {
    const { delayMs, givenUp } = this.#policy.failure(Date.now(), ranMs);
    this.#phase = givenUp ? "failed" : "retrying";
    const life = this.#life;
    this.#o.log.warn(
      { part: this.name, error: this.#error, retry_in_ms: delayMs, restarts: this.#policy.restarts, recent_failures: this.#policy.recentFailures },
      givenUp ? "part keeps failing; marked failed, still retried at the longest delay" : "part failed; retrying",
    );
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      void this.#serial(async () => {
        if (life !== this.#life) return;
        const err = await this.#attempt(life);
        if (life !== this.#life) return;
        if (err) this.#scheduleRetry(0);
        else this.#o.log.info({ part: this.name, restarts: this.#policy.restarts }, "part restarted");
      });
    }, delayMs);
  }

  #died(life: number, err: Error): void {
    if (life !== this.#life || this.#phase !== "running") return;
    this.#phase = "retrying";
    this.#error = err.message;
    const ranMs = Date.now() - this.#startedAt;
    this.#o.log.error({ part: this.name, err, ran_ms: ranMs }, "part died; restarting it");
    void this.#serial(async () => {
      if (life !== this.#life) return;
      await this.#stopPart();
      this.#live = false;
      if (life === this.#life) this.#scheduleRetry(ranMs);
    });
  }

  async #stopPart(): Promise<void> {
    try {
      await withTimeout(this.part.stop(), this.#o.stopTimeoutMs, `stopping ${this.name}`);
    } catch (err) {
      this.#o.log.error({ part: this.name, err }, "part did not stop cleanly");
    }
  }
}
