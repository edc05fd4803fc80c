import type { Logger } from "../log/logger.js";

/**
 * A failure that repeats (every commit on a full disk, every snapshot, every flush) is logged
 * once when it starts, then at most once per `everyMs` with how many times it happened since,
 * and once when it ends: a full disk must not also flood the journal that fills it.
 */
export class ThrottledLog {
  readonly #log: Logger;
  readonly #everyMs: number;
  readonly #now: () => number;
  #since: number | undefined;
  #lastLog = 0;
  #count = 0;
  #total = 0;

  constructor(log: Logger, everyMs = 60_000, now: () => number = Date.now) {
    this.#log = log;
    this.#everyMs = everyMs;
    this.#now = now;
  }

  /** True while failing (between the first failure and the next success). */
  get failing(): boolean {
    return this.#since !== undefined;
  }

  /** Times it failed since it started failing. */
  get failures(): number {
    return this.#total;
  }

  /** One failure. Logs at error level when it starts, then a summary at most once per interval. */
  failure(fields: Record<string, unknown>, msg: string): void {
    const now = this.#now();
    this.#count++;
    this.#total++;
    if (this.#since === undefined) {
      this.#since = now;
      this.#lastLog = now;
      this.#count = 0;
      this.#log.error(fields, msg);
      return;
    }
    if (now - this.#lastLog >= this.#everyMs) {
      this.#log.warn({ ...fields, failures_since_last_log: this.#count, failing_for_s: Math.round((now - this.#since) / 1000) }, `still: ${msg}`);
      this.#lastLog = now;
      this.#count = 0;
    }
  }

  /** It worked again: one line saying so, if it had been failing. */
  success(fields: Record<string, unknown>, msg: string): void {
    if (this.#since === undefined) return;
    this.#log.info({ ...fields, failures: this.#total, failed_for_s: Math.round((this.#now() - this.#since) / 1000) }, msg);
    this.#since = undefined;
    this.#count = 0;
    this.#total = 0;
  }
}
