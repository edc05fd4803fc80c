/**
 * The meter-time clock of a replayed or simulated meter: it starts at `origin` and runs
 * `speed` times faster than the wall clock.
 */
export class VirtualClock {
  readonly #origin: number;
  readonly #speed: number;
  readonly #wallStart: number;

  constructor(origin: number, speed: number, wallStart = Date.now()) {
    this.#origin = origin;
    this.#speed = speed;
    this.#wallStart = wallStart;
  }

  now(): number {
    return this.#origin + (Date.now() - this.#wallStart) * this.#speed;
  }

  /** Wall-clock milliseconds until meter time t (0 when it has passed). */
  delayUntil(t: number): number {
    return Math.max(0, (t - this.now()) / this.#speed);
  }
}

/** Calls `emitDue(now)` whenever meter time reaches `nextDue()`, until stopped. */
export class VirtualTicker {
  readonly #clock: VirtualClock;
  readonly #nextDue: () => number | undefined;
  readonly #emitDue: (now: number) => void;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(clock: VirtualClock, nextDue: () => number | undefined, emitDue: (now: number) => void) {
    this.#clock = clock;
    this.#nextDue = nextDue;
    this.#emitDue = emitDue;
  }

  start(): void {
    this.#stopped = false;
    this.#arm();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Arms again after nextDue() had nothing (more rows became known); a no-op while armed. */
  wake(): void {
    if (!this.#stopped && this.#timer === undefined) this.#arm();
  }

  #arm(): void {
    this.#timer = undefined;
    if (this.#stopped) return;
    const due = this.#nextDue();
    if (due === undefined) return;
    // A floor of 1 ms keeps a very fast replay from starving the event loop.
    this.#timer = setTimeout(
      () => {
        this.#emitDue(this.#clock.now());
        this.#arm();
      },
      Math.max(1, this.#clock.delayUntil(due)),
    );
  }
}
