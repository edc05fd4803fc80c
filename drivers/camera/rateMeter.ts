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
