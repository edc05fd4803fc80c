/**
 * Runs an async task every intervalMs on a fixed grid, never two at once: a run that overruns
 * skips the grid points it missed instead of queueing them.
 */
export class PollLoop {
  readonly #intervalMs: number;
  readonly #task: () => Promise<void>;
  readonly #onError: (err: unknown) => void;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = true;
  #next = 0;

  constructor(intervalMs: number, task: () => Promise<void>, onError: (err: unknown) => void) {
    this.#intervalMs = intervalMs;
    this.#task = task;
    this.#onError = onError;
  }

  /** `phaseMs` delays the first run (and so the whole grid), to spread many meters over the interval. */
  start(phaseMs = 0): void {
    this.#stopped = false;
    this.#next = Date.now() + phaseMs;
    this.#schedule(phaseMs);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  #schedule(delay: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => this.#tick(), delay);
  }

  #tick(): void {
    this.#running = this.#task()
      .catch((err: unknown) => this.#onError(err))
      .finally(() => {
        this.#running = undefined;
        const now = Date.now();
        this.#next += this.#intervalMs;
        if (this.#next <= now) this.#next = now + this.#intervalMs - ((now - this.#next) % this.#intervalMs);
        this.#schedule(this.#next - now);
      });
  }
}

/**
 * A stable phase in [0, intervalMs) for a meter id, so hundreds of meters with the same interval
 * do not all poll in the same millisecond (and keep their slot across restarts).
 */
export function phaseFor(id: string, intervalMs: number): number {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619) >>> 0;
  return h % intervalMs;
}
