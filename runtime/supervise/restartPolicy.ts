import { Backoff, type Jitter } from "./backoff.js";

/** The `supervision` config section's shape: how a part that failed is restarted. */
export interface RestartPolicyOptions {
  initial_ms: number;
  max_ms: number;
  /** A run this long counts as a recovery: delays start from `initial_ms` again and the window empties. */
  reset_after_ms: number;
  /** More restarts than this within `window_ms` and the part is reported `failed` (it is still retried, at `max_ms`). */
  max_restarts: number;
  window_ms: number;
}

export interface RestartDecision {
  /** How long to wait before the next attempt. */
  delayMs: number;
  /** The part restarted more than `max_restarts` times within the window: report it failed, retry at the cap. */
  givenUp: boolean;
}

/**
 * One part's restart policy, in the manner of Frigate's watchdog: a dead part is restarted with
 * backoff; past `max_restarts` restarts within `window_ms` it is given up on (state `failed`) but
 * still retried at the cap, so a part whose cause went away comes back by itself.
 */
export class RestartPolicy {
  #opts: RestartPolicyOptions;
  #backoff: Backoff;
  readonly #jitter: Jitter | undefined;
  readonly #random: (() => number) | undefined;
  #recent: number[] = [];
  #givenUp = false;
  #retryAt: number | undefined;
  #restarts = 0;

  constructor(opts: RestartPolicyOptions, jitter?: { jitter?: Jitter; random?: () => number }) {
    this.#opts = opts;
    this.#jitter = jitter?.jitter;
    this.#random = jitter?.random;
    this.#backoff = this.#makeBackoff();
  }

  #makeBackoff(): Backoff {
    return new Backoff({
      initial_ms: this.#opts.initial_ms,
      max_ms: this.#opts.max_ms,
      ...(this.#jitter !== undefined ? { jitter: this.#jitter } : {}),
      ...(this.#random ? { random: this.#random } : {}),
    });
  }

  /** New settings (a reload changed them); what was counted so far is kept. */
  configure(opts: RestartPolicyOptions): void {
    const attempt = this.#backoff.attempt;
    this.#opts = opts;
    this.#backoff = this.#makeBackoff();
    for (let i = 0; i < attempt; i++) this.#backoff.next();
  }

  /**
   * The part failed at `now` after running for `ranMs` (0: it never came up). Returns when to try
   * again. A run of at least `reset_after_ms` was a recovery, so it starts the count afresh.
   */
  failure(now: number, ranMs = 0): RestartDecision {
    if (ranMs >= this.#opts.reset_after_ms) this.#recover();
    this.#recent = this.#recent.filter((t) => now - t < this.#opts.window_ms);
    this.#recent.push(now);
    this.#restarts++;
    this.#givenUp = this.#recent.length > this.#opts.max_restarts;
    const delayMs = this.#givenUp ? this.#opts.max_ms : this.#backoff.next();
    this.#retryAt = now + delayMs;
    return { delayMs, givenUp: this.#givenUp };
  }

  /** The attempt scheduled by the last failure is being made now. */
  attempting(): void {
    this.#retryAt = undefined;
  }

  /** The part has been running for `ranMs`: once that is `reset_after_ms`, it has recovered. */
  running(ranMs: number): void {
    if (ranMs >= this.#opts.reset_after_ms) this.#recover();
  }

  #recover(): void {
    this.#backoff.reset();
    this.#recent = [];
    this.#givenUp = false;
  }

  /** When the next attempt is due (ms since the epoch), while one is waiting. */
  get retryAt(): number | undefined {
    return this.#retryAt;
  }

  get givenUp(): boolean {
    return this.#givenUp;
  }

  /** Failures (restarts scheduled) since this policy was made. */
  get restarts(): number {
    return this.#restarts;
  }

  /** Failures within the current window. */
  get recentFailures(): number {
    return this.#recent.length;
  }
}
