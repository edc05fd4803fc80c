export interface StallWatchdogOptions {
  stallMs: number;
  checkMs: number;
  /** The current stage and since when it runs (Date.now()). */
  stage: () => { stage: string; sinceMs: number };
  /** Stages that may last forever (waiting for frames). */
  idle: ReadonlySet<string>;
  onStall: (stage: string, ageMs: number) => void;
}

/**
 * Watches a pipeline's current stage: when a stage that should finish (such as "inference") has
 * not progressed for `stallMs`, `onStall` runs, once per stall. The pipeline restarts what is
 * stuck; the watchdog only notices.
 */
export class StallWatchdog {
  readonly #o: StallWatchdogOptions;
  #timer: NodeJS.Timeout | undefined;
  #reported = -1;

  constructor(options: StallWatchdogOptions) {
    this.#o = options;
  }

  start(): void {
    this.#timer ??= setInterval(() => this.check(), this.#o.checkMs);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  check(now = Date.now()): void {
    const { stage, sinceMs } = this.#o.stage();
    if (this.#o.idle.has(stage) || sinceMs === this.#reported) return;
    const age = now - sinceMs;
    if (age < this.#o.stallMs) return;
    this.#reported = sinceMs;
    this.#o.onStall(stage, age);
  }
}
