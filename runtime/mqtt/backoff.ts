/**
 * Reconnect delays: doubling from `minMs` up to `maxMs`, each with "equal jitter" (a random
 * point in the upper half of the step), so a fleet of devices that lost the same broker does not
 * come back in lockstep, and no device waits longer than the cap.
 */
export class Backoff {
  readonly #minMs: number;
  readonly #maxMs: number;
  readonly #random: () => number;
  #failures = 0;

  constructor(minMs: number, maxMs: number, random: () => number = Math.random) {
    if (!(minMs > 0) || !(maxMs >= minMs)) throw new Error(`backoff: need 0 < min <= max, got min ${minMs} ms, max ${maxMs} ms`);
    this.#minMs = minMs;
    this.#maxMs = maxMs;
    this.#random = random;
  }

  /** The delay before the next attempt; each call counts one more failure. */
  next(): number {
    const step = Math.min(this.#maxMs, this.#minMs * 2 ** Math.min(this.#failures, 30));
    this.#failures++;
    return Math.round(step / 2 + this.#random() * (step / 2));
  }

  /** A connection succeeded: the next failure starts from the minimum again. */
  reset(): void {
    this.#failures = 0;
  }

  get failures(): number {
    return this.#failures;
  }
}
