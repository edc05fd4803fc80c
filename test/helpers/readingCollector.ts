import type { Reading } from "../../drivers/meter/meter.js";

/** Collects a driver's readings and waits, event-driven, for one that matches. */
export class ReadingCollector {
  readonly readings: Reading[] = [];
  #waiters: { pred: (r: Reading) => boolean; resolve: (r: Reading) => void }[] = [];

  readonly listener = (r: Reading): void => {
    this.readings.push(r);
    for (const w of [...this.#waiters]) {
      if (w.pred(r)) {
        this.#waiters = this.#waiters.filter((x) => x !== w);
        w.resolve(r);
      }
    }
  };

  /** The next reading (from now on) that matches; rejects after timeoutMs with what was seen last. */
  next(pred: (r: Reading) => boolean, timeoutMs = 20_000): Promise<Reading> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const last = this.readings.at(-1);
        reject(new Error(`no matching reading within ${timeoutMs} ms; last: ${JSON.stringify(last)}`));
      }, timeoutMs);
      this.#waiters.push({
        pred,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
      });
    });
  }
}
