export interface BackoffOptions {
  initial_ms: number;
  max_ms: number;
  /** Relative jitter: 0.2 spreads each delay over ±20%. */
  jitter?: number;
  random?: () => number;
}

/** Reconnect delays: initial, doubling up to a cap, each with jitter so cameras do not retry in step. */
export class Backoff {
  readonly #opts: BackoffOptions;
  #attempt = 0;

  constructor(opts: BackoffOptions) {
    this.#opts = opts;
  }

  /** The delay before the next attempt; each call doubles the one after it (up to the cap). */
  next(): number {
    const { initial_ms, max_ms } = this.#opts;
    const base = Math.min(max_ms, initial_ms * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    const j = this.#opts.jitter ?? 0.2;
    const r = (this.#opts.random ?? Math.random)();
    return Math.round(Math.min(max_ms, base * (1 - j + 2 * j * r)));
  }

  reset(): void {
    this.#attempt = 0;
  }

  get attempt(): number {
    return this.#attempt;
  }
}

/** Frames per second over a sliding window, from (time, running total) samples. */
export class RateMeter {
  readonly #windowMs: number;
  #samples: { t: number; total: number }[] = [];

  constructor(windowMs = 5000) {
    this.#windowMs = windowMs;
  }

  sample(t: number, total: number): void {
    this.#samples.push({ t, total });
    while (this.#samples.length > 2 && t - this.#samples[0]!.t > this.#windowMs) this.#samples.shift();
  }

  rate(): number {
    const first = this.#samples[0];
    const last = this.#samples[this.#samples.length - 1];
    if (!first || !last || last.t <= first.t) return 0;
    return ((last.total - first.total) * 1000) / (last.t - first.t);
  }

  clear(): void {
    this.#samples = [];
  }
}
