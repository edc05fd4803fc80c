/**
 * How a delay is spread: ±`ratio` around the step, "equal" (a random point in the step's upper
 * half), or "above" (a random point between the step and twice it, so no delay is shorter than
 * `initial_ms`).
 */
export type Jitter = number | "equal" | "above";

export interface BackoffOptions {
  /** The first delay. */
  initial_ms: number;
  /** Delays double up to this cap. */
  max_ms: number;
  /**
   * A number spreads each delay over ±that fraction of its step (0.2: ±20%); "equal" picks a point
   * in the upper half of the step, so no delay is longer than the step. Default 0.2.
   */
  jitter?: Jitter;
  random?: () => number;
}

/**
 * Retry delays: `initial_ms`, doubling up to `max_ms`, each with jitter so that cameras, parts or
 * a fleet of devices that lost the same thing do not come back in step. Never past the cap.
 */
export class Backoff {
  readonly #opts: BackoffOptions;
  #attempt = 0;

  constructor(opts: BackoffOptions) {
    if (!(opts.initial_ms > 0) || !(opts.max_ms >= opts.initial_ms)) {
      throw new Error(`backoff: need 0 < initial <= max, got initial ${opts.initial_ms} ms, max ${opts.max_ms} ms`);
    }
    this.#opts = opts;
  }

  /** The delay before the next attempt; each call counts one more failure. */
  next(): number {
    const { initial_ms, max_ms } = this.#opts;
    const step = Math.min(max_ms, initial_ms * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    const jitter = this.#opts.jitter ?? 0.2;
    const r = (this.#opts.random ?? Math.random)();
    if (jitter === "equal") return Math.round(step / 2 + r * (step / 2));
    if (jitter === "above") return Math.round(Math.min(max_ms, step + r * step));
    return Math.round(Math.min(max_ms, step * (1 - jitter + 2 * jitter * r)));
  }

  /** It worked: the next failure starts from `initial_ms` again. */
  reset(): void {
    this.#attempt = 0;
  }

  /** Failures counted since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }
}
